"""``python -m skopt_nn``: compare the lecture's optimizers.

With no arguments: every optimizer on the linear models, least squares on
scikit-learn's diabetes data and logistic regression on its breast-cancer data
(standardised features), printed as tables.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from . import LinearClassifier, LinearRegressor
from ._compare import compare_optimizers


def _linear_tables(random_state: int) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for title, loader, est in [
        ("LinearRegressor(loss='squared_error') on diabetes (score: R²)", load_diabetes,
         LinearRegressor(random_state=random_state)),
        ("LinearClassifier(loss='logistic') on breast cancer (score: accuracy)",
         load_breast_cancer, LinearClassifier(random_state=random_state)),
    ]:
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=random_state)
        scaler = StandardScaler().fit(X_tr)
        table, _ = compare_optimizers(est, scaler.transform(X_tr), y_tr, scaler.transform(X_te),
                                      y_te)
        out.append((title, table))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m skopt_nn",
        description="Compare the lecture's optimizers (gradient descent, line searches, "
        "steepest descent, momentum, SGD, AdaGrad, RMSProp, Adam, L-BFGS) on the same "
        "problem and print a table per problem.",
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    args = parser.parse_args(argv)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4g}".format):
        for title, table in _linear_tables(args.random_state):
            print(title)
            print(table.to_string())
            print()
    return 0



if __name__ == "__main__":
    sys.exit(main())
