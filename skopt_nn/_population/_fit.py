"""``fit_many``: fit a list of skopt_nn estimators at once, each on its own rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.utils import _safe_indexing


def _rows_of(X, rows):
    return X if rows is None else _safe_indexing(X, rows)


def fit_many(estimators: Sequence, X, y=None, *, rows: Sequence | None = None,
             sample_weight=None, errors: str = "raise"):
    """Fit every estimator of ``estimators`` on its own training rows of ``(X, y)``.

    Parameters
    ----------
    estimators : sequence of skopt_nn estimators
        Fitted in place, each as ``est.fit(X[rows[i]], y[rows[i]],
        sample_weight[rows[i]])`` would fit it.
    X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    rows : sequence of index arrays, default=None
        ``rows[i]`` are the training rows of ``estimators[i]`` (None: all rows).
    sample_weight : array-like of shape (n_samples,), default=None
        Sliced by each estimator's rows.
    errors : {'raise', 'return'}, default='raise'
        What a fit that fails does: raise its exception, or leave the estimator
        as it was and return the exception in the list.

    Returns
    -------
    list
        With ``errors='raise'`` the estimators; with ``'return'`` one entry per
        estimator: ``None`` where it was fitted, else the exception its fit raised.
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    estimators = list(estimators)
    if rows is None:
        rows = [None] * len(estimators)
    rows = list(rows)
    if len(rows) != len(estimators):
        raise ValueError(f"rows has {len(rows)} entries for {len(estimators)} estimators.")
    failures: list = []
    for est, r in zip(estimators, rows, strict=True):
        sw = None if sample_weight is None else _rows_of(np.asarray(sample_weight), r)
        try:
            est.fit(_rows_of(X, r), _rows_of(y, r), sample_weight=sw)
            failures.append(None)
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            if errors == "raise":
                raise
            failures.append(exc)
    return estimators if errors == "raise" else failures
