"""The one training loop shared by every estimator.

Design (measured on the benchmark workloads, see ``benchmarks/``):

* the data is on the device once; an epoch draws one permutation and walks it in
  slices; small data sets are gathered once per epoch, large ones one batch at a
  time (a single full gather of 200k x 100 floats cost 7x the per-batch gathers);
* the objective returns analytic gradients written into one flat buffer, so an
  optimizer step is a few vector operations on one flat parameter vector;
* nothing is copied to the host inside an epoch: the epoch's loss is summed on
  the device and read once per epoch, where divergence, stopping and early
  stopping are decided;
* the state that must survive ``partial_fit`` and ``warm_start`` (parameters,
  optimizer state, schedule, counters, best loss) lives in :class:`Trainer`.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ._data import Dataset, epoch_batches
from .optim._base import Optimizer, SearchMethod
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

    def __init__(self, objective, data: Dataset):
        self.objective, self.data = objective, data
        if hasattr(objective, "curvature"):
            self.curvature = lambda d: objective.curvature(d, data)

    def value(self, x: torch.Tensor) -> float:
        return float(self.objective.value(x, self.data))

    def value_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        g = torch.empty_like(x)
        f = self.objective.value_grad(x, self.data, g)
        return float(f), g


@dataclass
class Trainer:
    """Everything that continues from one ``fit``/``partial_fit`` call to the next."""

    objective: Any
    x: torch.Tensor
    optimizer: Optimizer
    schedule: Schedule
    opt_state: dict = field(default_factory=dict)
    loss_curve: list = field(default_factory=list)
    history: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    best_x: torch.Tensor | None = None
    no_improve: int = 0
    t: int = 0
    initial_loss: float | None = None
    fun_grad: tuple[float, torch.Tensor] | None = None
    generator: torch.Generator | None = None
    #: the ``learning_rate_init`` parameter the schedule was started from
    learning_rate_init: float | str | None = None

    def __post_init__(self):
        if not self.opt_state:
            self.opt_state = self.optimizer.init_state(self.x)

    # -- pickling: plain NumPy state, so a fitted model loads on a machine without the
    # device it was trained on (and skops can inspect it) --------------------------------
    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("objective", "fun_grad")}
        state["schedule"] = dataclasses.asdict(self.schedule)
        state["history"] = [list(row) for row in self.history]
        generator = state.get("generator")
        state["generator"] = None if generator is None else generator.get_state()
        return _convert(state, lambda t: t.detach().cpu().numpy())

    def __setstate__(self, state):
        state = _convert(dict(state), _from_numpy)
        state["schedule"] = Schedule(**state["schedule"])
        state["history"] = [tuple(row) for row in state["history"]]
        if state.get("generator") is not None:
            generator = torch.Generator()
            generator.set_state(state["generator"].to(torch.uint8))
            state["generator"] = generator
        state["objective"], state["fun_grad"] = None, None
        self.__dict__.update(state)

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> Trainer:
        """Move the state's tensors to ``device`` (and floating ones to ``dtype``)."""

        def move(t):
            if dtype is not None and t.is_floating_point():
                return t.to(device, dtype)
            return t.to(device)

        for k, v in self.__dict__.items():
            if k not in ("objective", "generator"):
                setattr(self, k, _convert(v, move))
        return self

    # -- the loop -----------------------------------------------------------------------
    def run(
        self,
        data: Dataset,
        *,
        max_epochs: int,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator,
        tol: float | None,
        n_iter_no_change: int,
        validation: Callable[[torch.Tensor], float] | None = None,
        monitor: Monitor | None = None,
        sampling: str = "without_replacement",
        warn_max_iter: bool = True,
    ) -> int:
        """Train for up to ``max_epochs`` epochs; return the number completed.

        Stopping rules (none when ``tol`` is None):

        * search methods (line searches, steepest descent, L-BFGS) stop when
          ``max|∇f| ≤ tol`` (scipy's ``gtol``, as scikit-learn's L-BFGS), when the
          line search finds no decrease (with a ConvergenceWarning unless the loss
          is nonsmooth), or when ``max_fun`` evaluations are spent;
        * the other methods stop when the training loss (or, with ``validation``,
          the validation score) has not improved by ``tol`` for
          ``n_iter_no_change`` epochs (scikit-learn's rule; with 'adaptive' the
          step is divided by 5 instead until it falls below 1e-6); full-batch
          gradient descent also stops when ``max|∇f| ≤ tol``;
        * divergence (a non-finite loss or one far above the starting loss) stops
          with a ConvergenceWarning and keeps the last finite parameters;
        * Ctrl-C (KeyboardInterrupt) anywhere in the loop, a monitor's callbacks
          and the validation scoring included, stops with a warning and keeps the
          last whole epoch (:meth:`_rewind`).
        """
        n = len(data)
        full_batch = self.optimizer.full_batch or batch_size >= n
        oracle = FullBatchOracle(self.objective, data) if full_batch else None
        sample = data if full_batch else data.slice(0, min(n, max(batch_size, _START_SAMPLE)))
        max_fun = getattr(self.optimizer, "max_fun", None)
        n_fun = 0
        epochs = 0
        converged = False
        # the model after the last whole epoch (and the one before), and the optimizer
        # step count there: an interrupt or a divergence goes back to them
        x_good = x_safe = None
        k_good = self.opt_state["k"]
        t_start = time.perf_counter()
        try:
            reference = self._start(data, oracle, sample)  # this call's loss at its start
            g = torch.empty_like(self.x)
            x_good, x_safe = self.x.clone(), self.x.clone()
            for _ in range(max_epochs):
                if monitor is not None:
                    monitor.begin_epoch(len(self.loss_curve) + 1)
                if full_batch:
                    loss, grad_norm, step, n_evals, stalled, gmax, loss_after = \
                        self._full_batch_epoch(oracle, g)
                    n_seen = n
                else:
                    loss, grad_norm, step, n_evals, n_seen = self._stochastic_epoch(
                        data, g, batch_size, shuffle, generator, sampling)
                    stalled, gmax, loss_after = False, math.inf, loss
                if diverged(loss, reference, DIVERGENCE_FACTOR) or \
                        diverged(loss_after, reference, DIVERGENCE_FACTOR) or \
                        not bool(torch.isfinite(self.x).all()):
                    self._recover(x_good, x_safe, sample, reference)
                    warnings.warn(
                        f"Training diverged at epoch {len(self.loss_curve) + 1} (loss "
                        f"{max(loss, loss_after):.3g}, starting loss {reference:.3g}) with "
                        f"learning rate {self.schedule.eta:g} (learning_rate_init); the last "
                        "finite parameters are kept. Use a smaller learning_rate_init.",
                        ConvergenceWarning, stacklevel=5)
                    return epochs
                # a line search that finds no decrease at a kink of a nonsmooth loss (hinge,
                # absolute error), where the gradient never vanishes, is its natural end
                if stalled and tol is not None and gmax > tol and self.objective.loss.smooth:
                    warnings.warn(
                        f"{type(self.optimizer).__name__}: the line search found no step "
                        f"that decreases the loss while the largest gradient component is "
                        f"{gmax:.3g} > tol={tol:g}, so training stopped: the loss is at the "
                        f"limit of {str(self.x.dtype).replace('torch.', '')} precision, or "
                        f"learning_rate_init={self.schedule.eta:g} is far from a useful step.",
                        ConvergenceWarning, stacklevel=5)
                score = None if validation is None else validation(self.x)
                # the epoch is whole: record it
                epochs += 1
                x_safe.copy_(x_good)
                x_good.copy_(self.x)
                k_good = self.opt_state["k"]
                self.t += n_seen
                self.loss_curve.append(loss)
                self.history.append((len(self.loss_curve), loss, grad_norm, step, n_evals,
                                     time.perf_counter() - t_start))
                stop = self._should_stop(loss, score, tol, n_iter_no_change, gmax, stalled)
                if monitor is not None and monitor.end_epoch(self.history[-1], self.x):
                    converged = True  # a callback asked to stop
                    break
                if stop:
                    converged = True
                    break
                n_fun += n_evals
                if max_fun is not None and n_fun >= max_fun:
                    warnings.warn(
                        f"{type(self.optimizer).__name__} stopped after {n_fun} function "
                        f"evaluations (max_fun={max_fun}) without converging.",
                        ConvergenceWarning, stacklevel=5)
                    converged = True
                    break
        except KeyboardInterrupt:  # as scikit-learn: keep the last whole epoch's model
            self._rewind(x_good, k_good)
            warnings.warn("Training interrupted by user.", stacklevel=5)
            return epochs
        if warn_max_iter and tol is not None and not converged and epochs == max_epochs:
            warnings.warn(
                f"Maximum iterations ({max_epochs}) reached and the optimization hasn't "
                "converged yet.", ConvergenceWarning, stacklevel=5)
        return epochs

    def _rewind(self, x_good: torch.Tensor | None, k_good: int) -> None:
        """Back to the last whole epoch after an interrupt.

        The records (curves, counters, best loss) are only written once an epoch is
        whole, so the parameters are what may be ahead; the optimizer's state is
        reset when it took steps past that epoch (a partial epoch's moments do not
        belong to the kept parameters).
        """
        if x_good is not None:
            self.x.copy_(x_good)
        if self.opt_state["k"] != k_good:
            self.opt_state = self.optimizer.init_state(self.x)
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
            self.history.append((0, start, grad_norm, 0.0, 1, 0.0))
        return start

    def _recover(self, x_good, x_safe, sample: Dataset, reference: float) -> None:
        """After divergence: the last parameters that are finite and not diverged.

        The start of the failed epoch can itself be a blown-up point (the last step
        of the epoch before went astray); it is checked on ``sample``, and the start
        of the epoch before is used instead when it fails.  The optimizer's state
        (moments, velocity) is reset: it was built along the diverging path.
        """
        loss = float(self.objective.value(x_good, sample))
        ok = bool(torch.isfinite(x_good).all()) and not diverged(loss, reference,
                                                                 DIVERGENCE_FACTOR)
        self.x.copy_(x_good if ok else x_safe)
        self.opt_state = self.optimizer.init_state(self.x)
        self.fun_grad = None

    def _full_batch_epoch(self, oracle: FullBatchOracle, g: torch.Tensor):
        """One iteration x⁽ᵏ⁾ → x⁽ᵏ⁺¹⁾; reports f(x⁽ᵏ⁺¹⁾) and ∇f(x⁽ᵏ⁺¹⁾).

        The new point's gradient is the next iteration's, so it is cached; each
        iteration thus records the loss of the point it produced, like ``minimize``.
        A mini-batch method whose batch is the whole set reports f(x⁽ᵏ⁾) instead and
        is never stopped by the gradient (its rule is the loss plateau).
        """
        n_evals = 0
        if self.fun_grad is None:
            self.fun_grad = oracle.value_grad(self.x)
            n_evals += 1
        fun, grad = self.fun_grad
        fun_before = fun
        k = self.opt_state["k"] + 1
        lr = self.schedule(k)
        stalled = False
        if isinstance(self.optimizer, SearchMethod):
            res = self.optimizer.iterate(self.x, fun, grad, lr, self.opt_state, oracle)
            n_evals += res.n_evals
            step, stalled = res.step_size, res.step_size == 0.0
            self.fun_grad = None if res.grad is None else (res.fun, res.grad)
        else:
            self.optimizer.update(self.x, grad, lr, self.opt_state)
            step = lr
            self.fun_grad = None
        if self.fun_grad is None:
            self.fun_grad = oracle.value_grad(self.x)
            n_evals += 1
        fun, grad = self.fun_grad
        gmax = float(grad.abs().max()) if grad.numel() else 0.0
        if not self.optimizer.full_batch:
            # a mini-batch method whose batch is the whole set: report, as for any
            # epoch of it, the loss its step was computed on (scikit-learn's curve)
            return fun_before, float(grad.norm()), step, n_evals, False, math.inf, fun
        stalled = stalled or not math.isfinite(fun)
        return fun, float(grad.norm()), step, n_evals, stalled, gmax, fun

    def _stochastic_epoch(self, data, g, batch_size, shuffle, generator, sampling):
        n = len(data)
        device = self.x.device
        update, state, schedule = self.optimizer.update, self.opt_state, self.schedule
        value_grad, x = self.objective.value_grad, self.x
        # the epoch's loss summed in float64 (MPS has none): in float32 the sum of many
        # batch losses drifts, and the plateau rule compares it to within tol
        acc = torch.zeros((), dtype=x.dtype if device.type == "mps" else torch.float64,
                          device=device)
        if sampling == "with_replacement":  # bootstrap batches (Eq. 31)
            n_batches = max(n // batch_size, 1)
            for _ in range(n_batches):
                rows = torch.randint(n, (batch_size,), generator=generator).to(device)
                acc.add_(value_grad(x, data.take(rows), g))
                update(x, g, schedule(state["k"] + 1), state)
            return (float(acc) / n_batches, float(g.norm()), schedule(state["k"]), n_batches,
                    n_batches * batch_size)
        # an epoch of disjoint batches (Eq. 24-25)
        perm = torch.randperm(n, generator=generator).to(device) if shuffle else None
        n_batches = 0
        for batch in epoch_batches(data, batch_size, perm):
            acc.add_(value_grad(x, batch, g), alpha=len(batch))
            n_batches += 1
            update(x, g, schedule(state["k"] + 1), state)
        return float(acc) / n, float(g.norm()), schedule(state["k"]), n_batches, n

    def _should_stop(self, loss, score, tol, n_iter_no_change, gmax, stalled) -> bool:
        """Record the epoch's loss (and validation ``score``); whether to stop now."""
        if score is not None:
            self.validation_scores.append(score)
            improved = score >= self.best_validation_score + (tol or 0.0)
            if score > self.best_validation_score:
                self.best_validation_score = score
                self.best_x = self.x.clone()
        else:
            improved = loss <= self.best_loss - (tol or 0.0)
        self.best_loss = min(self.best_loss, loss)
        if tol is None:
            return False
        if stalled or gmax <= tol:  # first-order optimality, or no decrease found
            return True
        if isinstance(self.optimizer, SearchMethod) and score is None:
            return False  # as scipy's L-BFGS: no loss-plateau rule for search methods
        self.no_improve = 0 if improved else self.no_improve + 1
        if self.no_improve > n_iter_no_change:
            self.no_improve = 0
            return self.schedule.on_plateau()
        return False


def _from_numpy(a):
    return torch.from_numpy(np.array(a))


def _convert(obj, fn):
    """Apply ``fn`` to every tensor (or, for ``_from_numpy``, array) inside dicts/lists."""
    if isinstance(obj, torch.Tensor) or (fn is _from_numpy and isinstance(obj, np.ndarray)):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _convert(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_convert(v, fn) for v in obj]
    return obj
