"""Ctrl-C and faults anywhere in a fit leave a consistent model.

An interrupt (KeyboardInterrupt) during training keeps the last whole epoch and
warns, as scikit-learn's MLP does; one before training (while validating) is
re-raised with the estimator exactly as it was.  Consistent means: the fitted
attributes are those of one parameter vector, ``n_iter_``, ``loss_curve_``,
``history_`` and ``validation_scores_`` describe the same whole epochs, and the
model predicts finite values.
"""

import warnings

import numpy as np
import pytest
from _helpers import EpochInterrupt
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor
from skopt_nn._engine import Trainer
from skopt_nn.optim import line_search

INTERRUPTED = pytest.warns(UserWarning, match="Training interrupted by user")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(300, 6, n_informative=4, random_state=0)
    return X, y


@pytest.fixture
def interrupt_epoch(monkeypatch):
    """``interrupt_epoch(est, k)``: the k-th gradient evaluation of training (after
    the loop's starting point) in the next fits of ``est`` raises Ctrl-C."""

    # the torch path's epochs, whose every batch calls value_grad (a compiled epoch
    # hears of a Ctrl-C when it returns, at the end of the epoch)
    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")

    def arm(est, at_call):
        make = type(est)._make_objective
        calls = {"n": 0, "armed": False}
        start = Trainer._start

        def armed_start(self, *args):
            out = start(self, *args)
            calls["armed"] = True
            return out

        def make_objective(n_features, n_outputs):
            objective = make(est, n_features, n_outputs)
            value_grad = objective.value_grad

            def interrupted_value_grad(*args):
                calls["n"] += calls["armed"]
                if calls["n"] == at_call:
                    raise KeyboardInterrupt
                return value_grad(*args)

            objective.value_grad = interrupted_value_grad
            return objective

        monkeypatch.setattr(Trainer, "_start", armed_start)
        est._make_objective = make_objective

    return arm


def _assert_consistent(est, X, n_epochs):
    assert est.n_iter_ == n_epochs
    assert len(est.loss_curve_) == n_epochs and len(est.history_) == n_epochs + 1
    assert est.n_features_in_ == X.shape[1]
    assert np.all(np.isfinite(est.predict(X).astype(float)))
    assert np.isfinite(est.loss_) and np.isfinite(est.best_loss_)
    # the fitted attributes and the state a continued fit starts from are one model
    np.testing.assert_array_equal(est._flat_params(),
                                  est._trainer.x.cpu().numpy().astype(est._flat_params().dtype))


@pytest.mark.parametrize("when, kept", [("begin", 2), ("end", 3)])
def test_interrupt_in_a_callback_keeps_the_last_whole_epoch(data, when, kept):
    """Ctrl-C before epoch 3 keeps 2 epochs; at the end of epoch 3 (it is whole) 3."""
    pytest.importorskip("sklearn.callback")
    X, y = data
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, tol=None, random_state=0)
    clf.set_callbacks(EpochInterrupt(when, 3))
    with INTERRUPTED:
        clf.fit(X, y)
    _assert_consistent(clf, X, kept)


def test_interrupt_while_scoring_the_validation_split(data):
    X, y = data
    clf = LinearClassifier(optimizer="sgd", early_stopping=True, max_iter=20, tol=None,
                           random_state=0)
    score = type(clf)._validation_score
    calls = {"n": 0}

    def interrupted_score(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return score(self, *args)

    clf._validation_score = interrupted_score.__get__(clf)
    with INTERRUPTED:
        clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert len(clf.validation_scores_) == 3
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert np.all(np.isfinite(clf.coef_))


@pytest.mark.parametrize("cls", [LinearClassifier, MLPClassifier])
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])  # mini-batches and full batch
def test_interrupt_in_the_first_epoch_keeps_the_start(data, cls, optimizer, interrupt_epoch):
    X, y = data
    est = cls(optimizer=optimizer, batch_size=100, random_state=0)
    interrupt_epoch(est, 1)
    with INTERRUPTED:
        est.fit(X, y)
    _assert_consistent(est, X, 0)
    assert est.loss_ == est.best_loss_ == est.history_.loss.iloc[0]


def test_interrupt_in_the_middle_of_an_epoch_resets_the_optimizer_state(data, interrupt_epoch):
    X, y = data
    est = LinearClassifier(optimizer="adam", batch_size=50, max_iter=2, tol=None,
                           warm_start=True, random_state=0).fit(X, y)
    before = est.coef_.copy()
    interrupt_epoch(est, 3)  # the third of six batches of the next epoch
    with INTERRUPTED:
        est.fit(X, y)
    np.testing.assert_array_equal(est.coef_, before)  # the last whole epoch
    assert est.n_iter_ == 0 and len(est.loss_curve_) == 2
    assert est._trainer.opt_state.count == 0  # the half-epoch's moments are dropped


@pytest.mark.parametrize("cls", [LinearRegressor, MLPRegressor])
def test_interrupted_refit_with_new_features_is_consistent(cls, interrupt_epoch):
    X, y = make_regression(200, 5, random_state=0)
    est = cls(optimizer="adam", max_iter=3, tol=None, random_state=0).fit(X, y)
    X3 = X[:, :3]
    interrupt_epoch(est, 1)
    with INTERRUPTED:
        est.fit(X3, y)
    _assert_consistent(est, X3, 0)
    first = est.coef_ if cls is LinearRegressor else est.coefs_[0]
    assert first.shape[-1 if cls is LinearRegressor else 0] == 3


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, MemoryError])
def test_any_exception_before_training_restores_the_estimator(data, exc):
    X, y = data
    est = LinearClassifier(optimizer="adam", max_iter=3, tol=None, random_state=0).fit(X, y)
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(est).items()}

    def failing(*args, **kwargs):
        raise exc

    est._encode_targets = failing
    with pytest.raises(exc):
        est.fit(X[:, :4], y)  # validated (n_features_in_ = 4), then fails
    del est._encode_targets
    assert set(vars(est)) == set(state)
    assert est.n_features_in_ == X.shape[1] and est.coef_.shape == (1, X.shape[1])
    np.testing.assert_array_equal(est.coef_, state["coef_"])
    assert est._trainer is state["_trainer"]


def test_first_epoch_divergence_leaves_a_finite_best_loss():
    X, y = make_regression(50, 3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 1"):
        est = LinearRegressor(optimizer="sgd", learning_rate_init=1e6, max_iter=5).fit(X, y)
    assert est.n_iter_ == 0
    assert np.isfinite(est.best_loss_) and est.best_loss_ == est.loss_
    assert est.loss_ == est.history_.loss.iloc[0]


@pytest.mark.parametrize("cls", [LinearClassifier, MLPClassifier])
def test_class_weight_that_zeroes_every_sample_is_refused(data, cls):
    X, y = data
    message = "must contain at least one non-zero number"
    with pytest.raises(ValueError, match=f"Sample weights {message}"):
        cls().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match=rf"sample_weight × class_weight\) {message}"):
        cls(class_weight={0: 0.0, 1: 0.0}).fit(X, y)
    with pytest.raises(ValueError, match=message):
        cls(class_weight={0: 0.0}).fit(X, y, sample_weight=(y == 0).astype(float))


def test_exact_search_that_cannot_converge_still_returns_a_decrease():
    """Brent's method out of evaluations: its best estimate (or the last point of
    descent) is taken, not an exception (scipy raises RuntimeError by default)."""

    def phi(eta):
        return float(np.exp(eta) - 3.0 * eta + 0.1 * np.sin(40 * eta))

    def dphi(eta):
        return float(np.exp(eta) - 3.0 + 4.0 * np.cos(40 * eta))

    res = line_search.exact(phi, dphi, phi(0.0), dphi(0.0), eta0=1.0, max_evals=4)
    assert res.step > 0 and res.phi < phi(0.0) and res.phi == phi(res.step)


def test_steepest_descent_on_badly_scaled_data_ends_with_finite_weights():
    X, y = make_classification(200, 5, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = LinearClassifier(optimizer="steepest_descent", learning_rate_init=1e3,
                               random_state=0).fit(1000 * X, y)
    assert all(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    assert est.score(1000 * X, y) > 0.8
