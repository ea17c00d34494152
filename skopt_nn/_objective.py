"""What the training loop asks of a model: the :class:`Objective` protocol.

An objective is F(x) of one flat parameter vector x on a :class:`~._data.Dataset`
(a batch or the whole training set), with its gradient written into a buffer.
The linear models (:mod:`._linear_objective`) and the MLPs (:mod:`._mlp_objective`)
implement it; the engine and the optimizers use nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ._data import Dataset
from ._losses import Loss


@dataclass(frozen=True)
class NetworkSpec:
    """A model written as layers, ``Z_l = σ(Z_{l-1}) W_l + b_l``: what many models of one
    architecture are stacked by (:mod:`skopt_nn._population`).

    The penalty is α/2 Σ‖W_l‖² scaled by 1/S, S the batch's sum of raw sample
    weights, where ``penalty_per_batch`` (the MLPs, as scikit-learn's), unscaled
    otherwise (the linear models); without ``fit_intercept`` the intercepts stay 0.
    """

    layer_sizes: tuple[int, ...]
    activation: str
    loss: Loss
    fit_intercept: bool
    penalty_per_batch: bool


class Objective(ABC):
    """F(x) on a data set, its gradient and the optional facts a method may use.

    Attributes
    ----------
    loss : Loss
        The per-sample loss on the model's raw output.
    n_params : int
        The length of the flat parameter vector x.
    """

    loss: Loss
    n_params: int

    @abstractmethod
    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor."""

    @abstractmethod
    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor; writes ∇F(x) into ``g`` (``x``'s layout)."""

    @abstractmethod
    def decision(self, x: torch.Tensor, X) -> torch.Tensor:
        """The raw output Z of shape ``(n, K)`` for inputs ``X``."""

    # -- optional facts, with defaults that say "not available" ---------------------------
    def curvature(self, d: torch.Tensor, data: Dataset) -> float | None:
        """dᵀ∇²F d where it is cheap and exact (a quadratic F); ``None`` otherwise."""
        return None

    def lipschitz(self, data: Dataset) -> float | None:
        """A global bound L on the gradient's Lipschitz constant; ``None`` if unknown."""
        return None

    def project(self, x: torch.Tensor) -> bool:
        """Put ``x`` back in the model's parameter set in place; whether it changed."""
        return False

    def network(self) -> NetworkSpec | None:
        """The model as layers, where it is one (it may then train in a population)."""
        return None
