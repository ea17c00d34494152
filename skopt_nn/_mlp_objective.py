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

Speed.  For the lecture's tiny networks a step is about twenty torch calls on
tensors of a few hundred numbers, so its cost is the number of calls (1-2 µs
each), not their arithmetic; for wide layers it is the matrix products, and how
fast the BLAS runs one depends on the layout of its operands.
:meth:`MLPObjective.value_grad` therefore

* reads each block ``[W_l; b_l]`` of the flat vector as one ``(fan_in+1, fan_out)``
  matrix and keeps each hidden activation in a buffer ``[A_l, 1]`` whose last
  column is ones: a layer's forward product ``[A_{l-1}, 1] [W_l; b_l]`` and its
  whole gradient block ``[∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l`` are one product
  each, written in place (``addmm_``, ``beta=0`` where nothing is added) into
  the buffer and into the flat gradient; σ and σ' run in place on the buffers
  (σ' on δ's own buffer, through the aten ``*_backward`` kernels called without
  their Python ``OpOverload`` wrapper);
* folds δ_L's 1/n and the penalty's gradient into those products: with a
  penalty, g first receives √(c/2)·x ⊙ mask (c = α/S, the mask zero on the
  intercepts) and each product is ``addmm_([A, 1]ᵀ, δ, beta=√(2c), alpha=1/n)``
  on g's block (with sample weights S is a tensor, and c·x ⊙ mask is added
  after the products);
* inlines the squared error, the regression loss: the output product is
  ``addmm(Y, [A, 1], [W; b], beta=-t, alpha=t) = t(Z − Y)`` with t = √(1/2nK),
  and it lies next to √(c/2)·x ⊙ mask in one buffer, so F is one ``dot`` of that
  buffer with itself;
* inlines the softmax cross-entropy, the multi-class loss, on Zᵀ: Z is kept
  column-major, so Zᵀ is a contiguous ``(K, n)`` matrix and its log-softmax runs
  over dim 0 (for 256×10, 3 µs against 40 µs over dim 1 of ``(n, K)``); F is one
  ``dot`` of log pᵀ with −Yᵀ/n and δ_L = p − Y, transposed back (the other losses
  go through their :class:`Loss` object);
* chooses, per shape, the layout of the output product Z (the softmax's is
  always column-major) and of each gradient block (dense X): for a product of
  at least ``_TIME_MACS`` multiply-adds on the CPU it times, once per process
  and shape, the product into a row-major result against the same product into
  a column-major one (for a gradient block, a temp then copied or added into
  g) and keeps the second where it is clearly faster.  It matters for narrow
  results: with MKL on this project's 2-core AMD EPYC, a 256×257 by 257×10
  product takes ~120 µs into a row-major result and ~30 µs into a column-major
  one, the 257×256 by 256×10 gradient block ~105 µs against ~30 µs; square
  products run at the same speed either way.  The choice is cached for the
  process, so fits in one process run the same arithmetic; smaller products,
  and other devices, keep the row-major layout;
* runs in inference mode, which skips autograd's dispatch; only F, the last
  ``dot``, is formed outside it, as a normal tensor;
* caches the views of ``x`` and ``g`` (of the last vectors seen) and, per batch
  size, the buffers and what each layer multiplies (its ``Plan``, :mod:`skopt_nn._mlp_plan`), so a
  step builds few views (``Xᵀ``; with the softmax, ``Yᵀ`` and δ_L's transpose)
  and, with the squared error, allocates only scalars.

:meth:`MLPObjective.value` and :meth:`MLPObjective.decision` are plain
differentiable forward passes; the tests compare ``value_grad`` with
``torch.autograd`` on ``value``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._activations import ACTIVATIONS, ACTIVATIONS_INPLACE, DERIVATIVES, THRESHOLD_BACKWARD
from ._data import Dataset, SparseRows, matmul, tmatmul
from ._losses import Loss, SoftmaxCrossEntropy, SquaredError
from ._mlp_layout import prefer_transposed
from ._mlp_plan import Backward, Forward, Plan
from ._objective import NetworkSpec, Objective

#: a guard that turns off autograd's dispatch (torch.inference_mode without its
#: Python wrapper, which costs as much as it saves on a tiny network)
_INFERENCE_MODE = getattr(torch._C, "_InferenceMode", torch.inference_mode)

#: buffers are kept between calls for batches up to this size (bytes)
_CACHE_BYTES = 8 << 20
#: at most this many batch sizes are cached
_MAX_PLANS = 4


class MLPObjective(Objective):
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
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
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
        """What the training path looks up once: σ, σ', the inlined loss...; no caches."""
        self._act_ = ACTIVATIONS_INPLACE[self.activation]
        self._dact = DERIVATIVES[self.activation]
        self._relu = self.activation == "relu"
        self._squared = type(self.loss) is SquaredError
        self._softmax = type(self.loss) is SoftmaxCrossEntropy and self.layer_sizes[-1] > 1
        self._addcmul = self.layer_sizes[0] == 1  # one input feature: b + X w
        self._clear_caches()

    def network(self) -> NetworkSpec:
        """The layers, the penalty scaled by the batch's weight (scikit-learn's)."""
        return NetworkSpec(self.layer_sizes, self.activation, self.loss, True,
                           penalty_per_batch=True)

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
        act = ACTIVATIONS[self.activation]
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

        The products run in inference mode (it skips autograd's bookkeeping); F,
        formed after it, is a normal tensor.
        """
        if x.requires_grad:
            x = x.detach()
        guard = _INFERENCE_MODE(True)
        guard.__enter__()
        try:
            u, v, extra = self._backprop(x, data, g)
        finally:
            guard.__exit__(None, None, None)
        F = u.dot(v)  # F = u·v (+ extra), as a normal tensor
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
        p = self._plans.get((n, data.weight_scale))
        if p is None:
            p = self._make_plan(n, data.weight_scale, x, data)
        act_ = self._act_
        penalised = self.alpha != 0.0
        # the squared error inlined (below); otherwise the Loss object
        inline = sw is None and p.A1 is not None and self._squared
        Z = p.Z

        # forward (Eq. 9): A_l = σ([A_{l-1}, 1] [W_l; b_l]), kept as [A_l, 1]
        first = Z if p.A1 is None else p.A1
        if sparse:
            torch.add(matmul(X, p.W0), p.b0, out=first)
        elif self._addcmul:  # one input feature: b + X w, cheaper than addmm
            torch.addcmul(p.b0, X, p.W0, out=first)
        else:
            torch.addmm(p.b0, X, p.W0, out=first)
        if p.A1 is not None:
            if act_ is not None:
                act_(first)
            for Ab_in, Wb, A_out in p.hidden:
                A_out.addmm_(Ab_in, Wb, beta=0.0)  # Z_l = [A_{l-1}, 1] [W_l; b_l]
                if act_ is not None:
                    act_(A_out)
            if inline:  # t (Z − Y), t = √(1/2nK)
                torch.addmm(data.Y, p.out_Ab, p.out_Wb, beta=-p.t, alpha=p.t, out=Z)
            else:
                Z.addmm_(p.out_Ab, p.out_Wb, beta=0.0)

        # the value and the output δ (Eq. 11); the penalty's term is √(c/2) x ⊙ mask,
        # copied into g first: the products add their part to √(2c) times it (beta)
        extra = None
        beta = 0.0
        if penalised and sw is None:
            torch.mul(x, p.mask_s, out=p.xs)
            g.copy_(p.xs)
            beta = p.pen_beta
        if inline:
            # F = ½ Σ (Z − Y)² / nK (+ ‖√(c/2) x ⊙ mask‖²) = U·U; δ = t (Z − Y), the
            # rest of ∂F/∂Z = (Z − Y) / nK is folded into alpha_t = 1 / (nKt) and row_t
            u = p.U if penalised else p.Zflat
            v, delta, scale, row = u, Z, p.alpha_t, p.row_t
        elif self._softmax:
            # on Zᵀ (K, n), stored contiguous: log-softmax over dim 0 is ~15x faster
            # than over dim 1 of (n, K); F = log pᵀ · V with V = −s ⊙ Yᵀ / n, and
            # n δ_L = s ⊙ (p − Y) = s ⊙ p + n V, transposed back to (n, K)
            u, v = torch.log_softmax(p.ZT, 0), p.Vt
            torch.mul(data.Y.T, -p.inv_n, out=v)
            dT = u.exp()
            if sw is not None:
                v.mul_(sw)
                dT.mul_(sw)
            delta = dT.add_(v, alpha=n).T
            u, v, scale, row = u.view(-1), v.view(-1), p.inv_n, p.row_n
            if penalised and sw is None:
                extra = p.xs.dot(p.xs)
        else:
            u, delta = self.loss.value_and_derivative(Z, data.Y)
            scale, row = p.inv_n, p.row_n
            if sw is None:
                v = p.vec_n
                if penalised:
                    extra = p.xs.dot(p.xs)
            else:
                v = sw * p.inv_n
                delta = delta * sw.unsqueeze(1)

        # backward (Eq. 10-13): [∇W_l; ∇b_l] = [A_{l-1}, 1]ᵀ δ_l + c [W_l; 0],
        # δ_{l-1} = σ'(Z_{l-1}) ⊙ (δ_l W_lᵀ) (σ' in place on δ's buffer D); a block
        # with a column-major temp is written there, then copied (or added) into g
        dact = self._dact
        relu = self._relu
        for gWb, dst, AbT, WT, A_in, D in p.backward:
            if dst is None:
                gWb.addmm_(AbT, delta, beta=beta, alpha=scale)
            else:
                gWb.addmm_(AbT, delta, beta=0.0, alpha=scale)
                if beta:
                    torch.add(gWb, dst, alpha=beta, out=dst)
                else:
                    dst.copy_(gWb)
            delta = D.addmm_(delta, WT, beta=0.0)
            if relu:
                THRESHOLD_BACKWARD(delta, A_in, 0, grad_input=delta)
            elif dact is not None:
                dact(delta, A_in, grad_input=delta)
        gW0 = p.gW0
        if sparse:
            torch.mul(tmatmul(X, delta), scale, out=gW0)
            if beta:
                gW0.add_(p.P0, alpha=beta)
        elif p.gW0_t:
            gW0.addmm_(X.T, delta, beta=0.0, alpha=scale)
            if beta:
                torch.add(gW0, p.gW0_dst, alpha=beta, out=p.gW0_dst)
            else:
                p.gW0_dst.copy_(gW0)
        else:
            gW0.addmm_(X.T, delta, beta=beta, alpha=scale)
        p.gb0.addmm_(row, delta, beta=0.0)  # 1ᵀ δ_1 (the mask left it 0)

        if penalised and sw is not None:  # S = weight_scale · Σ s, a tensor here
            xm = x * p.mask
            c = self.alpha / (data.weight_scale * sw.sum())
            extra = 0.5 * c * xm.dot(xm)
            g.addcmul_(xm, c)
        return u, v, extra

    # -- the training path's views and buffers -----------------------------------------------
    def _clear_caches(self):
        self._xv = self._gv = None  # (x, x.data_ptr(), views of x); the same for g
        self._plans = {}  # (batch size, weight_scale) -> Plan, for the current x and g
        self._xplans = {}  # the same, its part without g, for the current x
        self._bufs = {}  # (batch size, dtype, device) -> buffers

    def __getstate__(self):
        derived = ("_act_", "_dact", "_relu", "_squared", "_softmax", "_addcmul", "_xv", "_gv",
                   "_plans", "_xplans", "_bufs")
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

    def _make_plan(self, n: int, weight_scale: float, x: torch.Tensor, data: Dataset) -> Plan:
        """What a step on ``n`` rows multiplies, for the current x and g.

        Its part without g is kept per x (a full-batch method hands a new g each
        call), and the buffers across x.
        """
        key = (n, weight_scale)
        xplan = self._xplans.get(key)
        if xplan is None:
            xplan = self._make_xplan(n, weight_scale, x, data)
        gWb, gW0, gb0 = self._gv[2]
        backward = tuple(Backward(gWb[l], None, *rest) if temp is None else
                         Backward(temp, gWb[l], *rest) for l, temp, rest in xplan.backward)
        if xplan.gW0_t:
            plan = replace(xplan, backward=backward, gW0_dst=gW0, gb0=gb0)
        else:
            plan = replace(xplan, backward=backward, gW0=gW0, gb0=gb0)
        if plan.cached:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _make_xplan(self, n: int, weight_scale: float, x: torch.Tensor, data: Dataset
                    ) -> Plan:
        L, K = self.n_layers, self.layer_sizes[-1]
        W, Wb, b0, mask = self._xv[2]
        A, D, U, cached = self._buffers(n, x)
        # A[l]: views of the buffer of A_{l+1}: (A [n, h], [A, 1]ᵀ, [A, 1])
        # Z column-major: the faster product, or the inlined softmax's Zᵀ
        z_t = self._softmax or L > 1 and prefer_transposed(n, *Wb[-1].shape, False, False,
                                                            False, x)
        Z = U[: n * K].view(K, n).T if z_t else U[: n * K].view(n, K)
        # δ_L column-major: the inlined squared error's Z, or the inlined softmax's
        delta_t = self._softmax or z_t and data.sw is None and L > 1 and self._squared
        backward = tuple((l, self._grad_temp(n, l, delta_t and l == L - 1, x),
                          (A[l - 1][1], W[l].T, A[l - 1][0], D[l - 1]))
                         for l in range(L - 1, 0, -1))
        dense = not isinstance(data.X, SparseRows)
        gW0_t = dense and prefer_transposed(self.layer_sizes[0], n, self.layer_sizes[1],
                                             True, delta_t and L == 1, True, x)
        # the penalty c = α / S, S = weight_scale · n: x ⊙ mask_s = √(c/2) x ⊙ mask
        c = self.alpha / (weight_scale * n)
        t = math.sqrt(0.5 / (n * K))
        opts = {"dtype": x.dtype, "device": x.device}
        row_n = torch.full((1, n), 1.0 / n, **opts)
        xplan = Plan(
            W0=W[0], b0=b0, A1=None if L == 1 else A[0][0],
            hidden=tuple(Forward(A[l - 1][2], Wb[l], A[l][0]) for l in range(1, L - 1)),
            out_Ab=None if L == 1 else A[L - 2][2], out_Wb=Wb[-1], U=U, Z=Z, ZT=Z.T,
            Vt=torch.empty(K, n, **opts) if self._softmax else None,
            Zflat=U[: n * K], xs=U[n * K:], mask=mask, mask_s=mask * math.sqrt(0.5 * c),
            pen_beta=math.sqrt(2.0 * c), P0=U[n * K: n * K + W[0].numel()].view(W[0].shape),
            t=t, alpha_t=1.0 / (n * K * t),
            row_t=torch.full((1, n), 1.0 / (n * K * t), **opts), inv_n=1.0 / n, row_n=row_n,
            vec_n=row_n[0], cached=cached, backward=backward, gW0_t=gW0_t,
            gW0=torch.empty(self.layer_sizes[1], self.layer_sizes[0], **opts).T if gW0_t else None)
        if cached:
            if len(self._xplans) >= _MAX_PLANS:
                self._xplans.clear()
            self._xplans[n, weight_scale] = xplan
        return xplan

    def _grad_temp(self, n: int, layer: int, delta_t: bool, x: torch.Tensor
                   ) -> torch.Tensor | None:
        """A column-major temp for layer ``layer``'s gradient block, or ``None`` (direct).

        ``delta_t``: δ of that layer is stored column-major (the inlined losses').
        """
        fan_in, fan_out = self.layer_sizes[layer], self.layer_sizes[layer + 1]
        if not prefer_transposed(fan_in + 1, n, fan_out, True, delta_t, True, x):
            return None
        return torch.empty(fan_out, fan_in + 1, dtype=x.dtype, device=x.device).T

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
