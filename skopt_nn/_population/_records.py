"""A population's epochs as arrays: the results, the records and the stopping rules
of every member at once.

A single fit writes each epoch into its trainer's log and asks its
:class:`~skopt_nn._stopping.StoppingRules` whether to stop.  Doing that member by
member cost a population of small networks more time than its arithmetic (120
models: about 6 us a model an epoch), so here an epoch is one row of arrays: the
rules run as NumPy expressions over the members, and the records stay in a table
until a member leaves, when they are written into its trainer in one go.  What the
trainer then holds (loss curve, history, validation scores, rules' progress,
samples seen) is what its own fit would have written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import _stopping as stopping
from .._epochs import EpochResult


@dataclass
class EpochTable:
    """One epoch's :class:`~skopt_nn._epochs.EpochResult` of every member, as arrays."""

    loss: np.ndarray
    grad_norm: np.ndarray
    step_size: np.ndarray
    n_evals: int
    n_seen: np.ndarray  # each member's rows seen in the epoch
    loss_after: np.ndarray
    stalled: np.ndarray | None = None
    gmax: np.ndarray | None = None  # inf where not measured

    def row(self, i: int) -> EpochResult:
        """Member ``i``'s result."""
        return EpochResult(float(self.loss[i]), float(self.grad_norm[i]),
                           float(self.step_size[i]), self.n_evals, int(self.n_seen[i]),
                           float(self.loss_after[i]),
                           False if self.stalled is None else bool(self.stalled[i]),
                           math.inf if self.gmax is None else float(self.gmax[i]))

    def select(self, keep: np.ndarray) -> EpochTable:
        """The rows of the members ``keep`` (indices)."""
        def pick(a):
            return None if a is None else a[keep]

        return EpochTable(self.loss[keep], self.grad_norm[keep], self.step_size[keep],
                          self.n_evals, self.n_seen[keep], self.loss_after[keep],
                          pick(self.stalled), pick(self.gmax))


class Ledger:
    """Every member's records since the population started, one row per epoch.

    Members are columns by their index at the start (``ids`` maps today's
    positions to them), so that members that leave need no compaction of the
    stored rows.
    """

    _FIELDS = 5  # loss, gradient norm, step size, validation score, rows seen

    def __init__(self, n_members: int):
        self.ids = np.arange(n_members)
        self.rows = np.full((16, n_members, self._FIELDS), np.nan)
        self.meta: list[tuple[int, float]] = []  # (n_evals, time) by epoch

    def __len__(self) -> int:
        return len(self.meta)

    def append(self, table: EpochTable, scores: np.ndarray | None, seconds: float) -> None:
        e = len(self.meta)
        if e == self.rows.shape[0]:
            self.rows = np.concatenate([self.rows, np.full_like(self.rows, np.nan)])
        row = self.rows[e]
        row[self.ids, 0] = table.loss
        row[self.ids, 1] = table.grad_norm
        row[self.ids, 2] = table.step_size
        if scores is not None:
            row[self.ids, 3] = scores
        row[self.ids, 4] = table.n_seen
        self.meta.append((table.n_evals, seconds))

    def select(self, keep: np.ndarray) -> None:
        self.ids = self.ids[keep]

    def write(self, position: int, trainer, validation: bool) -> None:
        """Member ``position``'s epochs into its trainer's log (as
        :meth:`skopt_nn._engine.Trainer.record` writes them)."""
        rows = self.rows[:len(self.meta), self.ids[position]]
        log = trainer.log
        first = len(log.loss_curve)
        losses = rows[:, 0].tolist()
        log.loss_curve.extend(losses)
        log.history.extend(
            (first + e + 1, f, gn, s, n_evals, seconds)
            for e, (f, gn, s, (n_evals, seconds)) in enumerate(
                zip(losses, rows[:, 1].tolist(), rows[:, 2].tolist(), self.meta,
                    strict=True)))
        if validation:
            log.validation_scores.extend(rows[:, 3].tolist())
        trainer.t += int(rows[:, 4].sum())


class Rules:
    """:meth:`skopt_nn._stopping.StoppingRules.after_epoch` of every member at once,
    with each member's :class:`~skopt_nn._stopping.Progress` as arrays."""

    def __init__(self, members, X: torch.Tensor):
        jobs = [m.job for m in members]
        tols = [j.config.tol for j in jobs]
        self.tol = np.array([math.nan if t is None else t for t in tols], dtype=float)
        self.margin = np.nan_to_num(self.tol, nan=0.0)  # ``tol or 0.0``
        self.n_iter_no_change = np.array([j.config.n_iter_no_change for j in jobs])
        self.plateau = np.array([j.optimizer.stops_on_plateau for j in jobs])
        self.smooth = np.array([j.objective.loss.smooth for j in jobs])
        progress = [j.trainer.progress for j in jobs]
        self.best_loss = np.array([p.best_loss for p in progress], dtype=float)
        self.best_score = np.array([p.best_validation_score for p in progress], dtype=float)
        self.no_improve = np.array([p.no_improve for p in progress])
        self.has_best = np.array([p.best_x is not None for p in progress])
        #: the best weights by validation score (early stopping only)
        self.best_x = None if all(j.validation_set is None for j in jobs) else \
            torch.stack([X[i] if p.best_x is None else p.best_x
                         for i, p in enumerate(progress)]).to(X)

    def select(self, keep: np.ndarray, index: torch.Tensor) -> None:
        for name in ("tol", "margin", "n_iter_no_change", "plateau", "smooth", "best_loss",
                     "best_score", "no_improve", "has_best"):
            setattr(self, name, getattr(self, name)[keep])
        if self.best_x is not None:
            self.best_x = self.best_x.index_select(0, index)

    def after_epoch(self, table: EpochTable, scores: np.ndarray | None, X: torch.Tensor,
                    members: list) -> list:
        """Record the epoch in every member's progress; each member's reason to stop
        now, or None (``members``: whose schedules shrink on a plateau)."""
        if scores is not None:
            improved = scores >= self.best_score + self.margin
            better = scores > self.best_score
            if better.any():
                index = torch.from_numpy(np.flatnonzero(better)).to(X.device)
                self.best_x.index_copy_(0, index, X.index_select(0, index))
                self.best_score = np.where(better, scores, self.best_score)
                self.has_best |= better
        else:
            improved = table.loss <= self.best_loss - self.margin
        self.best_loss = np.fmin(self.best_loss, table.loss)  # as min(): a NaN loses
        reasons = [None] * len(self.tol)
        active = ~np.isnan(self.tol)
        if not active.any():
            return reasons
        gmax = np.full(len(self.tol), math.inf) if table.gmax is None else table.gmax
        stalled = np.zeros(len(self.tol), bool) if table.stalled is None else table.stalled
        converged = active & (gmax <= self.tol)
        stalls = active & ~converged & stalled
        plateau = active & ~converged & ~stalled & (self.plateau | (scores is not None))
        self.no_improve = np.where(plateau, np.where(improved, 0, self.no_improve + 1),
                                   self.no_improve)
        for i in np.flatnonzero(converged):
            reasons[i] = stopping.CONVERGED
        for i in np.flatnonzero(stalls):
            reasons[i] = stopping.STALLED if self.smooth[i] else stopping.CONVERGED
        for i in np.flatnonzero(plateau & (self.no_improve > self.n_iter_no_change)):
            self.no_improve[i] = 0
            if members[i].job.trainer.schedule.on_plateau():
                reasons[i] = stopping.CONVERGED
        return reasons

    def write(self, position: int, progress: stopping.Progress) -> None:
        """Member ``position``'s progress into its :class:`~skopt_nn._stopping.Progress`."""
        progress.best_loss = float(self.best_loss[position])
        progress.best_validation_score = float(self.best_score[position])
        progress.no_improve = int(self.no_improve[position])
        if self.best_x is not None and self.has_best[position]:
            progress.best_x = self.best_x[position].clone()
