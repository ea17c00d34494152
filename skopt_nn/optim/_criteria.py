r"""The lecture's convergence criteria.

* ``'gradient_norm'``: ‖∇f(x⁽ᵏ⁺¹⁾)‖₂ ≤ ε (first-order optimality; may stop at a
  saddle point of a nonconvex f);
* ``'cost_change'``: ``|f(x⁽ᵏ⁺¹⁾) − f(x⁽ᵏ⁾)| ≤ ε``;
* ``'gradient_change'``: ‖∇f(x⁽ᵏ⁺¹⁾) − ∇f(x⁽ᵏ⁾)‖₂ ≤ ε;
* ``'max_iter'``: none of the above; only k < max_k stops the run.

and the test for divergence shared by the training loop and ``minimize``.
"""

from __future__ import annotations

import math

import torch

CRITERIA = ("gradient_norm", "cost_change", "gradient_change", "max_iter")


def converged(
    criterion: str,
    tol: float,
    f_old: float,
    f_new: float,
    g_old: torch.Tensor,
    g_new: torch.Tensor,
) -> bool:
    """Whether ``criterion`` holds for the step from (f_old, g_old) to (f_new, g_new)."""
    if criterion == "gradient_norm":
        return float(g_new.norm()) <= tol
    if criterion == "cost_change":
        return abs(f_new - f_old) <= tol
    if criterion == "gradient_change":
        return float((g_new - g_old).norm()) <= tol
    if criterion == "max_iter":
        return False
    raise ValueError(f"criterion={criterion!r} is not one of {CRITERIA}.")


def diverged(loss: float, initial: float, factor: float = 1e4) -> bool:
    """A loss that is not finite, or far above its starting value, counts as divergence."""
    return not math.isfinite(loss) or loss > initial + factor * max(abs(initial), 1.0)
