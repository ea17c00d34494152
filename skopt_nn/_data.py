"""Training data held on the device: dense tensors or sparse CSR rows.

The data goes to the device once per fit.  An epoch gathers its permutation on
the device a chunk of whole batches at a time (the whole epoch for small data
sets) and its batches are slices of the chunk: no DataLoader, no per-step gather
and no host-to-device copy, for dense and sparse data alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


def to_tensor(a: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor on ``device``.

    On the CPU a writeable, contiguous array of the right dtype is shared, not
    copied (the training data is never written to); anything else, read-only
    views included (pandas' copy-on-write gives those), is copied.
    """
    a = np.asarray(a)
    if device.type == "cpu" and a.flags.writeable and a.flags.c_contiguous and \
            torch.from_numpy(a[:0]).dtype == dtype:
        return torch.from_numpy(a)
    return torch.tensor(a, dtype=dtype, device=device)


class SparseRows:
    """A CSR matrix on the device that can be permuted, sliced by rows and multiplied.

    The row pointers, column indices and values go to the device once; a slice or
    a gather of rows (:meth:`slice`, :meth:`take`) is formed from them there, so a
    batch copies nothing from the host.  A host copy of the row pointers (``indptr``)
    gives the sizes a slice needs without reading the device.  ``X @ W`` and
    ``X.T @ D`` are the only products the models need; both keep the data sparse.
    """

    def __init__(self, csr: sp.csr_matrix, dtype: torch.dtype, device: torch.device):
        indptr = csr.indptr.astype(np.int64)
        self._init(torch.from_numpy(indptr).to(device),
                   torch.from_numpy(csr.indices.astype(np.int64)).to(device),
                   torch.from_numpy(csr.data).to(device=device, dtype=dtype),
                   indptr, csr.shape)
        self._csr = csr

    @classmethod
    def _from_parts(cls, crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor,
                    indptr: np.ndarray, n_cols: int) -> SparseRows:
        self = cls.__new__(cls)
        self._init(crow, col, val, indptr, (len(indptr) - 1, n_cols))
        self._csr = None
        return self

    def _init(self, crow, col, val, indptr, shape) -> None:
        self.crow, self.col, self.val, self.indptr = crow, col, val, indptr
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype, self.device = val.dtype, val.device
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.tensor = torch.sparse_csr_tensor(crow, col, val, size=self.shape,
                                                  check_invariants=False)

    @property
    def csr(self) -> sp.csr_matrix:
        """The rows as a SciPy CSR matrix on the host (the input itself when whole)."""
        if self._csr is None:
            self._csr = sp.csr_matrix((self.val.cpu().numpy(), self.col.cpu().numpy(),
                                       self.indptr), shape=self.shape)
        return self._csr

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: torch.Tensor) -> SparseRows:
        """The rows ``rows`` (a device index tensor, repeats allowed), gathered on the
        device: the entries of row ``rows[i]`` are ``crow[rows[i]] + arange(len_i)``."""
        rows = rows.to(self.crow.device)
        starts = self.crow.index_select(0, rows)
        lengths = self.crow.index_select(0, rows + 1).sub_(starts)
        crow = torch.zeros(len(rows) + 1, dtype=torch.int64, device=self.crow.device)
        torch.cumsum(lengths, 0, out=crow[1:])
        indptr = crow.cpu().numpy()  # the sizes, read once per gather (no copy on a CPU)
        nnz = int(indptr[-1])
        src = torch.repeat_interleave(starts.sub_(crow[:-1]), lengths, output_size=nnz)
        src += torch.arange(nnz, device=src.device)
        return SparseRows._from_parts(crow, self.col.index_select(0, src),
                                      self.val.index_select(0, src), indptr, self.shape[1])

    def slice(self, start: int, stop: int) -> SparseRows:
        """Rows ``start:stop`` as views of the device tensors (the row pointers shifted)."""
        indptr = self.indptr[start:stop + 1]
        a, b = int(indptr[0]), int(indptr[-1])
        return SparseRows._from_parts(self.crow[start:stop + 1] - a, self.col[a:b],
                                      self.val[a:b], indptr - a, self.shape[1])

    def matmul(self, w: torch.Tensor) -> torch.Tensor:
        return self.tensor @ w

    def tmatmul(self, d: torch.Tensor) -> torch.Tensor:
        return (d.T @ self.tensor).T if d.dim() == 2 else d @ self.tensor


def matmul(X, w: torch.Tensor) -> torch.Tensor:
    """``X @ w`` for a dense tensor or :class:`SparseRows`."""
    return X.matmul(w) if isinstance(X, SparseRows) else X @ w


def tmatmul(X, d: torch.Tensor) -> torch.Tensor:
    """``X.T @ d`` for a dense tensor or :class:`SparseRows`."""
    return X.tmatmul(d) if isinstance(X, SparseRows) else X.T @ d


def as_device_matrix(X, dtype: torch.dtype, device: torch.device):
    """A validated array or sparse matrix as a device tensor or :class:`SparseRows`."""
    if sp.issparse(X):
        return SparseRows(sp.csr_matrix(X), dtype, device)
    return to_tensor(X, dtype, device)


def n_rows(X) -> int:
    return len(X) if isinstance(X, SparseRows) else X.shape[0]


@dataclass
class Dataset:
    """Inputs, targets and normalised sample weights on the device.

    ``sw`` is ``None`` for unit weights; otherwise the weights are rescaled to mean
    one over the whole training set, so that a batch's weighted mean of losses is an
    unbiased estimate of (sum_i w_i f_i) / (sum_i w_i) and the full batch gives it
    exactly.
    """

    X: torch.Tensor | SparseRows
    Y: torch.Tensor
    sw: torch.Tensor | None
    #: mean of the raw sample weights (1.0 for unit weights)
    weight_scale: float = 1.0

    def __len__(self) -> int:
        return n_rows(self.X)

    def take(self, rows: torch.Tensor) -> Dataset:
        X = self.X.take(rows) if isinstance(self.X, SparseRows) else self.X.index_select(0, rows)
        sw = None if self.sw is None else self.sw.index_select(0, rows)
        Y = self.Y
        # one output: gathered as a vector, 3x faster than as rows of one column
        Y = Y.view(-1).index_select(0, rows).view(-1, 1) if Y.dim() == 2 and \
            Y.shape[1] == 1 and Y.is_contiguous() else Y.index_select(0, rows)
        return Dataset(X, Y, sw, self.weight_scale)

    def slice(self, start: int, stop: int) -> Dataset:
        X = self.X.slice(start, stop) if isinstance(self.X, SparseRows) else self.X[start:stop]
        sw = None if self.sw is None else self.sw[start:stop]
        return Dataset(X, self.Y[start:stop], sw, self.weight_scale)


#: data sets smaller than this (bytes) are permuted with one gather per epoch
GATHER_EPOCH_BYTES = 8 << 20
#: larger ones are gathered a chunk of whole batches of about this size at a time
CHUNK_BYTES = 1 << 20


def _nbytes(data: Dataset) -> int:
    """The bytes of ``data``'s inputs, targets and weights."""
    X = data.X
    size = X.nnz * (X.val.element_size() + X.col.element_size()) \
        if isinstance(X, SparseRows) else X.element_size() * X.numel()
    size += data.Y.element_size() * data.Y.numel()
    return size if data.sw is None else size + data.sw.element_size() * data.sw.numel()


def epoch_batches(data: Dataset, batch_size: int, perm: torch.Tensor | None
                  ) -> Iterator[Dataset]:
    """The batches of one epoch: ``data`` in the order ``perm`` (``None``: as stored),
    cut into consecutive batches of ``batch_size`` rows (the last may be shorter).

    A permuted epoch gathers a chunk of whole batches at a time on the device and
    slices the batches from it: the whole epoch for small data sets, about
    ``CHUNK_BYTES`` (a few hundred rows to thousands) for large ones, which stays in
    cache and takes one gather call per chunk (a single gather of all of 200k x 100
    floats cost 7x the per-batch gathers, chunks of 1 MB 0.6x).
    """
    n = len(data)
    if n == 0:
        return
    if perm is None:
        chunk = n
    else:
        chunk = n if _nbytes(data) <= GATHER_EPOCH_BYTES else _chunk_rows(data, batch_size)
    for c0 in range(0, n, chunk):
        part = data if perm is None else data.take(perm[c0:c0 + chunk])
        yield from _slices(part, batch_size)


def _chunk_rows(data: Dataset, batch_size: int) -> int:
    """The rows of a chunk of whole batches of about ``CHUNK_BYTES``."""
    per_batch = max(1, _nbytes(data) * batch_size // len(data))
    return batch_size * max(1, CHUNK_BYTES // per_batch)


def _slices(part: Dataset, batch_size: int):
    m = len(part)
    for start in range(0, m, batch_size):
        yield part.slice(start, min(start + batch_size, m))


class EpochBatcher:
    """The batches of every epoch of one training call, as :func:`epoch_batches` cuts
    them.

    A small dense data set (at most ``GATHER_EPOCH_BYTES``) is permuted each epoch
    into buffers allocated once, and its batches are views of those buffers built
    once: an epoch then costs one gather per array and makes no tensors.  The same
    batch objects come back every epoch with new rows in them.  A larger dense one
    is gathered chunk by chunk into one chunk's buffers, allocated once (fresh
    memory for every chunk cost W3's fit about 6 000 page faults).
    """

    def __init__(self, data: Dataset, batch_size: int):
        self.data, self.batch_size = data, batch_size
        self._buffered = not isinstance(data.X, SparseRows) and len(data) > 0 and \
            _nbytes(data) <= GATHER_EPOCH_BYTES
        self._stored: list[Dataset] | None = None  # the batches in the stored order
        self._buffer: Dataset | None = None
        self._permuted: list[Dataset] | None = None
        self._sizes: torch.Tensor | None = None
        self._chunk: Dataset | None = None  # a large dense set's chunk buffers

    def sizes(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The number of rows of each batch of an epoch, as a vector (made once)."""
        if self._sizes is None or self._sizes.dtype != dtype:
            n, b = len(self.data), self.batch_size
            counts = [min(b, n - start) for start in range(0, n, b)]
            self._sizes = torch.tensor(counts, dtype=dtype, device=device)
        return self._sizes

    def epoch(self, perm: torch.Tensor | None):
        """The batches of an epoch in the order ``perm`` (``None``: as stored)."""
        if not self._buffered:
            if perm is None or isinstance(self.data.X, SparseRows):
                return epoch_batches(self.data, self.batch_size, perm)
            return self._chunks(perm)
        if perm is None:
            if self._stored is None:
                self._stored = list(epoch_batches(self.data, self.batch_size, None))
            return self._stored
        if self._buffer is None:
            d = self.data
            self._buffer = Dataset(torch.empty_like(d.X), torch.empty_like(d.Y),
                                   None if d.sw is None else torch.empty_like(d.sw),
                                   d.weight_scale)
            self._permuted = list(epoch_batches(self._buffer, self.batch_size, None))
        _gather_into(self.data, perm, self._buffer)
        return self._permuted


    def _chunks(self, perm: torch.Tensor):
        """A large dense epoch: each chunk of :func:`epoch_batches` gathered into the
        same buffers (a chunk's batches are used before the next chunk is gathered)."""
        d, n = self.data, len(self.data)
        chunk = _chunk_rows(d, self.batch_size)
        if self._chunk is None:
            rows = min(chunk, n)
            self._chunk = Dataset(d.X.new_empty((rows, *d.X.shape[1:])),
                                  d.Y.new_empty((rows, *d.Y.shape[1:])),
                                  None if d.sw is None else d.sw.new_empty(rows), d.weight_scale)
        for c0 in range(0, n, chunk):
            rows = perm[c0:c0 + chunk]
            part = self._chunk.slice(0, len(rows))
            _gather_into(d, rows, part)
            yield from _slices(part, self.batch_size)


def _gather_into(data: Dataset, rows: torch.Tensor, out: Dataset) -> None:
    """``data.take(rows)`` written into the dense buffers of ``out``."""
    torch.index_select(data.X, 0, rows, out=out.X)
    Y = data.Y
    if Y.dim() == 2 and Y.shape[1] == 1 and Y.is_contiguous():  # one output: as a vector
        torch.index_select(Y.view(-1), 0, rows, out=out.Y.view(-1))
    else:
        torch.index_select(Y, 0, rows, out=out.Y)
    if data.sw is not None:
        torch.index_select(data.sw, 0, rows, out=out.sw)


def normalise_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray | None:
    """Rescale weights to mean one; ``None`` stays ``None`` (unit weights)."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    return sw * (n / sw.sum())
