r"""Per-sample losses and their derivatives with respect to the model output.

The lecture's SGD slide lists, for a linear output z = aᵀx and label l:

* least squares  f = ½ (z − l)²
* absolute       f = ``|z − l|``        (the slide drops the bars)
* hinge          f = max(0, 1 − l z),   l ∈ {−1, 1}
* logistic       f = log(1 + exp(−l z)), l ∈ {−1, 1} (computed as softplus(−l z))

plus softmax cross-entropy for multi-class outputs, and the other losses of
scikit-learn's SGD estimators (with r = z − l, m = l z):

* Huber          f = ½ r² for ``|r| ≤ ε``, ε ``|r|`` − ½ ε² beyond
* ε-insensitive  f = max(0, ``|r|`` − ε), and its square
* modified Huber f = max(0, 1 − m)² for m ≥ −1, −4 m below (a smoothed hinge)
* squared hinge  f = max(0, 1 − m)²
* perceptron     f = max(0, −m)

Each ``Loss`` returns the
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
    #: the estimator parameters the loss takes (``epsilon``), passed by :func:`get_loss`
    params: ClassVar[tuple[str, ...]] = ()

    def _key(self) -> tuple:
        return (type(self), *(getattr(self, p) for p in self.params))

    def __eq__(self, other):  # losses of one kind and parameters are interchangeable
        return isinstance(other, Loss) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.params)
        return f"{type(self).__name__}({args})"

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


class _EpsilonLoss(Loss):
    """A regression loss with a width ε (scikit-learn's SGDRegressor ``epsilon``)."""

    target = "real"
    averages_outputs = True
    params = ("epsilon",)

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = float(epsilon)

    def value(self, Z, Y):
        return self.value_and_derivative(Z, Y)[0]


class Huber(_EpsilonLoss):
    r"""Huber's loss: ½ r² for ``|r| ≤ ε``, ε ``|r|`` − ½ε² beyond, r = z − y.

    ∂f/∂z = clip(r, −ε, ε): the squared error near the target, the absolute error
    (scaled by ε) for outliers.  Averaged over outputs.
    """

    name = "huber"

    def value_and_derivative(self, Z, Y):
        r = Z - Y
        eps = self.epsilon
        a = r.abs()
        f = torch.where(a <= eps, 0.5 * r * r, eps * a - 0.5 * eps * eps)
        d = r.clamp(-eps, eps)
        K = Z.shape[1]
        return f.mean(1), (d if K == 1 else d / K)


class EpsilonInsensitive(_EpsilonLoss):
    r"""The support-vector regression loss max(0, ``|r|`` − ε), r = z − y.

    ∂f/∂z = sign(r) where ``|r|`` > ε, else 0.  Averaged over outputs.
    """

    name = "epsilon_insensitive"
    smooth = False

    def value_and_derivative(self, Z, Y):
        r = Z - Y
        excess = r.abs() - self.epsilon
        d = torch.sign(r) * (excess > 0)
        K = Z.shape[1]
        return torch.relu(excess).mean(1), (d if K == 1 else d / K)


class SquaredEpsilonInsensitive(_EpsilonLoss):
    r"""max(0, ``|r|`` − ε)², r = z − y (no ½, as scikit-learn's).

    ∂f/∂z = 2 sign(r) max(0, ``|r|`` − ε).  Averaged over outputs.
    """

    name = "squared_epsilon_insensitive"
    curvature_bound = 2.0

    def value_and_derivative(self, Z, Y):
        r = Z - Y
        excess = torch.relu(r.abs() - self.epsilon)
        d = 2.0 * torch.sign(r) * excess
        K = Z.shape[1]
        return (excess * excess).mean(1), (d if K == 1 else d / K)


class ModifiedHuber(Loss):
    r"""The modified Huber loss of m = y z: max(0, 1 − m)² for m ≥ −1, −4m below.

    A hinge loss made differentiable and quadratic near the margin (Zhang 2004);
    ∂f/∂z = −2y max(0, 1 − m) for m ≥ −1, −4y below.  Its minimiser estimates
    P(y = 1 | x) as (clip(z, −1, 1) + 1)/2, which gives its ``predict_proba``.
    """

    name = "modified_huber"
    target = "sign"
    curvature_bound = 2.0

    def value_and_derivative(self, Z, Y):
        m = Y * Z
        q = torch.relu(1 - m)
        f = torch.where(m >= -1, q * q, -4.0 * m)
        d = torch.where(m >= -1, -2.0 * q, torch.full_like(m, -4.0)) * Y
        return f.sum(1), d


class SquaredHinge(Loss):
    r"""max(0, 1 − y z)²; ∂f/∂z = −2y max(0, 1 − y z)."""

    name = "squared_hinge"
    target = "sign"
    curvature_bound = 2.0

    def value_and_derivative(self, Z, Y):
        q = torch.relu(1 - Y * Z)
        return (q * q).sum(1), -2.0 * q * Y


class Perceptron(Loss):
    r"""Rosenblatt's perceptron criterion max(0, −y z); ∂f/∂z = −y where y z ≤ 0 (the
    subgradient at 0 is −y, as scikit-learn's, so training can leave z = 0).

    The hinge loss with margin 0 (scikit-learn's ``loss='perceptron'``)."""

    name = "perceptron"
    target = "sign"
    smooth = False

    def value_and_derivative(self, Z, Y):
        m = Y * Z
        return torch.relu(-m).sum(1), -Y * (m <= 0)


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
            f, dT = self.value_and_derivative_t(Z.T.contiguous(), Y.T)
            return f, dT.T
        log_p = torch.log_softmax(Z, 1)
        return -(log_p * Y).sum(1), log_p.exp_().sub_(Y)

    @staticmethod
    def value_and_derivative_t(ZT, YT):
        """f and ∂f/∂Z with the classes on the second-last axis: ``ZT`` of shape
        ``(..., K, n)`` (contiguous), ``YT`` its targets; f ``(..., n)``, ∂f/∂Zᵀ like
        ``ZT`` (a new tensor)."""
        log_pT = torch.log_softmax(ZT, -2)
        return (log_pT * YT).sum(-2).neg_(), log_pT.exp_().sub_(YT)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (SquaredError, AbsoluteError, HalfPoisson, Hinge, Logistic, SoftmaxCrossEntropy,
                Huber, EpsilonInsensitive, SquaredEpsilonInsensitive, ModifiedHuber,
                SquaredHinge, Perceptron)
}

#: the estimators' names for a loss that :data:`LOSSES` knows by another name
ALIASES = {"log_loss": "logistic"}


def get_loss(name: str, n_outputs: int = 1, *, multilabel: bool = False, **params) -> Loss:
    """The loss an estimator's ``loss=name`` trains with on ``n_outputs`` outputs.

    A binary loss with a multi-class form (logistic → softmax) takes that form for
    more than one mutually exclusive output; multilabel targets keep one binary
    loss per label.  ``params`` are estimator parameters (``epsilon``); the loss
    takes those it declares and ignores the rest.
    """
    cls = LOSSES[ALIASES.get(name, name)]
    if n_outputs > 1 and not multilabel and cls.multiclass is not None:
        cls = LOSSES[cls.multiclass]
    return cls(**{p: params[p] for p in cls.params if p in params})
