r"""The multilayer perceptron's objective on a flat parameter vector, with explicit
backpropagation (lecture Eq. 10-13): no autograd on the training path.

A network with layer sizes ``(d, h_1, ..., h_{L-1}, K)`` computes, for a batch
``A_0 = X`` of n rows,

.. math::
    Z_l = A_{l-1} W_l + b_l, \qquad A_l = \sigma(Z_l) \ (l < L), \qquad Z = Z_L,

with σ the hidden activation; the output layer is linear and the loss object
(:mod:`skopt_nn._losses`) folds in the output activation (identity, logistic,
softmax).  The objective is scikit-learn's MLP objective,

.. math::
    F(x) = \frac1n \sum_i s_i f_i(Z) + \frac{\alpha}{2S} \sum_l \lVert W_l\rVert^2,

with sᵢ the sample weights normalised to mean one over the training set (none:
sᵢ = 1) and S the batch's sum of raw weights, ``weight_scale * sum(s)`` (n when
unweighted); the intercepts are not penalised.  Backpropagation (δ_l = ∂F/∂Z_l):

* at the output, δ_L = s ⊙ ∂f/∂Z / n, the loss's derivative (Eq. 11 for the last
  layer);
* for a hidden layer, δ_{l-1} = σ'(Z_{l-1}) ⊙ (δ_l W_lᵀ) (Eq. 11-12), with σ' read
  off the activation's output A = σ(Z): 1[A > 0] (relu), 1 − A² (tanh),
  A(1 − A) (logistic);
* ∇W_l = A_{l-1}ᵀ δ_l + (α/S) W_l (Eq. 10 and 13) and ∇b_l = 1ᵀ δ_l; no
  gradient is formed for the input X.

Parameters are laid out as scikit-learn's ``coefs_``/``intercepts_``: for each
layer ``W_l.ravel()`` (shape ``(fan_in, fan_out)``, row-major) then ``b_l``.

Speed.  For the lecture's tiny networks a step is two dozen torch calls on
tensors of a few hundred numbers, so its cost is the number of calls (2-3 µs
each), not their arithmetic.  :meth:`MLPObjective.value_grad` therefore

* reads each block ``[W_l; b_l]`` of the flat vector as one ``(fan_in+1, fan_out)``
  matrix and keeps each hidden activation in a buffer ``[A_l, 1]`` whose last
  column is ones: a layer's forward product ``[A_{l-1}, 1] [W_l; b_l]`` and its
  whole gradient block ``[∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l`` are one
  ``mm``/``addmm`` each, written in place (``out=``) into the buffer and into the
  flat gradient; σ and σ' run in place on the buffers (σ' on δ's own buffer);
* folds δ_L's 1/n and the penalty's gradient into those products:
  ``addmm(P_l, [A, 1]ᵀ, δ, beta=√(2c), alpha=1/n)`` with P_l the block of
  √(c/2)·x ⊙ mask (zero on the bias row), c = α/S (large networks, where addmm
  would first copy P_l, add √(2c)·P once instead);
* inlines the squared error, the regression loss: the output product is
  ``addmm(Y, [A, 1], [W; b], beta=-t, alpha=t) = t(Z − Y)`` with t = √(1/2nK),
  and it lies next to √(c/2)·x ⊙ mask in one buffer, so F is one ``dot`` of that
  buffer with itself (the other losses go through their :class:`Loss` object);
* runs in inference mode, which skips autograd's dispatch (a tenth of a tiny
  step); only F, the last ``dot``, is formed outside it, as a normal tensor;
* caches the views of ``x`` and ``g`` (of the last vectors seen) and, per batch
  size, the buffers and the list of what each layer multiplies (its "plan"), so
  a step builds no view (and, with the squared error, allocates only scalars).

:meth:`MLPObjective.value` and :meth:`MLPObjective.decision` are plain
differentiable forward passes; the tests compare ``value_grad`` with
``torch.autograd`` on ``value``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._data import Dataset, SparseRows, matmul, tmatmul
from ._losses import Loss, SquaredError

#: hidden activations: in place (the training path's buffers) and differentiable
_ACTIVATIONS_ = {"identity": None, "logistic": torch.sigmoid_, "tanh": torch.tanh_,
                 "relu": torch.relu_}
_ACTIVATIONS = {"identity": None, "logistic": torch.sigmoid, "tanh": torch.tanh,
                "relu": torch.relu}

#: grad ⊙ σ'(z) from the activation's output a = σ(z), one op each
#: (their out= forms, called with grad_input=grad: in place)
_THRESHOLD_BACKWARD = torch.ops.aten.threshold_backward.grad_input  # grad ⊙ 1[a > 0]
_DERIVATIVES = {
    "identity": None,
    "logistic": torch.ops.aten.sigmoid_backward.grad_input,  # grad ⊙ a(1 − a)
    "tanh": torch.ops.aten.tanh_backward.grad_input,  # grad ⊙ (1 − a²)
    "relu": None,  # _THRESHOLD_BACKWARD(grad, a, 0, grad_input=grad), called directly
}

#: a guard that turns off autograd's dispatch (torch.inference_mode without its
#: Python wrapper, which costs as much as it saves on a tiny network)
_INFERENCE_MODE = getattr(torch._C, "_InferenceMode", torch.inference_mode)

#: buffers are kept between calls for batches up to this size (bytes)
_CACHE_BYTES = 8 << 20
#: the penalty's gradient is folded into the layers' products up to this many parameters
_FOLD_PARAMS = 1 << 14
#: at most this many batch sizes are cached
_MAX_PLANS = 4


class MLPObjective:
    """Loss and gradient (explicit backpropagation) of a multilayer perceptron.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    activation : {'identity', 'logistic', 'tanh', 'relu'}
        The hidden layers' activation; the output layer is linear (the loss
        applies the output activation).
    loss : Loss
        The per-sample loss on the raw output.
    alpha : float
        L2 penalty on the weights (not the intercepts), scaled as scikit-learn's.
    """

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
        # per layer (start of W_l, start of b_l, end of b_l, fan_in, fan_out) in x
        self._layers = []
        start = 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            mid = start + fan_in * fan_out
            self._layers.append((start, mid, mid + fan_out, fan_in, fan_out))
            start = mid + fan_out
        self.n_params = start
        self._set_derived()

    def _set_derived(self):
        """What the training path looks up once: σ, σ', the inlined loss; no caches."""
        self._act_ = _ACTIVATIONS_[self.activation]
        self._dact = _DERIVATIVES[self.activation]
        self._relu = self.activation == "relu"
        self._squared = type(self.loss) is SquaredError
        self._clear_caches()

    # -- layout and initialisation -------------------------------------------------------
    def unpack(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Views ``([W_1, ...], [b_1, ...])`` of ``x``, W_l of shape ``(fan_in, fan_out)``."""
        Ws, bs = [], []
        for start, mid, end, fan_in, fan_out in self._layers:
            Ws.append(x[start:mid].view(fan_in, fan_out))
            bs.append(x[mid:end])
        return Ws, bs

    def init_params(self, random_state=None, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """scikit-learn's Glorot-uniform initialisation, with scikit-learn's random numbers.

        Layer by layer, W_l (shape ``(fan_in, fan_out)``) then b_l uniform in
        ``[-bound, bound]``, ``bound = sqrt(factor / (fan_in + fan_out))`` with factor
        2 for the logistic activation and 6 otherwise, drawn in float64 by NumPy from
        ``check_random_state(random_state)`` in scikit-learn's order, then cast to
        ``dtype``: the same ``random_state`` gives the same starting weights as
        scikit-learn's MLP, in float32 and float64 alike.
        """
        rng = check_random_state(random_state)
        factor = 2.0 if self.activation == "logistic" else 6.0
        parts = []
        for _, _, _, fan_in, fan_out in self._layers:
            bound = math.sqrt(factor / (fan_in + fan_out))
            parts.append(rng.uniform(-bound, bound, (fan_in, fan_out)).ravel())
            parts.append(rng.uniform(-bound, bound, fan_out))
        return torch.from_numpy(np.concatenate(parts)).to(dtype=dtype, device=device)

    # -- the differentiable forward pass and value -----------------------------------------
    def decision(self, x: torch.Tensor, X) -> torch.Tensor:
        """The raw output Z, shape ``(n, K)``, for ``X`` dense or :class:`SparseRows`."""
        Ws, bs = self.unpack(x)
        act = _ACTIVATIONS[self.activation]
        if isinstance(X, SparseRows):
            Z = matmul(X, Ws[0]) + bs[0]
        else:
            Z = torch.addmm(bs[0], X, Ws[0])
        for W, b in zip(Ws[1:], bs[1:], strict=True):
            A = Z if act is None else act(Z)
            Z = torch.addmm(b, A, W)
        return Z

    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor (differentiable in x)."""
        f = self.loss.value(self.decision(x, data.X), data.Y)
        if data.sw is None:
            F = f.mean()
        else:
            F = (f * data.sw).mean()
        if self.alpha != 0.0:
            S = data.weight_scale * (f.shape[0] if data.sw is None else data.sw.sum())
            sq = sum(torch.sum(W * W) for W in self.unpack(x)[0])
            F = F + (0.5 * self.alpha / S) * sq
        return F

    # -- value and gradient by backpropagation ---------------------------------------------
    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        """F(x) on ``data`` as a 0-dim tensor; writes ∇F(x) into ``g`` (``x``'s layout).

        The products run in inference mode (it skips autograd's bookkeeping, about
        a tenth of a tiny network's step); F, formed after it, is a normal tensor.
        """
        if x.requires_grad:
            x = x.detach()
        guard = _INFERENCE_MODE(True)
        guard.__enter__()
        try:
            u, v, extra = self._backprop(x, data, g)
        finally:
            guard.__exit__(None, None, None)
        F = torch.dot(u, v)  # F = u·v (+ extra), as a normal tensor
        return F if extra is None else F + extra

    def _backprop(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> tuple:
        """Write ∇F(x) into ``g``; return (u, v, e) with F(x) = u·v + e (e None for 0)."""
        X, sw = data.X, data.sw
        sparse = isinstance(X, SparseRows)
        n = len(X) if sparse else X.shape[0]
        xv, gv = self._xv, self._gv
        if xv is None or gv is None or x is not xv[0] or g is not gv[0] or \
                x.data_ptr() != xv[1] or g.data_ptr() != gv[1]:
            self._set_vectors(x, g)
        plan = self._plans.get((n, data.weight_scale))
        if plan is None:
            plan = self._make_plan(n, data.weight_scale, x)
        (W0, b0, A1, hidden, out_Ab, out_Wb, P0, U, Z, Zflat, xs, mask_s, mask, pen_beta,
         fold, t, alpha_t, row_t, inv_n, row_n, vec_n, backward, gW0, gb0) = plan
        act_ = self._act_
        penalised = self.alpha != 0.0
        # the squared error inlined (below); otherwise the Loss object
        inline = sw is None and A1 is not None and self._squared

        # forward (Eq. 9): A_l = σ([A_{l-1}, 1] [W_l; b_l]), kept as [A_l, 1]
        if A1 is None:  # no hidden layer
            if sparse:
                torch.add(matmul(X, W0), b0, out=Z)
            else:
                torch.addmm(b0, X, W0, out=Z)
        else:
            if sparse:
                torch.add(matmul(X, W0), b0, out=A1)
            else:
                torch.addmm(b0, X, W0, out=A1)
            if act_ is not None:
                act_(A1)
            for Ab_in, Wb, A_out in hidden:
                torch.mm(Ab_in, Wb, out=A_out)  # Z_l = [A_{l-1}, 1] [W_l; b_l]
                if act_ is not None:
                    act_(A_out)
            if inline:  # t (Z − Y), t = √(1/2nK)
                torch.addmm(data.Y, out_Ab, out_Wb, beta=-t, alpha=t, out=Z)
            else:
                torch.mm(out_Ab, out_Wb, out=Z)

        # the value and the output δ (Eq. 11); the penalty's term is √(c/2) x ⊙ mask
        extra = None
        if penalised and sw is None:
            torch.mul(x, mask_s, out=xs)
        else:
            pen_beta = 0.0
        if inline:
            # F = ½ Σ (Z − Y)² / nK (+ ‖√(c/2) x ⊙ mask‖²) = U·U; δ = t (Z − Y), the
            # rest of ∂F/∂Z = (Z − Y) / nK is folded into alpha_t = 1 / (nKt) and row_t
            u = U if penalised else Zflat
            v, delta, scale, row = u, Z, alpha_t, row_t
        else:
            u, delta = self.loss.value_and_derivative(Z, data.Y)
            scale, row = inv_n, row_n
            if sw is None:
                v = vec_n
                if penalised:
                    extra = torch.dot(xs, xs)
            else:
                v = sw * inv_n
                delta = delta * sw.unsqueeze(1)

        # backward (Eq. 10-13): [∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l + c [W_l; 0],
        # δ_{l-1} = σ'(Z_{l-1}) ⊙ (δ_l W_lᵀ)
        # (σ' in place on δ's buffer D; the penalty folded into the products, or for
        # large networks, where addmm would copy P first, added once at the end)
        pen_in, pen_after = (pen_beta, 0.0) if fold else (0.0, pen_beta)
        dact = self._dact
        if self._relu:
            for gWb, P, AbT_in, WT, A_in, D in backward:
                torch.addmm(P, AbT_in, delta, beta=pen_in, alpha=scale, out=gWb)
                delta = _THRESHOLD_BACKWARD(torch.mm(delta, WT, out=D), A_in, 0, grad_input=D)
        else:
            for gWb, P, AbT_in, WT, A_in, D in backward:
                torch.addmm(P, AbT_in, delta, beta=pen_in, alpha=scale, out=gWb)
                delta = torch.mm(delta, WT, out=D)
                if dact is not None:
                    dact(D, A_in, grad_input=D)
        if sparse:
            torch.mul(tmatmul(X, delta), scale, out=gW0)
            if pen_in:
                gW0.add_(P0, alpha=pen_in)
        else:
            torch.addmm(P0, X.T, delta, beta=pen_in, alpha=scale, out=gW0)
        torch.mm(row, delta, out=gb0)  # 1ᵀ δ_1
        if pen_after:
            g.add_(xs, alpha=pen_after)

        if penalised and sw is not None:  # S = weight_scale · Σ s, a tensor here
            xm = x * mask
            c = self.alpha / (data.weight_scale * sw.sum())
            extra = 0.5 * c * torch.dot(xm, xm)
            g.addcmul_(xm, c)
        return u, v, extra

    # -- the training path's views and buffers -----------------------------------------------
    def _clear_caches(self):
        self._xv = self._gv = None  # (x, x.data_ptr(), views of x); the same for g
        self._plans = {}  # (batch size, weight_scale) -> plan, for the current x and g
        self._xplans = {}  # the same, its part without g, for the current x
        self._bufs = {}  # (batch size, dtype, device) -> buffers

    def __getstate__(self):
        derived = ("_act_", "_dact", "_relu", "_squared", "_xv", "_gv", "_plans", "_xplans",
                   "_bufs")
        return {k: v for k, v in self.__dict__.items() if k not in derived}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._set_derived()

    def _set_vectors(self, x: torch.Tensor, g: torch.Tensor):
        """Views of a new ``x`` or ``g``; the plans holding the old ones are dropped."""
        xv, gv = self._xv, self._gv
        if xv is None or x is not xv[0] or x.data_ptr() != xv[1]:
            self._xv = (x, x.data_ptr(), self._x_views(x))
            self._xplans = {}
        if gv is None or g is not gv[0] or g.data_ptr() != gv[1]:
            self._gv = (g, g.data_ptr(), self._g_views(g))
        self._plans = {}

    def _x_views(self, x: torch.Tensor) -> tuple:
        """W_l and [W_l; b_l] per layer, b_1, and the 0/1 mask of the weights."""
        W, Wb = [], []
        mask = torch.zeros(self.n_params, dtype=x.dtype, device=x.device)
        for start, mid, end, fan_in, fan_out in self._layers:
            W.append(x[start:mid].view(fan_in, fan_out))
            Wb.append(x[start:end].view(fan_in + 1, fan_out))
            mask[start:mid] = 1.0
        return W, Wb, Wb[0][-1], mask

    def _g_views(self, g: torch.Tensor) -> tuple:
        """[∇W_l; ∇b_l] per layer (``g``'s blocks as matrices), ∇W_1 and ∇b_1 (a row)."""
        gWb = [g[start:end].view(fan_in + 1, fan_out)
               for start, _, end, fan_in, fan_out in self._layers]
        return gWb, gWb[0][:-1], gWb[0][-1:]

    def _make_plan(self, n: int, weight_scale: float, x: torch.Tensor) -> tuple:
        """What a step on ``n`` rows multiplies, for the current x and g.

        Its part without g is kept per x (a full-batch method hands a new g each
        call), and the buffers across x.
        """
        key = (n, weight_scale)
        xplan = self._xplans.get(key)
        if xplan is None:
            xplan = self._make_xplan(n, weight_scale, x)
        backward_x, cached = xplan[-2:]
        gWb, gW0, gb0 = self._gv[2]
        backward = [(gWb[l], *rest) for l, rest in backward_x]
        plan = (*xplan[:-2], backward, gW0, gb0)
        if cached:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _make_xplan(self, n: int, weight_scale: float, x: torch.Tensor) -> tuple:
        L, K = self.n_layers, self.layer_sizes[-1]
        W, Wb, b0, mask = self._xv[2]
        A, D, U, cached = self._buffers(n, x)
        # A[l]: views of the buffer of A_{l+1}: (A [n, h], [A, 1]ᵀ, [A, 1])
        Z, xs = U[: n * K].view(n, K), U[n * K:]
        P = [xs[start:end].view(fan_in + 1, fan_out)  # √(c/2) [W_l; 0]
             for start, _, end, fan_in, fan_out in self._layers]
        if L == 1:
            A1 = out_Ab = None
        else:
            A1, out_Ab = A[0][0], A[L - 2][2]
        hidden = [(A[l - 1][2], Wb[l], A[l][0]) for l in range(1, L - 1)]
        backward = [(l, (P[l], A[l - 1][1], W[l].T, A[l - 1][0], D[l - 1]))
                    for l in range(L - 1, 0, -1)]
        # the penalty c = α / S, S = weight_scale · n: x ⊙ mask_s = √(c/2) x ⊙ mask,
        # and √(2c) · √(c/2) W = c W
        c = self.alpha / (weight_scale * n)
        mask_s = mask * math.sqrt(0.5 * c)
        pen_beta = math.sqrt(2.0 * c)
        t = math.sqrt(0.5 / (n * K))
        alpha_t = 1.0 / (n * K * t)
        opts = {"dtype": x.dtype, "device": x.device}
        row_t = torch.full((1, n), alpha_t, **opts)
        row_n = torch.full((1, n), 1.0 / n, **opts)
        xplan = (W[0], b0, A1, hidden, out_Ab, Wb[-1], P[0][:-1], U, Z, Z.view(-1), xs,
                 mask_s, mask, pen_beta, self.n_params <= _FOLD_PARAMS, t, alpha_t, row_t,
                 1.0 / n, row_n, row_n[0], backward, cached)
        if cached:
            if len(self._xplans) >= _MAX_PLANS:
                self._xplans.clear()
            self._xplans[n, weight_scale] = xplan
        return xplan

    def _buffers(self, n: int, x: torch.Tensor) -> tuple[list, list, torch.Tensor, bool]:
        """Per hidden layer a buffer ``[A, 1]`` (as views) and one for its δ, and U.

        U holds Z (``n * K``) then a vector of ``n_params``.  Kept for batches of
        up to ``_CACHE_BYTES``, rebuilt for larger ones.
        """
        key = (n, x.dtype, x.device)
        cached = self._bufs.get(key)
        if cached is not None:
            return cached
        A, D = [], []
        for h in self.layer_sizes[1:-1]:
            Ab = torch.empty(n, h + 1, dtype=x.dtype, device=x.device)
            Ab[:, h].fill_(1.0)
            A.append((Ab[:, :h], Ab.T, Ab))
            D.append(torch.empty(n, h, dtype=x.dtype, device=x.device))
        U = torch.zeros(n * self.layer_sizes[-1] + self.n_params, dtype=x.dtype,
                        device=x.device)
        nbytes = (n * (2 * sum(self.layer_sizes[1:]) + 1) + self.n_params) * x.element_size()
        keep = nbytes <= _CACHE_BYTES
        if keep:
            if len(self._bufs) >= _MAX_PLANS:
                self._bufs.clear()
            self._bufs[key] = (A, D, U, True)
        return A, D, U, keep
