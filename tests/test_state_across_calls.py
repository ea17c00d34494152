"""Recovering from divergence and from misuse across calls (found in review)."""

import warnings

import numpy as np
import pytest
from _helpers import MINIBATCH_OPTIMIZERS
from _helpers import quiet_fit as _quiet_fit
from sklearn.exceptions import ConvergenceWarning

from skopt_nn import LinearRegressor, MLPRegressor
from skopt_nn.optim import Adam


@pytest.mark.parametrize("opt", MINIBATCH_OPTIMIZERS)
@pytest.mark.parametrize("n, batch", [(50, "auto"), (1000, 50)])
def test_divergence_keeps_sane_weights_and_a_smaller_step_recovers(linear_data, opt, n, batch):
    X, y = linear_data[0][:n], linear_data[1][:n]
    est = MLPRegressor(hidden_layer_sizes=(5,), optimizer=opt, learning_rate_init=1e6,
                       batch_size=batch, max_iter=5, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X, y)
    start = est.history_.loss.iloc[0]
    assert np.mean((est.predict(X) - y) ** 2) < 1e3 * start  # not the blown-up point
    _quiet_fit(est.set_params(learning_rate_init=1e-3, max_iter=20), X, y)
    assert est.n_iter_ == 20 and est.loss_ < start  # the optimizer state was reset


def test_linear_divergence_on_one_batch_keeps_the_start(linear_data):
    X, y = linear_data[0][:50], linear_data[1][:50]
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est = LinearRegressor(optimizer="sgd", learning_rate_init=1e6, max_iter=5).fit(X, y)
    assert np.abs(est.coef_).max() < 10


def test_divergence_reference_is_each_call_s_start(linear_data):
    X, y = linear_data
    est = LinearRegressor(optimizer="sgd", learning_rate_init=0.05, random_state=0)
    est.partial_fit(X, 0.01 * y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for _ in range(3):
            est.partial_fit(X, 100 * y)  # a new scale is not divergence
    assert est.score(X, 100 * y) > 0.5


# one of each kind of state: moments, L-BFGS's pairs, a velocity
@pytest.mark.parametrize("opt", ["adam", "lbfgs", "momentum"])
def test_dtype_may_change_between_calls(linear_data, opt):
    X, y = linear_data
    est = LinearRegressor(optimizer=opt, warm_start=True, max_iter=5, random_state=0)
    _quiet_fit(est, X.astype(np.float32), y)
    _quiet_fit(est, X, y)
    assert est.coef_.dtype == np.float64
    mlp = MLPRegressor(hidden_layer_sizes=(4,), optimizer=opt, random_state=0)
    mlp.partial_fit(X, y)
    mlp.partial_fit(X.astype(np.float32), y)
    assert mlp.coefs_[0].dtype == np.float32


def test_failed_continuation_changes_nothing(linear_data):
    X, y = linear_data
    est = LinearRegressor(optimizer="adam", warm_start=True, max_iter=3, random_state=0)
    _quiet_fit(est, X, y)
    k, coef = est._trainer.k, est.coef_.copy()
    with pytest.raises(ValueError):
        est.fit(X[:, :2], y)
    assert est._trainer.k == k
    np.testing.assert_array_equal(est.coef_, coef)


def test_optimizer_hyperparameters_changed_by_set_params_take_effect(linear_data):
    X, y = linear_data
    est = MLPRegressor(hidden_layer_sizes=(4,), optimizer=Adam(elementwise=False),
                       warm_start=True, max_iter=3, random_state=0)
    _quiet_fit(est, X, y)
    _quiet_fit(est.set_params(optimizer__elementwise=True), X, y)
    assert est._trainer.opt_state.v.shape == est._trainer.x.shape
    assert est._trainer.optimizer is not est.optimizer  # the trainer holds its own copy


def test_switching_fit_intercept_off_drops_the_intercept(linear_data):
    X, y = linear_data
    est = LinearRegressor(warm_start=True).fit(X, y)
    assert est.intercept_[0] == pytest.approx(1.0, abs=1e-3)
    assert est.set_params(fit_intercept=False).fit(X, y).intercept_[0] == 0.0


def test_changed_architecture_predicts_from_coefs_and_refuses_to_continue(linear_data):
    X, y = linear_data
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, warm_start=True, random_state=0)
    _quiet_fit(est, X, y)
    before = est.predict(X)
    est.set_params(hidden_layer_sizes=(8,))
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match="architecture"):
        est.fit(X, y)
