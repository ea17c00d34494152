"""Full-batch methods that choose their step by evaluating f along a direction.

Gradient descent with the halving, Armijo or Wolfe line search, steepest descent
(Eq. 9) and L-BFGS.  The scalar searches themselves are in :mod:`.line_search`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import ClassVar

import torch
from sklearn.utils._param_validation import Interval

from . import line_search
from ._base import Oracle, SearchMethod, StepResult

#: the constraint of the line searches' constants c1, c2 and shrink factor: in (0, 1)
_OPEN_UNIT = [Interval(Real, 0, 1, closed="neither")]


@dataclass
class SteepestDescentState:
    """The last exact step, where the next search brackets from (``None`` at first)."""

    eta: float | None = None


@dataclass
class LBFGSState:
    """The last ``memory`` pairs s = x⁺ − x, y = ∇f⁺ − ∇f and ρ = 1/sᵀy."""

    s: list = field(default_factory=list)
    y: list = field(default_factory=list)
    rho: list = field(default_factory=list)

    def clear(self) -> None:
        self.s.clear(), self.y.clear(), self.rho.clear()


class Ray:
    r"""φ(η) = f(x + η d) and φ'(η) for one line search, caching the last point.

    With ``with_grad=True`` every evaluation also computes ∇f, so that φ'(η) at a
    point where φ was just evaluated costs nothing more.
    """

    def __init__(self, oracle: Oracle, x: torch.Tensor, d: torch.Tensor, with_grad: bool):
        self.oracle, self.x, self.d, self.with_grad = oracle, x, d, with_grad
        self.cache: tuple[float, float, torch.Tensor | None] | None = None

    def point(self, eta: float) -> torch.Tensor:
        return torch.add(self.x, self.d, alpha=eta)

    def phi(self, eta: float) -> float:
        if self.cache is not None and self.cache[0] == eta:
            return self.cache[1]
        if self.with_grad:
            f, g = self.oracle.value_grad(self.point(eta))
        else:
            f, g = self.oracle.value(self.point(eta)), None
        self.cache = (eta, f, g)
        return f

    def dphi(self, eta: float) -> float:
        if self.cache is None or self.cache[0] != eta or self.cache[2] is None:
            f, g = self.oracle.value_grad(self.point(eta))
            self.cache = (eta, f, g)
        return float(torch.dot(self.cache[2], self.d))

    def move(self, result: line_search.SearchResult, fun0: float) -> StepResult:
        """Apply the accepted step to x in place and report it."""
        if result.step <= 0.0:
            return StepResult(fun0, None, 0.0, result.n_evals)
        self.x.add_(self.d, alpha=result.step)
        g = self.cache[2] if self.cache is not None and self.cache[0] == result.step else None
        return StepResult(result.phi, g, result.step, result.n_evals)


def _check_wolfe_constants(method) -> None:
    if not method.c1 < method.c2:
        raise ValueError(
            f"The Wolfe constants must satisfy 0 < c1 < c2 < 1; got c1={method.c1!r}, "
            f"c2={method.c2!r} for {type(method).__name__}.")


def _backtrack(ray: Ray, fun: float, dphi0: float, eta0: float, c1: float,
               spent: int) -> line_search.SearchResult:
    """Armijo backtracking over up to 100 halvings, when a Wolfe search that started
    beyond the unit step (a user's large ``learning_rate_init``) found no bracket.

    Only then: near an optimum a failed Wolfe search means no decrease is left, and
    backtracking would just take rounding-level steps.
    """
    res = line_search.armijo(ray.phi, fun, dphi0, eta0=eta0, c1=c1, shrink=0.5, max_iter=100)
    res.n_evals += spent
    return res


class HalvingLineSearch(SearchMethod):
    r"""Gradient descent with the lecture's halving line search.

    Lecture Eq. 5-7: each iteration starts at η = ``learning_rate_init`` (the
    lecture's η = 1 with ``'auto'``) and halves η until f decreases (Eq. 6), then steps
    x⁽ᵏ⁺¹⁾ = x⁽ᵏ⁾ - η∇f(x⁽ᵏ⁾) (Eq. 4).
    """

    name: ClassVar[str] = "line_search"

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        ray = Ray(oracle, x, -grad, with_grad=False)
        return ray.move(line_search.halving(ray.phi, fun, eta0=lr), fun)


class ArmijoLineSearch(SearchMethod):
    r"""Gradient descent with Armijo backtracking.

    η starts at ``learning_rate_init`` and shrinks by ``shrink`` until
    f(x - η∇f) ≤ f(x) - c₁ η ‖∇f(x)‖².

    Parameters
    ----------
    c1 : float, default=1e-4
        Sufficient-decrease constant, in (0, 1).
    shrink : float, default=0.5
        Backtracking factor, in (0, 1).
    """

    name: ClassVar[str] = "armijo"
    _parameter_constraints: ClassVar[dict] = {"c1": _OPEN_UNIT, "shrink": _OPEN_UNIT}

    def __init__(self, c1: float = 1e-4, shrink: float = 0.5):
        self.c1 = c1
        self.shrink = shrink

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        ray = Ray(oracle, x, -grad, with_grad=False)
        dphi0 = -float(torch.dot(grad, grad))
        res = line_search.armijo(ray.phi, fun, dphi0, eta0=lr, c1=self.c1, shrink=self.shrink)
        return ray.move(res, fun)


class WolfeLineSearch(SearchMethod):
    r"""Gradient descent with a strong Wolfe line search.

    The step satisfies f(x - η∇f) ≤ f(x) - c₁η‖∇f‖² and
    ``|∇f(x - η∇f)ᵀ∇f(x)| ≤ c₂‖∇f(x)‖²``.

    Parameters
    ----------
    c1 : float, default=1e-4
        Sufficient-decrease constant.
    c2 : float, default=0.9
        Curvature constant, c1 < c2 < 1.
    """

    name: ClassVar[str] = "wolfe"
    _parameter_constraints: ClassVar[dict] = {"c1": _OPEN_UNIT, "c2": _OPEN_UNIT}

    def __init__(self, c1: float = 1e-4, c2: float = 0.9):
        self.c1 = c1
        self.c2 = c2

    def _validate_params(self):
        super()._validate_params()
        _check_wolfe_constants(self)

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        d = -grad
        ray = Ray(oracle, x, d, with_grad=True)
        dphi0 = -float(torch.dot(grad, grad))
        res = line_search.wolfe(ray.phi, ray.dphi, fun, dphi0, eta0=lr, c1=self.c1, c2=self.c2)
        if res.step == 0.0 and lr > 1.0:  # no bracket from a far-off first trial
            res = _backtrack(ray, fun, dphi0, lr, self.c1, res.n_evals)
        return ray.move(res, fun)


class SteepestDescent(SearchMethod):
    r"""Steepest descent: the exact minimiser along -∇f.

    The step of lecture Eq. 9:

    .. math:: \eta^{(k)} = \arg\min_\eta f(x^{(k)} - \eta \nabla f(x^{(k)}))

    On a quadratic (the squared-error linear model) the step is the closed form
    η = gᵀg / gᵀHg, using the model's Hessian-vector curvature; otherwise the root
    of φ'(η) = 0 is bracketed and found by Brent's method (a local minimiser when f
    is nonconvex).
    """

    name: ClassVar[str] = "steepest_descent"

    def init_state(self, x: torch.Tensor) -> SteepestDescentState:
        return SteepestDescentState()

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        d = -grad
        curvature = getattr(oracle, "curvature", None)  # dᵀ∇²f d, where exact and cheap
        dHd = None if curvature is None else curvature(d)
        ray = Ray(oracle, x, d, with_grad=dHd is None)  # the exact search needs φ'
        if dHd is not None and dHd > 0:
            eta = float(torch.dot(grad, grad)) / dHd
            res = line_search.SearchResult(eta, ray.phi(eta), 1)
            if not res.phi < fun:  # rounding at the optimum: no decrease left
                res = line_search.SearchResult(0.0, fun, 1)
        else:
            dphi0 = -float(torch.dot(grad, grad))
            # bracket from the previous step: same minimiser, fewer evaluations
            eta0 = lr if state.eta is None else state.eta
            res = line_search.exact(ray.phi, ray.dphi, fun, dphi0, eta0=eta0)
            if res.step > 0:
                state.eta = res.step
        return ray.move(res, fun)


class LBFGS(SearchMethod):
    r"""Limited-memory BFGS with a strong Wolfe line search (not in the lecture).

    The direction is d = -H∇f, with H the inverse-Hessian estimate built from the
    last ``memory`` pairs (s, y) by the two-loop recursion; the step comes from
    :func:`.line_search.wolfe` starting at η = ``learning_rate_init`` (1 with
    'auto', the natural step of a quasi-Newton direction).  It is what scikit-learn's
    ``solver='lbfgs'`` offers, kept on the device.

    Parameters
    ----------
    memory : int, default=10
        Number of (s, y) pairs kept.
    c1, c2 : float, default=1e-4, 0.9
        Strong Wolfe constants.
    max_fun : int, default=15000
        Budget of function evaluations per fit (scikit-learn's ``max_fun``):
        training stops with a ConvergenceWarning once it is spent.
    """

    name: ClassVar[str] = "lbfgs"
    _parameter_constraints: ClassVar[dict] = {
        "memory": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "c1": _OPEN_UNIT,
        "c2": _OPEN_UNIT,
    }

    def __init__(self, memory: int = 10, c1: float = 1e-4, c2: float = 0.9,
                 max_fun: int = 15000):
        self.memory = memory
        self.c1 = c1
        self.c2 = c2
        self.max_fun = max_fun

    def _validate_params(self):
        super()._validate_params()
        _check_wolfe_constants(self)

    def evaluation_budget(self) -> int:
        return self.max_fun

    def init_state(self, x: torch.Tensor) -> LBFGSState:
        return LBFGSState()

    def _direction(self, g: torch.Tensor, state: LBFGSState) -> torch.Tensor:
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(state.s), reversed(state.y), reversed(state.rho)):
            a = rho * torch.dot(s, q)
            q.sub_(y, alpha=float(a))
            alphas.append(a)
        if state.s:
            s, y = state.s[-1], state.y[-1]
            q.mul_(torch.dot(s, y) / torch.dot(y, y))
        for (s, y, rho), a in zip(zip(state.s, state.y, state.rho), reversed(alphas)):
            b = rho * torch.dot(y, q)
            q.add_(s, alpha=float(a - b))
        return q.neg_()

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        d = self._direction(grad, state)
        dphi0 = float(torch.dot(grad, d))
        if not dphi0 < 0:  # lost descent (rounding): restart from steepest descent
            state.clear()
            d = -grad
            dphi0 = -float(torch.dot(grad, grad))
        eta0 = lr if state.s else min(lr, 1.0 / max(float(grad.abs().sum()), 1e-12))
        x_old = x.clone()
        ray = Ray(oracle, x, d, with_grad=True)
        res = line_search.wolfe(ray.phi, ray.dphi, fun, dphi0, eta0=eta0, c1=self.c1, c2=self.c2)
        if res.step == 0.0 and eta0 > 1.0:  # no bracket from a far-off first trial
            res = _backtrack(ray, fun, dphi0, eta0, self.c1, res.n_evals)
        step = ray.move(res, fun)
        if step.step_size > 0:
            if step.grad is None:
                step.fun, step.grad = oracle.value_grad(x)
                step.n_evals += 1
            s = x - x_old
            y = step.grad - grad
            sy = float(torch.dot(s, y))
            if sy > 1e-10 * float(torch.dot(y, y)):
                state.s.append(s), state.y.append(y), state.rho.append(1.0 / sy)
                if len(state.s) > self.memory:
                    state.s.pop(0), state.y.pop(0), state.rho.pop(0)
        else:
            state.clear()
        return step
