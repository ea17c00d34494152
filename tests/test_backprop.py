"""Explicit backpropagation (MLPObjective.value_grad) against torch.autograd and scikit-learn."""

import itertools
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.neural_network import MLPRegressor

from skopt_nn import _mlp_objective
from skopt_nn._data import Dataset, SparseRows
from skopt_nn._losses import LOSSES, SoftmaxCrossEntropy, SquaredError
from skopt_nn._mlp_objective import MLPObjective
from skopt_nn._objective import Objective

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
# (loss, number of outputs)
LOSS_CASES = [("squared_error", 1), ("squared_error", 3), ("absolute_error", 1),
              ("logistic", 1), ("logistic", 3), ("hinge", 1), ("softmax", 4)]
D, N = 5, 23


def _targets(loss, n, K, rng):
    if loss.target == "real":
        return torch.tensor(rng.normal(size=(n, K)))
    if loss.target == "sign":
        return torch.tensor(rng.choice([-1.0, 1.0], size=(n, K)))
    return torch.nn.functional.one_hot(torch.tensor(rng.integers(K, size=n)), K).double()


def _data(loss, K, weighted, rng, n=N, X=None):
    """A data set whose weights are normalised to mean 1 (weight_scale = their raw mean)."""
    X = torch.tensor(rng.normal(size=(n, D))) if X is None else X
    Y = _targets(loss, n, K, rng)
    if not weighted:
        return Dataset(X, Y, None, 1.0)
    raw = rng.uniform(0.2, 3.0, size=n)
    return Dataset(X, Y, torch.tensor(raw / raw.mean()), float(raw.mean()))


def _autograd(obj, x, data):
    xr = x.detach().clone().requires_grad_(True)
    F = obj.value(xr, data)
    (grad,) = torch.autograd.grad(F, xr)
    return F.detach(), grad


def _value_grad(obj, x, data):
    g = torch.full_like(x, float("nan"))
    F = obj.value_grad(x, data, g)
    return F, g


def _assert_matches_autograd(obj, x, data):
    F, g = _value_grad(obj, x, data)
    F_ref, g_ref = _autograd(obj, x, data)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F, F_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(F, obj.value(x, data), rtol=1e-12, atol=1e-14)
    return F, g


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("loss_name,K", LOSS_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_autograd(activation, loss_name, K, alpha, weighted):
    rng = np.random.default_rng(0)
    loss = LOSSES[loss_name]()
    obj = MLPObjective((D, 6, 4, K), activation, loss, alpha)
    x = obj.init_params(1, torch.float64)
    full = _data(loss, K, weighted, rng)
    # a batch: the weights' sum over it differs from its size, so S matters
    batch = full.slice(4, 17)
    _assert_matches_autograd(obj, x, batch)
    _assert_matches_autograd(obj, x, full)
    # the cached views and buffers stay right when x changes in place
    x.add_(torch.tensor(rng.normal(scale=0.3, size=x.shape)))
    _assert_matches_autograd(obj, x, batch)


@pytest.mark.parametrize("hidden", [(), (3,), (4, 3, 5)])
@pytest.mark.parametrize("loss_name,K", [("squared_error", 1), ("squared_error", 2),
                                         ("softmax", 3)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_depths_match_autograd(hidden, loss_name, K, weighted):
    rng = np.random.default_rng(1)
    loss = LOSSES[loss_name]()
    obj = MLPObjective((D, *hidden, K), "tanh", loss, 0.3)
    x = obj.init_params(2, torch.float64)
    _assert_matches_autograd(obj, x, _data(loss, K, weighted, rng).slice(2, 19))


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_inlined_squared_error_equals_loss_object(alpha):
    """The training path inlines the squared error; a subclass takes the Loss object."""

    class Squared(SquaredError):
        pass

    rng = np.random.default_rng(2)
    data = _data(SquaredError(), 3, False, rng)
    fast = MLPObjective((D, 7, 3), "relu", SquaredError(), alpha)
    slow = MLPObjective((D, 7, 3), "relu", Squared(), alpha)
    x = fast.init_params(0, torch.float64)
    F1, g1 = _value_grad(fast, x, data)
    F2, g2 = _value_grad(slow, x, data)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(F1, F2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", [(), (7,)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_inlined_softmax_equals_loss_object(alpha, weighted, hidden):
    """The training path inlines the softmax cross-entropy on Zᵀ; a subclass takes the Loss."""

    class Softmax(SoftmaxCrossEntropy):
        pass

    rng = np.random.default_rng(2)
    data = _data(SoftmaxCrossEntropy(), 4, weighted, rng)
    fast = MLPObjective((D, *hidden, 4), "tanh", SoftmaxCrossEntropy(), alpha)
    slow = MLPObjective((D, *hidden, 4), "tanh", Softmax(), alpha)
    x = fast.init_params(0, torch.float64)
    F1, g1 = _value_grad(fast, x, data)
    F2, g2 = _value_grad(slow, x, data)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(F1, F2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", [(), (6, 4)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss_name,K", [("squared_error", 1), ("softmax", 3)])
def test_sparse_input_matches_dense(hidden, weighted, loss_name, K):
    rng = np.random.default_rng(3)
    csr = sp.random(N, D, density=0.4, format="csr", random_state=4, dtype=np.float64)
    loss = LOSSES[loss_name]()
    dense = _data(loss, K, weighted, rng, X=torch.tensor(csr.toarray()))
    sparse = Dataset(SparseRows(csr, torch.float64, torch.device("cpu")), dense.Y, dense.sw,
                     dense.weight_scale)
    obj = MLPObjective((D, *hidden, K), "relu", loss, 0.5)
    x = obj.init_params(5, torch.float64)
    torch.testing.assert_close(obj.decision(x, sparse.X), obj.decision(x, dense.X),
                               rtol=1e-12, atol=1e-14)
    for start, stop in [(0, N), (3, 14)]:
        Fd, gd = _value_grad(obj, x, dense.slice(start, stop))
        Fs, gs = _value_grad(obj, x, sparse.slice(start, stop))
        torch.testing.assert_close(gs, gd, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(Fs, Fd, rtol=1e-12, atol=1e-14)
    _assert_matches_autograd(obj, x, sparse.slice(3, 14))


def test_unpack_layout():
    sizes = (3, 4, 2, 5)
    obj = MLPObjective(sizes, "relu", SquaredError(), 0.0)
    assert obj.n_params == sum(a * b + b for a, b in itertools.pairwise(sizes))
    x = torch.arange(obj.n_params, dtype=torch.float64)
    Ws, bs = obj.unpack(x)
    start = 0
    for (fan_in, fan_out), W, b in zip(itertools.pairwise(sizes), Ws, bs, strict=True):
        assert W.shape == (fan_in, fan_out) and b.shape == (fan_out,)
        expected = torch.arange(start, start + fan_in * fan_out, dtype=torch.float64)
        torch.testing.assert_close(W, expected.view(fan_in, fan_out))  # row-major
        start += fan_in * fan_out
        torch.testing.assert_close(b, torch.arange(start, start + fan_out, dtype=torch.float64))
        start += fan_out
    assert start == obj.n_params
    Ws[1][0, 1] = -1.0  # views, not copies
    assert x[3 * 4 + 4 + 1] == -1.0
    # the layout is scikit-learn's coefs_ / intercepts_
    flat = np.concatenate([np.concatenate([W.numpy().ravel(), b.numpy()])
                           for W, b in zip(Ws, bs, strict=True)])
    np.testing.assert_array_equal(flat, x.numpy())


@pytest.mark.parametrize("loss_name,K", LOSS_CASES)
def test_value_is_the_documented_objective(loss_name, K):
    """mean_i s_i f_i + α/(2S) Σ‖W‖², S the batch's sum of raw weights."""
    rng = np.random.default_rng(14)
    loss, alpha = LOSSES[loss_name](), 0.6
    obj = MLPObjective((D, 4, K), "logistic", loss, alpha)
    x = obj.init_params(0, torch.float64)
    full = _data(loss, K, True, rng)
    batch = full.slice(5, 16)
    Ws, bs = obj.unpack(x)
    Z = torch.sigmoid(batch.X @ Ws[0] + bs[0]) @ Ws[1] + bs[1]
    raw = batch.sw * batch.weight_scale
    expected = (batch.sw * loss.value(Z, batch.Y)).mean() + \
        alpha / (2 * raw.sum()) * sum((W ** 2).sum() for W in Ws)
    torch.testing.assert_close(obj.value(x, batch), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(_value_grad(obj, x, batch)[0], expected, rtol=1e-12, atol=0)
    unweighted = Dataset(batch.X, batch.Y, None, 1.0)
    expected = loss.value(Z, batch.Y).mean() + alpha / (2 * 11) * sum((W ** 2).sum() for W in Ws)
    torch.testing.assert_close(obj.value(x, unweighted), expected, rtol=1e-13, atol=0)


def test_decision_is_the_forward_pass():
    rng = np.random.default_rng(6)
    obj = MLPObjective((D, 4, 3, 2), "tanh", SquaredError(), 0.0)
    x = obj.init_params(0, torch.float64)
    X = torch.tensor(rng.normal(size=(9, D)))
    Ws, bs = obj.unpack(x)
    A = torch.tanh(X @ Ws[0] + bs[0])
    A = torch.tanh(A @ Ws[1] + bs[1])
    torch.testing.assert_close(obj.decision(x, X), A @ Ws[2] + bs[2])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_init_params(activation):
    sizes = (30, 20, 10, 3)
    obj = MLPObjective(sizes, activation, SquaredError(), 0.0)
    x = obj.init_params(7, torch.float32, "cpu")
    assert x.shape == (obj.n_params,) and x.dtype == torch.float32 and x.device.type == "cpu"
    factor = 2.0 if activation == "logistic" else 6.0
    for W, b in zip(*obj.unpack(x), strict=True):
        bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
        for p in (W, b):  # weights and biases alike
            assert p.abs().max() <= bound
        assert W.abs().max() > 0.9 * bound  # uniform over the whole interval
        assert abs(float(W.mean())) < 0.2 * bound
    same = obj.init_params(7, torch.float32, "cpu")
    torch.testing.assert_close(same, x, rtol=0, atol=0)
    other = obj.init_params(8, torch.float32, "cpu")
    assert not torch.equal(other, x)
    x64 = obj.init_params(7, torch.float64)
    torch.testing.assert_close(x64.float(), x, rtol=0, atol=0)


def _sklearn_backprop(obj, x, X, y, alpha, sample_weight=None):
    """scikit-learn's MLPRegressor._backprop (loss and gradients) at the weights x."""
    Ws, bs = obj.unpack(x)
    mlp = MLPRegressor(hidden_layer_sizes=obj.layer_sizes[1:-1], activation=obj.activation,
                       alpha=alpha)
    mlp.coefs_ = [W.numpy().copy() for W in Ws]
    mlp.intercepts_ = [b.numpy().copy() for b in bs]
    mlp.n_layers_ = len(Ws) + 1
    mlp.n_outputs_ = Ws[-1].shape[1]
    mlp.out_activation_ = "identity"
    activations = [X] + [None] * len(Ws)
    deltas = [None] * len(Ws)
    coef_grads = [np.empty_like(W) for W in mlp.coefs_]
    intercept_grads = [np.empty_like(b) for b in mlp.intercepts_]
    loss, coef_grads, intercept_grads = mlp._backprop(
        X, y, sample_weight, activations, deltas, coef_grads, intercept_grads)
    grad = np.concatenate([np.concatenate([W.ravel(), b])
                           for W, b in zip(coef_grads, intercept_grads, strict=True)])
    return loss, grad


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_matches_sklearn_backprop(activation, K, weighted):
    """The objective (penalty included) is scikit-learn's MLP objective."""
    rng = np.random.default_rng(8)
    alpha = 0.9
    X = rng.normal(size=(N, D))
    y = rng.normal(size=(N, K))
    raw = rng.uniform(0.2, 3.0, size=N) if weighted else None
    obj = MLPObjective((D, 6, 4, K), activation, SquaredError(), alpha)
    x = obj.init_params(3, torch.float64)
    sw = None if raw is None else torch.tensor(raw / raw.mean())
    data = Dataset(torch.tensor(X), torch.tensor(y), sw, 1.0 if raw is None else raw.mean())
    loss_ref, grad_ref = _sklearn_backprop(obj, x, X, y, alpha, raw)
    F, g = _value_grad(obj, x, data)
    np.testing.assert_allclose(float(F), loss_ref, rtol=1e-12)
    np.testing.assert_allclose(float(obj.value(x, data)), loss_ref, rtol=1e-12)
    if K == 1:  # scikit-learn's output δ omits the 1/K of its averaged squared loss
        np.testing.assert_allclose(g.numpy(), grad_ref, rtol=1e-10, atol=1e-12)


def test_caches_follow_batch_sizes_vectors_and_dtypes():
    """Alternating batch sizes, new x and g vectors, dtypes: always the fresh result."""
    rng = np.random.default_rng(9)
    loss = SquaredError()
    data = _data(loss, 1, False, rng, n=40)
    obj = MLPObjective((D, 5, 5, 1), "relu", loss, 0.2)
    x = obj.init_params(0, torch.float64)
    g = torch.empty_like(x)
    for step in range(12):
        batch = data.slice(0, 16) if step % 3 else data.slice(32, 40)
        if step % 4 == 3:
            g = torch.empty_like(x)  # as FullBatchOracle does
        if step == 6:
            x = x.clone()
        F = obj.value_grad(x, batch, g)
        F_ref, g_ref = _autograd(MLPObjective((D, 5, 5, 1), "relu", loss, 0.2), x, batch)
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(F, F_ref, rtol=1e-12, atol=1e-14)
        x.sub_(0.1 * g)
    x32, data32 = x.float(), Dataset(data.X.float(), data.Y.float(), None, 1.0)
    F32, g32 = _value_grad(obj, x32, data32)
    torch.testing.assert_close(g32.double(), _autograd(obj, x, data)[1], rtol=1e-4, atol=1e-5)
    assert F32.dtype == g32.dtype == torch.float32


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_column_major_layouts_match_autograd(monkeypatch, activation, sparse):
    """Z and the gradient blocks through column-major buffers (as chosen for wide layers)."""
    monkeypatch.setattr(_mlp_objective, "prefer_transposed", lambda *args: True)
    rng = np.random.default_rng(13)
    csr = sp.random(N, D, density=0.5, format="csr", random_state=1, dtype=np.float64)
    X = SparseRows(csr, torch.float64, torch.device("cpu")) if sparse else \
        torch.tensor(csr.toarray())
    for (loss_name, K), alpha, weighted, hidden in itertools.product(
            [("squared_error", 2), ("squared_error", 1), ("logistic", 2), ("softmax", 3)],
            [0.0, 0.8], [False, True], [(), (6,), (6, 4)]):
        loss = LOSSES[loss_name]()
        data = _data(loss, K, weighted, rng, X=X)
        obj = MLPObjective((D, *hidden, K), activation, loss, alpha)
        x = obj.init_params(0, torch.float64)
        g = torch.empty_like(x)
        for _ in range(2):  # the plan built, then reused
            _assert_matches_autograd(obj, x, data.slice(1, 20))
            obj.value_grad(x, data.slice(1, 20), g)
            torch.testing.assert_close(g, _autograd(obj, x, data.slice(1, 20))[1], rtol=1e-10,
                                       atol=1e-12)
        plan = obj._plans[19, data.weight_scale]
        assert plan.Z.stride(0) == 1 or not hidden
        assert all(step.dst is not None for step in plan.backward)
        assert plan.gW0_t != sparse


def test_is_an_objective():
    obj = MLPObjective((D, 4, 1), "relu", SquaredError(), 0.1)
    assert isinstance(obj, Objective)
    data = _data(SquaredError(), 1, False, np.random.default_rng(0))
    assert obj.curvature(torch.zeros(obj.n_params, dtype=torch.float64), data) is None
    assert obj.lipschitz(data) is None
    assert obj.project(obj.init_params(0)) is False


def test_large_batches_are_not_cached(monkeypatch):
    monkeypatch.setattr(_mlp_objective, "_CACHE_BYTES", 0)
    rng = np.random.default_rng(10)
    loss = LOSSES["softmax"]()
    obj = MLPObjective((D, 5, 3), "relu", loss, 0.1)
    x = obj.init_params(0, torch.float64)
    data = _data(loss, 3, False, rng)
    for _ in range(2):
        _assert_matches_autograd(obj, x, data)
    assert not obj._plans and not obj._xplans and not obj._bufs


def test_value_grad_returns_a_normal_tensor_and_accepts_x_with_grad():
    rng = np.random.default_rng(11)
    obj = MLPObjective((D, 4, 1), "relu", SquaredError(), 0.1)
    x = obj.init_params(0, torch.float64).requires_grad_(True)
    data = _data(SquaredError(), 1, False, rng)
    g = torch.empty(obj.n_params, dtype=torch.float64)
    F = obj.value_grad(x, data, g)
    assert F.shape == () and not F.is_inference() and not F.requires_grad
    F.add_(1.0)  # usable like any tensor
    torch.testing.assert_close(g, _autograd(obj, x, data)[1], rtol=1e-10, atol=1e-12)


def test_pickle_drops_the_caches():
    rng = np.random.default_rng(12)
    obj = MLPObjective((D, 4, 2), "tanh", SquaredError(), 0.1)
    x = obj.init_params(0, torch.float64)
    data = _data(SquaredError(), 2, True, rng)
    F, g = _value_grad(obj, x, data)
    clone = pickle.loads(pickle.dumps(obj))
    assert clone._xv is None and not clone._plans and not clone._xplans and not clone._bufs
    F2, g2 = _value_grad(clone, x, data)
    torch.testing.assert_close(g2, g, rtol=0, atol=0)
    torch.testing.assert_close(F2, F, rtol=0, atol=0)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLPObjective((2, 3, 1), "softplus", SquaredError(), 0.0)
    with pytest.raises(ValueError, match="layer_sizes"):
        MLPObjective((2,), "relu", SquaredError(), 0.0)
    with pytest.raises(ValueError, match="layer_sizes"):
        MLPObjective((2, 0, 1), "relu", SquaredError(), 0.0)
