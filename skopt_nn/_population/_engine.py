"""The training loop of a population: M prepared fits of one architecture, one
optimizer class and one batch size, trained in lockstep.

Each model keeps what a fit of its own would have: its starting weights and
shuffler (made by the estimator's own setup), its rows, sample weights,
schedule, step counter, stopping rules, records and warnings.  Only the
arithmetic is shared: an epoch draws each model's permutation from its own
shuffler, gathers its batches from the shared rows in one index operation per
epoch (per step for large data), and each step is one batched forward and
backward pass (:class:`._network.StackedNetwork`) and one update of every row
(:mod:`._rules`).  The epoch's losses (and early stopping's outputs) are read
once per epoch; a model that stops leaves the population: its row is written
back into its trainer and the others go on, compacted.

A model whose training diverges is trained again alone by its estimator (the
single fit's recovery), so its outcome is the one a fit of its own gives.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .. import _stopping as stopping
from .._compiled_mlp import compiled_population_epoch
from .._engine import _START_SAMPLE, DIVERGENCE_FACTOR
from .._epochs import EpochResult
from ..optim._schedules import KIND_CODES
from ._network import Batch, StackedNetwork
from ._records import EpochTable, Ledger, Rules
from ._rows import TrainingRows
from ._rules import population_rule
from ._scratch import Scratch

#: data sets up to this many bytes (over all models) are permuted with one gather
#: per epoch; larger ones gather each step's batch
GATHER_EPOCH_BYTES = 64 << 20


class Stopped(Exception):
    """A population's training ended early because another thread's part failed."""


@dataclass(eq=False)
class Member:
    """A model of the population: its estimator, its prepared job and its rules."""

    estimator: object
    job: object  # skopt_nn._estimator_base.FitJob, with its trainer
    start: float = math.nan
    epochs: int = 0
    reason: str | None = None
    finished: bool = False
    #: the last epoch's result (what a stop's warning reports)
    last: EpochResult | None = None
    #: trained again alone (its fit diverged, or its start was not finite)
    alone: bool = False


def total_dtype(X: torch.Tensor) -> torch.dtype:
    """The dtype an epoch's losses are summed in: float64 (MPS has none)."""
    return torch.float64 if X.device.type != "mps" else X.dtype


class Population:
    """M members trained together (see the module docstring)."""

    def __init__(self, members: list[Member]):
        self.members = members
        jobs = [m.job for m in members]
        first = jobs[0]
        self.config = first.config
        self.X = torch.stack([j.trainer.x for j in jobs])
        like = self.X
        objective = first.objective
        self.net = StackedNetwork(objective.network(), objective.loss, torch.tensor(
            [[j.objective.alpha] for j in jobs], dtype=like.dtype, device=like.device))
        self.rule = population_rule(first.optimizer)([j.trainer.optimizer for j in jobs], like)
        self.state = self.rule.init_state(self.X)
        self.rows = TrainingRows([j.data for j in jobs])
        #: an epoch's permuted rows and a step's batch, reused (see :class:`Scratch`)
        self.scratch = Scratch()
        self.full_batch = first.optimizer.full_batch or self.config.batch_size >= len(self.rows)
        self.validation = None
        if first.validation_set is not None:
            self.validation = torch.stack([j.validation_set[0] for j in jobs])
        self.k = first.trainer.k
        self._shufflers(members)
        self.starts = np.full(len(members), math.nan)
        self.max_epochs = np.array([j.config.max_epochs for j in jobs])
        self.rules = Rules(members, self.X)
        self.ledger = Ledger(len(members))
        self.last: EpochTable | None = None

    def _shufflers(self, members: list[Member]) -> None:
        """Each member's permutations come from its own shuffler.  Members whose
        shufflers are in the same state (one int random_state, as in a search) and
        who have as many rows share one draw, from a copy, and their shufflers are
        set to its state when they leave.  Members whose shufflers draw from one
        stream object (``random_state=None``: NumPy's global one; or one
        ``RandomState`` given to several) draw from it in turn, each its own order,
        as fits one after another would."""
        self.shufflers, self.drawn, self.live, source, seen = [], [], [], [], {}
        streams = Counter(id(m.job.trainer.shuffler.random_state) for m in members
                          if m.job.config.shuffle)
        for m, n in zip(members, self.rows.counts.tolist(), strict=True):
            if not m.job.config.shuffle:
                source.append(-1)  # stored order
                continue
            shuffler = m.job.trainer.shuffler
            if streams[id(shuffler.random_state)] > 1:  # its own draws, from the stream
                source.append(len(self.shufflers))
                self.shufflers.append(shuffler)
                self.drawn.append(n)
                self.live.append(True)
                continue
            key = (shuffler.key(), n)
            if key not in seen:
                seen[key] = len(self.shufflers)
                self.shufflers.append(shuffler.copy())
                self.drawn.append(n)
                self.live.append(False)
            source.append(seen[key])
        self.source = torch.tensor(source, dtype=torch.int64)

    def _permutations(self) -> torch.Tensor:
        """Each member's permutation of its rows for this epoch, ``(M, n)`` with n the
        longest's (a shorter one's padding stays at its end)."""
        n = len(self.rows)
        base = torch.arange(n)
        used = set(self.source.tolist())  # (the draws of members still training)
        perms = [base if i not in used else
                 torch.cat([s.permutation(m), base[m:]]) if m < n else s.permutation(n)
                 for i, (s, m) in enumerate(zip(self.shufflers, self.drawn, strict=True))]
        perms.append(base)  # row -1: the stored order
        return torch.stack(perms).index_select(0, self.source.where(
            self.source >= 0, len(self.shufflers))).to(self.X.device)

    # -- the step sizes -------------------------------------------------------------------
    def schedules(self) -> np.ndarray:
        """Each model's schedule as a ``(5, M)`` array of (kind, η, power_t, μ, t₀), kind
        0 (constant, adaptive), 1 (invscaling) or 2 (optimal); remade only where the
        members changed or a schedule may have ('adaptive' divides η on plateaus)."""
        cached = getattr(self, "_schedules", None)
        if cached is None or cached[0] is not self.members or cached[1]:
            found = [m.job.trainer.schedule for m in self.members]
            table = np.array([[KIND_CODES[s.kind], s.eta, s.power_t, s.mu, s.t0]
                              for s in found]).T.copy()
            cached = self._schedules = (self.members, any(s.kind == "adaptive" for s in found),
                                        table)
        return cached[2]

    def _steps(self, k: int) -> np.ndarray:
        """Each model's η at step ``k`` (its schedule's, as :class:`Schedule` computes it)."""
        kind, eta, power_t, mu, t0 = self.schedules()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(kind == 1, eta / float(k) ** power_t,
                            np.where(kind == 2, 1.0 / (mu * (t0 + k - 1)), eta))

    def _lr(self, k: int) -> torch.Tensor:
        """Each model's η at step ``k`` as an ``(M, 1)`` column (its schedule's)."""
        return torch.tensor(self._steps(k), dtype=self.X.dtype,
                            device=self.X.device).view(-1, 1)

    def _constant_steps(self) -> bool:
        """Whether every model's η stays fixed within an epoch."""
        return all(m.job.trainer.schedule.kind in ("constant", "adaptive")
                   for m in self.members)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, progress=None, stop=None) -> None:
        """Train every member to its end; finished members are written back.

        ``progress`` (a :class:`skopt_nn._progress.PopulationProgress`) hears of each
        epoch; ``stop`` (a :class:`threading.Event`), where set, ends the training
        before the next epoch with :class:`Stopped` (another thread's part failed)."""
        t0 = time.perf_counter()
        epochs = 0
        with np.errstate(over="ignore", invalid="ignore"):  # NumPy's products (the CPU's)
            self._start()
            while self.members:
                if stop is not None and stop.is_set():
                    raise Stopped("stopped: another part of this fit_many call failed")
                epoch = self._full_batch_epoch() if self.full_batch else \
                    self._stochastic_epoch()
                self._after_epoch(*epoch, t0)
                epochs += 1
                if progress is not None:
                    progress.end_epoch(epochs, len(self.members))

    def _start(self) -> None:
        """Each member's loss at the start (history row 0); f and ∇f for full batch."""
        n = len(self.rows)
        G = None
        if self.full_batch:
            G = torch.empty_like(self.X)
            F = self.net.value_grad(self.X, self.rows.first(n), G)
            grad_norms = G.norm(dim=1).double().cpu().numpy()
        else:
            F = self.net.value(self.X, self.rows.first(min(n, max(self.config.batch_size,
                                                                    _START_SAMPLE))))
            grad_norms = np.full(len(self.members), math.nan)
        starts = F.double().cpu().numpy()
        self.starts = starts.copy()
        for m, start, gn in zip(self.members, starts, grad_norms, strict=True):
            m.start = float(start)
            if not math.isfinite(m.start):
                m.alone = True  # its own fit raises the error
                continue
            trainer = m.job.trainer
            if trainer.initial_loss is None:
                trainer.initial_loss = m.start
                trainer.log.history.append((0, m.start, float(gn), 0.0, 1, 0.0))
        self.fun_grad = None if G is None else (F, G)
        self._drop([m for m in self.members if m.alone])

    def _stochastic_epoch(self):
        """Mini-batch steps over each model's permutation (lecture Eq. 24-26)."""
        rows = self.rows
        n = len(rows)
        R, sw = rows.permuted(self._permutations(), self.scratch)
        compiled = compiled_population_epoch(self, R, sw)  # small networks, CPU
        if compiled is not None:
            stacked, G = compiled
        else:
            G = torch.empty_like(self.X)
            losses = []
            lr = self._lr(self.k + 1)
            constant = self._constant_steps()
            for batch in self._batches(R, sw):
                losses.append(self.net.value_grad(self.X, batch, G))
                self.k += 1
                self.rule.update(self.X, G, lr if constant else self._lr(self.k), self.state)
            stacked = torch.stack(losses)
        b = self.config.batch_size
        sizes = torch.tensor(np.clip(rows.counts[None, :] - np.arange(0, n, b)[:, None], 0, b),
                             dtype=total_dtype(self.X), device=self.X.device)
        # sizes (n_batches, M): each model's rows per batch; its epoch loss (M,)
        loss = (sizes * stacked.to(sizes.dtype)).sum(0) / sizes.sum(0)
        # a row's sum is finite where the row is (or, rarely, a finite row overflows
        # it: that model is trained again alone, which gives its own fit's result)
        read = torch.stack([loss, G.norm(dim=1).to(loss.dtype),
                            self.X.sum(1).to(loss.dtype)]).cpu().numpy()
        return EpochTable(read[0], read[1], self._steps(self.k), len(sizes), rows.counts,
                          read[0]), np.isfinite(read[2])

    def _batches(self, R: torch.Tensor, sw: torch.Tensor | None):
        """The epoch's batches of the rows ``R`` (M, n) with their targets and weights.

        A small data set is gathered once for the epoch, batch-major, so that each
        batch is one contiguous block (a strided slice made the batched products
        of the lecture's network 40% slower); a large one a batch at a time.
        """
        rows, b = self.rows, self.config.batch_size
        M, n = R.shape
        K = rows.Y.shape[1]
        whole = M * n * rows.X.shape[1] * rows.X.element_size() <= GATHER_EPOCH_BYTES
        shortest = int(rows.counts.min())
        full = shortest // b * b if whole else 0  # the batches without padding

        def blocks(T: torch.Tensor) -> torch.Tensor:  # (M, full, ...) -> (nb, M, b, ...)
            return T[:, :full].reshape(M, full // b, b, *T.shape[2:]).transpose(0, 1)

        scratch = self.scratch
        if full:
            nb, d = full // b, rows.X.shape[1]
            Rb = blocks(R).reshape(-1, b)  # batch-major rows (a copy: made once)
            Xb = rows.take(Rb, scratch.get("epoch X", (nb * M, b, d), rows.X)).view(nb, M, b, d)
            Yb = rows.targets(Rb, scratch.get("epoch Y", (nb * M, b, K), rows.Y)).view(
                nb, M, b, K)
            swb = None if sw is None else \
                scratch.get("epoch sw", (nb, M, b), sw).copy_(blocks(sw))
            for j in range(full // b):
                yield Batch(Xb[j], Yb[j], None if swb is None else swb[j], rows.ws)
        for start in range(full, n, b):
            stop = min(start + b, n)
            size = stop - start
            Xb = rows.take(R[:, start:stop], scratch.get(("X", size), (M, size, rows.X.shape[1]),
                                                         rows.X))
            Yb = rows.targets(R[:, start:stop], scratch.get(("Y", size), (M, size, K), rows.Y))
            counts = rows.counts_in(start, stop) if stop > shortest else None  # the last
            swb = rows.padding_weights(counts, size) if sw is None else \
                scratch.get(("sw", size), (M, size), sw).copy_(sw[:, start:stop])
            yield Batch(Xb, Yb, swb, rows.ws, counts)

    def _full_batch_epoch(self):
        """One step on all rows (gradient descent; a mini-batch method whose batch is
        the whole set), then f and ∇f at the new point, as the single fit records them."""
        F, G = self.fun_grad
        self.k += 1
        lr = self._lr(self.k)
        self.rule.update(self.X, G, lr, self.state)
        G_new = torch.empty_like(self.X)
        F_new = self.net.value_grad(self.X, self.rows.first(len(self.rows)), G_new)
        read = torch.stack([F.double(), F_new.double(), G_new.norm(dim=1).double(),
                            G_new.abs().amax(1).double(), lr.view(-1).double(),
                            self.X.sum(1).double()]).cpu().numpy()
        self.fun_grad = (F_new, G_new)
        if self.members[0].job.optimizer.full_batch:  # records f of the new point
            table = EpochTable(read[1], read[2], read[4], 1, self.rows.counts, read[1],
                               ~np.isfinite(read[1]),
                               read[3])
        else:
            table = EpochTable(read[0], read[2], read[4], 1, self.rows.counts, read[1])
        return table, np.isfinite(read[5])  # (a row's sum: see _stochastic_epoch)

    def _after_epoch(self, table: EpochTable, finite: np.ndarray, t0: float) -> None:
        """Every member's records and rules; the members that stop leave."""
        limit = self.starts + DIVERGENCE_FACTOR * np.maximum(np.abs(self.starts), 1.0)
        bad = ~finite | ~(np.isfinite(table.loss) & np.isfinite(table.loss_after)) | \
            (table.loss > limit) | (table.loss_after > limit)
        if bad.any():
            diverging = [m for m, b in zip(self.members, bad, strict=True) if b]
            for m in diverging:
                m.alone = True  # trained again alone, as its own fit recovers from divergence
            self._drop(diverging)
            table = table.select(np.flatnonzero(~bad))
        if not self.members:
            return
        scores = self._validation_scores()
        self.ledger.append(table, scores, time.perf_counter() - t0)
        self.last = table
        reasons = self.rules.after_epoch(table, scores, self.X, self.members)
        finished = len(self.ledger) >= self.max_epochs
        done = []
        for m, reason, end in zip(self.members, reasons, finished, strict=True):
            if reason is None and end:
                reason = stopping.MAX_ITER if m.job.config.tol is not None else None
                m.finished = True
            m.reason = reason
            if reason is not None or m.finished:
                done.append(m)
        self._drop(done)

    def _validation_scores(self) -> np.ndarray | None:
        if self.validation is None:
            return None
        with torch.inference_mode():
            Z = self.net.decision(self.X, self.validation).double().cpu().numpy()
        return np.array([m.estimator._output_score(Z[i], *m.job.validation_set[1:])
                         for i, m in enumerate(self.members)], dtype=float)

    def _drop(self, done: list[Member]) -> None:
        """Write the finished members back into their trainers and compact the rest."""
        if not done:
            return
        leaving = {id(m) for m in done}
        states: dict = {}  # each shared draw's state, read once for all who leave
        for i, m in enumerate(self.members):
            if id(m) in leaving and not m.alone:
                trainer = m.job.trainer
                source = int(self.source[i])
                if source >= 0 and not self.live[source]:  # (a live one is its own)
                    if source not in states:
                        states[source] = self.shufflers[source].get_state()
                    trainer.shuffler.set_state(states[source])
                trainer.x = self.X[i].clone()
                trainer.opt_state = self.rule.state_of(i, trainer.x, self.state)
                trainer.k = self.k
                trainer.fun_grad = None
                self.ledger.write(i, trainer, self.validation is not None)
                self.rules.write(i, trainer.progress)
                m.epochs = len(self.ledger)
                m.last = None if self.last is None else self.last.row(i)
        keep = [i for i, m in enumerate(self.members) if id(m) not in leaving]
        self.members = [self.members[i] for i in keep]
        if not keep:
            return
        index = torch.tensor(keep, device=self.X.device)
        self.ledger.select(np.array(keep))
        self.rules.select(np.array(keep), index)
        if self.last is not None:
            self.last = self.last.select(np.array(keep))
        self.source = self.source[keep]
        self.starts = self.starts[keep]
        self.max_epochs = self.max_epochs[keep]
        self.X = self.X.index_select(0, index)
        self.state = self.rule.select(index, self.state)
        self.net.select(index)
        self.rows.select(index)
        if self.fun_grad is not None:
            self.fun_grad = tuple(t.index_select(0, index) for t in self.fun_grad)
        if self.validation is not None:
            self.validation = self.validation.index_select(0, index)
