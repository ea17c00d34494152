"""Plots in scikit-learn's Display style: ``Display.from_estimator(...)`` then ``.plot(ax=)``.

* :class:`LossCurveDisplay` - training loss per epoch (and the validation score
  when early stopping kept one);
* :class:`OptimizerComparisonDisplay` - cost versus iterations for several fitted
  estimators or :func:`skopt_nn.optim.minimize` results, on a log scale (the
  lecture's "cost versus iterations" figure);
* :class:`PredictionDisplay` - data and predictions of a 1-D regression (the
  lecture notebook's last figure).

matplotlib is optional: the displays import it when they draw and raise an
ImportError saying how to install it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised with matplotlib hidden
        raise ImportError(
            "Plotting needs matplotlib: pip install matplotlib (or skopt_nn[plot])."
        ) from exc
    return plt


def _axes(ax):
    if ax is None:  # a new figure: let matplotlib keep the labels inside it
        _, ax = _pyplot().subplots(layout="constrained")
    return ax


def _history_loss(obj) -> np.ndarray:
    """Loss per iteration, from x⁽⁰⁾ on, of a fitted estimator or a minimize result."""
    history = getattr(obj, "history_", None)
    if history is None:
        history = getattr(obj, "history", None)
    if history is None:
        raise TypeError(f"{type(obj).__name__} has no history: fit it first.")
    return np.asarray(history["loss"], dtype=float)


class _Display:
    """What every display does last: title and legend, and keep the axes it drew on."""

    def _finish(self, ax, title, **legend):
        if title:
            ax.set_title(title)
        ax.legend(**legend)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class LossCurveDisplay(_Display):
    """Training loss per epoch of a fitted estimator.

    Parameters
    ----------
    loss : ndarray
        Loss per epoch (``loss_curve_``).
    validation_scores : ndarray or None
        Validation score per epoch (``validation_scores_``), drawn on a twin axis.
    estimator_name : str or None

    Attributes
    ----------
    ax_, figure_, line_ : matplotlib objects
        Set by :meth:`plot`; ``validation_line_`` too when there are scores.
    """

    def __init__(self, loss, validation_scores=None, estimator_name=None):
        self.loss = np.asarray(loss, dtype=float)
        self.validation_scores = (None if validation_scores is None
                                  else np.asarray(validation_scores, dtype=float))
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, log_scale=False, **kwargs):
        """Plot the loss curve of a fitted skopt_nn estimator."""
        check_is_fitted(estimator, "loss_curve_")
        disp = cls(estimator.loss_curve_, getattr(estimator, "validation_scores_", None),
                   type(estimator).__name__)
        return disp.plot(ax=ax, log_scale=log_scale, **kwargs)

    def plot(self, ax=None, *, log_scale=False, **kwargs):
        """Draw on ``ax`` (a new figure if None); returns ``self``."""
        ax = _axes(ax)
        epochs = np.arange(1, len(self.loss) + 1)
        (self.line_,) = ax.plot(epochs, self.loss, label="training loss", **kwargs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if log_scale:
            ax.set_yscale("log")
        self.validation_line_ = None
        if self.validation_scores is not None:
            ax2 = ax.twinx()
            (self.validation_line_,) = ax2.plot(epochs, self.validation_scores, color="C1",
                                                label="validation score")
            ax2.set_ylabel("validation score")
        return self._finish(ax, self.estimator_name, loc="upper right")


class OptimizerComparisonDisplay(_Display):
    """Cost versus iterations for several optimizers (log scale).

    Parameters
    ----------
    curves : dict of str to ndarray
        Loss per iteration for each name, starting at the initial point.
    optimum : float or None
        f*, when known: the curves then show f − f* (the lecture's convergence
        rates, Eq. 18-23, bound this gap).

    Attributes
    ----------
    lines_ : dict of str to Line2D
    ax_, figure_
    """

    def __init__(self, curves: Mapping[str, np.ndarray], optimum: float | None = None):
        self.curves = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
        self.optimum = optimum

    @classmethod
    def from_estimators(cls, fitted: Mapping, *, optimum=None, ax=None, ylabel=None,
                        **kwargs):
        """Plot the loss histories of fitted estimators or ``minimize`` results.

        Parameters
        ----------
        fitted : dict of str to estimator or OptimizeResult
            The legend label and the fitted object of each curve.
        optimum : float or None
            f*, when known.
        ax : matplotlib Axes or None
        ylabel : str or None
            What the cost is (e.g. "training loss: ½ · mean squared error");
            default "cost".
        **kwargs
            Passed to ``ax.plot`` for every curve.
        """
        curves = {name: _history_loss(obj) for name, obj in fitted.items()}
        return cls(curves, optimum).plot(ax=ax, ylabel=ylabel, **kwargs)

    def plot(self, ax=None, *, ylabel=None, **kwargs):
        """Draw on ``ax`` (a new figure if None); returns ``self``.

        ``ylabel`` names the cost (default "cost"); with ``optimum`` the axis
        shows it minus f*.
        """
        ax = _axes(ax)
        self.lines_ = {}
        for i, (name, loss) in enumerate(self.curves.items()):
            y = loss - self.optimum if self.optimum is not None else loss
            y = np.where(y > 0, y, np.nan)  # log scale: the optimum itself is not drawn
            style = {"color": f"C{i % 10}", "linestyle": ("-", "--", ":")[(i // 10) % 3],
                     **kwargs}
            (self.lines_[name],) = ax.plot(np.arange(len(y)), y, label=name, **style)
        ax.set_yscale("log")
        ax.set_xlabel("iteration (epoch)")
        ylabel = ylabel or "cost"
        ax.set_ylabel(f"{ylabel} − f*" if self.optimum is not None else ylabel)
        return self._finish(ax, "Cost versus iterations", fontsize="small")


class PredictionDisplay(_Display):
    """Data and predictions of a regression on one feature.

    Attributes
    ----------
    data_points_, prediction_line_ : matplotlib artists
    ax_, figure_
    """

    def __init__(self, x, y, x_grid, y_grid, estimator_name=None):
        self.x, self.y = np.ravel(x), np.ravel(y)
        self.x_grid, self.y_grid = np.ravel(x_grid), np.ravel(y_grid)
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n_grid=200, ax=None, **kwargs):
        """Scatter ``(X, y)`` and draw ``estimator.predict`` on a grid over X's range."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != 1:
            raise ValueError(f"PredictionDisplay needs X with one feature, got shape {X.shape}.")
        grid = np.linspace(X.min(), X.max(), n_grid)[:, None]
        disp = cls(X, y, grid, estimator.predict(grid), type(estimator).__name__)
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        ax = _axes(ax)
        self.data_points_ = ax.scatter(self.x, self.y, s=12, c="C0", label="data")
        (self.prediction_line_,) = ax.plot(self.x_grid, self.y_grid, c="C2", label="prediction",
                                           **kwargs)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        return self._finish(ax, self.estimator_name)
