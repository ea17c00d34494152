"""Behaviour of MLPRegressor and MLPClassifier beyond scikit-learn's checks."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sknn
from _helpers import SEARCH_METHODS, EpochInterrupt
from sklearn.datasets import load_digits, make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skopt_nn import MLPClassifier, MLPRegressor
from skopt_nn.datasets import make_lecture_sine
from skopt_nn.optim import Adam


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


@pytest.fixture(scope="module")
def small():
    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    return StandardScaler().fit_transform(X), y


def test_digits_default_accuracy(digits):
    X_tr, X_te, y_tr, y_te = digits
    clf = MLPClassifier(random_state=0).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) >= 0.95
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 10 and clf.n_layers_ == 3
    assert [c.shape for c in clf.coefs_] == [(64, 100), (100, 10)]
    assert [b.shape for b in clf.intercepts_] == [(100,), (10,)]


def test_lecture_notebook_task_matches_sklearn():
    """Adam 0.02, batch 16, 1000 epochs, 1-10-20-10-1 ReLU: test MSE within noise."""
    ours, theirs = [], []
    for seed in range(3):
        X, y, X_te, y_te = make_lecture_sine(random_state=seed)
        common = dict(hidden_layer_sizes=(10, 20, 10), learning_rate_init=0.02, batch_size=16,
                      max_iter=1000, alpha=0.0, random_state=seed)
        a = MLPRegressor(optimizer="adam", tol=None, **common).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            b = sknn.MLPRegressor(solver="adam", tol=0.0, n_iter_no_change=np.inf,
                                  **common).fit(X, y)
        ours.append(np.mean((a.predict(X_te) - y_te) ** 2))
        theirs.append(np.mean((b.predict(X_te) - y_te) ** 2))
        assert a.n_iter_ == 1000 and len(a.loss_curve_) == 1000
    # the noise U(0, 0.8) alone has variance 0.053; both fit the sine to that level
    assert np.mean(ours) < 0.09
    assert np.mean(ours) < np.mean(theirs) + 0.02


# moments (the state scikit-learn resets), no state, and L-BFGS's pairs
@pytest.mark.parametrize("opt", ["adam", "sgd", "lbfgs"])
def test_warm_start_keeps_optimizer_state(small, opt):
    """scikit-learn's warm_start resets Adam (its issue #6091); ours continues.

    In the stored order (shuffle=False): a warm-start fit draws its batch orders
    afresh from ``random_state``, as scikit-learn's does, so that shuffled epochs 4-6
    of one fit are not those of a second call."""
    X, y = small
    kw = dict(hidden_layer_sizes=(16,), optimizer=opt, tol=None, random_state=0,
              learning_rate_init=0.01 if opt != "lbfgs" else "auto", batch_size=50,
              shuffle=False)
    full = MLPClassifier(max_iter=6, **kw).fit(X, y)
    warm = MLPClassifier(max_iter=3, warm_start=True, **kw).fit(X, y)
    warm.fit(X, y)
    assert warm.n_iter_ == 3 and warm.t_ == full.t_ == 6 * len(y)
    for a, b in zip(warm.coefs_, full.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_partial_fit_continues_and_counts_like_sklearn(small):
    """partial_fit continues the optimizer's state and counts epochs and samples as
    scikit-learn does.  In the stored order (shuffle=False): each call draws its batch
    order afresh from ``random_state``, as scikit-learn's (tests/test_sklearn_stream.py
    follows its orders), so shuffled calls are not a fit's epochs."""
    X, y = small
    kw = dict(hidden_layer_sizes=(16,), optimizer=Adam(), learning_rate_init=0.01,
              random_state=0, batch_size=60, tol=None, shuffle=False)
    full = MLPClassifier(max_iter=3, **kw).fit(X, y)
    inc = MLPClassifier(**kw)
    for _ in range(3):
        inc.partial_fit(X, y, classes=np.unique(y))
        assert inc.n_iter_ == 1
    assert inc.t_ == 3 * len(y)
    for a, b in zip(inc.coefs_, full.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_partial_fit_errors(small):
    X, y = small
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(X, y)
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X, np.full_like(y, 5))


def test_early_stopping_restores_best_weights(small):
    X, y = small
    clf = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, random_state=0,
                        learning_rate_init=0.05, n_iter_no_change=5, max_iter=300).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the kept weights are the best epoch's: re-score the same validation split,
    # scikit-learn's: drawn after the initial weights (one number per parameter of
    # the 8-32-3 network), not stratified for a multi-class target
    rs = np.random.RandomState(0)
    rs.uniform(size=8 * 32 + 32 + 32 * 3 + 3)
    X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=0.1, random_state=rs)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


def test_early_stopping_too_few_samples():
    X, y = make_classification(12, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(early_stopping=True, validation_fraction=0.05).fit(X, y)


def test_multilabel(small):
    X, Y = make_multilabel_classification(200, 10, n_classes=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(300\)"):
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.out_activation_ == "logistic"
    p = clf.predict_proba(X)
    assert p.shape == Y.shape and np.all((p > 0) & (p < 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sknn.MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, Y)
    assert clf.score(X, Y) > ref.score(X, Y) - 0.05
    np.testing.assert_array_equal(clf.predict(X), (p > 0.5).astype(int))


def test_binary_and_hinge(small):
    X, y = small
    yb = (y == 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, tol=None,
                        random_state=0).fit(X, yb)
    assert clf.n_outputs_ == 1 and clf.predict_proba(X).shape == (len(y), 2)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X))
    hinge = MLPClassifier(hidden_layer_sizes=(16,), loss="hinge", max_iter=200, tol=None,
                          random_state=0).fit(X, y)
    # three classes (chance 1/3); over seeds 0-5 the hinge MLP scores 0.79-0.83
    assert not hasattr(hinge, "predict_proba") and hinge.score(X, y) > 0.75


def test_class_weight(small):
    X, y = small
    w = np.where(y == 1, 5.0, 1.0)
    kw = dict(hidden_layer_sizes=(8,), max_iter=50, random_state=0, tol=None)
    a = MLPClassifier(class_weight={1: 5.0}, **kw).fit(X, y)
    b = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(ca, cb, rtol=1e-9)
    plain = MLPClassifier(**kw).fit(X, y)
    assert np.mean(a.predict(X) == 1) > np.mean(plain.predict(X) == 1)


def test_sparse_equals_dense():
    rng = np.random.RandomState(0)
    X = sp.random(150, 40, density=0.1, format="csr", random_state=rng)
    y = X @ rng.randn(40)
    kw = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, tol=None, shuffle=False)
    a = MLPRegressor(**kw).fit(X, y)
    b = MLPRegressor(**kw).fit(X.toarray(), y)
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), rtol=1e-8, atol=1e-10)


# the full-batch methods that search for their step: gd's fixed step has no
# guarantee of a decrease, which the test asserts of the line searches
@pytest.mark.parametrize("opt", SEARCH_METHODS)
def test_full_batch_methods_train_the_mlp(opt, lecture_sine):
    X, y, _, _ = lecture_sine
    reg = MLPRegressor(hidden_layer_sizes=(10,), activation="tanh", optimizer=opt, max_iter=60,
                       random_state=0, tol=None).fit(X, y)
    loss = np.asarray(reg.loss_curve_)
    assert loss[-1] < 0.7 * reg.history_.loss.iloc[0]
    if opt != "lbfgs":  # line searches only accept decreases
        assert np.all(np.diff(loss) <= 1e-12)


def test_multioutput_regression_and_float32():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3).astype(np.float32)
    Y = np.c_[np.sin(X[:, 0]), X[:, 1] * X[:, 2]]
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01,
                       random_state=0).fit(X, Y)
    assert reg.coefs_[0].dtype == np.float32
    pred = reg.predict(X)
    assert pred.shape == (200, 2) and reg.score(X, Y) > 0.8


def test_divergence_is_caught(lecture_sine):
    X, y, _, _ = lecture_sine
    reg = MLPRegressor(hidden_layer_sizes=(10,), learning_rate_init=1e4, max_iter=100,
                       random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        reg.fit(X, y * 100)
    assert all(np.all(np.isfinite(c)) for c in reg.coefs_)
    assert np.all(np.isfinite(reg.predict(X)))


def test_pickle_and_cpu_predict(small):
    X, y = small
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, tol=None, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    loaded.device = "cuda:7"  # a device this machine may lack: predictions fall back to CPU
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_fit_is_reproducible_and_seeded(small):
    X, y = small
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, tol=None)
    a = MLPClassifier(random_state=3, **kw).fit(X, y)
    b = MLPClassifier(random_state=3, **kw).fit(X, y)
    c = MLPClassifier(random_state=4, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.allclose(a.coefs_[0], c.coefs_[0])


def test_invalid_hidden_layer_sizes(small):
    X, y = small
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(10, 0)).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="swish").fit(X, y)


# ------------------------------------------- drop-in details (scikit-learn's MLP tests)
def test_poisson_loss():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 2)
    y = rng.poisson(np.exp(1 + X[:, 0] - X[:, 1]))
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=300,
                       learning_rate_init=0.01, random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp" and np.all(reg.predict(X) > 0)
    ref = sknn.MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=300,
                            learning_rate_init=0.01, random_state=0).fit(X, y)
    assert reg.loss_ == pytest.approx(ref.loss_, rel=0.1)  # the same half deviance
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X, -np.abs(y) - 1.0)


def test_lbfgs_stops_on_gradient_not_plateau_and_honours_max_fun():
    from sklearn.datasets import make_regression
    from sklearn.preprocessing import scale

    X, y = make_regression(200, 10, bias=20, noise=100, random_state=7)
    y = scale(y)
    kw = dict(hidden_layer_sizes=50, activation="logistic", max_iter=200, tol=1e-3,
              random_state=1)
    ours = MLPRegressor(optimizer="lbfgs", **kw).fit(X, y)
    theirs = sknn.MLPRegressor(solver="lbfgs", **kw).fit(X, y)
    assert ours.score(X, y) > theirs.score(X, y) - 0.02
    from skopt_nn.optim import LBFGS

    with pytest.warns(ConvergenceWarning, match="max_fun=10"):
        short = MLPRegressor(optimizer=LBFGS(max_fun=10), **kw).fit(X, y)
    assert short.history_.n_evals.iloc[1:].sum() <= 10 + 20  # one iteration may overrun


def test_minibatch_methods_are_not_stopped_by_the_gradient():
    X, y = load_digits(n_class=2, return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(8,), tol=1e9, n_iter_no_change=np.inf, max_iter=30)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(30\)"):
        clf.fit(X[:100] / 16, y[:100])
    assert clf.n_iter_ == 30


def test_warm_start_checks_classes_features_and_takes_a_new_step(small):
    X, y = small
    kw = dict(hidden_layer_sizes=(5,), warm_start=True, max_iter=5, random_state=0, tol=None)
    clf = MLPClassifier(**kw).fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same"):
        clf.fit(X, np.where(y == 2, 3, y))
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.fit(X[:, :3], y)
    assert clf.n_features_in_ == X.shape[1]  # the failed calls changed nothing
    for a, b in zip(clf.coefs_, before):
        np.testing.assert_array_equal(a, b)
    clf.set_params(learning_rate_init=0.05).fit(X, y)
    assert np.allclose(clf.history_.step_size.iloc[-5:], 0.05)


def test_partial_fit_misuse():
    X, y = make_classification(40, 3, n_informative=2, n_redundant=0, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(3,)).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="is not the same as on last call"):
        clf.partial_fit(X, y, classes=[1, 2])
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y)


def test_edited_coefficients_are_continued_from(small):
    X, y = small
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, tol=None, random_state=0).fit(X, y)
    clf.coefs_[0][:] = 0.0
    clf.partial_fit(X, y)
    assert np.abs(clf.coefs_[0]).max() < 0.1  # one epoch away from zero, not from before


def test_single_class_and_non_finite_start():
    X = np.random.RandomState(0).rand(20, 2)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, tol=None).fit(X, np.ones(20, int))
    np.testing.assert_array_equal(clf.predict(X), 1)
    big = np.finfo(float).max * X
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor().fit(big, np.random.RandomState(0).randn(20))


def test_keyboard_interrupt_keeps_the_last_epoch(small):
    X, y = small
    pytest.importorskip("sklearn.callback")
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, tol=None).set_callbacks(
        EpochInterrupt("begin", 4))
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
