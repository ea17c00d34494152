"""The compiled epoch of small MLPs equals the torch path (float64, to rounding) for
every activation, output loss, update rule, schedule, sample weights and penalty, and
gives way to the torch path where it does not apply."""

import numpy as np
import pytest
from _helpers import spy_compiled_mlp_epoch

from skopt_nn import MLPClassifier, MLPRegressor
from skopt_nn import _compiled_mlp as compiled
from skopt_nn.optim import Adam, Momentum, RMSProp

pytest.importorskip("numba")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y, labels, rng.uniform(0.2, 3.0, size=90)


def _both(monkeypatch, make, X, y, sample_weight=None):
    """The same fit on the torch path and compiled; asserts the compiled path ran."""
    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    ref = make().fit(X, y, sample_weight=sample_weight)
    monkeypatch.setenv("SKOPT_NN_COMPILED", "1")
    calls = spy_compiled_mlp_epoch(monkeypatch)
    ours = make().fit(X, y, sample_weight=sample_weight)
    assert calls and all(calls)
    return ref, ours


def _assert_same(ref, ours, rtol=1e-10):
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-13)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol)
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "rmsprop",
                                       Momentum(0.9, nesterov=True), Momentum(0.5)])
def test_regressor_equals_torch_path(monkeypatch, data, activation, optimizer):
    X, y, _, _ = data
    ref, ours = _both(monkeypatch, lambda: MLPRegressor(
        hidden_layer_sizes=(6, 5), activation=activation, optimizer=optimizer,
        learning_rate_init=0.01, batch_size=16, max_iter=4, tol=None, alpha=1e-3,
        random_state=0), X, y)
    _assert_same(ref, ours)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "hinge"])
def test_classifier_losses_equal_torch_path(monkeypatch, data, kind):
    X, _, labels, sw = data
    y = {"binary": labels > 0, "multiclass": labels,
         "multilabel": np.column_stack([labels > 0, labels > 1]), "hinge": labels}[kind]
    loss = "hinge" if kind == "hinge" else "log_loss"
    ref, ours = _both(monkeypatch, lambda: MLPClassifier(
        hidden_layer_sizes=(7,), loss=loss, optimizer="adam", batch_size=10, max_iter=3,
        tol=None, alpha=1e-2, random_state=0), X, y,
        sample_weight=None if kind == "multilabel" else sw)
    _assert_same(ref, ours)


@pytest.mark.parametrize("schedule", ["invscaling", "optimal", "adaptive"])
def test_schedules_and_stopping_equal_torch_path(monkeypatch, data, schedule):
    X, y, _, sw = data
    ref, ours = _both(monkeypatch, lambda: MLPRegressor(
        hidden_layer_sizes=(5,), optimizer="sgd", learning_rate=schedule, alpha=0.1,
        learning_rate_init=0.05, batch_size=8, max_iter=30, tol=1e-3, n_iter_no_change=2,
        random_state=0), X, y, sample_weight=sw)
    _assert_same(ref, ours)


def test_poisson_and_partial_fit_continue_identically(monkeypatch, data):
    """partial_fit carries Adam's moments and count through the compiled epochs."""
    X, _, labels, _ = data

    def run():
        est = MLPRegressor(hidden_layer_sizes=(4,), loss="poisson", batch_size=20,
                           random_state=0, learning_rate_init=0.01)
        for _ in range(3):
            est.partial_fit(X, labels.astype(float))
        return est

    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    ref = run()
    monkeypatch.setenv("SKOPT_NN_COMPILED", "1")
    ours = run()
    _assert_same(ref, ours)
    assert ours._trainer.opt_state.count == ref._trainer.opt_state.count == 15


def test_float32_is_close(monkeypatch, data):
    X, y, _, _ = data
    ref, ours = _both(monkeypatch, lambda: MLPRegressor(
        hidden_layer_sizes=(6,), batch_size=16, max_iter=3, tol=None, random_state=0),
        X.astype(np.float32), y.astype(np.float32))
    assert ours.coefs_[0].dtype == np.float32
    _assert_same(ref, ours, rtol=2e-4)


def test_gives_way_to_the_torch_path(monkeypatch, data):
    """None (the torch path) for what it does not run: a large batch x network,
    scalar Adam, sampling with replacement, switched off."""
    X, y, _, _ = data
    seen = spy_compiled_mlp_epoch(monkeypatch)
    from skopt_nn.optim import SGD

    for est in (MLPRegressor(hidden_layer_sizes=(400,), batch_size=80, max_iter=1),
                MLPRegressor(optimizer=Adam(elementwise=False), batch_size=10, max_iter=1),
                MLPRegressor(optimizer=SGD(sampling="with_replacement"), batch_size=10,
                             max_iter=1),
                MLPRegressor(optimizer=RMSProp(elementwise=False), batch_size=10, max_iter=1)):
        seen.clear()
        est.fit(X, y)
        assert seen == [False]
    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    seen.clear()
    MLPRegressor(hidden_layer_sizes=(3,), batch_size=10, max_iter=1).fit(X, y)
    assert seen == [False]
    assert not compiled.enabled()


# -- populations (fit_many): the models on the kernel's innermost axis -----------------
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad", "rmsprop",
                                       Momentum(0.9, nesterov=True)])
def test_population_epoch_equals_torch_population(monkeypatch, data, optimizer):
    """fit_many of models that differ in step, penalty and schedule, each on its own
    rows: the compiled population epoch gives what the torch population gives."""
    from skopt_nn import fit_many

    X, y, _, sw = data
    rows = [np.arange(0, 80), np.arange(10, 90), np.arange(5, 85)]

    def run():
        models = [MLPRegressor(hidden_layer_sizes=(6, 4), activation=act, optimizer=optimizer,
                               learning_rate_init=lr, alpha=a, learning_rate=sched,
                               batch_size=16, max_iter=4, tol=None, random_state=seed)
                  for act in ("relu", "tanh")
                  for lr, a, sched, seed in ((0.01, 0.0, "constant", 0),
                                             (0.02, 1e-2, "invscaling", 1),
                                             (0.005, 1e-3, "constant", 2))]
        fit_many(models, X, y, rows=rows * 2, sample_weight=sw)
        return models

    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    refs = run()
    monkeypatch.setenv("SKOPT_NN_COMPILED", "1")
    calls = []
    original = compiled.compiled_population_epoch
    monkeypatch.setattr("skopt_nn._population._engine.compiled_population_epoch",
                        lambda *a: calls.append(1) or original(*a))
    ours = run()
    assert calls
    for ref, est in zip(refs, ours):
        _assert_same(ref, est)


def test_population_classifiers_equal_torch_population(monkeypatch, data):
    from skopt_nn import fit_many

    X, _, labels, _ = data

    def run():
        models = [MLPClassifier(hidden_layer_sizes=(5,), learning_rate_init=lr, batch_size=12,
                                max_iter=3, tol=None, random_state=0) for lr in (1e-3, 1e-2)]
        return fit_many(models, X, labels)

    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    refs = run()
    monkeypatch.setenv("SKOPT_NN_COMPILED", "1")
    for ref, est in zip(refs, run()):
        _assert_same(ref, est)


def test_population_of_linear_models_with_an_epsilon_loss(monkeypatch, data):
    """Linear models train in the compiled population too, with the same per-sample
    loss kernels as their own compiled epoch (here Huber's: its ε must reach the kernel
    for the two paths to agree; models of different ε are not grouped)."""
    from skopt_nn import LinearRegressor, fit_many

    X, y, _, _ = data

    def run():
        models = [LinearRegressor(loss="huber", epsilon=0.3, optimizer="sgd", batch_size=10,
                                  learning_rate_init=lr, max_iter=3, tol=None,
                                  random_state=0) for lr in (0.02, 0.05)]
        return fit_many(models, X, y * 3)

    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    refs = run()
    monkeypatch.setenv("SKOPT_NN_COMPILED", "1")
    calls = []
    original = compiled.compiled_population_epoch
    monkeypatch.setattr("skopt_nn._population._engine.compiled_population_epoch",
                        lambda *a: calls.append(r := original(*a)) or r)
    ours = run()
    assert calls and all(r is not None for r in calls)
    for ref, est in zip(refs, ours):
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-10)
