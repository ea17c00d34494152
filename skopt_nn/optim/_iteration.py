"""One full-batch iteration x⁽ᵏ⁾ → x⁽ᵏ⁺¹⁾, shared by the training loop and ``minimize``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._base import Optimizer, Oracle


@dataclass(slots=True)
class Iteration:
    """The outcome of one iteration: f and ∇f at the new point x⁽ᵏ⁺¹⁾.

    ``stalled`` is True when a search method found no decrease; x is then
    unchanged and ``fun``/``grad`` are those of x⁽ᵏ⁾.  ``n_evals`` counts every
    evaluation of f the iteration made (the new point's included).
    """

    fun: float
    grad: torch.Tensor
    step_size: float
    n_evals: int
    stalled: bool


def full_batch_iteration(optimizer: Optimizer, x: torch.Tensor, fun: float,
                         grad: torch.Tensor, lr: float, state: Any,
                         oracle: Oracle) -> Iteration:
    """The optimizer's step from f(x⁽ᵏ⁾) = ``fun``, ∇f(x⁽ᵏ⁾) = ``grad`` with step
    ``lr``, in place on ``x``; then f and ∇f at the new point (reused from the step
    when the method evaluated them there, as the Wolfe searches do)."""
    res = optimizer.step(x, fun, grad, lr, state, oracle)
    if optimizer.searches and res.step_size == 0.0:
        return Iteration(fun, grad, 0.0, res.n_evals, True)
    if res.grad is not None:
        return Iteration(res.fun, res.grad, res.step_size, res.n_evals, False)
    f, g = oracle.value_grad(x)
    return Iteration(f, g, res.step_size, res.n_evals + 1, False)
