"""``python -m skopt_nn``: the lecture's experiment, every optimizer side by side.

With no arguments it trains the lecture notebook's network (1-10-20-10-1, ReLU)
on its data (y = sin(x) + U(0, 0.8), 100 training and 100 test points) with
every optimizer, prints a table (final training loss, test MSE, epochs, time)
and writes a figure: cost versus iterations for all optimizers, and the
predictions of the best one against the test data.

``--csv FILE --target COL`` runs the same comparison on your data: the task
(regression or classification) is inferred from the target, numeric columns are
standardised and categorical ones one-hot encoded in front of the network.
``--linear`` compares the optimizers on the linear models instead.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target

from .datasets import make_lecture_sine
from .optim import OPTIMIZERS

#: steps for the lecture task (Adam's is the notebook's); 'auto' elsewhere
LECTURE_STEPS = {"momentum": 0.01, "sgd": 0.05, "adagrad": 0.1, "rmsprop": 0.005, "adam": 0.02}


def run_comparison(estimator, X_tr, y_tr, X_te, y_te, optimizers, steps=None, metric=None):
    """Fit a clone of ``estimator`` per optimizer; return (table, fitted estimators).

    ``estimator`` may be a Pipeline whose last step is the network.  ``metric``
    names the test column (default: the estimator's ``score``).
    """
    rows, fitted = [], {}
    last = estimator.steps[-1][0] + "__" if hasattr(estimator, "steps") else ""
    for name in optimizers:
        params = {last + "optimizer": name}
        if steps and name in steps:
            params[last + "learning_rate_init"] = steps[name]
        est = clone(estimator).set_params(**params)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_tr, y_tr)
        seconds = time.perf_counter() - t0
        model = est.steps[-1][1] if hasattr(est, "steps") else est
        fitted[name] = model
        if metric == "test_mse":
            test = float(np.mean((est.predict(X_te) - y_te) ** 2))
        else:
            test = est.score(X_te, y_te)
        rows.append({"optimizer": name, "final_loss": model.loss_,
                     metric or "test_score": test, "epochs": model.n_iter_,
                     "seconds": seconds})
    return pd.DataFrame(rows).set_index("optimizer"), fitted


def save_figure(fitted, best, X_te, y_te, path, title):
    """Cost versus iterations for all optimizers, and the best one's predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import OptimizerComparisonDisplay, PredictionDisplay

    panels = 2 if X_te is not None and X_te.shape[1] == 1 else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 4.8), squeeze=False)
    OptimizerComparisonDisplay.from_estimators(fitted, ax=axes[0, 0], linewidth=1.0)
    axes[0, 0].set_title(f"Cost versus iterations — {title}")
    # outside the axes: eleven curves leave no free corner inside
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    if panels == 2:
        PredictionDisplay.from_estimator(fitted[best], X_te, y_te, ax=axes[0, 1])
        axes[0, 1].set_title(f"Test data and predictions ({best})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _print(title, table):
    print(title)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4g}".format):
        print(table.to_string())
    print()


def lecture_experiment(args) -> int:
    from . import MLPRegressor

    X_tr, y_tr, X_te, y_te = make_lecture_sine(random_state=args.random_state)
    net = MLPRegressor(hidden_layer_sizes=(10, 20, 10), batch_size=16, alpha=0.0, tol=None,
                       max_iter=args.max_iter, random_state=args.random_state,
                       device=args.device)
    table, fitted = run_comparison(net, X_tr, y_tr, X_te, y_te, args.optimizers,
                                   LECTURE_STEPS, metric="test_mse")
    _print(f"Lecture network 1-10-20-10-1 (ReLU) on y = sin(x) + U(0, 0.8), "
           f"{args.max_iter} epochs", table)
    best = table["test_mse"].idxmin()
    if args.plot:
        save_figure(fitted, best, X_te, y_te, args.plot, "lecture network")
        print(f"figure written to {args.plot}")
    return 0


def csv_experiment(args) -> int:
    from . import MLPClassifier, MLPRegressor

    frame = pd.read_csv(args.csv)
    if args.target not in frame.columns:
        print(f"error: --target {args.target!r} is not a column of {args.csv} "
              f"(columns: {list(frame.columns)})", file=sys.stderr)
        return 2
    frame = frame.dropna(subset=[args.target])
    y = frame.pop(args.target)
    kind = type_of_target(y.to_numpy())
    classification = kind in ("binary", "multiclass") and not (
        kind == "multiclass" and pd.api.types.is_float_dtype(y))
    prep = make_column_transformer(
        (make_pipeline(StandardScaler()), make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    )
    net_cls = MLPClassifier if classification else MLPRegressor
    model = make_pipeline(prep, net_cls(max_iter=args.max_iter, random_state=args.random_state,
                                        device=args.device))
    X_tr, X_te, y_tr, y_te = train_test_split(
        frame, y, random_state=args.random_state, stratify=y if classification else None)
    table, fitted = run_comparison(model, X_tr, y_tr, X_te, y_te, args.optimizers)
    label = "accuracy" if classification else "R²"
    _print(f"{net_cls.__name__} on {args.csv} (target {args.target!r}, test score: {label})",
           table.rename(columns={"test_score": f"test_{'accuracy' if classification else 'r2'}"}))
    if args.plot:
        save_figure(fitted, None, None, None, args.plot, args.csv)
        print(f"figure written to {args.plot}")
    return 0


def linear_experiment(args) -> int:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    from . import LinearClassifier, LinearRegressor

    for title, loader, est in [
        ("LinearRegressor(loss='squared_error') on diabetes (test R²)", load_diabetes,
         LinearRegressor(random_state=args.random_state, max_iter=args.max_iter)),
        ("LinearClassifier(loss='logistic') on breast cancer (test accuracy)",
         load_breast_cancer,
         LinearClassifier(random_state=args.random_state, max_iter=args.max_iter)),
    ]:
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=args.random_state)
        model = make_pipeline(StandardScaler(), est)
        # the adaptive methods need larger steps for the unscaled diabetes target
        steps = {"adagrad": 10.0, "rmsprop": 1.0, "adam": 5.0} if loader is load_diabetes \
            else {"adam": 0.05}
        table, _ = run_comparison(model, X_tr, y_tr, X_te, y_te, args.optimizers, steps)
        _print(title, table)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m skopt_nn",
        description="Train the lecture notebook's network (or a network on your CSV data, "
        "or the linear models) with every optimizer of the lecture and compare them: "
        "a table on stdout and a cost-versus-iterations figure.",
    )
    parser.add_argument("--csv", help="a CSV file to use instead of the lecture's data")
    parser.add_argument("--target", help="the target column of --csv")
    parser.add_argument("--linear", action="store_true",
                        help="compare the optimizers on the linear models instead")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help="comma-separated optimizer names (default: all)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="epochs per optimizer (default: 1000 lecture, 200 otherwise)")
    parser.add_argument("--plot", default="skopt_nn_comparison.png",
                        help="where to write the figure ('' for none)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast run (50 epochs) to try the command")
    args = parser.parse_args(argv)
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    unknown = sorted(set(args.optimizers) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"unknown optimizers {unknown}; choose from {sorted(OPTIMIZERS)}")
    if args.csv and not args.target:
        parser.error("--csv needs --target COL")
    if args.max_iter is None:
        args.max_iter = 50 if args.quick else (200 if (args.csv or args.linear) else 1000)
    if args.linear:
        return linear_experiment(args)
    if args.csv:
        return csv_experiment(args)
    return lecture_experiment(args)


if __name__ == "__main__":
    sys.exit(main())
