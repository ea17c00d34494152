"""``python -m skopt_nn``: the lecture's experiment, every optimizer side by side.

With no arguments it trains the lecture notebook's network (1-10-20-10-1, ReLU)
on its data (y = sin(x) + U(0, 0.8), 100 training and 100 test points) with
every optimizer, prints a table (final training loss, test MSE, epochs, how the
fit ended, time) and writes a figure: the training loss (half the mean squared
error) versus iterations for all optimizers, and the predictions of the best
one against the test data.

``--csv FILE --target COL`` runs the same comparison on your data: the task
(regression or classification) is inferred from the target, numeric columns are
imputed (median) and standardised, categorical ones one-hot encoded in front of
the network, a regression target is standardised for training, and with 100 or
more training rows 10% of them are held out for early stopping.  The table's
``status`` column says how each fit ended: converged, max_iter, diverged, ...
``--linear`` compares the optimizers on the linear models instead (on two
scikit-learn data sets, or with ``--csv`` on yours).

The figure needs matplotlib (``pip install "skopt_nn[plot]"``); without it the
table is printed and one line says how to get the figure.  Bad input (a file
that cannot be read, a target that cannot be learned, an unavailable device,
...) ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import (
    TransformedTargetRegressor,
    make_column_selector,
    make_column_transformer,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target

from ._device import resolve_device
from .datasets import make_lecture_sine
from .optim import OPTIMIZERS

PROG = "python -m skopt_nn"

#: where the figure goes unless ``--plot`` says otherwise
DEFAULT_FIGURE = "skopt_nn_comparison.png"

#: how to get the figure's dependency
PLOT_INSTALL = 'pip install "skopt_nn[plot]"'

#: steps for the lecture task (Adam's is the notebook's); 'auto' elsewhere
LECTURE_STEPS = {"momentum": 0.01, "sgd": 0.05, "adagrad": 0.1, "rmsprop": 0.005, "adam": 0.02}

#: fewest rows with a target that ``--csv`` splits into training and test data
MIN_ROWS = 10

#: fewest training rows with which ``--csv`` holds out 10% for early stopping
EARLY_STOPPING_ROWS = 100

#: what each value of the table's ``status`` column means
STATUS_NOTES = {
    "converged": "the stopping rule (tol) ended the fit",
    "max_iter": "ran all max_iter epochs without meeting the stopping rule",
    "max_fun": "used up the optimizer's max_fun function evaluations",
    "stalled": "the line search found no step that decreases the loss",
    "diverged": "the loss grew far above its start; the last finite parameters are kept "
                "(a smaller learning_rate_init helps)",
}

_LOSS_NAMES = {"squared_error": "½ · mean squared error", "log_loss": "log loss",
               "logistic": "log loss", "absolute_error": "mean absolute error",
               "poisson": "half Poisson deviance", "hinge": "hinge loss"}


class InputError(Exception):
    """Input that cannot be used, found after parsing: one line on stderr, exit status 2."""


# -- fitting and the comparison table -----------------------------------------------------
def network_prefix(estimator) -> str:
    """The parameter prefix of the network inside ``estimator``.

    ``''`` for the network itself, ``'step__'`` for a Pipeline's last step,
    ``'regressor__'`` for a TransformedTargetRegressor, nested as needed.
    """
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return f"{name}__{network_prefix(last)}"
    if isinstance(estimator, TransformedTargetRegressor):
        return "regressor__" + network_prefix(estimator.regressor)
    return ""


def fitted_network(estimator):
    """The fitted network inside a fitted ``estimator`` (see :func:`network_prefix`)."""
    if isinstance(estimator, Pipeline):
        return fitted_network(estimator.steps[-1][1])
    if isinstance(estimator, TransformedTargetRegressor):
        return fitted_network(estimator.regressor_)
    return estimator


def fit_status(messages: Sequence[str], model) -> str:
    """How a fit ended, from the ConvergenceWarning ``messages`` it raised.

    Returns one of the keys of :data:`STATUS_NOTES`.  Without warnings a fit
    with ``tol=None`` (no stopping rule) that ran all its epochs is
    ``'max_iter'``, any other ``'converged'``.
    """
    if any("diverged" in m for m in messages):
        return "diverged"
    if any("max_fun" in m for m in messages):
        return "max_fun"
    if any("Maximum iterations" in m for m in messages):
        return "max_iter"
    if messages:
        return "stalled"
    if getattr(model, "tol", 0) is None and model.n_iter_ >= model.max_iter:
        return "max_iter"
    return "converged"


def fit_recording(estimator, X, y) -> tuple[float, list[str]]:
    """Fit ``estimator``; return the seconds it took and its ConvergenceWarning messages.

    Other warnings are passed on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t0 = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - t0
    messages = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return seconds, messages


def run_comparison(estimator, X_tr, y_tr, X_te, y_te, optimizers, steps=None, metric=None):
    """Fit a clone of ``estimator`` per optimizer.

    Parameters
    ----------
    estimator : estimator
        A skopt_nn estimator, or a Pipeline / TransformedTargetRegressor around one.
    X_tr, y_tr, X_te, y_te : array-like
        Training and test data.
    optimizers : list of str
        Optimizer names.
    steps : dict of str to float, optional
        ``learning_rate_init`` per optimizer (the others keep the estimator's).
    metric : {None, 'test_mse'}
        The test column: the estimator's ``score`` (column ``test_score``) or the
        mean squared error.

    Returns
    -------
    table : DataFrame
        Per optimizer: final_loss, the test column, epochs, status (see
        :data:`STATUS_NOTES`) and seconds.
    fitted : dict of str to estimator
        The fitted network per optimizer.
    messages : dict of str to list of str
        The ConvergenceWarning messages of each fit.
    """
    rows, fitted, messages = [], {}, {}
    prefix = network_prefix(estimator)
    for name in optimizers:
        params = {prefix + "optimizer": name}
        if steps and name in steps:
            params[prefix + "learning_rate_init"] = steps[name]
        est = clone(estimator).set_params(**params)
        seconds, messages[name] = fit_recording(est, X_tr, y_tr)
        model = fitted[name] = fitted_network(est)
        if metric == "test_mse":
            test = float(np.mean((est.predict(X_te) - np.asarray(y_te)) ** 2))
        else:
            test = est.score(X_te, y_te)
        rows.append({"optimizer": name, "final_loss": model.loss_,
                     metric or "test_score": test, "epochs": model.n_iter_,
                     "status": fit_status(messages[name], model), "seconds": seconds})
    return pd.DataFrame(rows).set_index("optimizer"), fitted, messages


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


def print_table(title: str, table: pd.DataFrame, messages: Mapping[str, list[str]],
                notes: Mapping[str, str] | None = None) -> None:
    """The table, what its status values mean, and the warnings of failed fits."""
    print(title)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4g}".format):
        print(table.to_string())
    notes = {**STATUS_NOTES, **(notes or {})}
    for status in dict.fromkeys(table["status"]):
        print(f"  {status}: {notes[status]}")
    for name, status in table["status"].items():
        if status in ("diverged", "stalled", "max_fun"):
            print(f"  {name}: {messages[name][0]}")
    print()


# -- the figure ---------------------------------------------------------------------------
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
    from .plotting import OptimizerComparisonDisplay

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

    from .plotting import PredictionDisplay

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


# -- reading --csv data -------------------------------------------------------------------
def read_csv(path: str) -> pd.DataFrame:
    """The CSV file at ``path`` with at least one row.

    Raises
    ------
    InputError
        If the file is missing, unreadable, empty or has no rows.
    """
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"--csv {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--csv {path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(f"--csv {path}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"--csv {path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"--csv {path}: not a readable CSV file ({first})") from None
    if frame.empty:
        raise InputError(f"--csv {path}: the file has a header but no data rows")
    return frame


def split_target(frame: pd.DataFrame, target: str, path: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target: rows without a target dropped, empty columns dropped.

    Raises
    ------
    InputError
        If ``target`` is not a column, has no values, too few, or leaves no features.
    """
    if target not in frame.columns:
        raise InputError(f"--target {target!r} is not a column of {path} "
                         f"(columns: {list(frame.columns)})")
    missing = int(frame[target].isna().sum())
    if missing == len(frame):
        raise InputError(f"--target {target!r}: all {missing} values are missing")
    if missing:
        print(f"note: dropped {missing} rows whose target {target!r} is missing")
    frame = frame.dropna(subset=[target])
    if len(frame) < MIN_ROWS:
        raise InputError(f"--target {target!r}: {len(frame)} rows have a target; at least "
                         f"{MIN_ROWS} are needed to split them into training and test data")
    y = frame.pop(target)
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty:
        print(f"note: dropped the columns {empty}: they have no values")
        frame = frame.drop(columns=empty)
    if frame.shape[1] == 0:
        raise InputError(f"--csv {path}: no feature columns besides the target {target!r}")
    return frame, y


def is_classification(y: pd.Series, target: str) -> bool:
    """Whether ``y`` holds class labels (else a regression target).

    Text, boolean and integer targets with few distinct values are labels; float
    targets, and integer ones where most rows have their own value, are numbers.

    Raises
    ------
    InputError
        For free text (most rows have their own label), one class only, or a
        class with a single row (it cannot be in both the training and the test split).
    """
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if numeric and type_of_target(y.to_numpy()) not in ("binary", "multiclass"):
        return False
    counts = y.value_counts()
    if pd.api.types.is_float_dtype(y) and len(counts) > 2:
        return False
    if len(counts) > len(y) / 2:
        if numeric:
            return False
        raise InputError(f"--target {target!r} looks like free text ({len(counts)} distinct "
                         f"values in {len(y)} rows): a classification target needs labels "
                         "that repeat, and a regression target needs numbers")
    if len(counts) < 2:
        raise InputError(f"--target {target!r} has a single value ({counts.index[0]!r}): "
                         "nothing to learn")
    if counts.min() < 2:
        raise InputError(f"--target {target!r}: the class {counts.idxmin()!r} has one row; "
                         "each class needs two or more to be in both the training and the "
                         "test data")
    return True


def check_features(X: pd.DataFrame, path: str) -> None:
    """Refuse infinite values; say which numeric columns have values to impute."""
    numeric = X.select_dtypes("number")
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    if infinite:
        raise InputError(f"--csv {path}: the columns {infinite} contain infinite values")
    gaps = numeric.isna().sum()
    gaps = gaps[gaps > 0]
    if len(gaps):
        listing = ", ".join(f"{c!r} ({n})" for c, n in gaps.items())
        print(f"note: missing values in the numeric columns {listing} are imputed with the "
              "column's median in the training data")


def split_rows(X, y, classification: bool, random_state):
    """Training and test rows (stratified for classification), as train_test_split.

    Raises
    ------
    InputError
        If the classes cannot all be in both splits.
    """
    try:
        return train_test_split(X, y, random_state=random_state,
                                stratify=y if classification else None)
    except ValueError as exc:
        raise InputError(f"--target: cannot split {len(y)} rows into training and test data "
                         f"with every class in both ({exc})") from None


def can_stop_early(y_tr: pd.Series, classification: bool) -> bool:
    """Whether the training rows allow a validation split for early stopping.

    It holds out 10% of them, which must be at least ten rows and, for
    classification, hold every class.
    """
    if len(y_tr) < EARLY_STOPPING_ROWS:
        return False
    if classification:
        counts = y_tr.value_counts()
        return counts.min() >= 2 and len(y_tr) // 10 >= len(counts)
    return True


def preprocessor():
    """Numeric columns: median imputation and scaling; the others: one-hot encoding
    (missing values and unseen categories included)."""
    numeric = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                            StandardScaler())
    return make_column_transformer(
        (numeric, make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    )


# -- the experiments ----------------------------------------------------------------------
def lecture_experiment(args) -> int:
    """The lecture notebook's network and data, every optimizer."""
    from . import MLPRegressor

    X_tr, y_tr, X_te, y_te = make_lecture_sine(random_state=args.random_state)
    net = MLPRegressor(hidden_layer_sizes=(10, 20, 10), batch_size=16, alpha=0.0, tol=None,
                       max_iter=args.max_iter, random_state=args.random_state,
                       device=args.device)
    table, fitted, messages = run_comparison(net, X_tr, y_tr, X_te, y_te, args.optimizers,
                                             LECTURE_STEPS, metric="test_mse")
    print_table(f"Lecture network 1-10-20-10-1 (ReLU) on y = sin(x) + U(0, 0.8), "
                f"{args.max_iter} epochs", table, messages,
                {"max_iter": "ran all max_iter epochs (the lecture's runs have no stopping "
                             "rule, tol=None)"})
    best = table["test_mse"].idxmin()
    report_figure(args.plot, [("Cost versus iterations — lecture network", fitted,
                               loss_label(net))],
                  (f"Test data and predictions ({best})", fitted[best], X_te, y_te))
    return 0


def csv_experiment(args) -> int:
    """The networks (or with ``--linear`` the linear models) on the user's CSV data."""
    from . import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor

    X, y = split_target(read_csv(args.csv), args.target, args.csv)
    classification = is_classification(y, args.target)
    check_features(X, args.csv)
    if args.linear:
        est_cls = LinearClassifier if classification else LinearRegressor
    else:
        est_cls = MLPClassifier if classification else MLPRegressor
    X_tr, X_te, y_tr, y_te = split_rows(X, y, classification, args.random_state)
    early = can_stop_early(y_tr, classification)
    if not early:
        print(f"note: {len(y_tr)} training rows are too few to hold out a validation split "
              "for early stopping, so the fits may overfit")
    est = est_cls(max_iter=args.max_iter, random_state=args.random_state, device=args.device,
                  early_stopping=early)
    model = est if classification else \
        TransformedTargetRegressor(regressor=est, transformer=StandardScaler())
    table, fitted, messages = run_comparison(make_pipeline(preprocessor(), model),
                                             X_tr, y_tr, X_te, y_te, args.optimizers)
    column = "test_accuracy" if classification else "test_r2"
    how = ["early stopping"] if early else []
    if not classification:
        how.append("standardised target")
    print_table(f"{est_cls.__name__} on {args.csv} (target {args.target!r}"
                f"{''.join('; ' + h for h in how)}; test score: "
                f"{'accuracy' if classification else 'R²'})",
                table.rename(columns={"test_score": column}), messages,
                {"converged": "a stopping rule ended the fit: the validation score stopped "
                              "improving (early stopping) or the gradient fell below tol"}
                if early else None)
    report_figure(args.plot, [(f"Cost versus iterations — {Path(args.csv).name}", fitted,
                               loss_label(est, scaled_target=not classification))])
    return 0


def linear_experiment(args) -> int:
    """The linear models on diabetes (regression) and breast cancer (classification)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    from . import LinearClassifier, LinearRegressor

    common = {"random_state": args.random_state, "max_iter": args.max_iter,
              "device": args.device}
    panels = []
    for title, short, column, loader, est in [
        ("LinearRegressor(loss='squared_error') on diabetes (test R²)", "diabetes",
         "test_r2", load_diabetes, LinearRegressor(**common)),
        ("LinearClassifier(loss='logistic') on breast cancer (test accuracy)",
         "breast cancer", "test_accuracy", load_breast_cancer, LinearClassifier(**common)),
    ]:
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=args.random_state)
        model = make_pipeline(StandardScaler(), est)
        # the adaptive methods need larger steps for the unscaled diabetes target
        steps = {"adagrad": 10.0, "rmsprop": 1.0, "adam": 5.0} if loader is load_diabetes \
            else {"adam": 0.05}
        table, fitted, messages = run_comparison(model, X_tr, y_tr, X_te, y_te,
                                                 args.optimizers, steps)
        print_table(title, table.rename(columns={"test_score": column}), messages)
        panels.append((f"Cost versus iterations — {short}", fitted, loss_label(est)))
    report_figure(args.plot, panels)
    return 0


# -- the command line ---------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def make_parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    parser = _Parser(
        prog=PROG,
        description="Train the lecture notebook's network (or a network on your CSV data, "
        "or the linear models) with every optimizer of the lecture and compare them: "
        "a table on stdout and a cost-versus-iterations figure.",
    )
    parser.add_argument("--csv", help="a CSV file to use instead of the lecture's data")
    parser.add_argument("--target", help="the target column of --csv")
    parser.add_argument("--linear", action="store_true",
                        help="compare the optimizers on the linear models instead (on "
                        "diabetes and breast cancer, or on --csv data)")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help="comma-separated optimizer names (default: all)")
    parser.add_argument("--max-iter", type=_positive_int, default=None,
                        help="epochs per optimizer (default: 1000 lecture, 200 otherwise)")
    parser.add_argument("--plot", default=None,
                        help=f"where to write the figure (default: {DEFAULT_FIGURE} when "
                        "matplotlib is installed; '' for none)")
    parser.add_argument("--device", default="auto",
                        help="torch device: auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast run (50 epochs) to try the command")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse contradictory or unusable arguments (exit status 2) before any training.

    Resolves ``args.optimizers`` to a list, ``args.max_iter`` to a number and
    ``args.plot`` to a checked path, ``''`` (no figure) or None (no matplotlib).
    """
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    unknown = sorted(set(args.optimizers) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"unknown optimizers {unknown}; choose from {sorted(OPTIMIZERS)}")
    if not args.optimizers:
        parser.error("--optimizers names no optimizer")
    if args.csv is not None and not args.target:
        parser.error("--csv needs --target COL")
    if args.target is not None and args.csv is None:
        parser.error("--target needs --csv FILE (without --csv the lecture's data is used)")
    try:
        resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {str(exc).rstrip('.')}")
    if args.max_iter is None:
        args.max_iter = 50 if args.quick else (200 if (args.csv or args.linear) else 1000)
    if args.plot is None:
        args.plot = DEFAULT_FIGURE if have_matplotlib() else None
    elif args.plot and not have_matplotlib():
        parser.error(f"--plot needs matplotlib: {PLOT_INSTALL} (or --plot '' for no figure)")
    if args.plot:
        try:
            args.plot = check_figure_path(args.plot)
        except InputError as exc:
            parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for unusable input)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    try:
        if args.csv:
            return csv_experiment(args)
        if args.linear:
            return linear_experiment(args)
        return lecture_experiment(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
