r"""The update rules of :mod:`skopt_nn.optim` applied to M models at once.

Parameters and gradients are ``(M, P)`` matrices, one row per model; each
model's hyperparameters (its step η, β₁, β₂, momentum, ε, γ) are ``(M, 1)``
columns, so one step of M models is the same handful of vector operations as
one model's, on M times the numbers.  The equations are those of the single
rules (:mod:`skopt_nn.optim._update_rules`, lecture Eq. 4, 8, 16, 33-39); the
state of one model is a row of the stacked state and becomes that rule's own
typed state after training (:meth:`PopulationRule.state_of`).

Which optimizers train together: those with an entry in :data:`RULES`, each
with its own hyperparameters; a setting that changes the shapes or the control
flow (``elementwise=False``, ``sampling='with_replacement'``) is fitted alone.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from ..optim._update_rules import SGD, AdaGrad, Adam, GradientDescent, Momentum, RMSProp
from ._scratch import Scratch


class PopulationRule:
    """An update rule of M models: ``update(X, G, lr, state)`` on ``(M, P)`` rows.

    ``hyper`` names the per-model hyperparameters, read from each model's
    optimizer into ``(M, 1)`` columns; ``state_fields`` the ``(M, P)`` tensors of
    the stacked state, which are those of the single rule's typed state.
    """

    hyper: ClassVar[tuple[str, ...]] = ()
    state_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, optimizers: list, like: torch.Tensor):
        self.optimizers = list(optimizers)
        self.columns = {name: _column([getattr(o, name) for o in optimizers], like)
                        for name in self.hyper}
        self.count = 0  # steps taken (the same for every model of the population)
        self.scratch = Scratch()  # a step's temporaries, reused
        self._set_shared()

    def _set_shared(self) -> None:
        """``shared[name]``: the hyperparameter as a float where every model has the same
        value (a scalar argument saves a pass over the rows), else None."""
        self.shared = {}
        for name in self.hyper:
            values = {getattr(o, name) for o in self.optimizers}
            self.shared[name] = float(values.pop()) if len(values) == 1 else None

    @staticmethod
    def accepts(optimizer) -> bool:
        """Whether this optimizer's settings train in a population."""
        return True

    def init_state(self, X: torch.Tensor) -> dict:
        return {name: torch.zeros_like(X) for name in self.state_fields}

    def update(self, X: torch.Tensor, G: torch.Tensor, lr: torch.Tensor, state: dict) -> None:
        raise NotImplementedError  # pragma: no cover - every rule overrides

    def select(self, keep: torch.Tensor, state: dict) -> dict:
        """Keep the models ``keep`` (row indices): hyperparameters and state."""
        rows = keep.tolist()
        self.optimizers = [self.optimizers[i] for i in rows]
        self.columns = {k: v.index_select(0, keep) for k, v in self.columns.items()}
        self._set_shared()
        return {k: v.index_select(0, keep) for k, v in state.items()}

    def state_of(self, i: int, x: torch.Tensor, state: dict):
        """Model ``i``'s state as its own optimizer's typed state at ``x``."""
        single = self.optimizers[i].init_state(x)
        for name in self.state_fields:
            getattr(single, name).copy_(state[name][i])
        if hasattr(single, "count"):
            single.count = self.count
        return single


def _column(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=like.dtype,
                        device=like.device).reshape(-1, 1)


class _Plain(PopulationRule):
    """x ← x − η ∇f (Eq. 4 and 16)."""

    def update(self, X, G, lr, state):
        X.addcmul_(G, lr, value=-1.0)


class _Momentum(PopulationRule):
    """Δx ← α Δx − η ∇f, x ← x + Δx (Eq. 8); Nesterov's x ← x + α Δx − η ∇f."""

    hyper = ("momentum", "nesterov")
    state_fields = ("delta",)

    def update(self, X, G, lr, state):
        mu, nesterov = self.columns["momentum"], self.columns["nesterov"]
        delta = state["delta"]
        delta.mul_(mu).addcmul_(G, lr, value=-1.0)  # Eq. 8
        # plain: x + Δx; Nesterov: x + α Δx − η ∇f
        X.addcmul_(delta, torch.where(nesterov > 0, mu, torch.ones_like(mu)))
        X.addcmul_(G, lr * nesterov, value=-1.0)


class _AdaGrad(PopulationRule):
    """G² ← G² + g², x ← x − η g / √(ε + G²) (Eq. 32-34)."""

    hyper = ("epsilon",)
    state_fields = ("sum_sq",)

    def update(self, X, G, lr, state):
        sum_sq = state["sum_sq"]
        sum_sq.addcmul_(G, G)
        X.sub_(G.mul(lr).mul_(sum_sq.add(self.columns["epsilon"]).rsqrt_()))


class _RMSProp(PopulationRule):
    """v ← γ v + (1 − γ) g², x ← x − η g / √(ε + v) (Eq. 35-36), per coordinate."""

    hyper = ("gamma", "epsilon")
    state_fields = ("v",)

    @staticmethod
    def accepts(optimizer) -> bool:
        return bool(optimizer.elementwise)

    def update(self, X, G, lr, state):
        gamma = self.columns["gamma"]
        v = state["v"]
        v.mul_(gamma).addcmul_(G, G.mul(1.0 - gamma))  # Eq. 35
        X.sub_(G.mul(lr).mul_(v.add(self.columns["epsilon"]).rsqrt_()))  # Eq. 36


class _Adam(PopulationRule):
    """Eq. 37-39 with the bias corrections folded into the step, as the single rule:
    x ← x − η √(1 − β₂ᵏ)/(1 − β₁ᵏ) · m / √v, where v follows Eq. 38 with g² + ε."""

    hyper = ("beta_1", "beta_2", "epsilon")
    state_fields = ("m", "v")

    @staticmethod
    def accepts(optimizer) -> bool:
        return bool(optimizer.elementwise)

    def update(self, X, G, lr, state):
        self.count += 1
        k = self.count
        m, v = state["m"], state["v"]
        shared = self.shared
        if None in shared.values():  # per-model β₁, β₂, ε: as columns
            b1, b2, eps = (self.columns[name] for name in self.hyper)
            rate = lr * (1.0 - b2**k).sqrt_() / (1.0 - b1**k)
            m.lerp_(G, 1.0 - b1)  # Eq. 37
            v.mul_(b2).addcmul_(G, G.mul(1.0 - b2)).add_(eps * (1.0 - b2))  # Eq. 38, g² + ε
        else:  # one β₁, β₂, ε for all: scalars, two passes fewer
            b1, b2, eps = (shared[name] for name in self.hyper)
            rate = lr * (math.sqrt(1.0 - b2**k) / (1.0 - b1**k))
            m.lerp_(G, 1.0 - b1)
            v.mul_(b2).addcmul_(G, G, value=1.0 - b2).add_(eps * (1.0 - b2))
        # Eq. 39 (1/√v: one call)
        X.addcmul_(m, torch.rsqrt(v, out=self.scratch.get("rsqrt", v.shape, v)).mul_(rate),
                   value=-1.0)


#: the optimizers that train in a population, by class
RULES: dict[type, type[PopulationRule]] = {
    GradientDescent: _Plain, SGD: _Plain, Momentum: _Momentum, AdaGrad: _AdaGrad,
    RMSProp: _RMSProp, Adam: _Adam,
}


def population_rule(optimizer) -> type[PopulationRule] | None:
    """The population form of ``optimizer``'s rule, or None when it trains alone."""
    rule = RULES.get(type(optimizer))
    if rule is None or not rule.accepts(optimizer):
        return None
    if optimizer.batch_sampling() != "without_replacement":
        return None
    return rule


def structure(optimizer) -> tuple:
    """What must be equal for two optimizers to train together: the class and the
    settings that are not per-model columns."""
    rule = RULES[type(optimizer)]
    params = optimizer.get_params()
    return (type(optimizer),) + tuple(sorted(
        (k, v) for k, v in params.items() if k not in rule.hyper))


__all__ = ["RULES", "PopulationRule", "population_rule", "structure"]
