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

import torch
import torch.nn.functional as F


class Loss:
    name: ClassVar[str]
    #: targets are ±1 (binary losses), one-hot (softmax) or real values
    target: ClassVar[str]
    #: whether f is differentiable everywhere (hinge and absolute error have kinks)
    smooth: ClassVar[bool] = True

    def value(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.value_and_derivative(Z, Y)[0]

    def value_and_derivative(
        self, Z: torch.Tensor, Y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError  # pragma: no cover - every subclass overrides


class SquaredError(Loss):
    name = "squared_error"
    target = "real"

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

    def value(self, Z, Y):
        return F.softplus(-Y * Z).sum(1)

    def value_and_derivative(self, Z, Y):
        t = torch.mul(Y, Z).neg_()
        return F.softplus(t).sum(1), torch.sigmoid(t).mul_(Y).neg_()


class SoftmaxCrossEntropy(Loss):
    name = "softmax"
    target = "onehot"

    def value(self, Z, Y):
        return torch.logsumexp(Z, 1) - (Z * Y).sum(1)

    def value_and_derivative(self, Z, Y):
        log_p = torch.log_softmax(Z, 1)
        return -(log_p * Y).sum(1), log_p.exp_().sub_(Y)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (SquaredError, AbsoluteError, HalfPoisson, Hinge, Logistic, SoftmaxCrossEntropy)
}
