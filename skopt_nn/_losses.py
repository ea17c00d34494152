r"""Per-sample losses and their derivatives with respect to the model output.

The lecture's SGD slide lists, for a linear output z = aᵀx and label l:

* least squares  f = ½ (z − l)²
* absolute       f = ``|z − l|``        (the slide drops the bars)
* hinge          f = max(0, 1 − l z),   l ∈ {−1, 1}
* logistic       f = log(1 + exp(−l z)), l ∈ {−1, 1} (computed as softplus(−l z))

plus softmax cross-entropy for multi-class outputs.  Each ``Loss`` returns the
per-sample values f (shape ``(n,)``) and ∂f/∂z (shape ``(n, K)``), which is the
output δ of backpropagation (lecture Eq. 10-11) and the residual of the linear
models' gradient.  Over K outputs, squared and absolute errors are averaged (as
scikit-learn's MLP averages squared error) and the binary losses summed (one-vs-
rest / multilabel, as its binary log-loss sums over labels).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F


class Loss:
    """A per-sample loss f(z, l) of the raw output z, and the facts models need of it."""

    name: ClassVar[str]
    #: targets are ±1 (binary losses), one-hot (softmax) or real values
    target: ClassVar[str]
    #: whether f is differentiable everywhere (hinge and absolute error have kinks)
    smooth: ClassVar[bool] = True
    #: a bound on ∂²f/∂z² per output, for the curvature bound L of a linear model
    #: (the nonsmooth losses use the squared error's 1, which gives a step of the
    #: right scale)
    curvature_bound: ClassVar[float] = 1.0
    #: whether f averages over the K outputs (its curvature bound is then c/K)
    averages_outputs: ClassVar[bool] = False
    #: the loss that replaces this one for K > 1 mutually exclusive classes
    multiclass: ClassVar[str | None] = None
    #: scikit-learn's ``out_activation_`` name of the prediction's link
    out_activation: ClassVar[str] = "identity"
    #: whether the targets must be non-negative (counts)
    nonnegative_targets: ClassVar[bool] = False

    def output_curvature(self, n_outputs: int) -> float:
        """The bound on ∂²F/∂z² per sample over ``n_outputs`` outputs."""
        c = self.curvature_bound
        return c / n_outputs if self.averages_outputs else c

    @staticmethod
    def inverse_link(Z: np.ndarray) -> np.ndarray:
        """The prediction for the raw output ``Z`` (the identity but for a log link)."""
        return Z

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.value_and_derivative(Z, Y)[0]

    def value_and_derivative(
        self, Z: torch.Tensor, Y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError  # pragma: no cover - every subclass overrides


class SquaredError(Loss):
    name = "squared_error"
    target = "real"
    averages_outputs = True

    def value(self, Z, Y):
        r = Z - Y
        return 0.5 * (r * r).mean(1)

    def value_and_derivative(self, Z, Y):
        r = Z - Y
        K = Z.shape[1]
        return 0.5 * (r * r).mean(1), (r if K == 1 else r / K)


class AbsoluteError(Loss):
    name = "absolute_error"
    target = "real"
    smooth = False
    averages_outputs = True

    def value(self, Z, Y):
        return (Z - Y).abs().mean(1)

    def value_and_derivative(self, Z, Y):
        r = Z - Y
        K = Z.shape[1]
        d = torch.sign(r)
        return r.abs().mean(1), (d if K == 1 else d / K)


class HalfPoisson(Loss):
    """Half Poisson deviance with a log link: f = exp(z) − y z + y log y − y.

    The prediction is exp(z); ∂f/∂z = exp(z) − y.  Summed over outputs, as
    scikit-learn's MLP sums it.
    """

    name = "poisson"
    target = "real"
    out_activation = "exp"
    nonnegative_targets = True

    @staticmethod
    def inverse_link(Z):
        return np.exp(Z)

    def value(self, Z, Y):
        return (torch.exp(Z) - Y * Z + torch.xlogy(Y, Y) - Y).sum(1)

    def value_and_derivative(self, Z, Y):
        mu = torch.exp(Z)
        return (mu - Y * Z + torch.xlogy(Y, Y) - Y).sum(1), mu - Y


class Hinge(Loss):
    name = "hinge"
    target = "sign"
    smooth = False

    def value(self, Z, Y):
        return torch.relu(1 - Y * Z).sum(1)

    def value_and_derivative(self, Z, Y):
        margin = 1 - Y * Z
        return torch.relu(margin).sum(1), -Y * (margin > 0)


class Logistic(Loss):
    name = "logistic"
    target = "sign"
    curvature_bound = 0.25
    multiclass = "softmax"
    out_activation = "logistic"

    def value(self, Z, Y):
        return F.softplus(-Y * Z).sum(1)

    def value_and_derivative(self, Z, Y):
        t = torch.mul(Y, Z).neg_()
        return F.softplus(t).sum(1), torch.sigmoid(t).mul_(Y).neg_()


#: from this many classes the softmax is taken on the transposed output (measured:
#: slower for 3 classes, faster for 10, on 200-256 rows)
_TRANSPOSED_SOFTMAX_K = 8


class SoftmaxCrossEntropy(Loss):
    name = "softmax"
    target = "onehot"
    curvature_bound = 0.5
    out_activation = "softmax"

    def value(self, Z, Y):
        return torch.logsumexp(Z, 1) - (Z * Y).sum(1)

    def value_and_derivative(self, Z, Y):
        if Z.shape[1] >= _TRANSPOSED_SOFTMAX_K:
            # over the classes of a contiguous Zᵀ (K, n): the same numbers, and for
            # 10 classes about 40% faster than along the short rows of Z (n, K)
            log_pT = torch.log_softmax(Z.T.contiguous(), 0)
            YT = Y.T
            return -(log_pT * YT).sum(0), log_pT.exp_().sub_(YT).T
        log_p = torch.log_softmax(Z, 1)
        return -(log_p * Y).sum(1), log_p.exp_().sub_(Y)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (SquaredError, AbsoluteError, HalfPoisson, Hinge, Logistic, SoftmaxCrossEntropy)
}

#: the estimators' names for a loss that :data:`LOSSES` knows by another name
ALIASES = {"log_loss": "logistic"}


def get_loss(name: str, n_outputs: int = 1, *, multilabel: bool = False) -> Loss:
    """The loss an estimator's ``loss=name`` trains with on ``n_outputs`` outputs.

    A binary loss with a multi-class form (logistic → softmax) takes that form for
    more than one mutually exclusive output; multilabel targets keep one binary
    loss per label.
    """
    cls = LOSSES[ALIASES.get(name, name)]
    if n_outputs > 1 and not multilabel and cls.multiclass is not None:
        cls = LOSSES[cls.multiclass]
    return cls()
