"""One fit per optimizer, how each ended, and the comparison table."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

#: what each value of the table's ``status`` column means
STATUS_NOTES = {
    "converged": "the stopping rule (tol) ended the fit",
    "max_iter": "ran all max_iter epochs without meeting the stopping rule",
    "max_fun": "used up the optimizer's max_fun function evaluations",
    "stalled": "the line search found no step that decreases the loss",
    "diverged": "the loss grew far above its start; the last finite parameters are kept "
                "(a smaller learning_rate_init helps)",
}


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
