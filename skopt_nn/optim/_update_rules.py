"""Update-rule methods: gradient descent, SGD, momentum, AdaGrad, RMSProp, Adam.

Each ``update`` reads like its equation in the lecture ("Backpropagation, SGD,
and Adam", listed in the documentation's References); ``x``, ``g`` and the state
tensors are flat vectors, so one step is a handful of vector operations and never
leaves the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import ClassVar

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import NoState, StepProblem, UpdateRule

SAMPLINGS = ("without_replacement", "with_replacement")
#: torch's fused Adam step (one kernel for Eq. 37-39), where this torch has it
_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


@dataclass
class MomentumState:
    """Δx⁽ᵏ⁻¹⁾, the last step taken (Eq. 8)."""

    delta: torch.Tensor


@dataclass
class AdaGradState:
    """Σ_τ g⁽ᵗᵃᵘ⁾², the running sum of squared gradients (Eq. 33)."""

    sum_sq: torch.Tensor


@dataclass
class RMSPropState:
    """v, the running mean of squared gradients (Eq. 35)."""

    v: torch.Tensor


@dataclass
class AdamState:
    """The moments (Eq. 37-38) and the number of steps that built them, which the
    bias corrections of Eq. 39 use.

    ``v`` holds v⁽ᵏ⁾ + ε(1 − β₂ᵏ), which follows v's recursion with g² + ε in place
    of g²: the root of Eq. 39 is then √(v/(1 − β₂ᵏ)) = √(v̂ + ε).  ``step`` is the
    step count handed to torch's fused kernel (``None`` where it is not used), held
    at +∞ so that the kernel applies no bias correction of its own: the corrections
    of step ``count`` are folded into the step size instead.
    """

    count: int
    m: torch.Tensor
    v: torch.Tensor
    step: torch.Tensor | None = None


class _FractionOfScale:
    """The 'auto' step of a method whose step is a distance (AdaGrad, RMSProp, Adam)."""

    auto_scale_fraction: ClassVar[float]
    auto_learning_rate: ClassVar[float]

    def auto_step(self, problem: StepProblem) -> float:
        """A fraction of the solution's scale max|∇F(x⁰)|/L where the model can
        estimate it (the linear models); else the fixed ``auto_learning_rate``."""
        scale = problem.solution_scale()
        if scale is not None and scale > 0:
            return self.auto_scale_fraction * scale
        return self.auto_learning_rate


class GradientDescent(UpdateRule):
    r"""Gradient descent with a fixed or scheduled step.

    The update of lecture Eq. 4:

    .. math:: x^{(k+1)} = x^{(k)} - \eta^{(k)} \nabla f(x^{(k)})

    Always uses the full batch: one step per epoch.  With
    ``learning_rate_init='auto'`` the estimators use η = 1/L (Eq. 3) where the
    Lipschitz constant L of the gradient can be estimated from the data.
    """

    full_batch: ClassVar[bool] = True
    name: ClassVar[str] = "gd"

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: NoState) -> None:
        x.add_(g, alpha=-lr)


class SGD(UpdateRule):
    r"""Stochastic and mini-batch gradient descent.

    The update of lecture Eq. 16 and 26:

    .. math:: x^{(k+1)} = x^{(k)} - \eta^{(k)} \frac{1}{b}\sum_{i\in B_k} \nabla f_i(x^{(k)})

    ``batch_size=1`` is Eq. 16 (one sample per step).

    Parameters
    ----------
    sampling : {'without_replacement', 'with_replacement'}, default='without_replacement'
        How batches are drawn.  ``'without_replacement'`` splits each epoch into
        disjoint batches of a fresh permutation (Eq. 24-25, gradient error
        Eq. 30); ``'with_replacement'`` bootstraps every batch independently
        (Eq. 31), ``n // batch_size`` batches making an epoch.
    """

    name: ClassVar[str] = "sgd"
    _parameter_constraints: ClassVar[dict] = {"sampling": [StrOptions(set(SAMPLINGS))]}

    auto_learning_rate: ClassVar[float | None] = 0.01

    def __init__(self, sampling: str = "without_replacement"):
        self.sampling = sampling

    def batch_sampling(self) -> str:
        return self.sampling

    def auto_step(self, problem: StepProblem) -> float:
        """The gradient-descent step 1/L, or 0.01 where the model prefers fixed steps.

        1/L is lecture Eq. 3; the MLPs prefer the fixed step (scikit-learn's)."""
        if problem.fixed_steps:
            return self.auto_learning_rate
        return 1.0 / problem.lipschitz()

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: NoState) -> None:
        x.add_(g, alpha=-lr)


class Momentum(UpdateRule):
    r"""Gradient descent with momentum.

    The update of lecture Eq. 8:

    .. math::
        (\Delta x)^{(k)} = \alpha (\Delta x)^{(k-1)} - \eta^{(k)} \nabla f(x^{(k)}),
        \qquad x^{(k+1)} = x^{(k)} + (\Delta x)^{(k)}

    with α = ``momentum`` and Δx⁽⁰⁾ = 0.  With a constant step this is
    ``torch.optim.SGD(momentum=α)``; with a schedule the lecture's form keeps each
    past step at the size it was taken.  Uses mini-batches (``batch_size``).

    Parameters
    ----------
    momentum : float, default=0.9
        α in Eq. 8, in [0, 1).
    nesterov : bool, default=False
        Use Nesterov's look-ahead: the step applied is α Δx⁽ᵏ⁾ - η ∇f, as
        scikit-learn's ``nesterovs_momentum``.
    """

    name: ClassVar[str] = "momentum"
    _parameter_constraints: ClassVar[dict] = {
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
    }

    auto_learning_rate: ClassVar[float | None] = 1e-3

    def __init__(self, momentum: float = 0.9, nesterov: bool = False):
        self.momentum = momentum
        self.nesterov = nesterov

    def auto_step(self, problem: StepProblem) -> float:
        """(1 − α)/L, or 1e-3 where the model prefers fixed steps (the MLPs).

        The heavy ball's steps add up to η/(1 − α), which this keeps at the 1/L of
        lecture Eq. 3; 1e-3 is scikit-learn's MLP default with momentum."""
        if problem.fixed_steps:
            return self.auto_learning_rate
        return (1.0 - self.momentum) / problem.lipschitz()

    def init_state(self, x: torch.Tensor) -> MomentumState:
        return MomentumState(torch.zeros_like(x))

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: MomentumState) -> None:
        delta = state.delta
        delta.mul_(self.momentum).add_(g, alpha=-lr)  # Eq. 8
        if self.nesterov:
            x.add_(delta, alpha=self.momentum).add_(g, alpha=-lr)
        else:
            x.add_(delta)


class AdaGrad(_FractionOfScale, UpdateRule):
    r"""Adaptive gradient, AdaGrad.

    The update of lecture Eq. 32-34:

    .. math::
        G_{jj}^{(k)} = \sqrt{\varepsilon + \sum_{\tau=0}^{k} g_j^{(\tau)2}}, \qquad
        x_j^{(k+1)} = x_j^{(k)} - \frac{\eta^{(k)}}{G_{jj}^{(k)}}\, g_j^{(k)}

    ε sits inside the square root as in Eq. 33 (``torch.optim.Adagrad`` adds its
    ``eps`` outside; the two agree for ε = 0).

    Parameters
    ----------
    epsilon : float, default=1e-10
        ε ≥ 0 of Eq. 33.
    """

    name: ClassVar[str] = "adagrad"
    _parameter_constraints: ClassVar[dict] = {"epsilon": [Interval(Real, 0, None, closed="left")]}
    auto_learning_rate: ClassVar[float | None] = 0.01
    auto_scale_fraction: ClassVar[float | None] = 1.0  # its steps shrink as 1/√k

    def __init__(self, epsilon: float = 1e-10):
        self.epsilon = epsilon

    def init_state(self, x: torch.Tensor) -> AdaGradState:
        return AdaGradState(torch.zeros_like(x))

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: AdaGradState) -> None:
        sum_sq = state.sum_sq
        sum_sq.addcmul_(g, g)
        G = (sum_sq + self.epsilon).sqrt_()  # Eq. 33
        x.addcdiv_(g, G, value=-lr)  # Eq. 34

    def coordinate_steps(self, lr: float, state: AdaGradState) -> torch.Tensor:
        """The per-coordinate steps η/G_jj of AdaGrad's update.

        Lecture Eq. 34.
        """
        return lr / (state.sum_sq + self.epsilon).sqrt_()


class RMSProp(_FractionOfScale, UpdateRule):
    r"""Root mean square propagation, RMSProp.

    The update of lecture Eq. 35-36:

    .. math::
        v^{(k+1)} = \gamma v^{(k)} + (1-\gamma)\, g^{(k)} \odot g^{(k)}, \qquad
        x^{(k+1)} = x^{(k)} - \frac{\eta^{(k)}}{\sqrt{\varepsilon + v^{(k+1)}}}\, g^{(k)}

    The lecture writes v as a scalar, ``‖g‖²``; ``elementwise=False`` gives that
    form exactly.  The default keeps one v per coordinate, as the original method
    and ``torch.optim.RMSprop`` (``alpha=γ``; its ``eps`` is outside the root, so
    the two agree for ε = 0).

    Parameters
    ----------
    gamma : float, default=0.9
        Forgetting factor γ in [0, 1).
    epsilon : float, default=1e-10
        ε ≥ 0 inside the square root (Eq. 36).
    elementwise : bool, default=True
        Per-coordinate v (True) or the lecture's scalar v (False).
    """

    name: ClassVar[str] = "rmsprop"
    _parameter_constraints: ClassVar[dict] = {
        "gamma": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "elementwise": ["boolean"],
    }
    auto_learning_rate: ClassVar[float | None] = 0.01
    auto_scale_fraction: ClassVar[float | None] = 0.1  # its steps stay about η

    def __init__(self, gamma: float = 0.9, epsilon: float = 1e-10, elementwise: bool = True):
        self.gamma = gamma
        self.epsilon = epsilon
        self.elementwise = elementwise

    def init_state(self, x: torch.Tensor) -> RMSPropState:
        return RMSPropState(torch.zeros_like(x) if self.elementwise else x.new_zeros(()))

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: RMSPropState) -> None:
        v = state.v
        if self.elementwise:
            v.mul_(self.gamma).addcmul_(g, g, value=1 - self.gamma)  # Eq. 35
        else:
            v.mul_(self.gamma).add_(torch.dot(g, g), alpha=1 - self.gamma)
        x.addcdiv_(g, (v + self.epsilon).sqrt_(), value=-lr)  # Eq. 36

    def coordinate_steps(self, lr: float, state: RMSPropState) -> torch.Tensor:
        """The per-coordinate steps η/√(ε + v) of RMSProp's update.

        Lecture Eq. 36.
        """
        return lr / (state.v + self.epsilon).sqrt_()


class Adam(_FractionOfScale, UpdateRule):
    r"""Adaptive moment estimation, Adam.

    The update of lecture Eq. 37-39:

    .. math::
        m^{(k+1)} &= \beta_1 m^{(k)} + (1-\beta_1)\, g^{(k)} \\
        v^{(k+1)} &= \beta_2 v^{(k)} + (1-\beta_2)\, g^{(k)} \odot g^{(k)} \\
        \hat m = \frac{m^{(k+1)}}{1-\beta_1^{k}}, \quad
        \hat v &= \frac{v^{(k+1)}}{1-\beta_2^{k}}, \quad
        x^{(k+1)} = x^{(k)} - \frac{\eta^{(k)}}{\sqrt{\varepsilon + \hat v}}\, \hat m

    with k = 1, 2, … counting steps (the lecture's γ₁, γ₂ are β₁, β₂).  The lecture
    writes v as the scalar ``‖g‖²``; ``elementwise=False`` gives that form, the
    default keeps one v per coordinate as the paper and ``torch.optim.Adam``
    (whose ``eps`` is outside the root: the two agree for ε = 0).

    Parameters
    ----------
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of the first and second moment, in [0, 1).
    epsilon : float, default=1e-16
        ε ≥ 0 inside the square root of Eq. 39 (1e-16 inside the root is the
        usual 1e-8 outside it).
    elementwise : bool, default=True
        Per-coordinate v (True) or the lecture's scalar v (False).
    """

    name: ClassVar[str] = "adam"
    _parameter_constraints: ClassVar[dict] = {
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "elementwise": ["boolean"],
    }
    auto_learning_rate: ClassVar[float | None] = 1e-3
    auto_scale_fraction: ClassVar[float | None] = 0.3

    def __init__(
        self,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-16,
        elementwise: bool = True,
    ):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.elementwise = elementwise

    def init_state(self, x: torch.Tensor) -> AdamState:
        if not self.elementwise:
            return AdamState(0, torch.zeros_like(x), x.new_zeros(()))
        fused = _FUSED_ADAM is not None and x.device.type in ("cpu", "cuda") and \
            self.beta_2 > 0
        step = torch.full((), math.inf, device=x.device) if fused else None
        return AdamState(0, torch.zeros_like(x), torch.zeros_like(x), step)

    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: AdamState) -> None:
        state.count += 1
        k, m, v = state.count, state.m, state.v
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        # Eq. 39: x -= η m̂ / sqrt(ε + v̂) with m̂ = m/(1-β₁ᵏ), v̂ + ε = v/(1-β₂ᵏ), computed as
        # x -= η sqrt(1-β₂ᵏ)/(1-β₁ᵏ) · m / sqrt(v) (the same number, fewer ops)
        bc1, bc2 = 1 - b1**k, 1 - b2**k
        rate = lr * math.sqrt(bc2) / bc1
        if state.step is not None:  # Eq. 37-39 in torch's fused kernel, with its step
            # count at +∞ (no correction of its own) and ours in the rate; it takes
            # v ← β₂v + (1−β₂)g², so v first gains the ε(1−β₂)/β₂ of our form
            v.add_(eps * (1 - b2) / b2)
            _FUSED_ADAM([x], [g], [m], [v], [], [state.step], lr=rate, beta1=b1, beta2=b2,
                        weight_decay=0.0, eps=0.0, amsgrad=False, maximize=False)
            return
        m.lerp_(g, 1 - b1)  # Eq. 37
        if self.elementwise:  # Eq. 38 per coordinate, g² + ε for our v
            v.mul_(b2).addcmul_(g, g, value=1 - b2).add_(eps * (1 - b2))
        else:  # Eq. 38 as written
            v.mul_(b2).add_(torch.dot(g, g), alpha=1 - b2).add_(eps * (1 - b2))
        x.addcdiv_(m, v.sqrt(), value=-rate)

    def coordinate_steps(self, lr: float, state: AdamState) -> torch.Tensor:
        """The per-coordinate steps η/√(ε + v̂) that Adam's update applies to m̂.

        Lecture Eq. 39.
        """
        bc2 = 1 - self.beta_2 ** max(state.count, 1)
        return lr * math.sqrt(bc2) / state.v.sqrt()
