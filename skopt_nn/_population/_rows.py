"""A population's training rows: one shared copy of each distinct training set,
each model's row indices, sample weights and number of rows, and the gathers of
its batches (:class:`TrainingRows`)."""

from __future__ import annotations

import numpy as np
import torch

from ._network import Batch
from ._scratch import Scratch


class TrainingRows:
    """The models' training rows: one shared input matrix with its targets, and
    per-model row indices and sample weights.

    Models given the same rows (the candidates of one fold) share one copy of
    their inputs and targets; a batch gathers each model's targets by its row
    indices, as it gathers the inputs, so no per-model copy of the targets is
    made or permuted (a 128-model search on W3's data kept 2 x 170 MB of them).

    Models may have different numbers of rows ``counts`` (the folds of a search
    whose size the fold count does not divide) as long as they make the same
    number of batches: ``R`` is padded to the longest with each model's first row,
    at zero weight, so that only the epoch's last batch holds padding.
    """

    def __init__(self, datasets: list):
        unique: list = []  # (X, Y, offset) of each distinct training set
        offsets = []
        for d in datasets:
            offset = next((o for X, Y, o in unique if X.data_ptr() == d.X.data_ptr() and
                           X.shape == d.X.shape and X.stride() == d.X.stride() and
                           torch.equal(Y, d.Y)), None)
            if offset is None:
                offset = sum(len(u[0]) for u in unique)
                unique.append((d.X, d.Y, offset))
            offsets.append(offset)
        self.X = torch.cat([u[0] for u in unique]) if len(unique) > 1 else unique[0][0]
        self.Y = torch.cat([u[1] for u in unique]) if len(unique) > 1 else unique[0][1]
        self.counts = np.array([len(d) for d in datasets])
        n = int(self.counts.max())
        base = torch.arange(n, device=self.X.device)
        self.R = torch.stack([(base + o).masked_fill_(base >= len(d), o)
                              for d, o in zip(datasets, offsets, strict=True)])  # (M, n)
        self.sw = None if datasets[0].sw is None else torch.stack(
            [torch.nn.functional.pad(d.sw, (0, n - len(d))) for d in datasets])
        self.ws = torch.tensor([[d.weight_scale] for d in datasets], dtype=self.Y.dtype,
                               device=self.Y.device)

    def __len__(self) -> int:
        return self.R.shape[1]

    def select(self, keep: torch.Tensor) -> None:
        self.R, self.ws = (t.index_select(0, keep) for t in (self.R, self.ws))
        self.counts = self.counts[keep.cpu().numpy()]
        if self.sw is not None:
            self.sw = self.sw.index_select(0, keep)

    def counts_in(self, start: int, stop: int) -> torch.Tensor | None:
        """Each model's number of real (not padding) positions in ``[start, stop)``,
        ``(M, 1)``; None where every model has them all."""
        counts = np.clip(self.counts - start, 0, stop - start)
        if (counts == stop - start).all():
            return None
        return torch.tensor(counts[:, None], dtype=self.Y.dtype, device=self.Y.device)

    def take(self, R: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The inputs of rows ``R`` (M, b), shape (M, b, d): one ``index_select``
        (5x faster than indexing with the matrix), into ``out`` where given."""
        return _gather(self.X, R, out)

    def targets(self, R: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The targets of rows ``R`` (M, b), shape (M, b, K), into ``out`` where given."""
        return _gather(self.Y, R, out)

    def first(self, n: int) -> Batch:
        """Each model's first ``n`` rows (or all it has), in stored order."""
        R = self.R[:, :n]
        counts = self.counts_in(0, n)
        sw = self.padding_weights(counts, R.shape[1]) if self.sw is None else self.sw[:, :n]
        return Batch(self.take(R), self.targets(R), sw, self.ws, counts)

    def padding_weights(self, counts: torch.Tensor | None, size: int) -> torch.Tensor | None:
        """Unit weights of ``size`` positions, 0 on each model's padding after its
        ``counts`` real rows; None without padding (no sample weights: given ones are
        padded with zeros already)."""
        if counts is None:
            return None
        return (torch.arange(size, device=counts.device) < counts).to(self.Y.dtype)

    def permuted(self, perm: torch.Tensor, scratch: Scratch):
        """(rows, weights) of each model in the order ``perm`` (M, n), in
        ``scratch``'s buffers (overwritten by the next epoch's)."""
        M, n = self.R.shape
        flat = torch.add(perm, torch.arange(0, M * n, n, device=perm.device)[:, None],
                         out=scratch.get("flat", (M, n), perm)).view(-1)
        R = torch.index_select(self.R.view(-1), 0, flat,
                               out=scratch.get("R", (M * n,), self.R)).view(M, n)
        sw = None if self.sw is None else torch.index_select(
            self.sw.view(-1), 0, flat, out=scratch.get("sw", (M * n,), self.sw)).view(M, n)
        return R, sw


def _gather(T: torch.Tensor, R: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """The rows ``R`` (M, b) of the matrix ``T``, shape (M, b, T's columns)."""
    c = T.shape[1]
    if out is None:
        return T.index_select(0, R.reshape(-1)).view(*R.shape, c)
    torch.index_select(T, 0, R.reshape(-1), out=out.view(-1, c))
    return out
