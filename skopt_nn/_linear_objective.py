r"""The linear models' objective on a flat parameter vector.

.. math::
    F(x) = \frac{\sum_i w_i f_i(x)}{\sum_i w_i} + \frac{\alpha}{2}\lVert W\rVert^2
           + \lambda \lVert W\rVert_1

with fᵢ one of :mod:`skopt_nn._losses` applied to zᵢ = aᵢᵀW + b (the intercept b
is not penalised).  With unit weights this is the lecture's Eq. 14.  The
gradient is analytic (Eq. 15: the average of the per-sample gradients), so the
training path needs no autograd: ∇_W = Aᵀ(w ⊙ ∂f/∂z)/n + αW, ∇_b = mean(w ⊙ ∂f/∂z).
The L1 term λ‖W‖₁ (the elastic net's, :mod:`skopt_nn._penalty`) is in F; its
subgradient λ sign(W) is in ∇F only where ``l1_subgradient`` is set (for the
methods that do not truncate: the others take it as a step of its own).

Parameters are laid out as ``x = [W.ravel(), b]`` with W of shape
``(n_features, n_outputs)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ._data import Dataset, SparseRows, matmul, tmatmul
from ._losses import Logistic, Loss, SquaredError
from ._objective import NetworkSpec, Objective


class LinearObjective(Objective):
    """Loss, gradient and curvature of a linear model on a batch.

    The dense products use the layout that is fast for their shape: for one output
    the matrix-vector forms ``X @ w`` and ``X.T @ dz``; for K > 1 outputs the forward
    product reads W as a column-major (K, d) copy and the backward one writes a
    (K, d) result (``dZ.T @ X``), which on an AMD EPYC with MKL were 2-5x faster than
    ``X @ W`` and ``X.T @ dZ`` on W's own (d, K) layout (256 x 100 x 3: 36 vs 13 us
    backward; 200k x 100 x 3: 226 vs 40 ms).
    """

    def __init__(self, loss: Loss, n_features: int, n_outputs: int, alpha: float,
                 fit_intercept: bool, l1: float = 0.0):
        self.loss = loss
        self.d, self.K = n_features, n_outputs
        self.alpha = float(alpha)
        self.l1 = float(l1)
        self.l1_subgradient = True
        self.fit_intercept = fit_intercept
        self.n_params = n_features * n_outputs + n_outputs
        self._split = n_features * n_outputs
        self._views: dict = {}
        self._means: dict = {}
        # the logistic loss's value and derivative in four in-place-friendly calls
        self._logistic = isinstance(loss, Logistic)

    def network(self) -> NetworkSpec:
        """One layer ``Z = X W + b``, the penalty α/2 ‖W‖² unscaled."""
        return NetworkSpec((self.d, self.K), "identity", self.loss, self.fit_intercept,
                           penalty_per_batch=False)

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (W, b) of the flat vector; cached for the training buffers."""
        return self._unpack(x)[:2]

    def _unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views (W, b, W.ravel()) of the flat vector."""
        key = (x.data_ptr(), x.dtype, x.device)
        views = self._views.get(key)
        if views is None:  # a cached view keeps its storage alive, so keys are unique
            w = x[: self._split]
            views = (w.view(self.d, self.K), x[self._split :], w)
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

    def decision(self, x: torch.Tensor, X, sign: float = 1.0) -> torch.Tensor:
        """z = XW + b, shape ``(n, K)`` (``sign`` = -1: its negative, at no cost)."""
        W, b = self.unpack(x)
        if isinstance(X, SparseRows):
            Z = matmul(X, W).add_(b)
            return Z if sign == 1.0 else Z.neg_()
        if self.K > 1:
            W = W.T.contiguous().T
        return torch.addmm(b, X, W, beta=sign, alpha=sign)

    def _penalty(self, W: torch.Tensor) -> torch.Tensor | float:
        w = W.reshape(-1)
        p = 0.0 if self.alpha == 0.0 else 0.5 * self.alpha * torch.dot(w, w)
        return p if self.l1 == 0.0 else p + self.l1 * w.abs().sum()

    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor."""
        f = self.loss.value(self.decision(x, data.X), data.Y)
        if data.sw is not None:
            f = f * data.sw
        return f.mean() + self._penalty(self.unpack(x)[0])

    def _mean_vector(self, n: int, c: float, like: torch.Tensor) -> torch.Tensor:
        """A cached vector of n entries c/n: ``v @ f`` is c·mean(f) in one call."""
        key = (n, c, like.dtype, like.device)
        v = self._means.get(key)
        if v is None:
            if len(self._means) > 8:
                self._means.clear()
            v = self._means[key] = torch.full((n,), c / n, dtype=like.dtype, device=like.device)
        return v

    def _loss_terms(self, x: torch.Tensor, data: Dataset):
        """(wᵢ fᵢ, c·wᵢ ∂fᵢ/∂zᵢ, c) with c = ±1: the logistic loss gives σ(−y z)·y, the
        negative of its derivative, which saves a negation (the sign goes into the
        products that use it)."""
        if self._logistic:  # f = softplus(t), ∂f/∂z = −y σ(t), t = −y z
            t = self.decision(x, data.X, -1.0).mul_(data.Y)
            f, dZ, c = F.softplus(t), torch.sigmoid(t).mul_(data.Y), -1.0
            f = f.view(-1) if self.K == 1 else f.sum(1)
        else:
            f, dZ = self.loss.value_and_derivative(self.decision(x, data.X), data.Y)
            c = 1.0
        if data.sw is not None:
            f, dZ = f * data.sw, dZ * data.sw[:, None]
        return f, dZ, c

    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        """F(x) on ``data``; writes ∇F(x) into ``g`` (same layout as ``x``).

        The batch mean of f is one product with a cached vector of 1/n (a sum and a
        scaling took two calls).  The intercept's gradient stays a sum and a scaling:
        as a product its rounding differed enough that a default hinge fit on the
        breast-cancer data no longer met its tolerance within max_iter."""
        W, _, w = self._unpack(x)
        gW, gb, _ = self._unpack(g)
        f, dZ, c = self._loss_terms(x, data)
        n = dZ.shape[0]
        X = data.X
        if isinstance(X, SparseRows):
            torch.add(tmatmul(X, dZ).mul_(c / n), W, alpha=self.alpha, out=gW)
        elif self.K == 1:
            torch.addmm(W, X.T, dZ, beta=self.alpha, alpha=c / n, out=gW)
        else:  # a (K, d) product, then copied into W's (d, K) layout
            gW.copy_(torch.addmm(W.T, dZ.T, X, beta=self.alpha, alpha=c / n).T)
        if self.fit_intercept:
            torch.sum(dZ, 0, out=gb).mul_(c / n)
        else:
            gb.zero_()
        F_ = torch.dot(f, self._mean_vector(n, 1.0, f))
        if self.l1 != 0.0:
            F_ = F_ + self.l1 * w.abs().sum()
            if self.l1_subgradient:
                gW.add_(torch.sign(W), alpha=self.l1)
        return F_ if self.alpha == 0.0 else F_.add_(torch.dot(w, w), alpha=0.5 * self.alpha)

    def curvature(self, d: torch.Tensor, data: Dataset) -> float | None:
        """dᵀ∇²F d, available for the squared error without L1 (F is then quadratic)."""
        if not isinstance(self.loss, SquaredError) or self.l1 != 0.0:
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
        normalised sample weights and c = ``loss.output_curvature(K)`` the loss's
        bound on ∂²f/∂z²: 1 for squared error (1/K over K averaged outputs), ¼ for
        logistic, ½ for softmax; the nonsmooth losses (absolute, hinge) use the
        squared error's, which gives a step of the right scale.  λ_max is exact
        from the Gram matrix when there are at most 2048 features, else from power
        iteration.
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
        return self.loss.output_curvature(self.K) * lam + self.alpha

    def _gram(self, X: torch.Tensor, sw: torch.Tensor | None, chunk: int = 16384):
        """ÃᵀDÃ/n in float64, accumulated over row chunks (no copy of the data)."""
        n, d = X.shape
        k = d + 1 if self.fit_intercept else d
        G = torch.zeros(k, k, dtype=torch.float64, device=X.device)
        host = X.device.type == "cpu" and sw is None
        for start in range(0, n, chunk):
            A = X[start:start + chunk]
            Aw = A if sw is None else A * sw[start:start + chunk, None]
            if host:  # NumPy's AᵀA is a symmetric rank-k update: half the products
                a = A.numpy()
                G[:d, :d] += torch.from_numpy(a.T @ a).double()
            else:
                G[:d, :d] += (Aw.T @ A).double()
            if self.fit_intercept:
                col = Aw.sum(0).double()
                G[:d, d] += col
                G[d, :d] += col
                G[d, d] += float(A.shape[0]) if sw is None else float(sw[start:start + chunk].sum())
        return G / n

    def _power_iteration(self, data: Dataset, n_power: int) -> float:
        n = len(data)
        forward, backward = (lambda w: matmul(data.X, w)), (lambda z: tmatmul(data.X, z))
        if isinstance(data.X, SparseRows) and data.X.device.type == "cpu":
            # SciPy's products: torch's sparse CSR products with a vector took 0.7 s each
            # on 100k x 50k at 0.1% density (SciPy: about 10 ms)
            A = data.X.csr
            forward, backward = _host_product(A), _host_product(A.T)

        def apply(v):  # ÃᵀDÃ v / n
            z = self.augmented_product(forward, v, data.sw)
            return torch.cat([backward(z).reshape(-1) / n,
                              (z.mean(0) if self.fit_intercept else z.new_zeros(1))])

        v = torch.ones(self.d + 1, dtype=data.Y.dtype, device=data.Y.device)
        return largest_eigenvalue(apply, v, n_power)

    def augmented_product(self, forward, v: torch.Tensor, sw) -> torch.Tensor:
        """D Ã v: the rows' product with [W; b] = v (``forward(w)`` is X w), weighted."""
        z = forward(v[:-1, None])
        if self.fit_intercept:
            z = z + v[-1]
        return z if sw is None else z * sw[:, None]


def largest_eigenvalue(apply, v: torch.Tensor, n_power: int) -> float:
    """λ_max of a symmetric positive semi-definite operator ``apply`` by power
    iteration from ``v``: at most ``n_power`` products, stopping once λ changes by
    1e-4 relative."""
    v = v / v.norm()
    lam = 0.0
    for _ in range(n_power):
        hv = apply(v)
        new = float(hv.norm())
        if not new > 0.0:
            break
        v = hv / new
        if abs(new - lam) <= 1e-4 * new:
            return new
        lam = new
    return lam


def _host_product(A):
    """``w ↦ A @ w`` for CPU tensors ``w``, by SciPy (A a CSR matrix or its transpose)."""
    return lambda w: torch.from_numpy(np.asarray(A @ w.numpy())).to(w.dtype)
