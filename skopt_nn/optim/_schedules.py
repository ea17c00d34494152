r"""Step-size schedules (lecture Eq. 17 and 22), named as scikit-learn's MLP names them.

* ``'constant'``: η_k = η₀ (Eq. 17, third form).
* ``'invscaling'``: η_k = η₀ / k^power_t with k = 1, 2, … counting optimizer steps;
  ``power_t=1`` is Eq. 17's 1/k (Eq. 22 with η₀ = 1/μ), ``power_t=0.5`` its 1/√k.
* ``'adaptive'``: η stays η₀ while the loss improves; each time it fails to
  improve by ``tol`` for ``n_iter_no_change`` epochs η is divided by 5, and
  a plateau at η ≤ 1e-6 stops training (scikit-learn's rule and order).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULES = ("constant", "invscaling", "adaptive")
ADAPTIVE_FACTOR = 5.0
ADAPTIVE_MIN = 1e-6


@dataclass
class Schedule:
    """The step size of step ``k`` (1-based) for a given schedule.

    ``eta`` is the current base step: η₀, or what 'adaptive' reduced it to.
    """

    kind: str
    eta: float
    power_t: float = 0.5

    def __call__(self, k: int) -> float:
        if self.kind == "invscaling":
            return self.eta / k**self.power_t
        return self.eta

    def on_plateau(self) -> bool:
        """Shrink η on a loss plateau; return True when training should stop."""
        if self.kind != "adaptive" or self.eta <= ADAPTIVE_MIN:
            return True
        self.eta /= ADAPTIVE_FACTOR  # and train on at the smaller step (scikit-learn's order)
        return False
