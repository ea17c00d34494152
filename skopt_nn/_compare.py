"""Fit one estimator per optimizer on the same data and tabulate the results.

Used by ``python -m skopt_nn`` and by the examples.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from .optim import OPTIMIZERS


def compare_optimizers(
    estimator,
    X_train,
    y_train,
    X_test,
    y_test,
    optimizers: Sequence[str] = tuple(OPTIMIZERS),
    params: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Fit a clone of ``estimator`` with each optimizer; return a table and the fits.

    ``params`` maps an optimizer name to extra parameters for its clone (e.g. a
    ``learning_rate_init``).  The table has one row per optimizer: epochs, final
    training loss, train and test score (R² or accuracy), and fit time.
    """
    rows, fitted = [], {}
    for name in optimizers:
        est = clone(estimator).set_params(optimizer=name, **(params or {}).get(name, {}))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        fitted[name] = est
        rows.append({
            "optimizer": name,
            "epochs": est.n_iter_,
            "final_loss": est.loss_,
            "train_score": est.score(X_train, y_train),
            "test_score": est.score(X_test, y_test),
            "fit_seconds": seconds,
        })
    return pd.DataFrame(rows).set_index("optimizer"), fitted
