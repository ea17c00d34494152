"""Base classes: an optimizer holds hyperparameters only; its state lives apart.

Every optimizer offers one step interface to the training loop and to
:func:`~skopt_nn.optim.minimize`::

    state = optimizer.init_state(x)                   # its typed running state
    result = optimizer.step(x, fun, grad, lr, state, oracle)   # x updated in place

given f(x) and ∇f(x) at the current point and the step size η = ``lr`` of the
caller's schedule; ``result`` is a :class:`StepResult`.  The step counter and the
schedule belong to the caller, so resetting a method's state (after a divergence,
say) does not restart the schedule.  Two families implement ``step``:

* :class:`UpdateRule` - ``x <- x - η · direction(g, state)`` (gradient descent,
  SGD, momentum, AdaGrad, RMSProp, Adam); ``step`` wraps the method's ``update``,
  which reads like its equation.  They work on mini-batches or the full batch.
* :class:`SearchMethod` - full-batch methods that choose their own step along a
  direction by evaluating the objective (line searches, steepest descent,
  L-BFGS) through an :class:`Oracle` for the full objective.

What a method needs from its caller is declared on the class, not found out:
``full_batch``, ``searches`` (whether its step evaluates f), ``stops_on_plateau``,
:meth:`Optimizer.evaluation_budget`, :meth:`Optimizer.batch_sampling` and
:meth:`Optimizer.auto_step` (its step for ``learning_rate_init='auto'``).

Hyperparameters follow scikit-learn's conventions (``get_params``/``set_params``,
:func:`sklearn.base.clone`), so a grid search can set ``optimizer__momentum``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from sklearn.base import BaseEstimator


class Oracle(Protocol):
    """The full objective ``f`` as seen by a :class:`SearchMethod`."""

    def value(self, x: torch.Tensor) -> float:
        """``f(x)`` as a Python float."""

    def value_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """``f(x)`` and a new tensor holding ``∇f(x)``."""


class StepProblem(Protocol):
    """What an optimizer's 'auto' step may ask about the objective at the start x⁰.

    See :class:`skopt_nn.optim._initial_step.StartingPoint`, the implementation
    shared by the estimators and :func:`~skopt_nn.optim.minimize`.
    """

    #: the model prefers fixed steps for the mini-batch methods (scikit-learn's
    #: MLP defaults: on a nonconvex network the start's curvature says little)
    fixed_steps: bool

    def lipschitz(self) -> float:
        """L, the gradient's Lipschitz constant (a model's bound, or estimated at x⁰)."""

    def solution_scale(self) -> float | None:
        """max|∇F(x⁰)|/L where it measures the distance to the solution (convex
        models); ``None`` otherwise."""


@dataclass(slots=True)
class StepResult:
    """What one step reports.

    ``fun``/``grad`` are the objective and gradient at the new point when the
    method evaluated them (``grad`` is ``None`` when it did not: the caller
    evaluates it).  ``step_size`` is the η actually taken (0 when a search found
    no decrease: x is then unchanged); ``n_evals`` counts the method's evaluations
    of f.
    """

    fun: float
    grad: torch.Tensor | None
    step_size: float
    n_evals: int


@dataclass
class NoState:
    """The state of a method that keeps none (gradient descent, SGD, line searches)."""


class Optimizer(BaseEstimator):
    """Common base of every optimizer: hyperparameters only.

    Attributes
    ----------
    full_batch : bool
        Whether the method always uses the whole training set per step.
    searches : bool
        Whether its step evaluates the objective to choose η (it then needs an
        :class:`Oracle`, and a step of 0 means that no decrease was found).
    stops_on_plateau : bool
        Whether the loss-plateau rule (``n_iter_no_change``) applies to it; the
        search methods stop on the gradient and on a failed search instead, as
        scipy's L-BFGS.
    auto_learning_rate : float or None
        The fixed step that ``learning_rate_init='auto'`` takes when the method
        does not derive one from the objective (see :meth:`auto_step`).
    auto_scale_fraction : float or None
        For methods whose step moves each coordinate by about η whatever the size
        of the gradient (AdaGrad, RMSProp and Adam divide by a running gradient
        magnitude, so η is a distance): the fraction of the solution's scale that
        ``'auto'`` takes as η where a model can estimate that scale (the linear
        models do); ``None`` for the other methods.
    proximal : bool
        Whether the update is x ← x − η·direction with known per-coordinate steps
        (:meth:`coordinate_steps`), so that a truncated-gradient step (the linear
        models' L1 penalty) can follow it: the update rules, not the searches.
    """

    full_batch: ClassVar[bool] = False
    searches: ClassVar[bool] = False
    stops_on_plateau: ClassVar[bool] = True
    auto_learning_rate: ClassVar[float | None] = None
    auto_scale_fraction: ClassVar[float | None] = None
    proximal: ClassVar[bool] = False
    #: the string name that selects the method (``optimizer='adam'``)
    name: ClassVar[str] = ""
    #: declarative validation of the hyperparameters (scikit-learn's format)
    _parameter_constraints: ClassVar[dict] = {}

    def init_state(self, x: torch.Tensor) -> Any:
        """Fresh running state for parameters shaped like ``x``."""
        return NoState()

    @abstractmethod
    def step(self, x: torch.Tensor, fun: float, grad: torch.Tensor, lr: float, state: Any,
             oracle: Oracle | None = None) -> StepResult:
        """One step in place on ``x`` from ``f(x) = fun`` and ``∇f(x) = grad``."""

    # -- capabilities --------------------------------------------------------------------
    def evaluation_budget(self) -> int | None:
        """The most evaluations of f a fit may spend (``None``: no budget)."""
        return None

    def batch_sampling(self) -> str:
        """How mini-batches are drawn: 'without_replacement' or 'with_replacement'."""
        return "without_replacement"

    def auto_step(self, problem: StepProblem) -> float:
        """η₀ for ``learning_rate_init='auto'``: by default 1/L for L the gradient's
        Lipschitz constant.

        This is the step of lecture Eq. 3."""
        return 1.0 / problem.lipschitz()

    def coordinate_steps(self, lr: float, state: Any) -> float | torch.Tensor | None:
        """The step each coordinate took in the last update of base step ``lr``, a
        number or a vector (what a proximal or truncated-gradient step scales by);
        ``None`` for methods whose step is not η times a direction."""
        return None


class UpdateRule(Optimizer):
    """A method with an explicit update ``x <- x - η · direction``."""

    proximal: ClassVar[bool] = True

    def coordinate_steps(self, lr: float, state: Any) -> float | torch.Tensor:
        """η itself: the rule moves every coordinate by η times its direction."""
        return lr

    @abstractmethod
    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: Any) -> None:
        """Apply one step in place to ``x`` given the gradient ``g`` and step ``lr``."""

    def step(self, x, fun, grad, lr, state, oracle=None) -> StepResult:
        """The update with step ``lr``; f and ∇f at the new point are left to the caller."""
        self.update(x, grad, lr, state)
        return StepResult(fun, None, lr, 0)


class SearchMethod(Optimizer):
    """A full-batch method that evaluates ``f`` to choose its step."""

    full_batch: ClassVar[bool] = True
    searches: ClassVar[bool] = True
    stops_on_plateau: ClassVar[bool] = False
    auto_learning_rate: ClassVar[float | None] = 1.0

    def auto_step(self, problem: StepProblem) -> float:
        """The first trial step of the search: η = 1 (the lecture's)."""
        return 1.0

    def iterate(self, x, fun, grad, lr, state, oracle) -> StepResult:
        """:meth:`step` under its former name."""
        return self.step(x, fun, grad, lr, state, oracle)
