"""Base classes: an optimizer holds hyperparameters only; its state lives apart.

Two families share one interface with the training engine:

* :class:`UpdateRule` - methods whose step is ``x <- x + Δx`` with
  ``Δx = -η · direction(g, state)``, for a step size ``η`` given by the caller
  (a constant or a schedule).  They work on mini-batches or the full batch.
* :class:`SearchMethod` - full-batch methods that choose their own step along a
  direction by evaluating the objective (line searches, steepest descent,
  L-BFGS).  They receive an :class:`Oracle` for the full objective.

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


@dataclass
class StepResult:
    """What a search method reports about one iteration.

    ``fun``/``grad`` are the objective and gradient at the new point when the
    method evaluated them (``grad`` may be ``None``: the caller evaluates it).
    ``step_size`` is the η actually taken (0 when no decrease was found).
    """

    fun: float
    grad: torch.Tensor | None
    step_size: float
    n_evals: int


class Optimizer(BaseEstimator):
    """Common base of every optimizer: hyperparameters only.

    Attributes
    ----------
    full_batch : bool
        Whether the method always uses the whole training set per step.
    auto_learning_rate : float or None
        The step used when ``learning_rate_init='auto'`` and no better estimate
        is available; ``None`` means "1/L when L can be estimated".
    auto_scale_fraction : float or None
        For methods whose step moves each coordinate by about η whatever the size
        of the gradient (AdaGrad, RMSProp and Adam divide by a running gradient
        magnitude, so η is a distance): the fraction of the solution's scale that
        ``'auto'`` takes as η where a model can estimate that scale (the linear
        models do); ``None`` for the other methods.
    """

    full_batch: ClassVar[bool] = False
    auto_learning_rate: ClassVar[float | None] = None
    auto_scale_fraction: ClassVar[float | None] = None
    #: the string name that selects the method (``optimizer='adam'``)
    name: ClassVar[str] = ""
    #: declarative validation of the hyperparameters (scikit-learn's format)
    _parameter_constraints: ClassVar[dict] = {}

    def init_state(self, x: torch.Tensor) -> dict[str, Any]:
        """Fresh running state for parameters shaped like ``x``."""
        return {"k": 0}


class UpdateRule(Optimizer):
    """A method with an explicit update ``x <- x - η · direction``."""

    @abstractmethod
    def update(self, x: torch.Tensor, g: torch.Tensor, lr: float, state: dict) -> None:
        """Apply one step in place to ``x`` given the gradient ``g`` and step ``lr``."""


class SearchMethod(Optimizer):
    """A full-batch method that evaluates ``f`` to choose its step."""

    full_batch: ClassVar[bool] = True
    auto_learning_rate: ClassVar[float | None] = 1.0

    @abstractmethod
    def iterate(
        self, x: torch.Tensor, fun: float, grad: torch.Tensor, lr: float, state: dict,
        oracle: Oracle,
    ) -> StepResult:
        """Take one iteration in place on ``x`` from ``f(x)=fun``, ``∇f(x)=grad``."""
