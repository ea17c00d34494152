"""The comparison figure: its path checked before training, cost versus iterations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from . import InputError

#: where the figure goes unless ``--plot`` says otherwise
DEFAULT_FIGURE = "skopt_nn_comparison.png"


#: how to get the figure's dependency
PLOT_INSTALL = 'pip install "skopt_nn[plot]"'


_LOSS_NAMES = {"squared_error": "½ · mean squared error", "log_loss": "log loss",
               "logistic": "log loss", "absolute_error": "mean absolute error",
               "poisson": "half Poisson deviance", "hinge": "hinge loss"}


def loss_label(model, scaled_target: bool = False) -> str:
    """What ``model``'s loss history holds, for an axis label (two lines).

    For example "training loss:\n½ · mean squared error" for the lecture's
    network (``alpha=0``).
    """
    loss = getattr(model, "loss", None)
    what = _LOSS_NAMES.get(loss, f"{loss} loss")
    if scaled_target:
        what += " of the standardised target"
    if getattr(model, "alpha", 0):
        what += " + L2 penalty"
    return "training loss:\n" + what


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def check_figure_path(path: str) -> str:
    """The path the figure will be written to, checked before any training.

    A name without a suffix gets ``.png``.

    Raises
    ------
    InputError
        If matplotlib cannot write that format, or the file cannot be created.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    target = Path(path)
    if target.is_dir():
        raise InputError(f"--plot {path}: is a directory, not a file name")
    if not target.suffix:  # as matplotlib itself would name it
        target = target.with_name(target.name + ".png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if target.suffix[1:].lower() not in formats:
        raise InputError(f"--plot {path}: matplotlib cannot write {target.suffix!r} files; "
                         f"use one of {', '.join('.' + f for f in sorted(formats))}")
    existed = target.exists()
    try:
        with open(target, "ab"):
            pass
    except OSError as exc:
        raise InputError(f"--plot {path}: cannot write the figure there "
                         f"({exc.strerror})") from None
    if not existed:
        target.unlink()
    return str(target)


def same_steps(fitted: Mapping) -> dict[str, str]:
    """``{name: earlier name}`` for each fit whose history repeats an earlier one's.

    Two fits repeat each other when every iteration has the same loss and the
    same step size: their curves coincide and one hides the other.
    """
    twins, seen = {}, {}
    for name, model in fitted.items():
        history = getattr(model, "history_", None)
        if history is None:
            continue
        key = history[["loss", "step_size"]].to_numpy(dtype=float)
        for other, earlier in seen.items():
            if earlier.shape == key.shape and np.allclose(earlier, key, rtol=1e-12, atol=0,
                                                          equal_nan=True):
                twins[name] = other
                break
        seen[name] = key
    return twins


def draw_comparison(ax, fitted: Mapping, title: str, ylabel: str):
    """Cost versus iterations on ``ax``; a curve hidden by an identical one is dashed
    and its legend entry says so.  The legend goes to the right of the axes."""
    from ..plotting import OptimizerComparisonDisplay

    twins = same_steps(fitted)
    labels = {name: f"{name} (same steps as {twins[name]})" if name in twins else name
              for name in fitted}
    disp = OptimizerComparisonDisplay.from_estimators(
        {labels[name]: model for name, model in fitted.items()}, ax=ax, ylabel=ylabel,
        linewidth=1.0)
    for name in twins:
        disp.lines_[labels[name]].set_linestyle((0, (4, 3)))
    ax.set_title(title)
    # outside the axes: eleven curves leave no free corner inside
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return disp


def save_figure(path: str, panels: Sequence[tuple], prediction: tuple | None = None) -> None:
    """Write the comparison panels, and the best model's predictions, to ``path``.

    Parameters
    ----------
    path : str
        A path checked by :func:`check_figure_path`.
    panels : list of (title, fitted, ylabel)
        One cost-versus-iterations panel each.
    prediction : (title, model, X, y) or None
        A data-and-predictions panel for a one-feature regression.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import PredictionDisplay

    n = len(panels) + (prediction is not None)
    fig, axes = plt.subplots(1, n, figsize=(8.0 * n, 4.8), squeeze=False)
    for ax, (title, fitted, ylabel) in zip(axes[0], panels):
        draw_comparison(ax, fitted, title, ylabel)
    if prediction is not None:
        title, model, X, y = prediction
        ax = axes[0, -1]
        PredictionDisplay.from_estimator(model, X, y, ax=ax)
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_figure(path: str | None, panels, prediction=None) -> None:
    """Write the figure if there is a path; otherwise say how to get one."""
    if path is None:
        print(f"no figure: matplotlib is not installed ({PLOT_INSTALL} for the "
              "cost-versus-iterations figure)")
        return
    if path:
        save_figure(path, panels, prediction)
        print(f"figure written to {path}")
