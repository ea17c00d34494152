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
from pathlib import Path

from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._cli import InputError
from ._cli.comparison import print_table, run_comparison
from ._cli.csv_data import (
    can_stop_early,
    check_features,
    is_classification,
    preprocessor,
    read_csv,
    split_rows,
    split_target,
)
from ._cli.figures import (
    DEFAULT_FIGURE,
    PLOT_INSTALL,
    check_figure_path,
    have_matplotlib,
    loss_label,
    report_figure,
)
from ._device import resolve_device
from .datasets import make_lecture_sine
from .optim import OPTIMIZERS

PROG = "python -m skopt_nn"


#: steps for the lecture task (Adam's is the notebook's); 'auto' elsewhere
LECTURE_STEPS = {"momentum": 0.01, "sgd": 0.05, "adagrad": 0.1, "rmsprop": 0.005, "adam": 0.02}


# -- fitting and the comparison table -----------------------------------------------------


# -- the figure ---------------------------------------------------------------------------


# -- reading --csv data -------------------------------------------------------------------


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
        table, fitted, messages = run_comparison(model, X_tr, y_tr, X_te, y_te,
                                                 args.optimizers)
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
