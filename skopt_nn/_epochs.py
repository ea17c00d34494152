"""One epoch of training: a full-batch iteration, or a pass of mini-batch steps.

Both advance the trainer's step counter ``k`` (the schedule's, kept outside the
optimizer's state) and report an :class:`EpochResult`.  Nothing is copied to the
host inside an epoch: a mini-batch epoch sums its batch losses on the device
and reads the sum once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ._compiled_epoch import compiled_stochastic_epoch
from ._compiled_mlp import compiled_mlp_epoch
from ._data import EpochBatcher
from ._objective import Objective
from ._shuffle import Shuffler
from .optim._base import Optimizer, Oracle
from .optim._iteration import full_batch_iteration
from .optim._schedules import Schedule


class Trainer(Protocol):
    """What an epoch reads and advances of the training state (:class:`._engine.Trainer`)."""

    objective: Objective
    x: torch.Tensor
    optimizer: Optimizer
    opt_state: Any
    schedule: Schedule
    #: the call's batch orders and bootstrap rows
    shuffler: Shuffler
    #: optimizer steps over all calls, the schedule's counter
    k: int
    #: f and ∇f at ``x`` when known (full-batch methods)
    fun_grad: tuple[float, torch.Tensor] | None
    #: the average of the iterates (averaged SGD), or None
    averager: Any
    #: the L1 penalty's truncated-gradient step (:mod:`._penalty`), or None
    l1: Any


def after_step(trainer: Trainer, lr: float) -> None:
    """What follows each update of step ``lr``: the L1 truncation, then the average."""
    if trainer.l1 is not None:
        trainer.l1.apply(trainer.x, trainer.optimizer.coordinate_steps(lr, trainer.opt_state))
    if trainer.averager is not None:
        trainer.averager.update(trainer.x, trainer.k)


@dataclass(slots=True)
class EpochResult:
    """What an epoch reports.

    ``loss`` is the epoch's record (f after a full-batch method's iteration, the
    mean of the batch losses otherwise), ``loss_after`` f at the epoch's end where
    it is known (the divergence test reads both); ``gmax`` is max|∇f| at the new
    point for the full-batch methods (inf where not measured) and ``stalled`` says
    that a search found no decrease.
    """

    loss: float
    grad_norm: float
    step_size: float
    n_evals: int
    n_seen: int
    loss_after: float
    stalled: bool = False
    gmax: float = math.inf


def full_batch_epoch(trainer: Trainer, oracle: Oracle, n: int) -> EpochResult:
    """One iteration x⁽ᵏ⁾ → x⁽ᵏ⁺¹⁾ on all ``n`` rows; records f(x⁽ᵏ⁺¹⁾), ∇f(x⁽ᵏ⁺¹⁾).

    The new point's f and ∇f are the next iteration's, so they are cached on the
    trainer; each iteration thus records the loss of the point it produced, like
    ``minimize``.  A mini-batch method whose batch is the whole set records f(x⁽ᵏ⁾)
    instead (the loss its step was computed on, scikit-learn's curve) and is never
    stopped by the gradient (its rule is the plateau).
    """
    n_evals = 0
    if trainer.fun_grad is None:
        trainer.fun_grad = oracle.value_grad(trainer.x)
        n_evals += 1
    fun, grad = trainer.fun_grad
    trainer.k += 1
    it = full_batch_iteration(trainer.optimizer, trainer.x, fun, grad,
                              trainer.schedule(trainer.k), trainer.opt_state, oracle)
    trainer.fun_grad = (it.fun, it.grad)
    if trainer.l1 is not None:  # the truncation moved x: f and ∇f there
        after_step(trainer, it.step_size)
        it.fun, it.grad = trainer.fun_grad = oracle.value_grad(trainer.x)
        n_evals += 1
    elif trainer.averager is not None:
        trainer.averager.update(trainer.x, trainer.k)
    n_evals += it.n_evals
    grad_norm = float(it.grad.norm())
    if not trainer.optimizer.full_batch:
        return EpochResult(fun, grad_norm, it.step_size, n_evals, n, it.fun)
    gmax = float(it.grad.abs().max()) if it.grad.numel() else 0.0
    stalled = it.stalled or not math.isfinite(it.fun)
    return EpochResult(it.fun, grad_norm, it.step_size, n_evals, n, it.fun, stalled, gmax)


def stochastic_epoch(trainer: Trainer, batcher: EpochBatcher, g: torch.Tensor,
                     shuffle: bool) -> EpochResult:
    """An epoch of mini-batch steps: disjoint batches of a fresh permutation (lecture
    Eq. 24-25), or with the optimizer's ``'with_replacement'`` sampling n // b
    bootstrap batches (Eq. 31), both drawn by the trainer's shuffler (the MLPs':
    scikit-learn's MLP orders).  On the CPU, where numba is installed, a linear
    model's epoch and a small MLP's run compiled, each in one call
    (:mod:`._compiled_epoch`, :mod:`._compiled_mlp`)."""
    for compiled in (compiled_stochastic_epoch, compiled_mlp_epoch):
        result = compiled(trainer, batcher, g, shuffle)
        if result is not None:
            return result
    data, batch_size = batcher.data, batcher.batch_size
    n, x = len(data), trainer.x
    step, state, schedule = trainer.optimizer.step, trainer.opt_state, trainer.schedule
    value_grad = trainer.objective.value_grad
    follow = trainer.averager is not None or trainer.l1 is not None
    # the epoch's loss summed in float64 (MPS has none): in float32 the sum of many
    # batch losses drifts, and the plateau rule compares it to within tol
    total = x.dtype if x.device.type == "mps" else torch.float64
    if trainer.optimizer.batch_sampling() == "with_replacement":
        acc = torch.zeros((), dtype=total, device=x.device)
        n_batches = max(n // batch_size, 1)
        for _ in range(n_batches):
            rows = trainer.shuffler.randint(n, batch_size).to(x.device)
            acc.add_(value_grad(x, data.take(rows), g))
            trainer.k += 1
            lr = schedule(trainer.k)
            step(x, math.nan, g, lr, state)
            if follow:
                after_step(trainer, lr)
        loss = float(acc) / n_batches
        return EpochResult(loss, float(g.norm()), schedule(trainer.k), n_batches,
                           n_batches * batch_size, loss)
    perm = trainer.shuffler.permutation(n).to(x.device) if shuffle else None
    losses = []  # the batch losses, summed once at the end (one call, not one a step)
    for batch in batcher.epoch(perm):
        losses.append(value_grad(x, batch, g))
        trainer.k += 1
        lr = schedule(trainer.k)
        step(x, math.nan, g, lr, state)
        if follow:
            after_step(trainer, lr)
    loss = float(torch.dot(torch.stack(losses).to(total), batcher.sizes(total, x.device))) / n
    return EpochResult(loss, float(g.norm()), schedule(trainer.k), len(losses), n, loss)
