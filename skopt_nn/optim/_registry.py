"""Optimizer names, as accepted by ``optimizer=`` on every estimator and ``minimize``."""

from __future__ import annotations

from ._base import Optimizer
from ._search_methods import (
    LBFGS,
    ArmijoLineSearch,
    HalvingLineSearch,
    SteepestDescent,
    WolfeLineSearch,
)
from ._update_rules import SGD, AdaGrad, Adam, GradientDescent, Momentum, RMSProp

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls
    for cls in (
        GradientDescent,
        HalvingLineSearch,
        ArmijoLineSearch,
        WolfeLineSearch,
        SteepestDescent,
        Momentum,
        SGD,
        AdaGrad,
        RMSProp,
        Adam,
        LBFGS,
    )
}


def get_optimizer(optimizer: str | Optimizer) -> Optimizer:
    """The optimizer object for a name or an object (returned as is).

    Raises
    ------
    ValueError
        If ``optimizer`` is neither a known name nor an :class:`Optimizer`.
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]()
    raise ValueError(
        f"optimizer={optimizer!r} is not supported; use one of {sorted(OPTIMIZERS)} "
        "or an instance of skopt_nn.optim.Optimizer."
    )
