"""scikit-learn's SGD losses and penalties: the Huber, ε-insensitive, modified Huber,
squared hinge and perceptron losses, and penalty='l1'|'elasticnet'|None, each against a
NumPy transcription of its equation and against SGDClassifier / SGDRegressor on the
same per-sample sequence."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor, fit_many
from skopt_nn._losses import get_loss
from skopt_nn._penalty import CumulativeL1

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(300, 6, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(300, 5, noise=10.0, random_state=0)
    y = y / 50
    y[::25] += 8.0  # outliers, where the robust losses differ from least squares
    return StandardScaler().fit_transform(X), y


# -- the losses: f and ∂f/∂z against their equations -----------------------------------
def _regression_reference(name, r, eps):
    a = np.abs(r)
    if name == "huber":
        return np.where(a <= eps, 0.5 * r * r, eps * a - 0.5 * eps**2), np.clip(r, -eps, eps)
    if name == "epsilon_insensitive":
        return np.maximum(0, a - eps), np.sign(r) * (a > eps)
    excess = np.maximum(0, a - eps)  # squared ε-insensitive
    return excess**2, 2 * np.sign(r) * excess


def _classification_reference(name, z, y):
    m = y * z
    if name == "modified_huber":
        return (np.where(m >= -1, np.maximum(0, 1 - m) ** 2, -4 * m),
                np.where(m >= -1, -2 * np.maximum(0, 1 - m), -4.0) * y)
    if name == "squared_hinge":
        return np.maximum(0, 1 - m) ** 2, -2 * np.maximum(0, 1 - m) * y
    return np.maximum(0, -m), -y * (m <= 0)  # perceptron


@pytest.mark.parametrize("name", ["huber", "epsilon_insensitive", "squared_epsilon_insensitive"])
def test_regression_losses_are_their_equations(name):
    eps = 0.3
    r = np.array([-2.0, -0.3, -0.1, 0.0, 0.2, 0.3, 0.31, 5.0])
    loss = get_loss(name, epsilon=eps)
    Z, Y = torch.tensor(r[:, None] + 1.0), torch.ones(len(r), 1, dtype=torch.float64)
    f, d = loss.value_and_derivative(Z, Y)
    r = (Z - Y).numpy().ravel()  # r as the loss sees it, rounded
    f_ref, d_ref = _regression_reference(name, r, eps)
    np.testing.assert_allclose(f.numpy(), f_ref, rtol=1e-15)
    np.testing.assert_allclose(d.numpy().ravel(), d_ref, rtol=1e-15)
    np.testing.assert_allclose(loss.value(Z, Y).numpy(), f_ref, rtol=1e-15)


@pytest.mark.parametrize("name", ["modified_huber", "squared_hinge", "perceptron"])
def test_classification_losses_are_their_equations(name):
    z = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    for label in (-1.0, 1.0):
        y = np.full_like(z, label)
        f_ref, d_ref = _classification_reference(name, z, y)
        f, d = get_loss(name).value_and_derivative(torch.tensor(z[:, None]),
                                                   torch.tensor(y[:, None]))
        np.testing.assert_allclose(f.numpy(), f_ref, rtol=1e-15)
        np.testing.assert_allclose(d.numpy().ravel(), d_ref, rtol=1e-15)


@pytest.mark.parametrize("name", ["huber", "squared_epsilon_insensitive", "modified_huber",
                                  "squared_hinge"])
def test_smooth_losses_derivative_is_the_difference_quotient(name):
    rng = np.random.default_rng(0)
    Z = torch.tensor(rng.normal(scale=2, size=(50, 1)), requires_grad=True)
    Y = torch.tensor(np.sign(rng.normal(size=(50, 1))))
    loss = get_loss(name, epsilon=0.5)
    f, d = loss.value_and_derivative(Z, Y)
    (g,) = torch.autograd.grad(f.sum(), Z)
    np.testing.assert_allclose(d.detach().numpy(), g.numpy(), rtol=1e-12, atol=1e-14)


# -- scikit-learn's per-sample sequence ------------------------------------------------
def _one_epoch(cls, **kw):
    return cls(optimizer="sgd", batch_size=1, max_iter=1, shuffle=False, tol=None, **kw)


@pytest.mark.parametrize("loss", ["modified_huber", "squared_hinge", "perceptron"])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet", None])
def test_classifier_follows_sgd_classifier(classification, loss, penalty):
    """η_k = 0.05/√k ('optimal' starts at α^(-1/4), too long a step for the losses of
    curvature 2: scikit-learn's fit diverges too)."""
    X, y = classification
    kw = dict(loss=loss, alpha=1e-3, penalty=penalty, l1_ratio=0.4)
    theirs = SGDClassifier(learning_rate="invscaling", eta0=0.05, power_t=0.5, max_iter=1,
                           shuffle=False, tol=None, **kw).fit(X, y)
    ours = _one_epoch(LinearClassifier, learning_rate="invscaling", learning_rate_init=0.05,
                      power_t=0.5, **kw).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("loss", ["hinge", "log_loss"])
def test_l1_follows_sgd_classifier_over_epochs(classification, loss):
    """Several epochs of the cumulative penalty, which carries q and u over epochs."""
    X, y = classification
    kw = dict(loss=loss, alpha=5e-3, penalty="l1")
    theirs = SGDClassifier(learning_rate="optimal", max_iter=4, shuffle=False, tol=None,
                           **kw).fit(X, y)
    ours = LinearClassifier(optimizer="sgd", batch_size=1, max_iter=4, shuffle=False,
                            tol=None, learning_rate="optimal", **kw).fit(X, y)
    assert (theirs.coef_ == 0).any()  # the penalty has clipped weights at 0
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-9)


@pytest.mark.parametrize("loss", ["squared_error", "huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
def test_regressor_follows_sgd_regressor(regression, loss, penalty):
    """SGDRegressor's defaults: 'invscaling' with η₀ = 0.01 and power_t = 0.25."""
    X, y = regression
    kw = dict(loss=loss, epsilon=0.2, alpha=1e-2, penalty=penalty, l1_ratio=0.5)
    theirs = SGDRegressor(max_iter=1, shuffle=False, tol=None, **kw).fit(X, y)
    ours = _one_epoch(LinearRegressor, learning_rate="invscaling", learning_rate_init=0.01,
                      power_t=0.25, **kw).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-12)


def test_huber_resists_outliers(regression):
    X, y = regression
    clean = np.ones(len(y), bool)
    clean[::25] = False
    kw = dict(optimizer="lbfgs", alpha=0.0, max_iter=500)
    ls = LinearRegressor(**kw).fit(X, y)
    hub = LinearRegressor(loss="huber", epsilon=0.2, **kw).fit(X, y)
    assert hub.score(X[clean], y[clean]) > ls.score(X[clean], y[clean]) + 0.01


def test_modified_huber_probabilities(classification):
    """(clip(z, −1, 1) + 1)/2, normalised over classes; uniform where all are 0 (as
    scikit-learn's SGDClassifier)."""
    X, y = classification
    kw = dict(loss="modified_huber", alpha=1e-3)
    ours = _one_epoch(LinearClassifier, learning_rate="optimal", **kw).fit(X, y)
    theirs = SGDClassifier(learning_rate="optimal", max_iter=1, shuffle=False, tol=None,
                           **kw).fit(X, y)
    assert 0.1 < theirs.predict_proba(X)[:, 1].mean() < 0.9
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-10)
    p1 = (np.clip(ours.decision_function(X), -1, 1) + 1) / 2
    np.testing.assert_allclose(ours.predict_proba(X)[:, 1], p1, rtol=1e-14)
    with np.errstate(divide="ignore"):  # the modified Huber loss gives p = 0 far out
        np.testing.assert_allclose(ours.predict_log_proba(X), np.log(ours.predict_proba(X)))

    X3, y3 = make_classification(200, 5, n_informative=4, n_redundant=0, n_classes=3,
                                 random_state=1)
    multi = LinearClassifier(optimizer="sgd", random_state=0, **kw).fit(X3, y3)
    Z = multi.decision_function(X3)
    p = (np.clip(Z, -1, 1) + 1) / 2
    np.testing.assert_allclose(multi.predict_proba(X3), p / p.sum(1, keepdims=True),
                               rtol=1e-14)
    multi.coef_[:] = 0.0
    multi.intercept_[:] = -2.0  # every class scores below -1: p = 0 for each
    np.testing.assert_allclose(multi.predict_proba(X3[:3]), 1 / 3)


def test_losses_without_probabilities_have_none(classification):
    X, y = classification
    for loss in ("hinge", "squared_hinge", "perceptron"):
        est = LinearClassifier(loss=loss, optimizer="sgd", max_iter=3).fit(X, y)
        assert not hasattr(est, "predict_proba")
    assert hasattr(LinearClassifier(loss="log_loss"), "predict_proba")


# -- the penalties ---------------------------------------------------------------------
def _numpy_cumulative(w, u, q, steps, lam):
    """Tsuruoka et al.'s cumulative penalty, transcribed."""
    u = u + steps * lam
    new = w.copy()
    for j in range(len(w)):
        if w[j] > 0:
            new[j] = max(0.0, w[j] - (u[j] + q[j]))
        elif w[j] < 0:
            new[j] = min(0.0, w[j] + (u[j] - q[j]))
    return new, u, q + (new - w)


def test_cumulative_l1_is_its_transcription():
    rng = np.random.default_rng(0)
    n = 6
    l1 = CumulativeL1(0.05, n)
    x = torch.zeros(n + 1, dtype=torch.float64)  # the last entry: an unpenalised intercept
    w, u, q = np.zeros(n), np.zeros(n), np.zeros(n)
    for step in range(30):
        move = rng.normal(scale=0.3, size=n + 1)
        steps = rng.uniform(0.1, 1.0, size=n + 1) if step % 2 else 0.5
        x += torch.from_numpy(move)
        b = float(x[-1])
        l1.apply(x, torch.from_numpy(steps) if step % 2 else steps)
        w, u, q = _numpy_cumulative(w + move[:n], u, q, np.broadcast_to(steps, n + 1)[:n],
                                    0.05)
        np.testing.assert_allclose(x[:n].numpy(), w, rtol=0, atol=1e-15)
        assert float(x[-1]) == b
    assert (w == 0).any()
    # one step from zero debt is the soft-thresholding proximal step
    x = torch.tensor([0.3, -0.02, -0.5, 0.0], dtype=torch.float64)
    CumulativeL1(0.1, 4).apply(x, 0.5)
    np.testing.assert_allclose(x.numpy(), [0.25, 0.0, -0.45, 0.0])


def _np_smooth_grad(X, y, coef, b, alpha_l2):
    r = X @ coef + b - y  # least squares
    return X.T @ r / len(y) + alpha_l2 * coef, r.mean()


def test_adagrad_l1_is_the_truncation_with_its_coordinate_steps(regression):
    """Full batch: AdaGrad's step on the smooth part (Eq. 32-34), then the cumulative
    penalty with AdaGrad's per-coordinate steps η/G_jj (a NumPy transcription)."""
    X, y = regression
    alpha, rho, lr, eps, epochs = 0.2, 0.5, 0.1, 1e-10, 6
    est = LinearRegressor(optimizer="adagrad", penalty="elasticnet", l1_ratio=rho,
                          alpha=alpha, learning_rate_init=lr, batch_size=len(y),
                          max_iter=epochs, tol=None).fit(X, y)
    d = X.shape[1]
    coef, b, G = np.zeros(d), 0.0, np.zeros(d + 1)
    u, q = np.zeros(d), np.zeros(d)
    for _ in range(epochs):
        gw, gb = _np_smooth_grad(X, y, coef, b, alpha * (1 - rho))
        g = np.append(gw, gb)
        G += g * g
        step = lr / np.sqrt(G + eps)
        coef, b = coef - step[:d] * gw, b - step[d] * gb
        coef, u, q = _numpy_cumulative(coef, u, q, step[:d], alpha * rho)
    assert (coef == 0).any()
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(est.intercept_, [b], rtol=1e-10)


def test_adam_l1_per_sample_is_its_transcription(classification):
    """Mini-batch steps of Adam (Eq. 37-39) on the logistic loss, each followed by the
    truncation with Adam's per-coordinate steps η/√(ε + v̂)."""
    X, y = classification
    X, y = X[:40], y[:40]
    s = 2.0 * y - 1
    alpha, lr, b1, b2, eps = 0.05, 0.05, 0.9, 0.999, 1e-16
    est = LinearClassifier(optimizer="adam", penalty="l1", alpha=alpha, learning_rate_init=lr,
                           batch_size=4, max_iter=2, shuffle=False, tol=None).fit(X, y)
    d = X.shape[1]
    x, m, v = np.zeros(d + 1), np.zeros(d + 1), np.zeros(d + 1)
    u, q = np.zeros(d), np.zeros(d)
    k = 0
    for _ in range(2):
        for start in range(0, 40, 4):
            A, t = X[start:start + 4], s[start:start + 4]
            z = A @ x[:d] + x[d]
            dz = -t / (1 + np.exp(t * z))
            g = np.append(A.T @ dz / 4, dz.mean())
            k += 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mh, vh = m / (1 - b1**k), v / (1 - b2**k)
            x = x - lr * mh / np.sqrt(eps + vh)
            x[:d], u, q = _numpy_cumulative(x[:d], u, q, lr / np.sqrt(eps + vh[:d]), alpha)
    np.testing.assert_allclose(est.coef_.ravel(), x[:d], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(est.intercept_, x[d:], rtol=1e-9)


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam", "lbfgs", "armijo"])
def test_l1_objective_and_sparsity(regression, optimizer):
    """F includes α‖W‖₁; the step methods reach exact zeros, the search methods (which
    take the subgradient) small coefficients, and both fit the informative features."""
    X, y = regression
    rng = np.random.default_rng(0)
    X = np.hstack([X, rng.normal(size=(len(y), 5))])  # five irrelevant features
    alpha = 0.3
    est = LinearRegressor(optimizer=optimizer, penalty="l1", alpha=alpha, max_iter=300,
                          random_state=0).fit(X, y)
    r = X @ est.coef_ + est.intercept_ - y
    F = 0.5 * np.mean(r * r) + alpha * np.abs(est.coef_).sum()
    if optimizer in ("gd", "lbfgs", "armijo"):  # full batch: the loss of the final point
        np.testing.assert_allclose(est.loss_, F, rtol=1e-10)
    ridge = LinearRegressor(optimizer="lbfgs", alpha=0.0).fit(X, y)
    assert np.abs(est.coef_[5:]).max() < 0.2 * np.abs(ridge.coef_[:5]).max()
    if optimizer in ("gd", "sgd", "adam"):
        assert (est.coef_[5:] == 0).sum() >= 3


def test_penalty_none_and_l1_ratio_zero(classification):
    X, y = classification
    kw = dict(optimizer="lbfgs", alpha=0.1)
    none = LinearClassifier(penalty=None, **kw).fit(X, y)
    free = LinearClassifier(alpha=0.0, optimizer="lbfgs").fit(X, y)
    np.testing.assert_allclose(none.coef_, free.coef_, rtol=1e-12)
    en0 = LinearClassifier(penalty="elasticnet", l1_ratio=0.0, **kw).fit(X, y)
    l2 = LinearClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(en0.coef_, l2.coef_, rtol=1e-12)


def test_l1_state_continues_over_partial_fit(classification):
    """partial_fit epoch by epoch equals one fit: the penalty's debt u, q carries over
    (and over a pickle)."""
    import pickle

    X, y = classification
    kw = dict(optimizer="sgd", batch_size=1, shuffle=False, tol=None, penalty="l1",
              alpha=5e-3, learning_rate="optimal", loss="hinge")
    full = LinearClassifier(max_iter=3, **kw).fit(X, y)
    inc = LinearClassifier(**kw)
    for _ in range(3):
        inc.partial_fit(X, y, classes=[0, 1])
        inc = pickle.loads(pickle.dumps(inc))
    np.testing.assert_allclose(inc.coef_, full.coef_, rtol=0, atol=1e-12)


def test_fit_many_trains_l1_models_alone_and_equal(classification):
    X, y = classification
    ests = [LinearClassifier(optimizer="sgd", penalty=p, alpha=1e-2, max_iter=5,
                             random_state=0) for p in ("l1", "l2", "elasticnet", "l2")]
    fit_many(ests, X, y)
    for est in ests:
        alone = LinearClassifier(**est.get_params()).fit(X, y)
        np.testing.assert_allclose(est.coef_, alone.coef_, rtol=1e-9, atol=1e-12)


def test_bad_penalty_options_are_rejected(classification):
    X, y = classification
    for params in ({"penalty": "l3"}, {"l1_ratio": 1.5}, {"loss": "huber"}):
        est = LinearClassifier(**params)
        with pytest.raises(ValueError, match="parameter of LinearClassifier"):
            est.fit(X, y)
        assert not hasattr(est, "coef_")
    with pytest.raises(ValueError, match="'epsilon' parameter of LinearRegressor"):
        LinearRegressor(loss="huber", epsilon=-1.0).fit(X, y.astype(float))
