"""Why a training call stops: the rules, which return a reason, and the one place
where a reason becomes a warning.

Rules (none when ``tol`` is None), checked after each whole epoch:

* the gradient: ``max|∇f| ≤ tol`` (scipy's ``gtol``, as scikit-learn's L-BFGS)
  for the full-batch methods;
* a failed search: a line search that finds no decrease stops, with a
  ConvergenceWarning unless the loss is nonsmooth (at a kink of the hinge or the
  absolute error the gradient never vanishes, so it is the natural end);
* the plateau: the training loss (or, with early stopping, the validation score)
  has not improved by ``tol`` for ``n_iter_no_change`` epochs (scikit-learn's
  rule; with 'adaptive' the step is divided by 5 instead, and a plateau at a
  step of at most 1e-6 stops); not for the search methods unless they early-stop, as scipy's L-BFGS.

The loop itself adds divergence, the evaluation budget (``max_fun``), a
callback's request, Ctrl-C and ``max_iter``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from sklearn.exceptions import ConvergenceWarning

from ._warnings import warn
from .optim._schedules import Schedule

CONVERGED = "converged"  # a rule was met
STALLED = "stalled"  # a search found no decrease with the gradient above tol
DIVERGED = "diverged"
MAX_FUN = "max_fun"
MAX_ITER = "max_iter"
CALLBACK = "callback"  # a monitor asked to stop
INTERRUPTED = "interrupted"  # Ctrl-C


@dataclass
class Progress:
    """What the rules carry from epoch to epoch and from call to call."""

    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    best_x: torch.Tensor | None = None
    no_improve: int = 0


@dataclass(frozen=True)
class StoppingRules:
    """The rules of one call (see the module docstring)."""

    tol: float | None
    n_iter_no_change: int
    #: whether the plateau rule applies to the optimizer without early stopping
    plateau: bool
    #: whether the loss is smooth (a failed search then deserves a warning)
    smooth: bool

    def after_epoch(self, progress: Progress, loss: float, score: float | None,
                    x: torch.Tensor, schedule: Schedule, gmax: float,
                    stalled: bool) -> str | None:
        """Record the epoch's ``loss`` (and validation ``score``) in ``progress``;
        the reason to stop now, or None."""
        if score is not None:
            improved = score >= progress.best_validation_score + (self.tol or 0.0)
            if score > progress.best_validation_score:
                progress.best_validation_score = score
                progress.best_x = x.clone()
        else:
            improved = loss <= progress.best_loss - (self.tol or 0.0)
        progress.best_loss = min(progress.best_loss, loss)
        if self.tol is None:
            return None
        if gmax <= self.tol:  # first-order optimality
            return CONVERGED
        if stalled:
            return STALLED if self.smooth else CONVERGED
        if not self.plateau and score is None:
            return None
        progress.no_improve = 0 if improved else progress.no_improve + 1
        if progress.no_improve > self.n_iter_no_change:
            progress.no_improve = 0
            return CONVERGED if schedule.on_plateau() else None
        return None


def warn_stop(reason: str, **context) -> None:
    """The warning that ``reason`` deserves (none for a normal end), pointing at the
    user's call."""
    message, category = _MESSAGES.get(reason, (None, None))
    if message is not None:
        warn(message.format(**context), category)


_MESSAGES = {
    DIVERGED: (
        "Training diverged at epoch {epoch} (loss {loss:.3g}, starting loss {start:.3g}) "
        "with learning rate {eta:g} (learning_rate_init); the last finite parameters are "
        "kept. Use a smaller learning_rate_init.", ConvergenceWarning),
    STALLED: (
        "{method}: the line search found no step that decreases the loss while the largest "
        "gradient component is {gmax:.3g} > tol={tol:g}, so training stopped: the loss is at "
        "the limit of {dtype} precision, or learning_rate_init={eta:g} is far from a useful "
        "step.", ConvergenceWarning),
    MAX_FUN: (
        "{method} stopped after {n_fun} function evaluations (max_fun={max_fun}) without "
        "converging.", ConvergenceWarning),
    MAX_ITER: (
        "Maximum iterations ({max_epochs}) reached and the optimization hasn't converged "
        "yet.", ConvergenceWarning),
    INTERRUPTED: ("Training interrupted by user.", UserWarning),
}
