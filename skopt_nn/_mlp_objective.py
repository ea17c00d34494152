r"""The multilayer perceptron's objective on a flat parameter vector, with explicit
backpropagation (lecture Eq. 10-13): no autograd on the training path.

A network with layer sizes ``(d, h_1, ..., h_{L-1}, K)`` computes, for a batch
``A_0 = X`` of n rows,

.. math::
    Z_i = A_{i-1} W_i + b_i, \qquad A_i = \sigma(Z_i) \ (i < L), \qquad Z = Z_L,

with σ the hidden activation; the output layer is linear and the loss object
(:mod:`skopt_nn._losses`) folds in the output activation.  The objective is
scikit-learn's MLP objective,

.. math::
    F(x) = \frac1n \sum_i s_i f_i(Z) + \frac{\alpha}{2S} \sum_l \lVert W_l\rVert^2,

with sᵢ the sample weights normalised to mean one over the training set (1 when
unweighted) and S the batch's sum of raw weights (n when unweighted); the
intercepts are not penalised.  Backpropagation: δ_L = s ⊙ ∂f/∂Z (Eq. 11 at the
output), δ_{l-1} = σ'(Z_{l-1}) ⊙ (δ_l W_lᵀ) (Eq. 11-12, σ' taken from the
activation's output A), ∇W_l = A_{l-1}ᵀ δ_l / n + αW_l / S (Eq. 10/13) and
∇b_l = 1ᵀ δ_l / n.

Parameters are laid out as scikit-learn's ``coefs_``/``intercepts_``: for each
layer ``W_l.ravel()`` (shape ``(fan_in, fan_out)``, row-major) then ``b_l``.

Speed.  For the tiny networks of the lecture a step costs a few dozen torch
calls, so the cost is their count, not their arithmetic.  The training path
(:meth:`MLPObjective.value_grad`) therefore

* reads each block ``[W_l; b_l]`` of the flat vector as one ``(fan_in+1, fan_out)``
  matrix, and keeps every hidden activation transposed, ``[A_lᵀ; 1ᵀ]``, in a buffer
  whose last row is ones: a layer's forward pass and its whole gradient block
  ``[∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l / n`` are then one matrix product each,
  written in place (``out=``) into the activation buffer and the flat gradient;
* folds 1/n into those products (``addmm``'s ``alpha``) instead of scaling δ;
* applies the penalty to the whole vector at once through a 0/1 mask of the
  weights (the value and the gradient share ``x ⊙ mask``);
* caches the views of ``x`` and ``g`` (for the last vector seen) and the
  activation buffers (per batch size, small batches only), so a step builds no
  views.

:meth:`MLPObjective.value` and :meth:`MLPObjective.decision` are plain
differentiable forward passes (the tests compare with ``torch.autograd`` there).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._data import Dataset, SparseRows, matmul, tmatmul
from ._losses import Loss

#: hidden activations (in place, on the training path's buffers)
_ACTIVATIONS_ = {"identity": None, "logistic": torch.sigmoid_, "tanh": torch.tanh_,
                 "relu": torch.relu_}
#: hidden activations (out of place, differentiable)
_ACTIVATIONS = {"identity": None, "logistic": torch.sigmoid, "tanh": torch.tanh,
                "relu": torch.relu}


def _relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return _THRESHOLD_BACKWARD(grad, out, 0)


#: σ'(z) ⊙ grad from the activation's output a = σ(z), one op each:
#: relu 1[a > 0], tanh 1 − a², logistic a(1 − a)
_THRESHOLD_BACKWARD = torch.ops.aten.threshold_backward.default
_DERIVATIVES = {
    "identity": None,
    "logistic": torch.ops.aten.sigmoid_backward.default,
    "tanh": torch.ops.aten.tanh_backward.default,
    "relu": _relu_backward,
}

#: activation buffers are kept between calls up to this size (bytes, per batch size)
_CACHE_BYTES = 4 << 20
_MAX_CACHED_SIZES = 8


class MLPObjective:
    """Loss and gradient (explicit backpropagation) of a multilayer perceptron."""

    def __init__(self, layer_sizes: Sequence[int], activation: str, loss: Loss, alpha: float):
        sizes = tuple(int(s) for s in layer_sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes must be at least two positive sizes, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.layer_sizes = sizes
        self.activation = activation
        self.loss = loss
        self.alpha = float(alpha)
        self.n_layers = len(sizes) - 1
        # [start of W_l, start of b_l, end of b_l] in the flat vector
        self._bounds = []
        start = 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            mid = start + fan_in * fan_out
            self._bounds.append((start, mid, mid + fan_out))
            start = mid + fan_out
        self.n_params = start
        self._act_ = _ACTIVATIONS_[activation]
        self._act = _ACTIVATIONS[activation]
        self._dact = _DERIVATIVES[activation]
        self._clear_caches()

    # -- layout ----------------------------------------------------------------------
    def unpack(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Views ``([W_1, ...], [b_1, ...])`` of ``x``, W_l of shape ``(fan_in, fan_out)``."""
        Ws, bs = [], []
        for (start, mid, end), fan_in, fan_out in zip(
                self._bounds, self.layer_sizes[:-1], self.layer_sizes[1:]):
            Ws.append(x[start:mid].view(fan_in, fan_out))
            bs.append(x[mid:end])
        return Ws, bs

    def init_params(self, generator: torch.Generator, dtype: torch.dtype,
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """scikit-learn's Glorot-uniform initialisation, drawn on the CPU from ``generator``.

        For each layer, W then b uniform in ``[-bound, bound]`` with
        ``bound = sqrt(factor / (fan_in + fan_out))``, factor 2 for the logistic
        activation and 6 otherwise.
        """
        factor = 2.0 if self.activation == "logistic" else 6.0
        parts = []
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            bound = (factor / (fan_in + fan_out)) ** 0.5
            for size in (fan_in * fan_out, fan_out):
                u = torch.rand(size, generator=generator, dtype=torch.float64)
                parts.append(u.mul_(2.0 * bound).sub_(bound))
        return torch.cat(parts).to(dtype=dtype, device=device)

    # -- differentiable forward pass and value -------------------------------------------
    def decision(self, x: torch.Tensor, X) -> torch.Tensor:
        """The raw output Z, shape ``(n, K)``."""
        Ws, bs = self.unpack(x)
        act = self._act
        if isinstance(X, SparseRows):
            A = matmul(X, Ws[0]) + bs[0]
        else:
            A = torch.addmm(bs[0], X, Ws[0])
        for W, b in zip(Ws[1:], bs[1:]):
            if act is not None:
                A = act(A)
            A = torch.addmm(b, A, W)
        return A

    def _penalty_scale(self, data: Dataset, n: int):
        """alpha / S with S the batch's sum of raw weights (a float, or a tensor for sw)."""
        if data.sw is None:
            return self.alpha / (data.weight_scale * n)
        return self.alpha / (data.weight_scale * data.sw.sum())

    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor (differentiable)."""
        f = self.loss.value(self.decision(x, data.X), data.Y)
        n = f.shape[0]
        F = f.mean() if data.sw is None else (f * data.sw).mean()
        if self.alpha != 0.0:
            sq = sum(W.reshape(-1).dot(W.reshape(-1)) for W in self.unpack(x)[0])
            F = F + 0.5 * self._penalty_scale(data, n) * sq
        return F

    # -- value and gradient by backpropagation ---------------------------------------------
    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        """F(x) on ``data``; writes ∇F(x) into ``g`` (same layout as ``x``)."""
        if x.requires_grad:
            x = x.detach()
        P = self._params(x)
        G = self._grads(g)
        X, Y, sw = data.X, data.Y, data.sw
        sparse = isinstance(X, SparseRows)
        n = len(X) if sparse else X.shape[0]
        B = self._buffers(n, x)
        inv_n = 1.0 / n
        act_, dact = self._act_, self._dact
        L = self.n_layers
        W0, b0, _ = P[0]

        # forward: A_l = σ(Z_l), kept as [A_lᵀ; 1ᵀ]
        if L == 1:
            Z = matmul(X, W0).add_(b0) if sparse else torch.addmm(b0, X, W0)
        else:
            out = B[0][2]  # A_1 as (n, h_1), a transposed view of its buffer
            if sparse:
                torch.add(matmul(X, W0), b0, out=out)
            else:
                torch.addmm(b0, X, W0, out=out)
            if act_ is not None:
                act_(B[0][1])
            for l in range(1, L - 1):
                torch.mm(P[l][3], B[l - 1][0], out=B[l][1])  # Z_lᵀ = [W_l; b_l]ᵀ [A; 1]ᵀ
                if act_ is not None:
                    act_(B[l][1])
            Z = torch.mm(B[L - 2][3], P[L - 1][2])  # [A, 1] [W_L; b_L]

        # the loss and δ_L = s ⊙ ∂f/∂Z (1/n is folded into the products below)
        f, delta = self.loss.value_and_derivative(Z, Y)
        if sw is None:
            F = f.mean()
        else:
            F = torch.dot(f, sw).mul_(inv_n)
            delta = delta * sw.unsqueeze(1)

        # backward: [∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l / n, δ_{l-1} = σ'(·) ⊙ δ_l W_lᵀ
        for l in range(L - 1, 0, -1):
            gl = G[l]
            torch.addmm(gl, B[l - 1][0], delta, beta=0, alpha=inv_n, out=gl)
            delta = torch.mm(delta, P[l][1])
            if dact is not None:
                delta = dact(delta, B[l - 1][2])
        gW0, gb0 = G[0]
        if sparse:
            torch.mul(tmatmul(X, delta), inv_n, out=gW0)
        else:
            torch.addmm(gW0, X.T, delta, beta=0, alpha=inv_n, out=gW0)
        torch.mm(B[-1], delta, out=gb0)  # (1/n) 1ᵀ δ_1

        # the penalty (α/2S) Σ‖W_l‖² on all weights at once
        if self.alpha != 0.0:
            xm = x * P[-1]
            c = self._penalty_scale(data, n)
            if sw is None:
                F = torch.add(F, torch.dot(xm, x), alpha=0.5 * c)
                g.add_(xm, alpha=c)
            else:
                F = F + 0.5 * c * torch.dot(xm, x)
                g.addcmul_(xm, c)
        return F

    # -- caches (rebuilt when x, g, the batch size, dtype or device change) -------------------
    def _clear_caches(self):
        self._x_key = self._g_key = None
        self._x_views = self._g_views = None
        self._buf = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_x_key", "_g_key", "_x_views", "_g_views"):
            state[k] = None
        state["_buf"] = {}
        return state

    def _params(self, x: torch.Tensor) -> list:
        """Per layer (W, Wᵀ, [W; b], [W; b]ᵀ) views of ``x``; layer 0 (W, b, b); then the mask."""
        if self._x_views is not None and x is self._x_key[0] and \
                x.data_ptr() == self._x_key[1]:
            return self._x_views
        views = []
        mask = torch.zeros(self.n_params, dtype=x.dtype, device=x.device)
        for l, ((start, mid, end), fan_in, fan_out) in enumerate(zip(
                self._bounds, self.layer_sizes[:-1], self.layer_sizes[1:])):
            W = x[start:mid].view(fan_in, fan_out)
            mask[start:mid] = 1
            if l == 0:
                views.append((W, x[mid:end], None))
            else:
                Wb = x[start:end].view(fan_in + 1, fan_out)
                views.append((W, W.T, Wb, Wb.T))
        views.append(mask)
        self._x_key, self._x_views = (x, x.data_ptr()), views
        return views

    def _grads(self, g: torch.Tensor) -> list:
        """Per layer the ``[∇W; ∇b]`` block of ``g``; layer 0 (∇W, ∇b as a row)."""
        if self._g_views is not None and g is self._g_key[0] and \
                g.data_ptr() == self._g_key[1]:
            return self._g_views
        views = []
        for l, ((start, mid, end), fan_in, fan_out) in enumerate(zip(
                self._bounds, self.layer_sizes[:-1], self.layer_sizes[1:])):
            if l == 0:
                views.append((g[start:mid].view(fan_in, fan_out), g[mid:end].view(1, fan_out)))
            else:
                views.append(g[start:end].view(fan_in + 1, fan_out))
        self._g_key, self._g_views = (g, g.data_ptr()), views
        return views

    def _buffers(self, n: int, x: torch.Tensor) -> list:
        """Per hidden layer l: ([A_l, 1]ᵀ, A_lᵀ, A_l, [A_l, 1]) views of one buffer; then 1ᵀ/n.

        Kept between calls for small batches (the stochastic steps); rebuilt otherwise.
        """
        key = (n, x.dtype, x.device)
        bufs = self._buf.get(key)
        if bufs is not None:
            return bufs
        bufs = []
        for h in self.layer_sizes[1:-1]:
            At = torch.empty(h + 1, n, dtype=x.dtype, device=x.device)
            At[h].fill_(1.0)
            bufs.append((At, At[:h], At[:h].T, At.T))
        bufs.append(torch.full((1, n), 1.0 / n, dtype=x.dtype, device=x.device))
        nbytes = n * (sum(self.layer_sizes[1:-1]) + 1) * x.element_size()
        if nbytes <= _CACHE_BYTES:
            if len(self._buf) >= _MAX_CACHED_SIZES:
                self._buf.clear()
            self._buf[key] = bufs
        return bufs
