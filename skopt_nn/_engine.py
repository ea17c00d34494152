"""The one training loop shared by every estimator.

Design (measured on the benchmark workloads, see ``benchmarks/``):

* the data is on the device once; an epoch draws one permutation and walks it in
  batches (:class:`skopt_nn._data.EpochBatcher`: one gather per epoch into buffers
  for small data sets, chunks of batches for large ones);
* the objective returns analytic gradients written into one flat buffer, so an
  optimizer step is a few vector operations on one flat parameter vector;
* nothing is copied to the host inside an epoch: the epoch's loss is summed on
  the device and read once per epoch, where divergence, stopping and early
  stopping are decided;
* what must survive ``partial_fit`` and ``warm_start`` (parameters, optimizer
  state, schedule and its step counter, samples seen, the stopping rules'
  progress, the records) lives in :class:`Trainer`, which the estimator keeps.

The parts: an epoch in :mod:`._epochs`, the stopping rules and their warnings in
:mod:`._stopping`, tensors in nested state (pickling, snapshots, devices) in
:mod:`._tensor_state`; this module holds the state and the loop.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.base import clone

from . import _stopping as stopping
from . import _tensor_state as tensor_state
from ._data import Dataset, EpochBatcher, to_tensor
from ._epochs import EpochResult, full_batch_epoch, stochastic_epoch
from ._objective import Objective
from ._penalty import CumulativeL1
from ._shuffle import Shuffler
from .optim._base import Optimizer
from .optim._criteria import diverged
from .optim._schedules import Schedule

#: a loss this many times its starting value (or 1) above it counts as divergence
DIVERGENCE_FACTOR = 1e4
#: rows on which a mini-batch fit measures its starting loss
_START_SAMPLE = 4096

HISTORY_COLUMNS = ("epoch", "loss", "grad_norm", "step_size", "n_evals", "time")


class Monitor(Protocol):
    """Observer of the training loop (progress bars, scikit-learn callbacks)."""

    def begin_epoch(self, epoch: int) -> None:
        """Called before epoch ``epoch`` (1-based, counted over all calls)."""

    def end_epoch(self, record: tuple, x: torch.Tensor) -> bool:
        """Called after an epoch with its history row; return True to stop."""


class FullBatchOracle:
    """The objective on the whole training set, for the search methods."""

    def __init__(self, objective: Objective, data: Dataset):
        self.objective, self.data = objective, data

    def value(self, x: torch.Tensor) -> float:
        return float(self.objective.value(x, self.data))

    def value_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        g = torch.empty_like(x)
        f = self.objective.value_grad(x, self.data, g)
        return float(f), g

    def curvature(self, d: torch.Tensor) -> float | None:
        return self.objective.curvature(d, self.data)


@dataclass(frozen=True)
class RunConfig:
    """The settings of one training call (from the estimator's parameters)."""

    max_epochs: int
    batch_size: int
    shuffle: bool
    tol: float | None
    n_iter_no_change: int
    #: warn when max_epochs is reached unconverged (not for partial_fit's one epoch)
    warn_max_iter: bool = True
    #: makes the mini-batch epochs' batcher from ``(data, batch_size)`` in place of
    #: :class:`EpochBatcher`, and then always takes mini-batch steps (set by
    #: :mod:`skopt_nn.distributed`: each rank's share of the global batch)
    batcher: Any = None


@dataclass
class TrainingLog:
    """The records over all calls: ``loss_curve``, ``history`` rows (row 0 is the
    start) and early stopping's ``validation_scores``."""

    loss_curve: list = field(default_factory=list)
    history: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)

    def lengths(self) -> tuple[int, int, int]:
        return len(self.loss_curve), len(self.history), len(self.validation_scores)

    def truncate(self, lengths: tuple[int, int, int]) -> None:
        """Forget the records made after :meth:`lengths` returned ``lengths``."""
        for records, n in zip((self.loss_curve, self.history, self.validation_scores),
                              lengths, strict=True):
            del records[n:]


@dataclass
class Averager:
    """Averaged SGD (Polyak-Ruppert): x̄ = the mean of the iterates x⁽ᵏ⁾ over the steps
    k ≥ ``start`` (scikit-learn's ``average``), updated after each step as
    x̄ ← x̄ + (x⁽ᵏ⁾ − x̄)/n, n the number of iterates averaged."""

    start: int
    x: torch.Tensor | None = None
    n: int = 0

    def update(self, x: torch.Tensor, k: int) -> None:
        if k < self.start:
            return
        self.n += 1
        if self.x is None:
            self.x = x.clone()
        else:
            self.x.lerp_(x, 1.0 / self.n)


@dataclass
class _Good:
    """The model after the last whole epoch (and the one before) and the step count
    there: where an interrupt or a divergence goes back to."""

    x: torch.Tensor | None = None
    safe: torch.Tensor | None = None
    k: int = 0


@dataclass
class Trainer:
    """Everything that continues from one ``fit``/``partial_fit`` call to the next.

    ``k`` counts optimizer steps over all calls (the schedule's counter; the
    optimizer's own state may be reset without restarting the schedule) and ``t``
    training samples seen.  ``objective`` and ``fun_grad`` (f and ∇f at ``x``, for
    the full-batch methods) belong to the current call and are not pickled; nor is
    ``shuffler`` where it composes its orders (the MLPs': scikit-learn's, made afresh
    by every call), while one kept over calls (the linear models') is, as the state
    of its stream.
    """

    objective: Objective | None
    x: torch.Tensor
    optimizer: Optimizer
    schedule: Schedule
    #: the batch orders and bootstrap rows of the current call
    shuffler: Shuffler | None = None
    #: the ``learning_rate_init`` parameter the schedule was started from
    learning_rate_init: float | str | None = None
    opt_state: Any = None
    k: int = 0
    t: int = 0
    initial_loss: float | None = None
    progress: stopping.Progress = field(default_factory=stopping.Progress)
    log: TrainingLog = field(default_factory=TrainingLog)
    fun_grad: tuple[float, torch.Tensor] | None = None
    #: the average of the iterates, where the estimator averages (``average``)
    averager: Averager | None = None
    #: the L1 penalty's truncation state, where it is a step of its own
    l1: CumulativeL1 | None = None

    def __post_init__(self):
        if self.opt_state is None:
            self.opt_state = self.optimizer.init_state(self.x)

    def model_x(self) -> torch.Tensor:
        """The parameters the fitted model publishes: the average of the iterates
        where averaging has begun, else the current iterate."""
        avg = self.averager
        return self.x if avg is None or avg.x is None else avg.x

    # the records, as the estimators read them
    @property
    def loss_curve(self) -> list:
        return self.log.loss_curve

    @property
    def history(self) -> list:
        return self.log.history

    # -- persistence: plain NumPy state, so a fitted model loads on a machine without
    # the device it was trained on -------------------------------------------------------
    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("objective", "fun_grad", "shuffler")}
        state["schedule"] = dataclasses.asdict(self.schedule)
        state["log"] = dataclasses.replace(
            self.log, history=[list(row) for row in self.log.history])
        state = tensor_state.to_numpy(state)
        state["shuffler"] = self._kept_shuffler_state()
        return state

    def __setstate__(self, state):
        state = dict(state)
        shuffler = state.pop("shuffler", None)
        state = tensor_state.from_numpy(state)
        state["schedule"] = Schedule(**state["schedule"])
        state["log"].history = [tuple(row) for row in state["log"].history]
        state.pop("generator", None)  # pickled when shuffling kept a torch generator
        state["shuffler"] = None if shuffler is None else \
            Shuffler.from_state(shuffler, compose=False)
        state["objective"], state["fun_grad"] = None, None
        state.setdefault("averager", None)  # pickled before averaging existed
        state.setdefault("l1", None)
        self.__dict__.update(state)

    def _kept_shuffler_state(self) -> tuple | None:
        """The state of a shuffler kept over calls (one that does not compose), else
        None (there is none, or it belongs to its call)."""
        shuffler = self.shuffler
        return None if shuffler is None or shuffler.compose else shuffler.get_state()

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> Trainer:
        """Move the state's tensors to ``device`` (and floating ones to ``dtype``)."""
        for k, v in self.__dict__.items():
            if k not in ("objective", "shuffler", "log"):
                setattr(self, k, tensor_state.move(v, device, dtype))
        return self

    def snapshot(self) -> dict:
        """The state as it is now, cloned on its device (the records by length only),
        for :meth:`restore` after a call that fails.

        The shuffler is kept as the object it is, and its state where it is kept over
        calls (a stream of its own); a composing one belongs to its call (the failed
        call made its own, which is dropped) and the stream it draws from, maybe the
        caller's ``RandomState`` or NumPy's global one, is not rewound (nor is it by
        scikit-learn).
        """
        snap = {k: tensor_state.clone(v) for k, v in self.__dict__.items()
                if k not in ("objective", "log", "shuffler", "fun_grad", "optimizer")}
        snap["optimizer"] = self.optimizer
        snap["shuffler"] = self.shuffler
        snap["shuffler_state"] = self._kept_shuffler_state()
        snap["schedule"] = dataclasses.replace(self.schedule)
        snap["log_lengths"] = self.log.lengths()
        return snap

    def restore(self, snap: dict) -> None:
        """Back to a :meth:`snapshot`; the records made since are dropped."""
        snap = dict(snap)
        self.log.truncate(snap.pop("log_lengths"))
        shuffler_state = snap.pop("shuffler_state")
        if shuffler_state is not None:
            snap["shuffler"].set_state(shuffler_state)
        self.__dict__.update(snap)
        self.fun_grad = None

    # -- starting a new call ----------------------------------------------------------------
    def resume(self, objective: Objective, optimizer: Optimizer, fitted: np.ndarray,
               device: torch.device, dtype: torch.dtype) -> None:
        """Continue on a new call's data, objective and optimizer.

        ``fitted`` is the flat vector of the estimator's fitted attributes: where the
        user edited them (``coef_``, ``coefs_``) they replace the trainer's copy.  A
        changed optimizer, or parameters that had to be projected back to the model,
        restart the optimizer's state (not the schedule).
        """
        self.to(device, dtype)
        if self.x.numel() != objective.n_params:
            raise ValueError(
                f"The model's size changed since the last fit ({self.x.numel()} "
                f"parameters, now {objective.n_params}): warm_start and partial_fit "
                "need the same architecture (e.g. hidden_layer_sizes).")
        self.objective = objective
        if not np.array_equal(fitted, self.model_x().cpu().numpy().astype(fitted.dtype)):
            self.x = to_tensor(fitted.copy(), dtype, device)  # the user edited the model
            if self.averager is not None:
                self.averager = Averager(self.averager.start)
        projected = objective.project(self.x)
        if projected or type(self.optimizer) is not type(optimizer) or \
                self.optimizer.get_params() != optimizer.get_params():
            self.optimizer = clone(optimizer)
            self.opt_state = optimizer.init_state(self.x)
        self.fun_grad = None

    # -- the loop -------------------------------------------------------------------------
    def run(self, data: Dataset, config: RunConfig, validation=None,
            monitor: Monitor | None = None) -> int:
        """Train for up to ``config.max_epochs`` epochs; return the number completed.

        Stopping: the rules of :mod:`._stopping`; divergence (a non-finite loss or
        one far above the call's starting loss) keeps the last finite parameters;
        Ctrl-C (KeyboardInterrupt) anywhere in the loop, a monitor's callbacks and
        the validation scoring included, keeps the last whole epoch
        (:meth:`_rewind`).  Every stop that deserves a warning gets it from
        :func:`._stopping.warn_stop`.
        """
        n = len(data)
        full_batch = config.batcher is None and (self.optimizer.full_batch or
                                                 config.batch_size >= n)
        oracle = FullBatchOracle(self.objective, data) if full_batch else None
        sample = data if full_batch else data.slice(0, min(n, max(config.batch_size,
                                                                   _START_SAMPLE)))
        rules = stopping.StoppingRules(config.tol, config.n_iter_no_change,
                                       self.optimizer.stops_on_plateau,
                                       self.objective.loss.smooth)
        batcher = None if full_batch else (config.batcher or EpochBatcher)(data,
                                                                          config.batch_size)
        good = _Good(k=self.k)
        epochs, n_fun, reason, epoch, start = 0, 0, None, None, math.nan
        try:
            start = self._start(data, oracle, sample)  # this call's loss at its start
            good.x, good.safe = self.x.clone(), self.x.clone()
            g = torch.empty_like(self.x)
            t0 = time.perf_counter()
            while reason is None and epochs < config.max_epochs:
                if monitor is not None:
                    monitor.begin_epoch(len(self.log.loss_curve) + 1)
                epoch = full_batch_epoch(self, oracle, n) if full_batch else \
                    stochastic_epoch(self, batcher, g, config.shuffle)
                if self._diverged(epoch, start):
                    self._recover(good, sample, start)
                    reason = stopping.DIVERGED
                    break
                score = None if validation is None else validation(self.x)
                epochs += 1
                n_fun += epoch.n_evals
                reason = self._commit(epoch, score, rules, good, t0, monitor) or \
                    self._over_budget(n_fun)
        except KeyboardInterrupt:  # as scikit-learn: keep the last whole epoch's model
            self._rewind(good)
            reason = stopping.INTERRUPTED
        if reason is None and config.warn_max_iter and config.tol is not None:
            reason = stopping.MAX_ITER
        stopping.warn_stop(reason, **self.context(reason, epoch, start, config,
                                                               n_fun))
        return epochs

    def _commit(self, epoch: EpochResult, score: float | None,
                rules: stopping.StoppingRules, good: _Good, t0: float,
                monitor: Monitor | None) -> str | None:
        """Record a whole epoch; the reason to stop after it, or None."""
        good.safe.copy_(good.x)
        good.x.copy_(self.x)
        good.k = self.k
        reason = self.record(epoch, score, rules, t0)
        if monitor is not None and monitor.end_epoch(self.log.history[-1], self.x):
            return stopping.CALLBACK
        return reason

    def record(self, epoch: EpochResult, score: float | None, rules: stopping.StoppingRules,
               t0: float) -> str | None:
        """Write a whole epoch into the records and the rules' progress; the reason to
        stop after it, or None."""
        self.t += epoch.n_seen
        log = self.log
        log.loss_curve.append(epoch.loss)
        log.history.append((len(log.loss_curve), epoch.loss, epoch.grad_norm,
                            epoch.step_size, epoch.n_evals, time.perf_counter() - t0))
        if score is not None:
            log.validation_scores.append(score)
        return rules.after_epoch(self.progress, epoch.loss, score, self.x, self.schedule,
                                 epoch.gmax, epoch.stalled)

    def _over_budget(self, n_fun: int) -> str | None:
        """MAX_FUN once the optimizer's evaluation budget is spent by this call."""
        budget = self.optimizer.evaluation_budget()
        return stopping.MAX_FUN if budget is not None and n_fun >= budget else None

    def context(self, reason: str | None, epoch: EpochResult | None, start: float,
                 config: RunConfig, n_fun: int) -> dict:
        """What the warning of ``reason`` says (see :func:`._stopping.warn_stop`)."""
        method = type(self.optimizer).__name__
        if reason == stopping.DIVERGED:
            return {"epoch": len(self.log.loss_curve) + 1, "start": start,
                    "loss": max(epoch.loss, epoch.loss_after), "eta": self._eta()}
        if reason == stopping.STALLED:
            return {"method": method, "gmax": epoch.gmax, "tol": config.tol,
                    "eta": self._eta(), "dtype": str(self.x.dtype).split(".")[-1]}
        if reason == stopping.MAX_FUN:
            return {"method": method, "n_fun": n_fun,
                    "max_fun": self.optimizer.evaluation_budget()}
        return {"max_epochs": config.max_epochs}

    def _eta(self) -> float:
        """The base step η₀ that the warnings name ('optimal', which has none: its
        current step)."""
        eta = self.schedule.eta
        return eta if math.isfinite(eta) else self.schedule(max(self.k, 1))

    def _diverged(self, epoch: EpochResult, start: float) -> bool:
        return diverged(epoch.loss, start, DIVERGENCE_FACTOR) or \
            diverged(epoch.loss_after, start, DIVERGENCE_FACTOR) or \
            not bool(torch.isfinite(self.x).all())

    def _rewind(self, good: _Good) -> None:
        """Back to the last whole epoch after an interrupt.

        The records (curves, counters, best loss) are only written once an epoch is
        whole, so the parameters are what may be ahead; the optimizer's state is
        reset when it took steps past that epoch (a partial epoch's moments do not
        belong to the kept parameters), and the step counter goes back.
        """
        if good.x is not None:
            self.x.copy_(good.x)
        if self.k != good.k:
            self.opt_state = self.optimizer.init_state(self.x)
            self.k = good.k
        self.fun_grad = None

    def _start(self, data: Dataset, oracle, sample: Dataset) -> float:
        """f at the start of this call: the reference for divergence (and, on the
        first call, history row 0).

        Full batch: the first iteration's evaluation, computed now and reused.
        Mini-batch: the loss on ``sample``, the first max(batch_size, 4096) rows
        (all of a small data set), so a large data set is never pushed through the
        model at once (that would hold every layer's activations for all rows).
        """
        grad_norm = math.nan
        if oracle is not None:
            self.fun_grad = oracle.value_grad(self.x)
            start, grad_norm = self.fun_grad[0], float(self.fun_grad[1].norm())
        else:
            start = float(self.objective.value(self.x, sample))
        if not math.isfinite(start):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed.")
        if self.initial_loss is None:
            self.initial_loss = start
            self.log.history.append((0, start, grad_norm, 0.0, 1, 0.0))
        return start

    def _recover(self, good: _Good, sample: Dataset, start: float) -> None:
        """After divergence: the last parameters that are finite and not diverged.

        The start of the failed epoch can itself be a blown-up point (the last step
        of the epoch before went astray); it is checked on ``sample``, and the start
        of the epoch before is used instead when it fails.  The optimizer's state
        (moments, velocity) is reset: it was built along the diverging path; the
        schedule's step counter is not.
        """
        loss = float(self.objective.value(good.x, sample))
        ok = bool(torch.isfinite(good.x).all()) and not diverged(loss, start,
                                                                 DIVERGENCE_FACTOR)
        self.x.copy_(good.x if ok else good.safe)
        self.opt_state = self.optimizer.init_state(self.x)
        self.fun_grad = None
