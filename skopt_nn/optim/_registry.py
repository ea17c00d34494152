"""Optimizer names, as accepted by ``optimizer=`` on every estimator and ``minimize``."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import Optimizer
from ._schedules import SCHEDULES
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


#: scikit-learn-style constraints of the parameters that every estimator and
#: :func:`~skopt_nn.optim.minimize` share (validated by scikit-learn's machinery)
STEP_CONSTRAINTS: dict = {
    "optimizer": [StrOptions(set(OPTIMIZERS)), HasMethods(["init_state", "get_params"])],
    "learning_rate_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    "learning_rate": [StrOptions(set(SCHEDULES))],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left"), None],
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
