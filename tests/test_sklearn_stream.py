"""The MLPs follow scikit-learn's MLP random stream batch for batch.

With the same ``random_state`` a fit draws scikit-learn's initial weights, its
early-stopping split and its epochs' batch orders (``_fit`` and
``_fit_stochastic`` of ``sklearn.neural_network``), in every training call
(fit, ``partial_fit``, ``warm_start``).  The SGD solvers then agree with
scikit-learn's to rounding; Adam to ~1e-6 where epsilon matters (ours adds it
inside the square root, scikit-learn's outside), to rounding where it does not.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _helpers import spy_compiled_mlp_epoch
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state, shuffle

import skopt_nn
from skopt_nn import MLPClassifier, MLPRegressor
from skopt_nn._shuffle import Shuffler
from skopt_nn.optim import SGD, Adam, Momentum

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

KINDS = ["regressor", "binary", "multiclass"]
#: NumPy's global RandomState, what random_state=None draws from
_GLOBAL = check_random_state(None)
#: scikit-learn's solver settings and our optimizer for them (README: "Differences
#: from scikit-learn's MLP"); Adam's epsilon is squared (inside the root)
SOLVERS = {
    "sgd": (dict(solver="sgd", momentum=0.0), SGD),
    "momentum": (dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
                 lambda: Momentum(0.9)),
    "nesterov": (dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
                 lambda: Momentum(0.9, nesterov=True)),
    "adam": (dict(solver="adam", epsilon=1e-8), lambda: Adam(epsilon=1e-16)),
    # epsilon negligible on both sides: the same arithmetic
    "adam_tiny_epsilon": (dict(solver="adam", epsilon=1e-30), lambda: Adam(epsilon=1e-60)),
}


def _data(kind, n=150):
    if kind == "regressor":
        X, y = make_regression(n, 5, noise=5.0, random_state=0)
        y = y / y.std()
    else:
        X, y = make_classification(n, 5, n_informative=3, random_state=0,
                                   n_classes=2 if kind == "binary" else 3)
    return StandardScaler().fit_transform(X), y


def _pair(kind, solver, **params):
    """scikit-learn's MLP and ours with the same settings, never stopping early by a
    plateau (scikit-learn's tol=0 with a patience longer than the fit, our tol=None)."""
    common = dict(hidden_layer_sizes=(8, 4), batch_size=32, max_iter=6, shuffle=True,
                  random_state=0, alpha=1e-4, learning_rate_init=0.01)
    common.update(params)
    theirs, ours = SOLVERS[solver]
    skl = (sk.MLPRegressor if kind == "regressor" else sk.MLPClassifier)(
        tol=0.0, n_iter_no_change=10**6, **theirs, **common)
    own = (MLPRegressor if kind == "regressor" else MLPClassifier)(
        optimizer=ours(), tol=None, device="cpu", **common)
    return skl, own


def _assert_weights(skl, own, rtol, atol):
    for a, b in zip(skl.coefs_ + skl.intercepts_, own.coefs_ + own.intercepts_,
                    strict=True):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- the stream
def test_permutation_draws_what_sklearn_shuffle_draws():
    """``sklearn.utils.shuffle`` (``resample(replace=False)``: arange, then
    ``rs.shuffle``) and ``rs.permutation(n)`` take the same numbers: the composed
    orders are equal epoch by epoch and the streams end in the same state."""
    rs, order = np.random.RandomState(3), np.arange(37)
    shuffler = Shuffler(3)
    for _ in range(5):
        order = shuffle(order, random_state=rs)
        np.testing.assert_array_equal(shuffler.permutation(37).numpy(), order)
    assert shuffler.random_state.randint(10**9) == rs.randint(10**9)


def test_shuffler_state_key_copy_and_bootstrap_rows():
    a, b = Shuffler(0), Shuffler(np.random.RandomState(0))
    assert a.key() == b.key()
    copy = a.copy()
    perm = a.permutation(10)
    assert perm.dtype == torch.int64 and perm.device.type == "cpu"
    assert a.key() != b.key() and copy.key() == b.key()  # the copy did not move
    np.testing.assert_array_equal(copy.permutation(10).numpy(), perm.numpy())
    assert a.key() == copy.key()
    # the same stream state but another order: other next draws, another key
    b.random_state.set_state(a.random_state.get_state())
    assert a.key() != b.key()
    state = a.get_state()
    first = a.permutation(10)
    a.set_state(state)
    np.testing.assert_array_equal(a.permutation(10).numpy(), first.numpy())
    rows = Shuffler(5).randint(7, 4)
    np.testing.assert_array_equal(rows.numpy(), np.random.RandomState(5).randint(7, size=4))
    # without composing, each epoch's order is the stream's permutation itself
    plain, rs = Shuffler(1, compose=False), np.random.RandomState(1)
    for _ in range(3):
        np.testing.assert_array_equal(plain.permutation(9).numpy(), rs.permutation(9))


# --------------------------------------------------------------------------- fit
@pytest.mark.parametrize("compiled", ["0", "1"], ids=["torch", "compiled"])
@pytest.mark.parametrize("solver", ["sgd", "momentum", "nesterov", "adam_tiny_epsilon"])
@pytest.mark.parametrize("kind", KINDS)
def test_fit_follows_sklearn(kind, solver, compiled, monkeypatch):
    """Six epochs of 32-row batches (the last one shorter): scikit-learn's losses and
    weights to rounding, on the torch path and the compiled epoch alike."""
    monkeypatch.setenv("SKOPT_NN_COMPILED", compiled)
    if compiled == "1":
        pytest.importorskip("numba")
    ran = spy_compiled_mlp_epoch(monkeypatch)
    X, y = _data(kind)
    skl, own = _pair(kind, solver)
    skl.fit(X, y)
    own.fit(X, y)
    assert ran == [compiled == "1"] * 6  # the path named ran every epoch
    assert own.n_iter_ == skl.n_iter_ == 6 and own.t_ == skl.t_
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_adam_follows_sklearn_to_its_epsilon(kind):
    """Adam with scikit-learn's epsilon: ε inside the root (ours) or outside (theirs)
    is the only difference; with tanh units no gradient is so small that it matters
    beyond ~1e-5 (ReLU units that are nearly dead can differ by 1e-2)."""
    X, y = _data(kind)
    skl, own = _pair(kind, "adam", activation="tanh")
    skl.fit(X, y)
    own.fit(X, y)
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=2e-5)
    _assert_weights(skl, own, rtol=0, atol=1e-4)


def test_sparse_input_follows_sklearn():
    X, y = _data("regressor")
    X[np.abs(X) < 0.8] = 0.0
    skl, own = _pair("regressor", "nesterov")
    skl.fit(sp.csr_matrix(X), y)
    own.fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)


# --------------------------------------------------------------------------- early stopping
@pytest.mark.parametrize("solver", ["nesterov", "adam_tiny_epsilon"])
@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping_holds_out_sklearns_validation_set(kind, solver):
    """The split is drawn from the same stream after the initial weights, stratified
    for the binary classifier only (scikit-learn's ``n_outputs_ == 1``): the same
    validation scores epoch by epoch, the same best epoch, the same kept weights."""
    X, y = _data(kind)
    skl, own = _pair(kind, solver, early_stopping=True, max_iter=15,
                     validation_fraction=0.2)
    skl.fit(X, y)
    own.fit(X, y)
    assert len(own.validation_scores_) == len(skl.validation_scores_) == 15
    np.testing.assert_allclose(own.validation_scores_, skl.validation_scores_, rtol=1e-10)
    assert own.best_validation_score_ == pytest.approx(skl.best_validation_score_, rel=1e-10)
    assert np.argmax(own.validation_scores_) == np.argmax(skl.validation_scores_)
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)  # the best epoch's


@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping_stops_where_sklearn_stops(kind):
    """With both stopping rules on (tol=1e-4, patience 3), the fits end at the same
    epoch with the same validation scores."""
    X, y = _data(kind, n=300)
    skl, own = _pair(kind, "nesterov", early_stopping=True, max_iter=200,
                     learning_rate_init=0.05)
    skl.set_params(tol=1e-4, n_iter_no_change=3)
    own.set_params(tol=1e-4, n_iter_no_change=3)
    skl.fit(X, y)
    own.fit(X, y)
    assert own.n_iter_ == skl.n_iter_ < 200
    np.testing.assert_allclose(own.validation_scores_, skl.validation_scores_, rtol=1e-10)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("batched", [False, True], ids=["fit", "fit_many"])
@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping_weights_the_validation_score_as_sklearn(kind, batched):
    """With sample weights, scikit-learn's validation score is the weighted R² or
    accuracy of the held-out rows' own weights; the kept (best) epoch follows it.
    One batch per epoch (105 training rows): on smaller batches scikit-learn
    divides a batch's loss by its own weight sum (README, "Differences from
    scikit-learn's MLP")."""
    X, y = _data(kind)
    sw = np.random.default_rng(1).choice([0.2, 1.0, 5.0], len(y))
    settings = dict(early_stopping=True, max_iter=15, validation_fraction=0.3,
                    batch_size=105, learning_rate_init=0.05)
    skl, own = _pair(kind, "nesterov", **settings)
    skl.fit(X, y, sample_weight=sw)
    if batched:
        twin = _pair(kind, "nesterov", **dict(settings, learning_rate_init=0.02))[1]
        skopt_nn.fit_many([own, twin], X, y, sample_weight=sw)
    else:
        own.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(own.validation_scores_, skl.validation_scores_, rtol=1e-9)
    assert own.best_validation_score_ == pytest.approx(skl.best_validation_score_, rel=1e-9)
    _assert_weights(skl, own, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- calls
@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_follows_sklearn_over_calls(kind):
    """Each call draws from ``check_random_state(random_state)`` afresh (no initial
    weights after the first), and its order starts from the rows as given; the calls
    here have different rows and sizes."""
    X, y = _data(kind, n=200)
    skl, own = _pair(kind, "nesterov")
    extra = {} if kind == "regressor" else {"classes": np.unique(y)}
    for rows in (slice(0, 120), slice(120, 200), slice(0, 200), slice(50, 150)):
        skl.partial_fit(X[rows], y[rows], **extra)
        own.partial_fit(X[rows], y[rows], **extra)
        np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)
    assert own.t_ == skl.t_ == 500
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_warm_start_fit_draws_afresh_as_sklearn(kind):
    """A warm-start fit re-seeds as scikit-learn's does.  Plain SGD with a constant
    step has no state to keep (scikit-learn resets its optimizer on warm_start, ours
    continues it), so the two agree over both calls."""
    X, y = _data(kind)
    skl, own = _pair(kind, "sgd", max_iter=3, warm_start=True)
    for _ in range(2):
        skl.fit(X, y)
        own.fit(X, y)
    assert len(own.loss_curve_) == len(skl.loss_curve_) == 6
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)


def test_random_state_none_draws_from_numpys_global_stream():
    """None is NumPy's global RandomState, drawn from as scikit-learn draws from it:
    from the same global state the fits agree and leave it in the same state."""
    X, y = _data("binary")
    skl, own = _pair("binary", "nesterov", random_state=None, early_stopping=True)
    _GLOBAL.seed(7)
    skl.fit(X, y)
    after_theirs = _GLOBAL.get_state()[1].copy()
    _GLOBAL.seed(7)
    own.fit(X, y)
    np.testing.assert_array_equal(_GLOBAL.get_state()[1], after_theirs)
    np.testing.assert_allclose(own.validation_scores_, skl.validation_scores_, rtol=1e-10)
    _assert_weights(skl, own, rtol=1e-9, atol=1e-13)
    again = MLPClassifier(**own.get_params(deep=False)).fit(X, y)
    assert not np.array_equal(again.coefs_[0], own.coefs_[0])  # the stream moved on


def test_a_random_state_instance_is_advanced_as_sklearn_advances_it():
    """An instance is drawn from as it is, over calls (warm-start fits of plain SGD,
    which has no state that scikit-learn would reset)."""
    X, y = _data("regressor")
    rs_theirs, rs_ours = np.random.RandomState(11), np.random.RandomState(11)
    skl, own = _pair("regressor", "sgd")
    skl.set_params(random_state=rs_theirs, warm_start=True)
    own.set_params(random_state=rs_ours, warm_start=True)
    for _ in range(2):
        skl.fit(X, y)
        own.fit(X, y)
        assert rs_ours.randint(10**9) == rs_theirs.randint(10**9)
    np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-12)


def test_batched_fits_follow_sklearn():
    """fit_many shares one draw between the models of one random_state; each still
    sees scikit-learn's batches (to the batched products' rounding)."""
    X, y = _data("multiclass")
    rates = [0.005, 0.01, 0.02]
    ours = [_pair("multiclass", "nesterov", learning_rate_init=r)[1] for r in rates]
    skopt_nn.fit_many(ours, X, y)
    for rate, own in zip(rates, ours, strict=True):
        skl = _pair("multiclass", "nesterov", learning_rate_init=rate)[0].fit(X, y)
        np.testing.assert_allclose(own.loss_curve_, skl.loss_curve_, rtol=1e-10)
        _assert_weights(skl, own, rtol=1e-8, atol=1e-12)


def test_lbfgs_draws_only_the_initial_weights():
    """A full-batch fit draws nothing after the weights: from the global stream, the
    state it leaves is the one after scikit-learn's L-BFGS fit."""
    X, y = _data("regressor")
    _GLOBAL.seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5).fit(X, y)
    theirs = _GLOBAL.get_state()[1].copy()
    _GLOBAL.seed(1)
    MLPRegressor(hidden_layer_sizes=(8,), optimizer="lbfgs", max_iter=5, device="cpu").fit(X, y)
    np.testing.assert_array_equal(_GLOBAL.get_state()[1], theirs)
