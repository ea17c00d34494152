"""Progress reporting: a tqdm bar (``verbose``) and scikit-learn's callbacks.

Both observe the training loop through :class:`skopt_nn._engine.Monitor`; they
cost nothing when unused (no host copies of the parameters are made unless a
scikit-learn callback asks for a fitted estimator).
"""

from __future__ import annotations

import sys

import torch

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin
    from sklearn.callback._callback_support import callback_management_context
except ImportError:  # pragma: no cover - older scikit-learn
    from contextlib import nullcontext as _nullcontext

    class CallbackSupportMixin:  # type: ignore[no-redef]
        """Placeholder: this scikit-learn has no callback API."""

    def callback_management_context(estimator):  # type: ignore[no-redef]
        return _nullcontext()


def _bar_or_lines(verbose: int, total: int, desc: str):
    """``(bar, lines)``: a tqdm bar over ``total`` epochs for ``verbose=1`` (lines where
    tqdm is missing: it is optional), lines for ``verbose>=2``."""
    if verbose == 1:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None, True
        return tqdm(total=total, desc=desc, unit="epoch", disable=None, leave=True), False
    return None, verbose >= 2


class TrainingMonitor:
    """What one ``fit`` call reports while it trains.

    * ``verbose=1``: a tqdm progress bar over epochs showing the current loss (the
      lecture notebook's bar); it stays quiet where stderr is not a terminal.
    * ``verbose>=2``: one line per epoch, as scikit-learn's MLP prints.
    * scikit-learn callbacks set with ``set_callbacks`` (``ProgressBar``,
      ``ScoringMonitor``, …): one task per epoch, under the fit's root task; a
      callback returning True from ``on_fit_task_end`` stops training.
    """

    def __init__(self, estimator, X, y, max_epochs: int, attributes):
        self.estimator, self.X, self.y = estimator, X, y
        self.attributes = attributes  # x -> dict of fitted attributes
        self.bar, self.lines = _bar_or_lines(int(estimator.verbose or 0), max_epochs,
                                             type(estimator).__name__)
        self.context = None
        self.epoch_context = None
        if getattr(estimator, "_skl_callbacks", None) or \
                getattr(estimator, "_parent_callback_ctx", None) is not None:
            self.context = estimator._init_callback_context(max_subtasks=max_epochs)
            self.context.call_on_fit_task_begin(estimator=estimator, X=X, y=y)

    @property
    def active(self) -> bool:
        return self.lines or self.bar is not None or self.context is not None

    def begin_epoch(self, epoch: int) -> None:
        if self.context is not None:
            self.epoch_context = self.context.subcontext(task_name="epoch")
            self.epoch_context.call_on_fit_task_begin(estimator=self.estimator, X=self.X,
                                                       y=self.y)

    def end_epoch(self, record: tuple, x: torch.Tensor) -> bool:
        epoch, loss = record[0], record[1]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
        if self.lines:
            print(f"Iteration {epoch}, loss = {loss:.8f}", file=sys.stdout, flush=True)
        if self.epoch_context is not None:
            return bool(self.epoch_context.call_on_fit_task_end(
                estimator=self.estimator, X=self.X, y=self.y,
                reconstruction_attributes=lambda: self.attributes(x)))
        return False

    def close(self, x: torch.Tensor) -> None:
        """End of the fit: close the bar and the callbacks' root task (model ``x``)."""
        if self.bar is not None:
            self.bar.close()
        if self.context is not None:
            self.context.call_on_fit_task_end(
                estimator=self.estimator, X=self.X, y=self.y,
                reconstruction_attributes=lambda: self.attributes(x))


class PopulationProgress:
    """What :func:`skopt_nn.fit_many` reports while a group of models trains together.

    * ``verbose=1``: a tqdm bar per group over the epochs of its longest fit, showing
      how many of its models are still training;
    * ``verbose>=2``: one line per epoch and group.
    """

    def __init__(self, verbose: int, title: str, max_epochs: int):
        self.title = title
        self.bar, self.lines = _bar_or_lines(verbose, max_epochs, title)

    def end_epoch(self, epoch: int, training: int) -> None:
        """After ``epoch``, with ``training`` models still in the group."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(training=training, refresh=False)
        if self.lines:
            print(f"{self.title}: epoch {epoch}, {training} models training", file=sys.stdout,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
