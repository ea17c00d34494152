r"""Step-size schedules (lecture Eq. 17 and 22), named as scikit-learn's MLP names them.

* ``'constant'``: η_k = η₀ (Eq. 17, third form).
* ``'invscaling'``: η_k = η₀ / k^power_t with k = 1, 2, … counting optimizer steps;
  ``power_t=1`` is Eq. 17's 1/k (Eq. 22 with η₀ = 1/μ), ``power_t=0.5`` its 1/√k.
* ``'adaptive'``: η stays η₀ while the loss improves; each time it fails to
  improve by ``tol`` for ``n_iter_no_change`` epochs η is divided by 5, and
  a plateau at η ≤ 1e-6 stops training (scikit-learn's rule and order).
* ``'optimal'``: η_k = 1/(μ (t₀ + k − 1)), Eq. 22's 1/(μk) for a μ-strongly convex
  objective, shifted by t₀ so that the first step is a sensible η₀ (the estimators
  take μ = ``alpha``, the L2 penalty's strong convexity, and scikit-learn's SGD
  heuristic for t₀: see :func:`optimal_offset`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "invscaling", "adaptive", "optimal")
#: the schedules as numbers, for compiled and vectorised code: η (0: 'constant' and
#: 'adaptive', whose η changes between epochs only), η/k^power_t (1), 1/(μ(t₀+k−1)) (2)
KIND_CODES = {"constant": 0, "adaptive": 0, "invscaling": 1, "optimal": 2}
ADAPTIVE_FACTOR = 5.0
ADAPTIVE_MIN = 1e-6


@dataclass
class Schedule:
    """The step size of step ``k`` (1-based) for a given schedule.

    ``eta`` is the current base step: η₀, or what 'adaptive' reduced it to;
    ``mu`` and ``t0`` are μ and t₀ of 'optimal' (which does not use ``eta``).
    """

    kind: str
    eta: float
    power_t: float = 0.5
    mu: float = 0.0
    t0: float = 1.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"learning_rate must be one of {SCHEDULES}, got {self.kind!r}")
        if self.kind == "optimal" and not self.mu > 0:
            raise ValueError("learning_rate='optimal' is η = 1/(μ (t0 + k - 1)) and needs "
                             f"the strong convexity μ > 0 (the estimators' alpha), got "
                             f"{self.mu!r}.")

    def __call__(self, k: int) -> float:
        if self.kind == "invscaling":
            return self.eta / k**self.power_t
        if self.kind == "optimal":
            return 1.0 / (self.mu * (self.t0 + k - 1))  # Eq. 22
        return self.eta

    def on_plateau(self) -> bool:
        """Shrink η on a loss plateau; return True when training should stop."""
        if self.kind != "adaptive" or self.eta <= ADAPTIVE_MIN:
            return True
        self.eta /= ADAPTIVE_FACTOR  # and train on at the smaller step (scikit-learn's order)
        return False


def optimal_offset(mu: float, loss) -> float:
    """t₀ of the 'optimal' schedule: scikit-learn's SGD heuristic (after Bottou).

    With w_typ = √(1/√μ) a typical weight's size, the first step is
    η₀ = w_typ / max(1, ∂f/∂z(z = −w_typ, y = 1)) and t₀ = 1/(μ η₀), so that
    η₁ = 1/(μ t₀) = η₀.  ``loss`` is the model's :class:`skopt_nn._losses.Loss`
    for one output.
    """
    import torch

    typw = math.sqrt(1.0 / math.sqrt(mu))
    z = torch.tensor([[-typw]], dtype=torch.float64)
    slope = float(loss.value_and_derivative(z, torch.ones_like(z))[1].reshape(-1)[0])
    eta0 = typw / max(1.0, slope)
    return 1.0 / (eta0 * mu)
