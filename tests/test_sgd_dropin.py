"""What a user coming from SGDClassifier / SGDRegressor relies on: the 'optimal'
schedule (lecture Eq. 22), with scikit-learn's per-sample sequence."""

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor, MLPRegressor, fit_many
from skopt_nn.optim import minimize

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(300, 6, random_state=0)
    return StandardScaler().fit_transform(X), y


def _one_epoch(cls, **kw):
    return cls(optimizer="sgd", batch_size=1, learning_rate="optimal", max_iter=1,
               shuffle=False, tol=None, **kw)


@pytest.mark.parametrize("loss, sk_loss, alpha, atol", [
    ("hinge", "hinge", 1e-4, 1e-10), ("hinge", "hinge", 1e-2, 1e-10),
    ("logistic", "log_loss", 1e-2, 1e-10),
    # the first step is α^(-1/4) = 10: margins pass 18, where scikit-learn's log-loss
    # gradient is its approximation -y exp(-z) (relative error exp(-z) < 2e-8)
    ("logistic", "log_loss", 1e-4, 1e-7),
])
def test_optimal_follows_sgd_classifier_sample_by_sample(classification, loss, sk_loss,
                                                         alpha, atol):
    X, y = classification
    theirs = SGDClassifier(loss=sk_loss, learning_rate="optimal", alpha=alpha, max_iter=1,
                           shuffle=False, tol=None).fit(X, y)
    ours = _one_epoch(LinearClassifier, loss=loss, alpha=alpha).fit(X, y)
    np.testing.assert_allclose(ours.coef_.ravel(), theirs.coef_.ravel(), rtol=0, atol=atol)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=atol)


def test_optimal_follows_sgd_regressor():
    X, y = make_regression(300, 5, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), y / 100
    theirs = SGDRegressor(learning_rate="optimal", alpha=1.0, max_iter=1, shuffle=False,
                          tol=None).fit(X, y)
    ours = _one_epoch(LinearRegressor, alpha=1.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", ["hinge", "logistic"])
def test_optimal_steps_are_eq_22_with_the_offset(classification, loss):
    """η_k = 1/(α (t₀ + k − 1)), t₀ = 1/(α η₀), η₀ = w/max(1, f'(−w)) with w = α^(-1/4):
    for these losses f'(−w) < 1 at y = 1, so η₀ = w (a NumPy transcription)."""
    X, y = classification
    alpha = 1e-3
    est = LinearClassifier(loss=loss, optimizer="sgd", batch_size=30, alpha=alpha,
                           learning_rate="optimal", max_iter=4, tol=None,
                           random_state=0).fit(X, y)
    t0 = 1.0 / (alpha * math.sqrt(1.0 / math.sqrt(alpha)))
    k = np.arange(1, 5) * 10  # 300 rows in batches of 30: 10 steps an epoch
    np.testing.assert_allclose(est.history_["step_size"][1:], 1.0 / (alpha * (t0 + k - 1)),
                               rtol=1e-12)


def test_optimal_needs_a_positive_alpha(classification):
    X, y = classification
    est = LinearClassifier(optimizer="sgd", learning_rate="optimal", alpha=0.0)
    with pytest.raises(ValueError, match="alpha must be > 0 since learning_rate is 'optimal'"):
        est.fit(X, y)
    assert not hasattr(est, "coef_")
    with pytest.raises(ValueError, match="needs the strong convexity"):
        minimize(lambda x: (x * x).sum(), [1.0], optimizer="sgd", learning_rate="optimal")


def test_optimal_in_a_population_and_on_warm_start(classification):
    """Batched fits take each model's own 'optimal' steps; switching a fitted model to
    'optimal' on warm_start uses its alpha."""
    X, y = classification
    Xr, yr = X, X @ np.arange(1.0, 7.0) / 10
    ests = [MLPRegressor(hidden_layer_sizes=(5,), optimizer="sgd", learning_rate="optimal",
                         alpha=a, batch_size=30, max_iter=5, random_state=0)
            for a in (1.0, 3.0)]
    single = [e.__class__(**e.get_params()).fit(Xr, yr) for e in ests]
    fit_many(ests, Xr, yr)
    for b, s in zip(ests, single):
        np.testing.assert_allclose(b.predict(Xr), s.predict(Xr), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.history_["step_size"], s.history_["step_size"])
    est = LinearClassifier(optimizer="sgd", max_iter=2, warm_start=True).fit(X, y)
    est.set_params(learning_rate="optimal", alpha=0.01).fit(X, y)
    t0 = 1.0 / (0.01 * 0.01 ** -0.25)
    assert est.history_["step_size"].iloc[-1] == pytest.approx(
        1.0 / (0.01 * (t0 + est._trainer.k - 1)))


def test_mlp_classifier_offers_decision_function_only_without_probabilities():
    """As scikit-learn's MLPClassifier: probabilities for the log loss, and no
    decision_function then, so DecisionBoundaryDisplay's 'auto' shades probabilities;
    the hinge loss has no probabilities and keeps its scores."""
    from sklearn.inspection import DecisionBoundaryDisplay

    from skopt_nn import MLPClassifier

    X, y = make_classification(80, 2, n_informative=2, n_redundant=0, random_state=0)
    log = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    hinge = MLPClassifier(hidden_layer_sizes=(5,), loss="hinge", max_iter=20,
                          random_state=0).fit(X, y)
    assert hasattr(log, "predict_proba") and not hasattr(log, "decision_function")
    assert hasattr(hinge, "decision_function") and not hasattr(hinge, "predict_proba")
    assert hinge.decision_function(X).shape == (80,)
    np.testing.assert_array_equal(hinge.predict(X), hinge.classes_[
        (hinge.decision_function(X) > 0).astype(int)])
    pytest.importorskip("matplotlib")
    display = DecisionBoundaryDisplay.from_estimator(log, X, response_method="auto")
    assert display.response.min() >= 0.0 and display.response.max() <= 1.0


@pytest.mark.parametrize("average", [True, 50])
@pytest.mark.parametrize("loss, sk_loss", [("hinge", "hinge"), ("logistic", "log_loss")])
def test_average_follows_averaged_sgd_classifier(classification, average, loss, sk_loss):
    X, y = classification
    kw = dict(learning_rate="optimal", alpha=1e-2, max_iter=3, shuffle=False, tol=None,
              average=average)
    theirs = SGDClassifier(loss=sk_loss, **kw).fit(X, y)
    ours = LinearClassifier(loss=loss, optimizer="sgd", batch_size=1, **kw).fit(X, y)
    np.testing.assert_allclose(ours.coef_.ravel(), theirs.coef_.ravel(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-10)


def test_average_is_the_mean_of_the_iterates(classification):
    """A NumPy transcription: per-sample hinge SGD (Eq. 16) with the 'optimal' step,
    the published model the mean of the iterates from step 100 on."""
    X, y = classification
    alpha, start = 1e-2, 100
    s = np.where(y == 1, 1.0, -1.0)
    w, b = np.zeros(X.shape[1]), 0.0
    t0 = 1.0 / (alpha * alpha ** -0.25)
    iterates = []
    for k, (x_i, s_i) in enumerate(zip(X, s), start=1):
        eta = 1.0 / (alpha * (t0 + k - 1))
        d = -s_i if s_i * (x_i @ w + b) < 1 else 0.0
        w, b = w - eta * (d * x_i + alpha * w), b - eta * d
        if k >= start:
            iterates.append(np.append(w, b))
    mean = np.mean(iterates, axis=0)
    est = _one_epoch(LinearClassifier, loss="hinge", alpha=alpha, average=start).fit(X, y)
    np.testing.assert_allclose(est.coef_.ravel(), mean[:-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.intercept_, mean[-1:], rtol=1e-10, atol=1e-12)


def test_average_continues_across_calls_and_pickles(classification):
    """partial_fit continues the average (and the iterate, not the average); a pickle
    continues as the original; editing coef_ restarts from the edit."""
    import pickle

    X, y = classification
    kw = dict(loss="hinge", optimizer="sgd", batch_size=1, learning_rate="optimal",
              alpha=1e-2, shuffle=False, tol=None, average=True)
    both = LinearClassifier(max_iter=2, **kw).fit(X, y)
    step = LinearClassifier(max_iter=1, **kw).fit(X, y)
    copy = pickle.loads(pickle.dumps(step))
    for est in (step, copy):
        est.partial_fit(X, y)
        np.testing.assert_allclose(est.coef_, both.coef_, rtol=1e-12, atol=1e-14)
    assert not np.allclose(both._trainer.x.numpy()[:-1], both.coef_.ravel())
    edited = LinearClassifier(max_iter=1, warm_start=True, **kw).fit(X, y)
    edited.coef_ = np.zeros_like(edited.coef_)
    edited.intercept_ = np.zeros_like(edited.intercept_)
    edited.fit(X, y)  # from the zeros, and the average restarts with them
    assert edited._trainer.averager.n == len(X)  # this call's iterates only
    assert edited._trainer.k == 2 * len(X)  # the schedule goes on


def test_average_with_the_regressor_and_in_fit_many():
    X, y = make_regression(200, 4, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), y / 100
    kw = dict(learning_rate="optimal", alpha=1.0, max_iter=2, shuffle=False, tol=None,
              average=10)
    theirs = SGDRegressor(**kw).fit(X, y)
    ests = [LinearRegressor(optimizer="sgd", batch_size=1, **kw) for _ in range(2)]
    fit_many(ests, X, y)  # averaging models are fitted one by one
    for est in ests:
        np.testing.assert_allclose(est.coef_, theirs.coef_, rtol=0, atol=1e-12)


def test_optimal_skips_the_unused_auto_step(classification, monkeypatch):
    """'optimal' takes no η₀, so the 'auto' step (1/L, a Gram matrix of the data) is
    not computed; a later call that switches the schedule computes it then."""
    from skopt_nn._linear_objective import LinearObjective

    X, y = classification
    calls = []
    lipschitz = LinearObjective.lipschitz
    monkeypatch.setattr(LinearObjective, "lipschitz",
                        lambda self, data: calls.append(1) or lipschitz(self, data))
    est = LinearClassifier(optimizer="sgd", learning_rate="optimal", batch_size=10,
                           max_iter=2, tol=None, warm_start=True, random_state=0).fit(X, y)
    assert calls == []
    est.set_params(learning_rate="constant").fit(X, y)
    assert len(calls) == 1
    fresh = LinearClassifier(optimizer="sgd", batch_size=10, max_iter=1, tol=None,
                             random_state=0).fit(X, y)
    assert est._trainer.schedule.eta == fresh._trainer.schedule.eta > 0  # 1/L
