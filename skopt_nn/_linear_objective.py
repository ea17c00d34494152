r"""The linear models' objective on a flat parameter vector.

.. math::
    F(x) = \frac{\sum_i w_i f_i(x)}{\sum_i w_i} + \frac{\alpha}{2}\lVert W\rVert^2

with fᵢ one of :mod:`skopt_nn._losses` applied to zᵢ = aᵢᵀW + b (the intercept b
is not penalised).  With unit weights this is the lecture's Eq. 14.  The
gradient is analytic (Eq. 15: the average of the per-sample gradients), so the
training path needs no autograd: ∇_W = Aᵀ(w ⊙ ∂f/∂z)/n + αW, ∇_b = mean(w ⊙ ∂f/∂z).

Parameters are laid out as ``x = [W.ravel(), b]`` with W of shape
``(n_features, n_outputs)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ._data import Dataset, SparseRows, matmul, tmatmul
from ._losses import Loss, SquaredError


class LinearObjective:
    """Loss, gradient and curvature of a linear model on a batch."""

    def __init__(self, loss: Loss, n_features: int, n_outputs: int, alpha: float,
                 fit_intercept: bool):
        self.loss = loss
        self.d, self.K = n_features, n_outputs
        self.alpha = float(alpha)
        self.fit_intercept = fit_intercept
        self.n_params = n_features * n_outputs + n_outputs
        self._split = n_features * n_outputs
        self._views: dict = {}

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (W, b) of the flat vector; cached for the training buffers."""
        key = (x.data_ptr(), x.dtype, x.device)
        views = self._views.get(key)
        if views is None:  # a cached view keeps its storage alive, so keys are unique
            views = (x[: self._split].view(self.d, self.K), x[self._split :])
            if len(self._views) > 4:
                self._views.clear()
            self._views[key] = views
        return views

    def project(self, x: torch.Tensor) -> bool:
        """Keep ``x`` in the model's parameter set (no intercept without fit_intercept);
        return whether that changed ``x`` (the optimizer's state is then stale)."""
        b = x[self._split :]
        if self.fit_intercept or not bool(b.any()):
            return False
        b.zero_()
        return True

    def decision(self, x: torch.Tensor, X) -> torch.Tensor:
        """z = XW + b, shape ``(n, K)``."""
        W, b = self.unpack(x)
        if isinstance(X, SparseRows):
            return matmul(X, W).add_(b)
        return torch.addmm(b, X, W)

    def _penalty(self, W: torch.Tensor) -> torch.Tensor | float:
        if self.alpha == 0.0:
            return 0.0
        w = W.reshape(-1)
        return 0.5 * self.alpha * torch.dot(w, w)

    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor."""
        f = self.loss.value(self.decision(x, data.X), data.Y)
        if data.sw is not None:
            f = f * data.sw
        return f.mean() + self._penalty(self.unpack(x)[0])

    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        """F(x) on ``data``; writes ∇F(x) into ``g`` (same layout as ``x``)."""
        W, b = self.unpack(x)
        f, dZ = self.loss.value_and_derivative(self.decision(x, data.X), data.Y)
        if data.sw is not None:
            f = f * data.sw
            dZ = dZ * data.sw[:, None]
        n = dZ.shape[0]
        gW, gb = self.unpack(g)
        if isinstance(data.X, SparseRows):
            torch.add(tmatmul(data.X, dZ).div_(n), W, alpha=self.alpha, out=gW)
        else:
            torch.addmm(W, data.X.T, dZ, beta=self.alpha, alpha=1.0 / n, out=gW)
        if self.fit_intercept:
            torch.mean(dZ, 0, out=gb)
        else:
            gb.zero_()
        return f.mean() + self._penalty(W)

    def curvature(self, d: torch.Tensor, data: Dataset) -> float | None:
        """dᵀ∇²F d, available for the squared error (F is then quadratic)."""
        if not isinstance(self.loss, SquaredError):
            return None
        dW, db = self.unpack(d)
        Zd = self.decision(d, data.X) if self.fit_intercept else matmul(data.X, dW)
        q = (Zd * Zd).mean(1)
        if data.sw is not None:
            q = q * data.sw
        w = dW.reshape(-1)
        return float(q.mean() + self.alpha * torch.dot(w, w))

    def lipschitz(self, data: Dataset, n_power: int = 50) -> float:
        """An estimate of the gradient's Lipschitz constant L (for η = 1/L, Eq. 3).

        L = c·λ_max(ÃᵀDÃ/n) + α with Ã the data with an intercept column, D the
        normalised sample weights and c the loss's curvature bound: 1 for squared
        error (1/K over K averaged outputs), ¼ for logistic, ½ for softmax.  For
        the nonsmooth losses (absolute, hinge) the squared-error value gives a step
        of the right scale.  λ_max is exact from the Gram matrix when there are at
        most 2048 features, else from power iteration.
        """
        X, sw = data.X, data.sw
        n = len(data)
        if isinstance(X, SparseRows) and self.d < 2048:
            A = X.csr.astype(np.float64)
            if self.fit_intercept:
                A = sp.hstack([A, np.ones((n, 1))], format="csr")
            Aw = A if sw is None else sp.diags(sw.double().cpu().numpy()) @ A
            lam = float(np.linalg.eigvalsh((Aw.T @ A).toarray() / n)[-1])
        elif self.d < 2048:
            lam = float(torch.linalg.eigvalsh(self._gram(X, sw).cpu())[-1])
        else:
            lam = self._power_iteration(data, n_power)
        scale = {"logistic": 0.25, "softmax": 0.5}.get(self.loss.name, 1.0)
        if self.loss.name in ("squared_error", "absolute_error"):
            scale /= self.K
        return scale * lam + self.alpha

    def _gram(self, X: torch.Tensor, sw: torch.Tensor | None, chunk: int = 16384):
        """ÃᵀDÃ/n in float64, accumulated over row chunks (no copy of the data)."""
        n, d = X.shape
        k = d + 1 if self.fit_intercept else d
        G = torch.zeros(k, k, dtype=torch.float64, device=X.device)
        for start in range(0, n, chunk):
            A = X[start:start + chunk]
            Aw = A if sw is None else A * sw[start:start + chunk, None]
            G[:d, :d] += (Aw.T @ A).double()
            if self.fit_intercept:
                col = Aw.sum(0).double()
                G[:d, d] += col
                G[d, :d] += col
                G[d, d] += float(A.shape[0]) if sw is None else float(sw[start:start + chunk].sum())
        return G / n

    def _power_iteration(self, data: Dataset, n_power: int) -> float:
        v = torch.ones(self.d + 1, dtype=data.Y.dtype, device=data.Y.device)
        v /= v.norm()
        lam = 0.0
        n = len(data)
        for _ in range(n_power):
            z = matmul(data.X, v[:-1, None])
            if self.fit_intercept:
                z = z + v[-1]
            if data.sw is not None:
                z = z * data.sw[:, None]
            hv = torch.cat([tmatmul(data.X, z).reshape(-1) / n,
                            (z.mean(0) if self.fit_intercept else z.new_zeros(1))])
            new = float(hv.norm())
            if not new > 0.0:
                break
            v = hv / new
            if abs(new - lam) <= 1e-4 * new:
                lam = new
                break
            lam = new
        return lam
