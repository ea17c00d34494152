"""Training data held on the device: dense tensors or sparse CSR rows.

The data goes to the device once per fit.  An epoch permutes the rows once and
batches are then contiguous slices, so no DataLoader and no per-step gather.
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

    ``X @ W`` and ``X.T @ D`` are the only products the models need; both keep the
    data sparse.
    """

    def __init__(self, csr: sp.csr_matrix, dtype: torch.dtype, device: torch.device):
        self.csr = csr
        self.dtype = dtype
        self.device = device
        self.shape = csr.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.tensor = torch.sparse_csr_tensor(
                torch.from_numpy(csr.indptr.astype(np.int64)),
                torch.from_numpy(csr.indices.astype(np.int64)),
                torch.from_numpy(csr.data).to(dtype),
                size=csr.shape,
                check_invariants=False,
            ).to(device)

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: torch.Tensor) -> SparseRows:
        return SparseRows(self.csr[rows.cpu().numpy()], self.dtype, self.device)

    def slice(self, start: int, stop: int) -> SparseRows:
        return SparseRows(self.csr[start:stop], self.dtype, self.device)

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
        return Dataset(X, self.Y.index_select(0, rows), sw, self.weight_scale)

    def slice(self, start: int, stop: int) -> Dataset:
        X = self.X.slice(start, stop) if isinstance(self.X, SparseRows) else self.X[start:stop]
        sw = None if self.sw is None else self.sw[start:stop]
        return Dataset(X, self.Y[start:stop], sw, self.weight_scale)


#: data sets smaller than this (bytes) are permuted with one gather per epoch
GATHER_EPOCH_BYTES = 8 << 20


def epoch_batches(data: Dataset, batch_size: int, perm: torch.Tensor | None
                  ) -> Iterator[Dataset]:
    """The batches of one epoch: ``data`` in the order ``perm`` (``None``: as stored),
    cut into consecutive batches of ``batch_size`` rows (the last may be shorter).

    Small data sets are permuted with one gather for the epoch and then sliced;
    large ones gather one batch at a time (a single gather of all of 200k x 100
    floats cost 7x the per-batch gathers).
    """
    n = len(data)
    gather_each = perm is not None and not isinstance(data.X, SparseRows) and \
        data.X.element_size() * data.X.numel() > GATHER_EPOCH_BYTES
    if perm is not None and not gather_each:
        data, perm = data.take(perm), None
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield data.take(perm[start:stop]) if gather_each else data.slice(start, stop)


def normalise_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray | None:
    """Rescale weights to mean one; ``None`` stays ``None`` (unit weights)."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    return sw * (n / sw.sum())
