"""fit_many: many estimators trained as one computation equal the same fits one by one."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor, fit_many
from skopt_nn._population import _engine

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: the mini-batch update rules and gradient descent: what trains in a population
BATCHED = ["gd", "sgd", "momentum", "adagrad", "rmsprop", "adam"]


@pytest.fixture
def populations(monkeypatch):
    """The sizes of the populations trained (to see that a group was batched)."""
    sizes = []
    init = _engine.Population.__init__

    def counting(self, members):
        sizes.append(len(members))
        init(self, members)

    monkeypatch.setattr(_engine.Population, "__init__", counting)
    return sizes


def _one_by_one(estimators, X, y, rows=None, sample_weight=None):
    out = [clone(e) for e in estimators]
    for i, est in enumerate(out):
        r = slice(None) if rows is None else rows[i]
        sw = None if sample_weight is None else sample_weight[r]
        est.fit(X[r], y[r], sample_weight=sw)
    return out


def _assert_same_fit(batched, single, X, atol=1e-9):
    """The same fitted model and records, to rounding."""
    assert type(batched) is type(single)
    assert batched.n_iter_ == single.n_iter_
    assert batched.t_ == single.t_
    np.testing.assert_allclose(batched.loss_curve_, single.loss_curve_, rtol=1e-9, atol=atol)
    hb, hs = batched.history_, single.history_
    assert list(hb.columns) == list(hs.columns) and len(hb) == len(hs)
    cols = ["epoch", "loss", "grad_norm", "step_size", "n_evals"]
    np.testing.assert_allclose(hb[cols].to_numpy(float), hs[cols].to_numpy(float),
                               rtol=1e-8, atol=atol)
    for name in ("best_loss_", "best_validation_score_"):
        a, b = getattr(batched, name), getattr(single, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert a == pytest.approx(b, rel=1e-9, abs=atol)
    if single.validation_scores_ is not None:
        np.testing.assert_allclose(batched.validation_scores_, single.validation_scores_)
    if hasattr(single, "predict_proba"):
        np.testing.assert_allclose(batched.predict_proba(X), single.predict_proba(X),
                                   atol=atol)
    pb, ps = batched.predict(X), single.predict(X)
    if ps.dtype.kind == "f":
        np.testing.assert_allclose(pb, ps, rtol=1e-9, atol=atol)
    else:
        np.testing.assert_array_equal(pb, ps)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(120, 4, noise=5.0, random_state=0)
    return X, y / 50


@pytest.fixture(scope="module")
def classification():
    return make_classification(150, 5, n_informative=3, n_classes=3, random_state=0)


@pytest.mark.parametrize("optimizer", BATCHED)
def test_mlp_regressor_every_batched_optimizer(optimizer, regression, populations):
    X, y = regression
    grid = [dict(learning_rate_init=lr, alpha=a, random_state=s)
            for lr, a, s in [(0.01, 0.0, 0), (0.003, 1e-2, 1), (0.03, 1e-3, 2)]]
    ests = [MLPRegressor(hidden_layer_sizes=(6, 5), optimizer=optimizer, batch_size=20,
                         max_iter=15, **p) for p in grid]
    single = _one_by_one(ests, X, y)
    assert fit_many(ests, X, y) == ests
    assert populations == [3]
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


def test_hyperparameters_and_schedules_differ_within_one_population(classification,
                                                                    populations):
    """Momentum, Nesterov, betas, epsilon, schedules, power_t, tol, n_iter_no_change,
    max_iter and shuffle are per model."""
    X, y = classification
    from skopt_nn.optim import Adam, Momentum
    ests = [
        MLPClassifier(hidden_layer_sizes=(8,), optimizer=Momentum(0.5), batch_size=32,
                      learning_rate="invscaling", learning_rate_init=0.2, power_t=0.3,
                      max_iter=12, random_state=0),
        MLPClassifier(hidden_layer_sizes=(8,), optimizer=Momentum(0.9, nesterov=True),
                      batch_size=32, learning_rate="adaptive", learning_rate_init=0.1,
                      tol=1e-2, n_iter_no_change=2, max_iter=40, random_state=1),
        MLPClassifier(hidden_layer_sizes=(8,), optimizer=Momentum(0.0), batch_size=32,
                      shuffle=False, max_iter=7, random_state=2),
    ]
    adams = [MLPClassifier(hidden_layer_sizes=(8,), optimizer=Adam(b1, b2, eps), batch_size=32,
                           tol=t, max_iter=30, random_state=3)
             for b1, b2, eps, t in [(0.9, 0.999, 1e-16, 1e-3), (0.5, 0.9, 1e-8, 1e-4)]]
    single = _one_by_one(ests + adams, X, y)
    fit_many(ests + adams, X, y)
    assert sorted(populations) == [2, 3]
    for b, s in zip(ests + adams, single):
        _assert_same_fit(b, s, X)


def test_rows_sample_weight_and_class_weight(classification, populations):
    X, y = classification
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.2, 3.0, len(y))
    folds = [np.arange(0, 100), np.arange(50, 150), rng.permutation(150)[:100]]
    ests = [MLPClassifier(hidden_layer_sizes=(7,), optimizer="adam", batch_size=25,
                          alpha=a, max_iter=10, random_state=i, class_weight=cw)
            for i, (a, cw) in enumerate([(1e-3, None), (1e-1, None), (0.0, "balanced")])]
    single = _one_by_one(ests, X, y, folds, sw)
    fit_many(ests, X, y, rows=folds, sample_weight=sw)
    assert populations == [3]
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


@pytest.mark.parametrize("compiled, epoch_gather", [("1", True), ("0", True), ("0", False)])
def test_uneven_rows_with_as_many_batches_train_together(compiled, epoch_gather,
                                                         classification, populations,
                                                         monkeypatch):
    """Models whose numbers of rows differ but make as many batches (a search's folds
    when their count does not divide the rows) train in one population, its last
    batch padded: each one's fit, records and samples seen are its own (the torch
    path gathering the epoch at once, or a batch at a time as for large data)."""
    monkeypatch.setenv("SKOPT_NN_COMPILED", compiled)
    if not epoch_gather:
        monkeypatch.setattr(_engine, "GATHER_EPOCH_BYTES", 0)
    X, y = classification
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.2, 3.0, len(y))
    rows = [np.arange(0, 101), np.arange(30, 150), rng.permutation(150)[:110],
            np.arange(0, 101)]  # 101..120 rows: 5 batches of 25 (the last 1-20 rows)
    ests = [MLPClassifier(hidden_layer_sizes=(7,), optimizer="adam", batch_size=25, alpha=a,
                          max_iter=12, random_state=s)
            for a, s in [(1e-3, 0), (1e-1, 0), (0.0, 1), (1e-2, 0)]]
    for weights in (None, sw):
        populations.clear()
        single = _one_by_one(ests, X, y, rows, weights)
        fit_many(ests, X, y, rows=rows, sample_weight=weights)
        assert populations == [4]
        for b, s in zip(ests, single):
            _assert_same_fit(b, s, X)
    assert [e.t_ for e in ests] == [12 * len(r) for r in rows]


def test_uneven_rows_regression_early_stopping_and_sgd(regression, populations):
    """Early stopping (validation sets of one size) and a linear model on uneven rows;
    a model with another number of batches trains apart."""
    X, y = regression
    rows = [np.arange(0, 100), np.arange(21, 120), np.arange(0, 120)]  # 90, 89 / 108 train
    ests = [MLPRegressor(hidden_layer_sizes=(5,), optimizer="sgd", batch_size=30,
                         learning_rate_init=lr, early_stopping=True, n_iter_no_change=3,
                         tol=1e-3, max_iter=40, random_state=0) for lr in (0.01, 0.03, 0.02)]
    lins = [LinearRegressor(optimizer="momentum", batch_size=16, learning_rate_init=lr,
                            max_iter=10, random_state=0) for lr in (0.01, 0.05)]
    lin_rows = [np.arange(0, 97), np.arange(3, 112)]  # 7 batches of 16 each
    single = _one_by_one(ests, X, y, rows) + _one_by_one(lins, X, y, lin_rows)
    fit_many(ests + lins, X, y, rows=rows + lin_rows)
    assert sorted(populations) == [2, 2]  # the 108-row fit (4 batches) alone
    for b, s in zip(ests + lins, single):
        _assert_same_fit(b, s, X)


def test_models_on_one_random_stream_draw_their_own_batch_orders(regression, monkeypatch):
    """random_state=None (NumPy's global stream) or one RandomState given to several
    models: each model draws its own batch order from the stream, as fits one after
    another would; models seeded alike share one draw (the same order)."""
    X, y = regression
    drawn = []
    permutations = _engine.Population._permutations

    def spy(self):
        perms = permutations(self)
        drawn.append(perms.clone())
        return perms

    monkeypatch.setattr(_engine.Population, "_permutations", spy)
    shared = np.random.RandomState(0)
    for states, equal in [([None] * 3, False), ([shared] * 3, False), ([4] * 3, True)]:
        drawn.clear()
        ests = [MLPRegressor(hidden_layer_sizes=(5,), batch_size=20, max_iter=m,
                             random_state=rs) for rs, m in zip(states, (2, 4, 4))]
        fit_many(ests, X, y)
        assert len(drawn) == 4 and [len(p) for p in drawn] == [3, 3, 2, 2]
        for perms in drawn:
            same = [bool((perms[0] == p).all()) for p in perms[1:]]
            assert same == [equal] * (len(perms) - 1)
    before = shared.get_state()[1].copy()
    ests[0].set_params(random_state=shared, max_iter=1)
    fit_many([ests[0], clone(ests[0])], X, y)  # both draw from it: it moves on
    assert not np.array_equal(before, shared.get_state()[1])


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_linear_classifier(loss, populations):
    X, y = make_classification(200, 6, random_state=1)
    ests = [LinearClassifier(loss=loss, optimizer=o, alpha=a, max_iter=20, random_state=0,
                             fit_intercept=fi)
            for o in ("gd", "sgd", "adam") for fi in (True, False) for a in (1e-4, 1e-2)]
    single = _one_by_one(ests, X, y)
    fit_many(ests, X, y)
    assert populations == [2] * 6
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


def test_linear_regressor_multi_output_and_full_batch_minibatch(populations):
    """Two targets; a batch_size above the rows makes a mini-batch method full batch."""
    X, Y = make_regression(90, 5, n_targets=2, noise=1.0, random_state=0)
    Y = Y / 100
    ests = [LinearRegressor(loss=loss, optimizer="rmsprop", batch_size=b, alpha=a,
                            learning_rate_init=0.05, max_iter=25, random_state=0)
            for loss in ("squared_error", "absolute_error") for b in (16, 500)
            for a in (1e-4, 1e-1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # batch_size clipped
        single = _one_by_one(ests, X, Y)
        fit_many(ests, X, Y)
    assert sorted(populations) == [2, 2, 2, 2]
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


@pytest.mark.parametrize("Estimator", [MLPRegressor, MLPClassifier])
def test_early_stopping(Estimator, regression, classification, populations):
    X, y = regression if Estimator is MLPRegressor else classification
    ests = [Estimator(hidden_layer_sizes=(9,), optimizer="adam", batch_size=16,
                      early_stopping=True, n_iter_no_change=3, tol=1e-3,
                      learning_rate_init=lr, max_iter=60, random_state=s)
            for lr, s in [(0.01, 0), (0.05, 1), (0.001, 2)]]
    single = _one_by_one(ests, X, y)
    fit_many(ests, X, y)
    assert populations == [3]
    assert len({e.n_iter_ for e in ests}) > 1  # they stopped at different epochs
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


def test_the_optimizer_state_continues_as_its_own(regression):
    """partial_fit and a pickle after fit_many continue as after a fit of its own:
    the moments, step counter and generator were written back."""
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(5,), optimizer=o, batch_size=20, max_iter=5,
                         random_state=0) for o in ("adam", "momentum", "adagrad")]
    single = _one_by_one(ests, X, y)
    fit_many(ests, X, y)
    for b, s in zip(ests, single):
        b2 = pickle.loads(pickle.dumps(b))
        for est in (b, b2, s):
            est.partial_fit(X, y)
            est.set_params(warm_start=True, max_iter=3).fit(X, y)
        _assert_same_fit(b, s, X)
        _assert_same_fit(b2, s, X)


def test_what_cannot_be_batched_is_fitted_alone(regression, populations):
    """Search methods, with-replacement SGD, the lecture's scalar Adam, sparse input,
    verbose and a group of one: fitted by their own fit, the same as one by one."""
    X, y = regression
    from skopt_nn.optim import SGD, Adam
    ests = [MLPRegressor(hidden_layer_sizes=(4,), optimizer=o, max_iter=5, random_state=0)
            for o in ("lbfgs", "armijo", SGD(sampling="with_replacement"),
                      Adam(elementwise=False))]
    ests.append(LinearRegressor(max_iter=5, random_state=0))
    single = _one_by_one(ests, X, y)
    fit_many(ests, X, y)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    sparse = [LinearRegressor(optimizer="sgd", max_iter=5, random_state=s) for s in (0, 1)]
    sparse_single = _one_by_one(sparse, Xs, y)
    fit_many(sparse, Xs, y)
    assert populations == []
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)
    for b, s in zip(sparse, sparse_single):
        _assert_same_fit(b, s, Xs)


def test_a_diverging_model_is_trained_again_alone(regression, populations):
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(5,), optimizer="sgd", batch_size=10,
                         learning_rate_init=lr, max_iter=20, random_state=0)
            for lr in (1e-3, 50.0)]
    with pytest.warns(ConvergenceWarning, match="diverged"):
        single = _one_by_one(ests, X, y)
    with pytest.warns(ConvergenceWarning, match="diverged") as record:
        fit_many(ests, X, y)
    assert populations == [2]
    assert sum("diverged" in str(w.message) for w in record) == 1
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


def test_warnings_are_each_models_own(regression):
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(5,), batch_size=20, max_iter=m, tol=1e-2,
                         random_state=0) for m in (2, 3, 400)]
    with pytest.warns(ConvergenceWarning) as expected:
        _one_by_one(ests, X, y)
    with pytest.warns(ConvergenceWarning) as record:
        fit_many(ests, X, y)
    messages = sorted(str(w.message) for w in record)
    assert messages == sorted(str(w.message) for w in expected)
    assert messages == sorted(f"Maximum iterations ({m}) reached and the "
                              "optimization hasn't converged yet." for m in (2, 3))
    assert all(w.filename == __file__ for w in record)


def test_errors_raise_or_return(regression):
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0),
            MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init=-1.0),
            MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=1)]
    with pytest.raises(ValueError, match="learning_rate_init"):
        fit_many([clone(e) for e in ests], X, y)
    out = fit_many(ests, X, y, errors="return")
    assert out[0] is None and out[2] is None
    assert isinstance(out[1], ValueError) and "learning_rate_init" in str(out[1])
    assert not hasattr(ests[1], "coefs_")
    assert hasattr(ests[0], "coefs_") and hasattr(ests[2], "coefs_")


def test_bad_arguments(regression):
    X, y = regression
    with pytest.raises(ValueError, match="errors must be"):
        fit_many([MLPRegressor()], X, y, errors="ignore")
    with pytest.raises(ValueError, match="rows has 1 entries for 2 estimators"):
        fit_many([MLPRegressor(), MLPRegressor()], X, y, rows=[np.arange(10)])


def test_dataframe_input_keeps_feature_names(regression):
    pd = pytest.importorskip("pandas")
    X, y = regression
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ests = [MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=s) for s in (0, 1)]
    fit_many(ests, df, y, rows=[np.arange(80)] * 2)
    for est in ests:
        assert list(est.feature_names_in_) == list(df.columns)
        est.predict(df)


def test_an_interrupt_leaves_every_estimator_as_it_was(regression, monkeypatch):
    """Ctrl-C inside the batched training stops the call; no estimator is half-fitted
    (the ones fitted before keep their fit)."""
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(4,), batch_size=10, max_iter=5, random_state=s)
            for s in (0, 1)]
    fit_many(ests, X, y)
    before = [e.coefs_[0].copy() for e in ests]

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(_engine.Population, "_stochastic_epoch", interrupted)
    monkeypatch.setattr(_engine.Population, "_full_batch_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_many(ests, X[:60], y[:60])
    for est, coef in zip(ests, before):
        np.testing.assert_array_equal(est.coefs_[0], coef)
        assert est.n_features_in_ == X.shape[1] and est.t_ == 5 * len(X)


def test_verbose_reports_each_groups_epochs(regression, capsys):
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(4,), batch_size=20, max_iter=m, tol=None,
                         random_state=0) for m in (2, 3)]
    fit_many(ests, X, y, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["fit_many group 1/1 (2 models): epoch 1, 2 models training",
                     "fit_many group 1/1 (2 models): epoch 2, 1 models training",
                     "fit_many group 1/1 (2 models): epoch 3, 0 models training"]


@pytest.mark.parametrize("form", ["direct", "transposed", "numpy"])
@pytest.mark.parametrize("loss", ["softmax", "softmax_weighted", "squared"])
def test_stacked_gradient_in_every_product_form(form, loss, monkeypatch):
    """The batched backpropagation equals autograd on the batched value, whichever
    form (torch direct, torch transposed, NumPy) each product takes, for the
    many-class softmax on Zᵀ and for a loss object's own derivative."""
    import torch

    from skopt_nn._data import Dataset
    from skopt_nn._losses import SoftmaxCrossEntropy, SquaredError
    from skopt_nn._mlp_objective import MLPObjective
    from skopt_nn._objective import NetworkSpec
    from skopt_nn._population import _network

    monkeypatch.setattr(_network, "_fastest", lambda A, B: getattr(_network, form.upper()))
    M, b, d, h, K = 3, 70, 6, 30, 10
    objective = SoftmaxCrossEntropy() if loss.startswith("softmax") else SquaredError()
    spec = NetworkSpec((d, h, K), "tanh", objective, True, penalty_per_batch=True)
    alphas = torch.tensor([[0.0], [1e-2], [0.3]], dtype=torch.float64)
    net = _network.StackedNetwork(spec, objective, alphas)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(M, net.n_params, generator=g, dtype=torch.float64) * 0.3
    A0 = torch.randn(M, b, d, generator=g, dtype=torch.float64)
    if loss.startswith("softmax"):
        Y = torch.nn.functional.one_hot(torch.randint(K, (M, b), generator=g), K).double()
    else:
        Y = torch.randn(M, b, K, generator=g, dtype=torch.float64)
    sw = torch.rand(M, b, generator=g, dtype=torch.float64) + 0.5 \
        if loss == "softmax_weighted" else None
    ws = 1.0 if sw is None else 1.3  # the raw weights' mean (1 without weights)
    batch = _network.Batch(A0, Y, sw, torch.full((M, 1), ws, dtype=torch.float64))
    # every product but the first layer's takes the form under test
    assert b * h * K > _network._NUMPY_MACS
    G = torch.empty_like(X)
    for _ in range(2):  # the second call reuses the scratch buffers
        F = net.value_grad(X, batch, G)
    # the reference: each model's own objective, differentiated by autograd
    for m in range(M):
        single = MLPObjective((d, h, K), "tanh", objective, float(alphas[m]))
        x = X[m].clone().requires_grad_(True)
        data = Dataset(A0[m], Y[m], None if sw is None else sw[m], ws)
        F_ref = single.value(x, data)
        (g_ref,) = torch.autograd.grad(F_ref, x)
        torch.testing.assert_close(F[m], F_ref.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(G[m], g_ref, rtol=1e-10, atol=1e-12)


def test_ten_classes_on_the_torch_path_equal_single_fits(populations, monkeypatch):
    """A population too large for the compiled epoch (the torch path: batched
    products, the softmax on Zᵀ, reused buffers) gives each model its own fit."""
    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")
    X, y = make_classification(400, 12, n_informative=8, n_classes=10, random_state=1)
    rng = np.random.default_rng(1)
    sw = rng.uniform(0.5, 2.0, len(y))
    ests = [MLPClassifier(hidden_layer_sizes=(40,), optimizer="adam", batch_size=64,
                          learning_rate_init=lr, alpha=a, max_iter=6, random_state=0)
            for lr, a in [(1e-3, 1e-4), (3e-3, 1e-2), (1e-2, 0.0)]]
    single = _one_by_one(ests, X, y, sample_weight=sw)
    fit_many(ests, X, y, sample_weight=sw)
    assert populations == [3]
    for b, s in zip(ests, single):
        _assert_same_fit(b, s, X)


@pytest.mark.parametrize("compiled", ["1", "0"])
def test_threads_train_parts_of_a_group_side_by_side(regression, populations, monkeypatch,
                                                    compiled):
    """n_jobs=2 cuts the one group in two parts, trained in two threads; each model's
    fit is the same as with n_jobs=1 (bit for bit) and as its own fit."""
    import threading

    monkeypatch.setenv("SKOPT_NN_COMPILED", compiled)
    X, y = regression
    idents = []
    run = _engine.Population.run

    def recording(self, progress=None, stop=None):
        idents.append(threading.get_ident())
        run(self, progress, stop)

    ests = [MLPRegressor(hidden_layer_sizes=(6, 4), optimizer="adam", batch_size=16,
                         learning_rate_init=lr, alpha=a, max_iter=8, random_state=s)
            for lr, a, s in [(1e-3, 0.0, 0), (3e-3, 1e-3, 1), (1e-2, 0.0, 2),
                             (3e-2, 1e-2, 3), (5e-3, 1e-4, 4)]]
    ests.append(MLPRegressor(hidden_layer_sizes=(6, 4), optimizer="lbfgs", max_iter=5,
                             random_state=0))  # fitted alone, in a thread too
    rows = [np.arange(i, 100 + i) for i in range(len(ests))]
    single = _one_by_one(ests, X, y, rows=rows)
    one_thread = fit_many([clone(e) for e in ests], X, y, rows=rows)
    monkeypatch.setattr(_engine.Population, "run", recording)
    fit_many(ests, X, y, rows=rows, n_jobs=2)
    assert populations[0] == 5 and sorted(populations[1:]) == [2, 3]  # the group, its parts
    assert len(set(idents)) == 2
    for b, o, s in zip(ests, one_thread, single, strict=True):
        _assert_same_fit(b, s, X)
        for wb, wo in zip(b.coefs_ + b.intercepts_, o.coefs_ + o.intercepts_, strict=True):
            np.testing.assert_array_equal(wb, wo)
        assert b.loss_curve_ == o.loss_curve_


def test_thread_counts(regression, populations):
    """n_jobs as joblib reads it: -1 every core; 0 is an error that changes nothing;
    parts keep two models or more (a part of one would train alone)."""
    from skopt_nn._population._fit import _shared_out, _thread_count

    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=s)
            for s in range(3)]
    with pytest.raises(ValueError, match="n_jobs == 0"):
        fit_many(ests, X, y, n_jobs=0)
    assert not any(hasattr(e, "coefs_") for e in ests)
    fit_many(ests, X, y, n_jobs=-1)
    assert all(hasattr(e, "coefs_") for e in ests)
    import joblib

    assert _thread_count(None) == 1 and _thread_count(3) == 3
    assert _thread_count(-1) == joblib.cpu_count()
    assert [len(p) for p in _shared_out([list(range(3))], 4)] == [3]
    assert [len(p) for p in _shared_out([list(range(9))], 4)] == [2, 2, 3, 2]
    assert [len(p) for p in _shared_out([list(range(5)), list(range(4))], 4)] == [2, 3, 2, 2]
    assert [len(p) for p in _shared_out([[0, 1]] * 3, 2)] == [2, 2, 2]


def test_a_failing_part_stops_the_others_and_leaves_every_estimator_as_it_was(
        regression, monkeypatch):
    """With threads, a part that fails stops the others at their next epoch; the call
    raises that error after every thread has ended, and no estimator is half-fitted."""
    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(4,), batch_size=10, max_iter=3, tol=None,
                         random_state=s) for s in range(4)]
    fit_many(ests, X, y)
    before = [e.coefs_[0].copy() for e in ests]
    for e in ests[2:]:
        e.set_params(max_iter=100_000)  # the other part would train for a long time
    import threading

    epoch = _engine.Population._stochastic_epoch
    epochs = {"failing": 0, "other": 0}
    running = threading.Event()  # the other part is training

    def failing(self):
        part = "failing" if any(m.estimator is ests[0] for m in self.members) else "other"
        epochs[part] += 1
        if part == "other" and epochs[part] == 2:
            running.set()
        if part == "failing" and epochs[part] == 3:
            assert running.wait(120)
            raise RuntimeError("boom")
        return epoch(self)

    monkeypatch.setattr(_engine.Population, "_stochastic_epoch", failing)
    with pytest.raises(RuntimeError, match="boom"):
        fit_many(ests, X[:60], y[:60], n_jobs=2)
    assert 2 <= epochs["other"] < 100_000
    for est, coef in zip(ests, before, strict=True):
        np.testing.assert_array_equal(est.coefs_[0], coef)
        assert est.n_features_in_ == X.shape[1] and est.t_ == 3 * len(X)


def test_ctrl_c_while_threads_train_stops_them_all(regression, monkeypatch):
    """Ctrl-C reaches the waiting caller: every part stops at its next epoch, the
    call raises KeyboardInterrupt, and every estimator is as it was."""
    import _thread

    X, y = regression
    ests = [MLPRegressor(hidden_layer_sizes=(4,), batch_size=10, max_iter=100_000, tol=None,
                         random_state=s) for s in range(4)]
    epoch = _engine.Population._stochastic_epoch
    epochs = []

    def interrupting(self):
        epochs.append(1)
        if len(epochs) == 6:
            _thread.interrupt_main()  # as Ctrl-C does
        return epoch(self)

    monkeypatch.setattr(_engine.Population, "_stochastic_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        fit_many(ests, X, y, n_jobs=2)
    assert len(epochs) < 20_000  # 2 x 100 000 without the stop
    assert not any(hasattr(e, "coefs_") for e in ests)
