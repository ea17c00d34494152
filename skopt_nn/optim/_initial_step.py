"""The one place where the initial step η₀ of ``learning_rate_init='auto'`` is computed.

Each optimizer states its rule in :meth:`~skopt_nn.optim.Optimizer.auto_step`
(1/L for gradient descent, lecture Eq. 3; a fraction of the solution's scale for
AdaGrad, RMSProp and Adam; η = 1 as the first trial of the searches); the rule
asks a :class:`StartingPoint` for what it needs, and only that is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._base import Optimizer, Oracle


class StartingPoint:
    """The objective at x⁰, as an optimizer's 'auto' step sees it.

    Parameters
    ----------
    oracle : Oracle
        The full objective f.
    x0 : torch.Tensor
        The starting point.
    lipschitz : callable, optional
        A global bound on L from the model (the linear models have one); without
        it L is estimated near x⁰ by :func:`local_lipschitz`.
    convex : bool, default=False
        Whether max|∇f(x⁰)|/L measures the distance to the solution (a convex
        model: on a convex quadratic ``|x* − x⁰|`` is at least that long).
    fixed_steps : bool, default=False
        Whether the model prefers fixed steps for the mini-batch methods
        (scikit-learn's MLP defaults).
    grad : torch.Tensor, optional
        ∇f(x⁰) when the caller has it already.
    """

    def __init__(self, oracle: Oracle, x0: torch.Tensor, *,
                 lipschitz: Callable[[], float | None] | None = None, convex: bool = False,
                 fixed_steps: bool = False, grad: torch.Tensor | None = None):
        self.oracle, self.x0 = oracle, x0
        self._model_lipschitz = lipschitz
        self.convex, self.fixed_steps = convex, fixed_steps
        self._L: float | None = None
        self._grad = grad

    def gradient(self) -> torch.Tensor:
        """∇f(x⁰), evaluated once."""
        if self._grad is None:
            self._grad = self.oracle.value_grad(self.x0)[1]
        return self._grad

    def lipschitz(self) -> float:
        """L: the model's bound when it has one, else the curvature measured at x⁰."""
        if self._L is None:
            L = None if self._model_lipschitz is None else self._model_lipschitz()
            if L is None:
                L = local_lipschitz(self.oracle, self.x0, self.gradient())
            self._L = max(float(L), 1e-12)
        return self._L

    def solution_scale(self) -> float | None:
        """max|∇f(x⁰)|/L for a convex model (the largest move of a 1/L step); else None."""
        if not self.convex:
            return None
        g = self.gradient()
        gmax = float(g.abs().max()) if g.numel() else 0.0
        return gmax / self.lipschitz()


def initial_step(optimizer: Optimizer, learning_rate_init: float | str,
                 problem: Callable[[], StartingPoint]) -> float:
    """η₀: ``learning_rate_init``, or for ``'auto'`` the optimizer's own rule on
    ``problem()`` (built only then)."""
    if learning_rate_init == "auto":
        return float(optimizer.auto_step(problem()))
    return float(learning_rate_init)


def local_lipschitz(oracle: Oracle, x: torch.Tensor, g: torch.Tensor, n_power: int = 10
                    ) -> float:
    """Estimate L as the largest curvature of f near ``x`` (for η = 1/L, Eq. 3).

    Power iteration on the Hessian, with Hessian-vector products taken as finite
    differences of the gradient, ``Hv ≈ (∇f(x + h v) − ∇f(x)) / h``, started along
    ``g``.  ``oracle.value_grad`` gives the gradients (``n_power`` evaluations).
    """
    gnorm = float(g.norm())
    if gnorm == 0.0:
        return 1.0
    v = g / gnorm
    h = 1e-4 * max(1.0, float(x.norm()))
    lam = 0.0
    for _ in range(n_power):
        _, g2 = oracle.value_grad(x + h * v)
        hv = (g2 - g) / h
        norm = float(hv.norm())
        if not math.isfinite(norm) or norm == 0.0:
            break
        lam = max(lam, norm)
        v = hv / norm
    return max(lam, 1e-12)
