"""Behaviour of LinearRegressor and LinearClassifier beyond scikit-learn's checks."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import ALL_OPTIMIZERS, FULL_BATCH_OPTIMIZERS, quiet_fit
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor
from skopt_nn.optim import Adam, Momentum


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# --------------------------------------------------------------------- defaults
def test_default_regressor_reaches_ols(diabetes):
    X, y = diabetes
    ols = LinearRegression().fit(X, y).score(X, y)
    assert LinearRegressor(random_state=0).fit(X, y).score(X, y) >= ols - 1e-3


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_default_classifier_reaches_logistic_regression(cancer, loss):
    X, y = cancer
    ref = LogisticRegression().fit(X, y).score(X, y)
    assert LinearClassifier(loss=loss, random_state=0).fit(X, y).score(X, y) >= ref - 0.005


def test_default_multiclass_is_multinomial():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LinearClassifier(alpha=0.0, tol=1e-10, max_iter=500, random_state=0).fit(X, y)
    ref = LogisticRegression(C=1e12, max_iter=10_000).fit(X, y)  # multinomial, no penalty
    proba, ref_proba = clf.predict_proba(X), ref.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert np.abs(proba - ref_proba).max() < 0.05
    assert clf.coef_.shape == (3, 4)


# lbfgs, the default, is test_default_regressor_reaches_ols
@pytest.mark.parametrize("opt", [name for name in FULL_BATCH_OPTIMIZERS if name != "lbfgs"])
def test_full_batch_methods_approach_ols(diabetes, opt):
    X, y = diabetes
    ols = LinearRegression().fit(X, y).score(X, y)
    est = LinearRegressor(optimizer=opt, max_iter=300, tol=None, random_state=0).fit(X, y)
    assert est.score(X, y) > ols - 0.01


def test_objective_value_matches_definition(diabetes):
    """loss_ is (Σ w f)/(Σ w) + α/2 ‖coef‖² with f = ½ r²."""
    X, y = diabetes
    w = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    est = LinearRegressor(alpha=0.1, max_iter=50, tol=None, random_state=0).fit(X, y, w)
    r = est.predict(X) - y
    expected = np.sum(w * 0.5 * r**2) / w.sum() + 0.05 * est.coef_ @ est.coef_
    # full batch: loss_curve_[k] is f at the point iteration k produced
    assert est.loss_ == pytest.approx(expected, rel=1e-10)


def test_steepest_descent_uses_closed_form_step(diabetes):
    X, y = diabetes
    est = LinearRegressor(optimizer="steepest_descent", alpha=0.0, max_iter=1, tol=None)
    est.fit(X, y)
    A = np.hstack([X, np.ones((len(X), 1))])
    g = A.T @ (-y) / len(y)  # gradient at zero
    eta = g @ g / (g @ (A.T @ A / len(y)) @ g)
    np.testing.assert_allclose(est.history_.step_size.iloc[1], eta, rtol=1e-10)
    np.testing.assert_allclose(np.r_[est.coef_, est.intercept_], -eta * g, rtol=1e-10)


def test_gd_auto_step_is_inverse_lipschitz(diabetes):
    X, y = diabetes
    est = LinearRegressor(optimizer="gd", alpha=0.0, max_iter=1, tol=None).fit(X, y)
    A = np.hstack([X, np.ones((len(X), 1))])
    L = np.linalg.eigvalsh(A.T @ A / len(y)).max()
    np.testing.assert_allclose(est.history_.step_size.iloc[1], 1 / L, rtol=1e-6)


def test_a_far_off_first_trial_step_still_trains(linear_data):
    X, y = linear_data
    for opt in ["lbfgs", "wolfe"]:  # strong Wolfe searches: they try the step first
        est = quiet_fit(LinearRegressor(optimizer=opt, learning_rate_init=1e10, max_iter=50),
                        X, y)
        assert est.score(X, y) > 0.99, opt


def test_momentum_auto_step_fits_linear_models(linear_data):
    X, y = linear_data
    est = quiet_fit(LinearRegressor(optimizer="momentum", alpha=0.0, max_iter=50), X, y)
    assert est.score(X, y) > 0.99


def test_lbfgs_on_float32_stops_at_precision_instead_of_crawling():
    from sklearn.datasets import make_classification

    X, y = make_classification(5000, 50, n_informative=20, random_state=0)
    est = quiet_fit(LinearClassifier(optimizer="lbfgs"), X.astype(np.float32), y)
    assert est.n_iter_ < 100
    assert (est.history_.step_size.iloc[1:-1] > 1e-4).all()  # no rounding-level steps


# ------------------------------------------------------------- state continuation
# mini-batch methods with moments, a velocity or no state, and full-batch ones
# with (L-BFGS's pairs) and without state
@pytest.mark.parametrize("opt", ["adam", "momentum", "sgd", "lbfgs", "wolfe"])
def test_warm_start_continues_optimizer_state(cancer, opt):
    X, y = cancer
    params = dict(optimizer=opt, tol=None, random_state=0, batch_size=64,
                  learning_rate="invscaling", learning_rate_init=0.05 if opt != "wolfe" else 1.0)
    full = LinearClassifier(max_iter=6, **params).fit(X, y)
    warm = LinearClassifier(max_iter=3, warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    assert warm.n_iter_ == 3 and warm.t_ == full.t_
    np.testing.assert_allclose(warm.coef_, full.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(warm.loss_curve_, full.loss_curve_, rtol=1e-10)


def test_partial_fit_equals_fit_epochs(cancer):
    X, y = cancer
    params = dict(optimizer=Adam(), learning_rate_init=0.01, tol=None, random_state=0,
                  batch_size=50)
    full = LinearClassifier(max_iter=4, **params).fit(X, y)
    inc = LinearClassifier(**params)
    for _ in range(4):
        inc.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(inc.coef_, full.coef_, rtol=1e-10, atol=1e-12)
    assert inc._trainer.k == full._trainer.k == 4 * 12


def test_partial_fit_needs_classes_and_known_labels(cancer):
    X, y = cancer
    clf = LinearClassifier()
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, np.full_like(y, 7))


def test_tol_none_runs_exactly_max_iter(cancer):
    X, y = cancer
    for opt in ["lbfgs", "sgd"]:  # a full-batch and a mini-batch method
        est = LinearClassifier(optimizer=opt, tol=None, max_iter=17, random_state=0).fit(X, y)
        assert est.n_iter_ == 17 and len(est.loss_curve_) == 17


def test_adaptive_schedule_divides_step_by_five():
    X, y = make_classification(200, 5, random_state=0)
    est = LinearClassifier(optimizer="sgd", learning_rate="adaptive", learning_rate_init=0.5,
                           n_iter_no_change=2, tol=1e-2, max_iter=300, random_state=0).fit(X, y)
    steps = est.history_.step_size.iloc[1:].unique()
    assert len(steps) > 1
    np.testing.assert_allclose(steps[1:] / steps[:-1], 0.2)


def test_invscaling_schedule_counts_steps(cancer):
    X, y = cancer
    est = LinearClassifier(optimizer="sgd", learning_rate="invscaling", power_t=0.5,
                           learning_rate_init=0.1, batch_size=100, tol=None, max_iter=3).fit(X, y)
    steps_per_epoch = int(np.ceil(len(y) / 100))
    k = steps_per_epoch * np.arange(1, 4)  # step size of each epoch's last step
    np.testing.assert_allclose(est.history_.step_size.iloc[1:], 0.1 / np.sqrt(k))


# ------------------------------------------------------------------ data handling
@pytest.mark.parametrize("fmt", ["csr", "csc"])
# full batch, mini-batches, and the exact step (the curvature of the sparse X)
@pytest.mark.parametrize("opt", ["lbfgs", "sgd", "steepest_descent"])
def test_sparse_equals_dense(fmt, opt):
    rng = np.random.RandomState(0)
    X = sp.random(120, 30, density=0.2, format=fmt, random_state=rng)
    y = (X @ rng.randn(30) > 0).astype(int)
    kw = dict(optimizer=opt, random_state=0, max_iter=20, tol=None, shuffle=False)
    dense = LinearClassifier(loss="hinge", **kw).fit(X.toarray(), y)
    sparse = LinearClassifier(loss="hinge", **kw).fit(X, y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.decision_function(X), dense.decision_function(X.toarray()),
                               rtol=1e-9, atol=1e-12)


def test_float32_stays_float32(diabetes):
    X, y = diabetes
    est = LinearRegressor(max_iter=20, tol=None).fit(X.astype(np.float32), y)
    assert est.coef_.dtype == np.float32
    est64 = LinearRegressor(max_iter=20, tol=None).fit(X, y)
    assert est64.coef_.dtype == np.float64


def test_sample_weight_and_class_weight(cancer):
    X, y = cancer
    w = np.where(y == 0, 3.0, 1.0)
    a = LinearClassifier(random_state=0).fit(X, y, sample_weight=w)
    b = LinearClassifier(class_weight={0: 3.0, 1: 1.0}, random_state=0).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8)
    c = LinearClassifier(random_state=0).fit(X, y)
    assert not np.allclose(a.coef_, c.coef_)


def test_balanced_class_weight_helps_minority():
    X, y = make_classification(600, 5, weights=[0.95], flip_y=0.05, random_state=0)
    plain = LinearClassifier(random_state=0).fit(X, y)
    bal = LinearClassifier(class_weight="balanced", random_state=0).fit(X, y)
    recall = lambda m: np.mean(m.predict(X[y == 1]) == 1)  # noqa: E731
    assert recall(bal) > recall(plain)


def test_predict_proba_only_for_logistic(cancer):
    X, y = cancer
    assert not hasattr(LinearClassifier(loss="hinge").fit(X, y), "predict_proba")
    clf = LinearClassifier().fit(X, y)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), p)


def test_string_labels_and_multioutput_regression():
    X, y = make_classification(100, 4, n_classes=3, n_informative=3, n_redundant=0, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    clf = LinearClassifier(loss="hinge", random_state=0).fit(X, labels)
    assert set(clf.predict(X)) <= {"a", "b", "c"} and clf.coef_.shape == (3, 4)
    Y = np.c_[X @ [1.0, 2, 3, 4], X @ [0.0, 1, 0, 1]]
    reg = LinearRegressor(alpha=0.0, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (100, 2) and reg.coef_.shape == (2, 4)
    assert reg.score(X, Y) > 0.999


def test_early_stopping_keeps_best(cancer):
    X, y = cancer
    est = LinearClassifier(optimizer="sgd", early_stopping=True, n_iter_no_change=3,
                           random_state=0, max_iter=200).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.n_iter_ < 200


def test_pickle_round_trip(cancer):
    X, y = cancer
    est = LinearClassifier(optimizer="adam", learning_rate_init=0.01, random_state=0).fit(X, y)
    for name in ["coef_", "intercept_", "loss_curve_", "classes_"]:
        assert isinstance(getattr(est, name), np.ndarray), name  # no tensors anywhere
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded._trainer.x.device.type == "cpu"
    # the state continues after loading
    loaded.set_params(warm_start=True, max_iter=2, tol=None).fit(X, y)


# ----------------------------------------------------------------- bad input
BAD_X = {
    "nan": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X),
    "inf": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X),
    "strings": lambda X: X.astype(str).astype(object) + "x",
    "3d": lambda X: X[:, :, None],
    "empty": lambda X: X[:0],
}


@pytest.mark.parametrize("bad", list(BAD_X))
@pytest.mark.parametrize("cls", [LinearRegressor, LinearClassifier])
def test_bad_input_raises_and_changes_nothing(cancer, cls, bad):
    X, y = cancer
    est = cls(random_state=0, max_iter=20, tol=None).fit(X, y)
    coef = est.coef_.copy()
    with pytest.raises(ValueError):
        est.fit(BAD_X[bad](X), y[: len(BAD_X[bad](X))])
    np.testing.assert_array_equal(est.coef_, coef)
    with pytest.raises(ValueError):
        est.predict(BAD_X[bad](X))


def test_wrong_feature_count_message(cancer):
    X, y = cancer
    est = LinearClassifier(max_iter=5, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but LinearClassifier is expecting 30"):
        est.predict(X[:, :5])
    with pytest.raises(ValueError, match="X has 5 features"):
        est.partial_fit(X[:, :5], y)


def test_zero_sample_weights_raise(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        LinearClassifier().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="[Nn]egative"):
        LinearClassifier().fit(X, y, sample_weight=-np.ones(len(y)))


@pytest.mark.parametrize("param, value", [
    ("optimizer", "newton"), ("learning_rate_init", -1.0), ("learning_rate", "cosine"),
    ("batch_size", 0), ("max_iter", 0), ("alpha", -1.0), ("tol", -1.0), ("device", 3),
    ("validation_fraction", 1.5), ("loss", "huber"),
])
def test_invalid_parameter_named(cancer, param, value):
    X, y = cancer
    with pytest.raises(ValueError, match=param):
        LinearClassifier(**{param: value}).fit(X, y)


def test_invalid_optimizer_hyperparameter_named(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="momentum"):
        LinearClassifier(optimizer=Momentum(momentum=2.0)).fit(X, y)


def test_unavailable_device_is_clear(cancer):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = cancer
    with pytest.raises(ValueError, match="device='cuda'.*not available"):
        LinearClassifier(device="cuda").fit(X, y)


# ------------------------------------------------------------------ divergence
# the update rules, each at a step it diverges with (a line search takes no step
# that raises the loss)
@pytest.mark.parametrize("opt, lr", [("gd", 1e3), ("sgd", 1e3), ("momentum", 1e3),
                                     ("adam", 1e6), ("rmsprop", 1e6), ("adagrad", 1e6)])
def test_divergence_stops_with_warning_and_finite_output(diabetes, opt, lr):
    X, y = diabetes
    est = LinearRegressor(optimizer=opt, learning_rate_init=lr, max_iter=200, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"diverged.*learning rate.*learning_rate_init"):
        est.fit(X, y)
    assert est.n_iter_ < 200
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.predict(X)))
    assert np.all(np.isfinite(est.loss_curve_))


def test_clone_and_grid_search_over_optimizers(cancer):
    from sklearn.model_selection import GridSearchCV

    X, y = cancer
    grid = GridSearchCV(
        LinearClassifier(optimizer=Momentum(), learning_rate_init=0.05, max_iter=30, tol=None,
                         random_state=0),
        {"optimizer__momentum": [0.0, 0.9]}, cv=3).fit(X, y)
    assert set(grid.cv_results_["param_optimizer__momentum"]) == {0.0, 0.9}
    est = clone(grid.best_estimator_)
    assert est.optimizer.momentum == grid.best_params_["optimizer__momentum"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid2 = GridSearchCV(LinearClassifier(max_iter=30, random_state=0),
                             {"optimizer": ALL_OPTIMIZERS}, cv=2).fit(X, y)
    assert grid2.best_score_ > 0.9
