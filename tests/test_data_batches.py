"""An epoch's batches (dense and sparse, gathered whole or in chunks) and the linear
objective's fast paths, against plain references in float64."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skopt_nn import _data
from skopt_nn._data import Dataset, SparseRows, epoch_batches
from skopt_nn._linear_objective import LinearObjective
from skopt_nn._losses import get_loss

CPU = torch.device("cpu")
N, D = 53, 7


def _datasets(weighted, K=2, seed=0):
    rng = np.random.default_rng(seed)
    csr = sp.random(N, D, density=0.3, format="csr", random_state=seed, dtype=np.float64)
    csr.data[csr.indptr[5]:csr.indptr[6]] = 0.0  # an empty row
    csr.eliminate_zeros()
    Y = torch.tensor(rng.standard_normal((N, K)))
    sw = torch.tensor(rng.uniform(0.5, 2.0, N)) if weighted else None
    dense = Dataset(torch.tensor(csr.toarray()), Y, sw)
    sparse = Dataset(SparseRows(csr, torch.float64, CPU), Y, sw)
    return dense, sparse


def _same(a: Dataset, b: Dataset):
    Xa = a.X.tensor.to_dense() if isinstance(a.X, SparseRows) else a.X
    Xb = b.X.tensor.to_dense() if isinstance(b.X, SparseRows) else b.X
    torch.testing.assert_close(Xa, Xb, rtol=0, atol=0)
    torch.testing.assert_close(a.Y, b.Y, rtol=0, atol=0)
    assert (a.sw is None) == (b.sw is None)
    if a.sw is not None:
        torch.testing.assert_close(a.sw, b.sw, rtol=0, atol=0)


def _reference_batches(dense, batch_size, perm):
    data = dense if perm is None else Dataset(dense.X[perm], dense.Y[perm],
                                              None if dense.sw is None else dense.sw[perm])
    return [data.slice(s, s + batch_size) for s in range(0, N, batch_size)]


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_take_and_slice_equal_dense(weighted):
    dense, sparse = _datasets(weighted)
    rows = torch.tensor([5, 0, 52, 5, 17, 3, 3])  # repeats and an empty row
    _same(sparse.take(rows), dense.take(rows))
    _same(sparse.slice(4, 19), dense.slice(4, 19))
    _same(sparse.slice(4, 19).take(torch.tensor([2, 0, 1])), dense.slice(4, 19).take(
        torch.tensor([2, 0, 1])))
    _same(sparse.take(rows).slice(1, 5), dense.take(rows).slice(1, 5))
    _same(sparse.take(torch.tensor([], dtype=torch.int64)), dense.slice(0, 0))
    part = sparse.take(rows).X
    assert len(part) == 7 and part.shape == (7, D)
    np.testing.assert_array_equal(part.csr.toarray(), dense.X[rows].numpy())
    w = torch.randn(D, 3, dtype=torch.float64)
    torch.testing.assert_close(part.matmul(w), dense.X[rows] @ w)
    d = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(part.tmatmul(d), dense.X[rows].T @ d)


@pytest.mark.parametrize("sparse_input", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunks"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("K", [1, 2])
def test_epoch_batches_match_reference(monkeypatch, sparse_input, chunked, shuffle, K):
    dense, sparse = _datasets(weighted=True, K=K)
    data = sparse if sparse_input else dense
    if chunked:  # chunks of three batches
        monkeypatch.setattr(_data, "GATHER_EPOCH_BYTES", 0)
        monkeypatch.setattr(_data, "CHUNK_BYTES", 3 * (_data._nbytes(data) * 8 // N) + 1)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(1)) if shuffle else None
    batches = [b.slice(0, len(b)) for b in epoch_batches(data, 8, perm)]
    expected = _reference_batches(dense, 8, perm)
    assert [len(b) for b in batches] == [len(b) for b in expected]
    for got, want in zip(batches, expected, strict=True):
        _same(got, want)


def _generic_value_grad(obj, x, data):
    """F and ∇F by autograd from the loss's own value (no fast path)."""
    x = x.detach().clone().requires_grad_(True)
    W, b = x[:obj.d * obj.K].view(obj.d, obj.K), x[obj.d * obj.K:]
    X = data.X.tensor.to_dense() if isinstance(data.X, SparseRows) else data.X
    f = obj.loss.value(X @ W + b, data.Y)
    if data.sw is not None:
        f = f * data.sw
    F = f.mean() + 0.5 * obj.alpha * (W * W).sum()
    F.backward()
    g = x.grad
    if not obj.fit_intercept:
        g[obj.d * obj.K:] = 0.0
    return F.detach(), g


@pytest.mark.parametrize("loss_name,K", [("logistic", 1), ("logistic", 3), ("softmax", 4),
                                         ("squared_error", 1), ("squared_error", 3),
                                         ("hinge", 1)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse_input", [False, True], ids=["dense", "sparse"])
def test_value_grad_matches_autograd(loss_name, K, weighted, fit_intercept, sparse_input):
    rng = np.random.default_rng(2)
    dense, sparse = _datasets(weighted, K)
    loss = get_loss(loss_name, K, multilabel=True)
    if loss.target == "sign":
        Y = torch.tensor(np.where(rng.random((N, K)) < 0.5, -1.0, 1.0))
    elif loss.target == "onehot":
        Y = torch.nn.functional.one_hot(torch.tensor(rng.integers(0, K, N)), K).double()
    else:
        Y = dense.Y
    data = Dataset((sparse if sparse_input else dense).X, Y, dense.sw)
    obj = LinearObjective(loss, D, K, 0.3, fit_intercept)
    x = torch.tensor(rng.standard_normal(obj.n_params))
    g = torch.full_like(x, np.nan)
    F = obj.value_grad(x, data.slice(3, 40), g)
    F_ref, g_ref = _generic_value_grad(obj, x, data.slice(3, 40))
    torch.testing.assert_close(F, F_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, g_ref, rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(obj.value(x, data), _generic_value_grad(obj, x, data)[0],
                               rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(obj.decision(x, data.X), data.X.tensor.to_dense() @ x[:D * K]
                               .view(D, K) + x[D * K:] if sparse_input else
                               data.X @ x[:D * K].view(D, K) + x[D * K:])


@pytest.mark.parametrize("K", [1, 2])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_epoch_batcher_gives_the_epochs_of_epoch_batches(sparse_input, weighted, K):
    """Over several epochs (shuffled, then unshuffled) the batcher's batches hold the
    rows epoch_batches gives; a small dense set reuses the same batch objects."""
    dense, sparse = _datasets(weighted=weighted, K=K)
    data = sparse if sparse_input else dense
    batcher = _data.EpochBatcher(data, 8)
    generator = torch.Generator().manual_seed(3)
    seen = []
    for epoch in range(4):
        perm = torch.randperm(N, generator=generator) if epoch < 3 else None
        batches = list(batcher.epoch(perm))
        seen.append([id(b) for b in batches])
        expected = _reference_batches(dense, 8, perm)
        assert [len(b) for b in batches] == [len(b) for b in expected]
        for got, want in zip(batches, expected, strict=True):
            _same(got.slice(0, len(got)), want)
    if not sparse_input:
        assert seen[0] == seen[1] == seen[2]  # gathered into the same buffers


@pytest.mark.parametrize("weighted", [True, False])
def test_a_large_dense_set_is_gathered_chunk_by_chunk_into_one_buffer(weighted, monkeypatch):
    """Above GATHER_EPOCH_BYTES a dense epoch is gathered a chunk of whole batches at
    a time into buffers made once: each batch, read before the next, holds the rows
    epoch_batches gives, and every chunk reuses the first chunk's memory."""
    dense, _ = _datasets(weighted=weighted, K=2)
    monkeypatch.setattr(_data, "GATHER_EPOCH_BYTES", 0)
    monkeypatch.setattr(_data, "CHUNK_BYTES", 8 * _data._nbytes(dense) // N)  # 8 rows
    batcher = _data.EpochBatcher(dense, 3)
    generator = torch.Generator().manual_seed(5)
    pointers = set()
    for _ in range(2):
        perm = torch.randperm(N, generator=generator)
        expected = _reference_batches(dense, 3, perm)
        got = 0
        for batch, want in zip(batcher.epoch(perm), expected, strict=True):
            _same(batch.slice(0, len(batch)), want)
            pointers.add(batch.X.untyped_storage().data_ptr())
            got += 1
        assert got == len(expected)
    assert len(pointers) == 1  # one chunk buffer for every chunk of both epochs
