r"""The L1 part of the linear models' penalty, as a step after each update.

With ``penalty='l1'`` or ``'elasticnet'`` the linear models minimise

.. math::
    F(x) = \frac{\sum_i w_i f_i(x)}{\sum_i w_i}
           + \alpha \Big(\frac{1-\rho}{2}\lVert W\rVert^2 + \rho\,\lVert W\rVert_1\Big)

(ρ = ``l1_ratio``; 1 for ``'l1'``).  ‖W‖₁ has no gradient at 0, and a (sub)gradient
step never lands a weight exactly on 0, so the methods that take steps (gd, SGD,
momentum, AdaGrad, RMSProp, Adam) take the gradient step on the smooth part and
then the truncated-gradient step of :class:`CumulativeL1`, the SGD literature's way
(and scikit-learn's): weights that the data does not hold away from 0 become 0.
The search methods (line searches, steepest descent, L-BFGS) see the subgradient
λ sign(W) in ∇F instead: they approach a sparse solution but do not reach its zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CumulativeL1:
    r"""Tsuruoka, Tsujii and Ananiadou's cumulative L1 penalty (ACL 2009).

    After each step, with ηⱼ the step coordinate j took (η for SGD, the adaptive
    methods' η/√(ε + vⱼ)), the penalty owed grows by uⱼ ← uⱼ + ηⱼ λ, λ = α ρ; each
    weight then pays what it owes, without crossing 0:

    .. math::
        w_j \leftarrow \begin{cases}
            \max(0,\ w_j - (u_j + q_j)) & w_j > 0 \\
            \min(0,\ w_j + (u_j - q_j)) & w_j < 0
        \end{cases}, \qquad q_j \leftarrow q_j + (\text{the change in } w_j)

    q holds what each weight has paid, so a weight clipped at 0 (paying less than
    its due) or one that leaves 0 later pays the rest then.  With one step this is
    the soft-thresholding proximal step w ← sign(w) max(0, ``|w|`` − ηλ).  It is
    the update of scikit-learn's SGD estimators, which apply it to all weights on
    dense data and, on sparse rows, only to the features present in the sample.

    Parameters
    ----------
    strength : float
        λ = α ρ.
    n_weights : int
        The penalised coordinates are ``x[:n_weights]`` (the intercepts, which
        follow them, are not penalised).
    """

    strength: float
    n_weights: int
    u: torch.Tensor | None = None
    q: torch.Tensor | None = None

    def apply(self, x: torch.Tensor, steps: float | torch.Tensor) -> None:
        """The truncation after a step that moved coordinate j by ``steps[j]`` times its
        direction (a number: every coordinate alike)."""
        w = x[: self.n_weights]
        if self.u is None or self.u.shape != w.shape:
            self.u, self.q = torch.zeros_like(w), torch.zeros_like(w)
        u, q = self.u, self.q
        if isinstance(steps, torch.Tensor) and steps.dim():
            u.add_(steps[: self.n_weights], alpha=self.strength)
        else:
            u.add_(float(steps) * self.strength)
        before = w.clone()
        shrunk = torch.where(w > 0, (w - (u + q)).clamp_(min=0.0),
                             torch.where(w < 0, (w + (u - q)).clamp_(max=0.0), w))
        w.copy_(shrunk)
        q.add_(w).sub_(before)
