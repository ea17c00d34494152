"""The compiled (numba) epoch of the linear models follows the torch path.

Each case fits the same estimator twice, with the compiled epoch and with it
switched off (``SKOPT_NN_COMPILED=0``), and compares the parameters, the averaged
parameters, the optimizer's state, the step counter and the records.
"""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.preprocessing import StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor, _epochs
from skopt_nn import _compiled_epoch as ce
from skopt_nn.optim import SGD, AdaGrad, Adam, Momentum, RMSProp

pytest.importorskip("numba")
from skopt_nn import _linear_kernels as lk  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N, D = 45, 6


def _data(target, sparse, dtype):
    rng = np.random.RandomState(0)
    if target == "regression":
        X, y = make_regression(N, D, n_targets=1, noise=1.0, random_state=0)
        y = y / 50
    elif target == "regression2":
        X, y = make_regression(N, D, n_targets=2, noise=1.0, random_state=0)
        y = y / 50
    elif target == "binary":
        X, y = make_classification(N, D, n_informative=3, random_state=0)
    else:
        X, y = make_classification(N, D, n_informative=4, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    if sparse:
        X[rng.uniform(size=X.shape) < 0.5] = 0.0
        X = sp.csr_matrix(X)
    return X.astype(dtype), y


# (estimator, loss, target): every loss of the linear models, one and K outputs
LOSSES = [
    (LinearRegressor, "squared_error", "regression"),
    (LinearRegressor, "squared_error", "regression2"),
    (LinearRegressor, "absolute_error", "regression"),
    (LinearClassifier, "hinge", "binary"),
    (LinearClassifier, "hinge", "multiclass"),
    (LinearClassifier, "logistic", "binary"),
    (LinearClassifier, "logistic", "multiclass"),  # softmax
    (LinearRegressor, "huber", "regression"),
    (LinearRegressor, "epsilon_insensitive", "regression2"),
    (LinearRegressor, "squared_epsilon_insensitive", "regression"),
    (LinearClassifier, "modified_huber", "binary"),
    (LinearClassifier, "modified_huber", "multiclass"),
    (LinearClassifier, "squared_hinge", "binary"),
    (LinearClassifier, "perceptron", "multiclass"),
]
RULES = [
    ("sgd", None), ("momentum", Momentum(momentum=0.8)),
    ("nesterov", Momentum(momentum=0.8, nesterov=True)), ("adagrad", AdaGrad()),
    ("rmsprop", RMSProp()), ("rmsprop_scalar", RMSProp(elementwise=False)),
    ("adam", Adam()), ("adam_scalar", Adam(elementwise=False)),
]
LR = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.05, "rmsprop": 0.01,
      "rmsprop_scalar": 0.01, "adam": 0.01, "adam_scalar": 0.01}
SCHEDULES = ["constant", "invscaling", "adaptive", "optimal"]


def _cases():
    """The losses x rules x dense/sparse, the other settings cycling through their
    values so that every one meets every loss and rule kind."""
    others = itertools.cycle(itertools.product(SCHEDULES, [False, True], [True, False],
                                               [False, True, 7], [1, 4]))
    for (est, loss, target), (rule, _), sparse in itertools.product(
            LOSSES, RULES, [False, True]):
        schedule, weighted, intercept, average, batch = next(others)
        yield pytest.param(est, loss, target, rule, sparse, schedule, weighted, intercept,
                           average, batch,
                           id=f"{loss}-{target}-{rule}-{'sparse' if sparse else 'dense'}-"
                              f"{schedule}-sw{int(weighted)}-b{int(intercept)}-"
                              f"avg{average}-bs{batch}")


def _fit(monkeypatch, compiled, est, loss, X, y, rule, schedule, weighted, intercept,
         average, batch, max_iter=3, calls=1):
    monkeypatch.setenv(ce.ENV_SWITCH, "1" if compiled else "0")
    ran = []  # whether each epoch ran compiled
    monkeypatch.setattr(_epochs, "compiled_stochastic_epoch",
                        lambda *a: ran.append(r := ce.compiled_stochastic_epoch(*a)) or r)
    optimizer = dict(RULES)[rule] or "sgd"
    model = est(loss=loss, optimizer=optimizer, learning_rate_init=LR[rule],
                learning_rate=schedule, alpha=1e-2, batch_size=batch, max_iter=max_iter,
                tol=None, fit_intercept=intercept, average=average, random_state=0)
    sw = np.random.RandomState(1).uniform(0.2, 2.0, len(y)) if weighted else None
    for _ in range(calls):
        model.partial_fit(X, y, sample_weight=sw, **(
            {"classes": np.unique(y)} if est is LinearClassifier and y.ndim == 1 else {})) \
            if calls > 1 else model.fit(X, y, sample_weight=sw)
    assert ran and all((r is not None) == (compiled and ce._HAS_NUMBA) for r in ran)
    return model


def _state_arrays(state):
    return [np.asarray(v.numpy()) for v in vars(state).values()
            if isinstance(v, torch.Tensor)] + \
        [np.asarray(v) for v in vars(state).values() if isinstance(v, int)]


def _assert_same(a, b, rtol):
    ta, tb = a._trainer, b._trainer
    scale = max(1.0, float(np.abs(ta.x.numpy()).max()))
    np.testing.assert_allclose(tb.x.numpy(), ta.x.numpy(), rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=0, atol=rtol * scale)
    assert tb.k == ta.k and tb.t == ta.t
    if ta.averager is not None:
        assert tb.averager.n == ta.averager.n
        if ta.averager.x is None:
            assert tb.averager.x is None
        else:
            np.testing.assert_allclose(tb.averager.x.numpy(), ta.averager.x.numpy(), rtol=0,
                                       atol=rtol * scale)
    for sa, sb in zip(_state_arrays(ta.opt_state), _state_arrays(tb.opt_state), strict=True):
        s = max(1e-300, float(np.abs(sa).max(initial=0.0)))
        np.testing.assert_allclose(sb, sa, rtol=0, atol=rtol * s)
    for col in ("loss", "grad_norm", "step_size", "n_evals"):
        np.testing.assert_allclose(b.history_[col], a.history_[col], rtol=rtol)


@pytest.mark.parametrize("est, loss, target, rule, sparse, schedule, weighted, intercept, "
                         "average, batch", list(_cases()))
def test_compiled_epoch_follows_the_torch_path(monkeypatch, est, loss, target, rule, sparse,
                                               schedule, weighted, intercept, average, batch):
    X, y = _data(target, sparse, np.float64)
    args = (est, loss, X, y, rule, schedule, weighted, intercept, average, batch)
    torch_path = _fit(monkeypatch, False, *args)
    compiled = _fit(monkeypatch, True, *args)
    # 'optimal' starts at the step α^(-1/4) ≈ 3.2: with the modified Huber loss's
    # curvature 2 the iterates swing and rounding grows about 60x an epoch (7e-15
    # after one epoch, 7e-10 after three, for RMSProp per sample)
    _assert_same(torch_path, compiled, 1e-8 if schedule == "optimal" else 1e-12)


@pytest.mark.parametrize("est, loss, target, rule, sparse", [
    (LinearClassifier, "hinge", "binary", "sgd", False),
    (LinearClassifier, "hinge", "binary", "sgd", True),
    (LinearClassifier, "logistic", "multiclass", "adam", False),
    (LinearClassifier, "logistic", "binary", "momentum", True),
    (LinearRegressor, "squared_error", "regression2", "rmsprop", False),
])
def test_float32_follows_the_torch_path(monkeypatch, est, loss, target, rule, sparse):
    X, y = _data(target, sparse, np.float32)
    args = (est, loss, X, y, rule, "constant", True, True, False, 4)
    torch_path = _fit(monkeypatch, False, *args)
    compiled = _fit(monkeypatch, True, *args)
    assert compiled._trainer.x.dtype == torch.float32
    _assert_same(torch_path, compiled, 1e-5)


@pytest.mark.parametrize("sparse", [False, True])
def test_calls_continue_as_the_torch_path(monkeypatch, sparse):
    """partial_fit calls carry the step counter, the state and the average over."""
    X, y = _data("binary", sparse, np.float64)
    args = (LinearClassifier, "hinge", X, y, "adam", "invscaling", False, True, 20, 5)
    torch_path = _fit(monkeypatch, False, *args, calls=4)
    compiled = _fit(monkeypatch, True, *args, calls=4)
    _assert_same(torch_path, compiled, 1e-12)


def test_per_sample_sgd_over_many_epochs(monkeypatch):
    """batch_size=1 SGD, 'optimal' (scikit-learn's SGDClassifier), the sparse scale trick
    over 10 epochs."""
    X, y = _data("binary", True, np.float64)
    args = (LinearClassifier, "hinge", X, y, "sgd", "optimal", False, True, False, 1)
    torch_path = _fit(monkeypatch, False, *args, max_iter=10)
    compiled = _fit(monkeypatch, True, *args, max_iter=10)
    _assert_same(torch_path, compiled, 1e-12)


# --------------------------------------------------------------------------- kernels
def _reference(name, r_or_m, eps):
    """The per-output loss and derivative of the losses still to be wired (scikit-learn's
    SGDRegressor / SGDClassifier formulas): r = z − y, m = y z."""
    a = abs(r_or_m)
    if name == "huber":
        return (0.5 * a * a, r_or_m) if a <= eps else \
            (eps * a - 0.5 * eps * eps, eps * np.sign(r_or_m))
    if name == "epsilon_insensitive":
        return max(0.0, a - eps), (np.sign(r_or_m) if a > eps else 0.0)
    if name == "squared_epsilon_insensitive":
        e = max(0.0, a - eps)
        return e * e, 2 * e * np.sign(r_or_m)
    m = r_or_m  # modified_huber, y = 1
    if m >= 1:
        return 0.0, 0.0
    return ((1 - m) ** 2, -2 * (1 - m)) if m >= -1 else (-4 * m, -4.0)


@pytest.mark.parametrize("name", ["huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive", "modified_huber"])
def test_loss_kernels_of_the_losses_to_come(name):
    code = ce.LOSS_CODES[name]
    eps = 0.3
    for v in np.linspace(-2.5, 2.5, 41):
        z, dz = np.array([v]), np.empty((1, 1))
        Y = np.array([[1.0 if name == "modified_huber" else 0.0]])
        f = lk._loss_terms(code, z, Y, 0, dz, 0, 1, eps)
        ref_f, ref_d = _reference(name, v, eps)
        assert f == pytest.approx(ref_f, abs=1e-14)
        assert dz[0, 0] == pytest.approx(ref_d, abs=1e-14)
    # K outputs: regression losses average, modified_huber sums
    z, Y, dz = np.array([0.1, 1.0]), np.array([[0.5, -1.0]]), np.empty((1, 2))
    f = lk._loss_terms(code, z, Y, 0, dz, 0, 2, eps)
    if name == "modified_huber":
        terms = [_reference(name, y * v, eps) for v, y in zip(z, Y[0])]
        np.testing.assert_allclose(dz[0], [d * y for (_, d), y in zip(terms, Y[0])])
        assert f == pytest.approx(sum(t[0] for t in terms))
    else:
        terms = [_reference(name, v - y, eps) for v, y in zip(z, Y[0])]
        np.testing.assert_allclose(dz[0], [d / 2 for _, d in terms])
        assert f == pytest.approx(sum(t[0] for t in terms) / 2)


# --------------------------------------------------------------------------- fallback
def _trainer(monkeypatch, **kw):
    """A fitted model's trainer and batcher, for calling the entry directly."""
    from skopt_nn._data import EpochBatcher
    X, y = _data("binary", False, np.float64)
    model = _fit(monkeypatch, True, LinearClassifier, "hinge", X, y, "sgd", "constant",
                 False, True, False, 5, max_iter=1)
    trainer = model._trainer
    from skopt_nn._data import Dataset
    data = Dataset(torch.from_numpy(X), torch.from_numpy(np.where(y == 1, 1.0, -1.0)[:, None]),
                   None)
    trainer.objective = model._make_objective(D, 1)
    return trainer, EpochBatcher(data, 5)


def test_applies_to_a_linear_model_on_the_cpu(monkeypatch):
    trainer, batcher = _trainer(monkeypatch)
    k = trainer.k
    result = ce.compiled_stochastic_epoch(trainer, batcher, torch.empty_like(trainer.x), True)
    assert result is not None and trainer.k == k + 9 and result.n_evals == 9


@pytest.mark.parametrize("change", ["switched_off", "with_replacement", "optimizer",
                                    "objective", "loss", "device_or_dtype"])
def test_falls_back_where_it_does_not_apply(monkeypatch, change):
    trainer, batcher = _trainer(monkeypatch)
    g = torch.empty_like(trainer.x)
    if change == "switched_off":
        monkeypatch.setenv(ce.ENV_SWITCH, "0")
    elif change == "with_replacement":
        trainer.optimizer = SGD(sampling="with_replacement")
    elif change == "optimizer":
        from skopt_nn.optim import GradientDescent
        trainer.optimizer = GradientDescent()
    elif change == "objective":
        trainer.objective = object()
    elif change == "loss":
        trainer.objective.loss = type("Tweedie", (), {"name": "tweedie"})()  # no kernel for it
    else:  # a device or dtype the kernels do not run on: a float16 model stands in
        trainer.x = trainer.x.half()
    k = trainer.k
    assert ce.compiled_stochastic_epoch(trainer, batcher, g, True) is None
    assert trainer.k == k  # nothing consumed


def test_without_numba_the_torch_path_runs(monkeypatch):
    """Where numba is not installed (as if), both compiled epochs give way."""
    from skopt_nn import MLPRegressor
    from skopt_nn import _compiled_mlp as cm

    monkeypatch.setattr(ce, "_HAS_NUMBA", False)
    monkeypatch.setattr(cm, "_HAS_NUMBA", False)
    assert not ce.enabled() and not cm.enabled()
    seen = []
    monkeypatch.setattr(_epochs, "compiled_mlp_epoch",
                        lambda *a: seen.append(cm.compiled_mlp_epoch(*a)) or seen[-1])
    Xr, yr = _data("regression", False, np.float64)
    MLPRegressor(hidden_layer_sizes=(3,), batch_size=5, max_iter=2).fit(Xr, yr)
    assert seen == [None, None]
    X, y = _data("binary", False, np.float64)
    model = _fit(monkeypatch, True, LinearClassifier, "hinge", X, y, "sgd", "constant",
                 False, True, False, 5, max_iter=2)
    assert model.n_iter_ == 2


@pytest.mark.parametrize("rule", [r for r, _ in RULES])
@pytest.mark.parametrize("penalty, batch", [("l1", 1), ("elasticnet", 4)])
def test_l1_truncation_follows_the_torch_path(monkeypatch, rule, penalty, batch):
    """The L1 penalty's truncation after each step (with each rule's coordinate steps)
    in the compiled dense epoch, against the torch path; sparse rows take the torch
    path."""
    X, y = _data("binary", False, np.float64)
    models = []
    for compiled in (False, True):
        monkeypatch.setenv(ce.ENV_SWITCH, "1" if compiled else "0")
        ran = []
        monkeypatch.setattr(_epochs, "compiled_stochastic_epoch",
                            lambda *a: ran.append(r := ce.compiled_stochastic_epoch(*a)) or r)
        model = LinearClassifier(optimizer=dict(RULES)[rule] or "sgd", penalty=penalty,
                                 alpha=0.05, l1_ratio=0.5, learning_rate_init=LR[rule],
                                 batch_size=batch, max_iter=3, tol=None, average=3,
                                 random_state=0).fit(X, y)
        assert all((r is not None) == compiled for r in ran)
        models.append(model)
    a, b = models
    np.testing.assert_array_equal(a._trainer.x.numpy() == 0, b._trainer.x.numpy() == 0)
    _assert_same(a, b, 1e-12)
    np.testing.assert_allclose(b._trainer.l1.q.numpy(), a._trainer.l1.q.numpy(), rtol=0,
                               atol=1e-12)

    Xs = sp.csr_matrix(X)
    ran = []
    LinearClassifier(optimizer="sgd", penalty="l1", batch_size=4, max_iter=2).fit(Xs, y)
    assert ran == [None, None]
