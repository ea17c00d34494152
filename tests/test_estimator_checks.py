"""scikit-learn's estimator checks for every estimator and every optimizer.

Every check passes for every optimizer, with no expected failures.  The issue
allows mini-batch optimizers to declare the two sample-weight-equivalence checks
(weight k versus k repeated rows) as expected failures, as scikit-learn does for
its SGD estimators, since different batches make them different problems; on
the checks' small data sets the default batch is the whole set, training is
deterministic and full batch, and they pass too.
"""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor

FULL_BATCH = ["gd", "line_search", "armijo", "wolfe", "steepest_descent", "lbfgs"]
STOCHASTIC = ["momentum", "sgd", "adagrad", "rmsprop", "adam"]
# steps for the adaptive methods that fit the checks' small data within max_iter
STEP = {"adagrad": 0.1, "rmsprop": 0.01, "adam": 0.1}
MLP_STEP = {**STEP, "sgd": 0.1, "momentum": 0.01}


# the exact line search costs ~10 gradients per iteration: fewer iterations keep it quick
MAX_ITER = {"steepest_descent": 30, "line_search": 40, "armijo": 40, "wolfe": 40}
MLP_MAX_ITER = {**MAX_ITER, "steepest_descent": 15}


def _estimators():
    out = []
    for cls in (LinearRegressor, LinearClassifier):
        out.append(cls(random_state=0, max_iter=100))
        for opt in FULL_BATCH + STOCHASTIC:
            out.append(cls(optimizer=opt, learning_rate_init=STEP.get(opt, "auto"),
                           random_state=0, max_iter=60))
    for cls in (MLPRegressor, MLPClassifier):
        out.append(cls(random_state=0))  # the defaults
        for opt in FULL_BATCH + STOCHASTIC:
            if opt == "adam":
                continue  # the default above
            out.append(cls(hidden_layer_sizes=(10,), optimizer=opt,
                           learning_rate_init=MLP_STEP.get(opt, "auto"), random_state=0,
                           max_iter=MLP_MAX_ITER.get(opt, 100)))
    return out


@parametrize_with_checks(_estimators())
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", [LinearRegressor, LinearClassifier, MLPRegressor, MLPClassifier])
def test_extra_sklearn_checks(cls):
    """Two checks that check_estimator does not run."""
    est = cls(random_state=0, max_iter=20)
    check_dataframe_column_names_consistency(cls.__name__, est)
    check_param_validation(cls.__name__, est)


@pytest.mark.parametrize("opt", FULL_BATCH + STOCHASTIC)
@pytest.mark.parametrize("cls", [LinearRegressor, LinearClassifier, MLPRegressor, MLPClassifier])
def test_predictions_finite_on_offset_features(cls, opt):
    """The checks pass with NaN predictions (NaN == NaN); features ~ N(100, 1)
    are where a naive step diverges, so assert finiteness ourselves."""
    rng = np.random.RandomState(0)
    X = rng.normal(100, 1, size=(60, 3))
    classifier = cls in (LinearClassifier, MLPClassifier)
    y = (X[:, 0] > 100).astype(int) if classifier else X @ [1.0, -2.0, 0.5]
    est = cls(optimizer=opt, learning_rate_init=STEP.get(opt, "auto"), max_iter=30,
              random_state=0)
    if cls in (MLPRegressor, MLPClassifier):
        est.set_params(hidden_layer_sizes=(10,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    params = est.coefs_ if hasattr(est, "coefs_") else [est.coef_]
    assert all(np.all(np.isfinite(p)) for p in params)
    assert np.all(np.isfinite(est.predict(X).astype(float)))
    assert np.all(np.isfinite(est.loss_curve_))
