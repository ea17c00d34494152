"""The lecture's optimizers, usable by every estimator and by :func:`minimize`."""

from . import line_search
from ._base import Optimizer, SearchMethod, StepResult, UpdateRule
from ._minimize import OptimizeResult, minimize
from ._registry import OPTIMIZERS, get_optimizer
from ._search_methods import (
    LBFGS,
    ArmijoLineSearch,
    HalvingLineSearch,
    SteepestDescent,
    WolfeLineSearch,
)
from ._update_rules import SGD, AdaGrad, Adam, GradientDescent, Momentum, RMSProp

__all__ = [
    "LBFGS",
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "ArmijoLineSearch",
    "GradientDescent",
    "HalvingLineSearch",
    "Momentum",
    "OptimizeResult",
    "Optimizer",
    "RMSProp",
    "SearchMethod",
    "SteepestDescent",
    "StepResult",
    "UpdateRule",
    "WolfeLineSearch",
    "get_optimizer",
    "line_search",
    "minimize",
]
