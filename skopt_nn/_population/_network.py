r"""M networks of one architecture as one computation: batched products on ``(M, P)``.

Model m's parameters are row m of ``X``, laid out as its single objective lays
them out (per layer ``W_l.ravel()`` then ``b_l``), so a row is that model's flat
vector.  For a batch of b rows per model, ``A_0`` of shape ``(M, b, d)``, the
forward pass and backpropagation are those of :mod:`skopt_nn._mlp_objective`
(lecture Eq. 9-13) with every product a batched one (``baddbmm``/``bmm``):

.. math::
    Z_l = A_{l-1} W_l + b_l, \quad A_l = \sigma(Z_l), \qquad
    \delta_L = s \odot \partial f/\partial Z_L / b, \quad
    \delta_{l-1} = \sigma'(Z_{l-1}) \odot \delta_l W_l^\top,

    \nabla W_l = A_{l-1}^\top \delta_l + c\, W_l, \quad \nabla b_l = 1^\top \delta_l,

and F_m = mean(s ⊙ f) + c/2 Σ‖W_l‖² per model, with c = α_m / S_m (S the batch's
sum of raw sample weights) for the MLPs and c = α_m for the linear models (see
:class:`skopt_nn._objective.NetworkSpec`).  A linear model is the network with
no hidden layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import _layout_store
from .._activations import ACTIVATIONS, ACTIVATIONS_INPLACE, DERIVATIVES, THRESHOLD_BACKWARD
from .._losses import _TRANSPOSED_SOFTMAX_K, Loss, SoftmaxCrossEntropy
from .._mlp_layout import best_time
from .._objective import NetworkSpec
from ._scratch import Scratch

#: batched products of at most this many multiply-adds per model run in NumPy on the
#: CPU: for the small matrices of the lecture's networks its batched matmul was 2-4x
#: faster than torch's bmm (120 x 16x10 by 10x20: 25 against 90 us); larger ones
#: run in torch, faster there
_NUMPY_MACS = 1 << 14
#: NumPy's form is tried only for products of at most this many multiply-adds per
#: model: OpenBLAS runs those on one thread (its threshold is 4 x 65536), while a
#: larger one would start its threads beside torch's (measured: a step 6x slower)
_NUMPY_MAX_MACS = 1 << 18
#: another form of a larger product is kept where it takes at most this share of the
#: direct one's time
_LAYOUT_MARGIN = 0.8
#: the forms of a batched product ``A @ B``: torch's ``bmm(A, B)``, its transposed
#: ``bmm(Bᵀ, Aᵀ)ᵀ``, and NumPy's ``matmul`` (OpenBLAS, one product per model)
DIRECT, TRANSPOSED, NUMPY = 0, 1, 2
#: (M, n, k, m, A's strides, B's strides, dtype) -> the fastest form: this process's
#: memo of the choices :mod:`skopt_nn._layout_store` keeps per machine
_LAYOUTS: dict[tuple, int] = {}


def _numpy_operand(B: torch.Tensor) -> np.ndarray:
    """``B`` as a NumPy array NumPy multiplies fast (contiguous: its product of a
    strided operand is slow)."""
    b = B.numpy()
    return b if b.flags.c_contiguous else np.ascontiguousarray(b)


def _fastest(A: torch.Tensor, B: torch.Tensor) -> int:
    """The fastest form of ``A @ B`` for these operands' shapes and layouts, timed
    once per machine, layout and thread count on the CPU and kept
    (:mod:`skopt_nn._layout_store`); :data:`DIRECT` elsewhere.

    With MKL on a 2-core AMD EPYC the layout of a narrow result decides the speed,
    as for one model (see :mod:`skopt_nn._mlp_objective`): 8 x 256x64 by 64x10
    took 190 us directly and 46 us transposed.  NumPy's batched matmul, one
    OpenBLAS product per model, beat both for 16 x 256x64 by 64x10 (79 against 95
    us transposed and 390 direct) and for the gradient block 16 x 64x256 by
    256x10 (54 against 92 and 418); products of square blocks run alike.
    """
    if A.device.type != "cpu":
        return DIRECT
    key = (*A.shape, B.shape[2], A.stride(), B.stride(), A.dtype)
    hit = _LAYOUTS.get(key)
    if hit is None:  # (the stored choice is per thread count too; the memo per process)
        hit = _LAYOUTS[key] = int(_layout_store.choice(
            ("bmm", *key[:-1], str(A.dtype), torch.get_num_threads()),
            lambda: _timed_form(A, B)))
    return hit


def _timed_form(A: torch.Tensor, B: torch.Tensor) -> int:
    """The form :func:`_fastest` keeps, by timing each once on copies of the operands."""
    a, b = A.clone(), B.clone()  # the operands' layouts, not their numbers
    out = np.empty((A.shape[0], A.shape[1], B.shape[2]), dtype=a.numpy().dtype)
    an = a.numpy()
    numpy = A.shape[1] * A.shape[2] * B.shape[2] <= _NUMPY_MAX_MACS
    with torch.inference_mode():
        times = [best_time(lambda: torch.bmm(a, b)),
                 best_time(lambda: torch.bmm(b.transpose(1, 2), a.transpose(1, 2))),
                 best_time(lambda: np.matmul(an, _numpy_operand(b), out=out))
                 if numpy else math.inf]
        times[DIRECT] = min(times[DIRECT], best_time(lambda: torch.bmm(a, b)))
    best = min((TRANSPOSED, NUMPY), key=lambda form: times[form])
    return best if times[best] <= _LAYOUT_MARGIN * times[DIRECT] else DIRECT


def _bmm(A: torch.Tensor, B: torch.Tensor, timed: bool = True,
         scratch: Scratch | None = None, slot=None, form: int | None = None) -> torch.Tensor:
    """The batched product ``A @ B`` of ``(M, n, k)`` by ``(M, k, m)``, in the form
    that is fast for the shapes (the result may be a transposed view); ``timed=False``
    for a product made once (it is not worth timing), ``form`` where the caller knows
    it.  With ``scratch``, the result is written into its buffer ``slot``
    (overwritten by the next product there)."""
    M, n, m = A.shape[0], A.shape[1], B.shape[2]

    def out(shape):
        return None if scratch is None else scratch.get(slot, shape, A)

    if n == 1:  # a row times a matrix (the gradient of one input feature)
        return torch.sum(A.transpose(1, 2) * B, 1, keepdim=True)
    if form is None:
        small = A.device.type == "cpu" and n * A.shape[2] * m <= _NUMPY_MACS
        form = NUMPY if small else _fastest(A, B) if timed else DIRECT
    if form == NUMPY:
        C = out((M, n, m))
        if C is None:
            return torch.from_numpy(np.matmul(A.numpy(), _numpy_operand(B)))
        np.matmul(A.numpy(), _numpy_operand(B), out=C.numpy())
        return C
    if form == TRANSPOSED:
        C = out((M, m, n))
        return torch.bmm(B.transpose(1, 2), A.transpose(1, 2), out=C).transpose(1, 2)
    return torch.bmm(A, B, out=out((M, n, m)))


def _bmm_into(A: torch.Tensor, B: torch.Tensor, out: torch.Tensor,
              scratch: Scratch | None = None, slot=None) -> None:
    """``out = A @ B``, batched, into a (strided) view ``out``: NumPy's form writes
    there directly, torch's through ``scratch``'s buffer ``slot``."""
    if A.shape[1] == 1:
        torch.sum(A.transpose(1, 2) * B, 1, keepdim=True, out=out)
        return
    small = A.device.type == "cpu" and A.shape[1] * A.shape[2] * B.shape[2] <= _NUMPY_MACS
    form = NUMPY if small else _fastest(A, B)
    if form == NUMPY:
        np.matmul(A.numpy(), _numpy_operand(B), out=out.numpy())
    else:
        out.copy_(_bmm(A, B, scratch=scratch, slot=slot, form=form))


def _baddbmm(bias: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
             timed: bool = True, scratch: Scratch | None = None, slot=None) -> torch.Tensor:
    """``bias + A @ B``, batched."""
    if A.shape[2] == 1:  # one input feature: an outer product, bias + A ⊙ B
        C = None if scratch is None else scratch.get(slot, (A.shape[0], A.shape[1],
                                                             B.shape[2]), A)
        return torch.addcmul(bias, A, B, out=C)
    return _bmm(A, B, timed, scratch, slot).add_(bias)


@dataclass(slots=True)
class Batch:
    """b rows per model: inputs ``(M, b, d)``, targets ``(M, b, K)``, normalised sample
    weights ``(M, b)`` (None: unit weights) and the raw weights' means ``(M, 1)``.

    ``counts`` ``(M, 1)``, where given, are each model's real rows: the first
    ``counts[q]`` of its b, the others padding at zero weight in ``sw`` (the last
    batch of models with different numbers of rows); None: all b."""

    X: torch.Tensor
    Y: torch.Tensor
    sw: torch.Tensor | None
    weight_scale: torch.Tensor
    counts: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.X.shape[1]

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """Each model's mean of the per-row ``f`` (M, b) over its real rows, ``(M,)``."""
        return f.mean(1) if self.counts is None else f.sum(1) / self.counts.view(-1)

    def divisor(self):
        """What a model's per-row sums are divided by: b, or ``counts`` as ``(M, 1, 1)``."""
        return self.size if self.counts is None else self.counts.view(-1, 1, 1)


class StackedNetwork:
    """Loss, gradient and output of M models of one :class:`NetworkSpec`.

    Parameters
    ----------
    spec : NetworkSpec
    loss : Loss
        The per-sample loss (one object: it keeps no per-model state).
    alphas : torch.Tensor of shape (M, 1)
        Each model's penalty α.
    """

    def __init__(self, spec: NetworkSpec, loss: Loss, alphas: torch.Tensor):
        self.spec, self.loss, self.alphas = spec, loss, alphas
        sizes = spec.layer_sizes
        self.layers, start = [], 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            mid = start + fan_in * fan_out
            self.layers.append((start, mid, mid + fan_out, fan_in, fan_out))
            start = mid + fan_out
        self.n_params = start
        self.mask = torch.zeros(start, dtype=alphas.dtype, device=alphas.device)
        for s, m, _, _, _ in self.layers:
            self.mask[s:m] = 1.0  # the weights, not the intercepts, are penalised
        self._act = ACTIVATIONS[spec.activation]
        self._act_ = ACTIVATIONS_INPLACE[spec.activation]
        self._dact = DERIVATIVES[spec.activation]
        self._cached = None
        self._penalties: dict = {}
        self._scratch = Scratch()  # value_grad's results, reused step after step

    def select(self, keep: torch.Tensor) -> None:
        """Keep the models ``keep`` (row indices)."""
        self.alphas = self.alphas.index_select(0, keep)
        self._penalties.clear()
        self._scratch.clear()

    def _views(self, X: torch.Tensor) -> list:
        """Each layer's ``(W, b)`` as views ``(M, fan_in, fan_out)``, ``(M, 1, fan_out)``
        of ``X`` (cached for the last matrix: the parameters change in place)."""
        key = (X.data_ptr(), X.shape)
        if self._cached is None or self._cached[0] != key:
            M = X.shape[0]
            self._cached = (key, [(X[:, s:m].view(M, fi, fo), X[:, m:e].view(M, 1, fo))
                                  for s, m, e, fi, fo in self.layers])
        return self._cached[1]

    def decision(self, X: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """The raw outputs ``(M, n, K)`` for inputs ``A`` of shape ``(M, n, d)``."""
        views = self._views(X)
        for i, (W, b) in enumerate(views):
            A = _baddbmm(b, A, W, timed=False)
            if i < len(views) - 1 and self._act is not None:
                A = self._act(A)
        return A

    def _penalty_scale(self, batch: Batch) -> torch.Tensor:
        """c of each model, ``(M, 1)``: α/S for the MLPs, α for the linear models."""
        if not self.spec.penalty_per_batch:
            return self.alphas
        S = batch.size if batch.sw is None else batch.weight_scale * batch.sw.sum(1, True)
        return self.alphas / S

    def _penalty_weights(self, batch: Batch) -> torch.Tensor:
        """c ⊙ mask of each model, ``(M, P)``: the penalty's gradient is this times x.

        Cached per batch size without sample weights (c is then fixed), so that the
        penalty costs three passes a step: ∇ += cm ⊙ x and ½ (cm ⊙ x)·x."""
        key = batch.size if batch.sw is None else None
        hit = None if key is None else self._penalties.get(key)
        if hit is None:
            hit = self.mask * self._penalty_scale(batch)
            if key is not None:
                self._penalties[key] = hit
        return hit

    def value(self, X: torch.Tensor, batch: Batch) -> torch.Tensor:
        """F of each model on its rows of ``batch``, shape ``(M,)``."""
        Z = self.decision(X, batch.X)
        M, b, K = Z.shape
        f = self.loss.value(Z.reshape(M * b, K), batch.Y.reshape(M * b, K)).view(M, b)
        if batch.sw is not None:
            f = f * batch.sw
        return batch.mean(f) + self._penalty(X, batch)

    def _penalty(self, X: torch.Tensor, batch: Batch) -> torch.Tensor:
        return 0.5 * torch.linalg.vecdot(X * self._penalty_weights(batch), X)

    def value_grad(self, X: torch.Tensor, batch: Batch, G: torch.Tensor) -> torch.Tensor:
        """F of each model, shape ``(M,)``; writes each model's ∇F into its row of ``G``."""
        scratch = self._scratch
        with torch.inference_mode():
            views = self._views(X)
            A, inputs = batch.X, []
            for i, (W, b) in enumerate(views):  # forward (Eq. 9)
                inputs.append(A)
                A = _baddbmm(b, A, W, scratch=scratch, slot=("forward", i))
                if i < len(views) - 1 and self._act_ is not None:
                    A = self._act_(A)
            M, n, K = A.shape
            f, delta = self._output_delta(A, batch)  # δ_L (Eq. 11)
            for i in range(len(views) - 1, -1, -1):  # backward (Eq. 10-13)
                s, m, e, fi, fo = self.layers[i]
                _bmm_into(inputs[i].transpose(1, 2), delta, G[:, s:m].view(M, fi, fo),
                          scratch, ("gradient", i))
                if self.spec.fit_intercept:
                    torch.sum(delta, 1, out=G[:, m:e])
                else:
                    G[:, m:e].zero_()
                if i > 0:
                    delta = _bmm(delta, views[i][0].transpose(1, 2), scratch=scratch,
                                 slot=("delta", i))
                    self._derivative(delta, inputs[i])
            Xc = torch.mul(X, self._penalty_weights(batch),
                           out=scratch.get("penalty", X.shape, X))
            G.add_(Xc)
            F = torch.linalg.vecdot(Xc, X).mul_(0.5).add_(batch.mean(f))
        return F.clone()

    def _output_delta(self, Z: torch.Tensor, batch: Batch) -> tuple:
        """Each model's per-sample ``s ⊙ f`` (M, n) and δ_L = s ⊙ ∂f/∂Z / n (M, n, K).

        The softmax cross-entropy of many classes runs on Zᵀ (M, K, n), the layout in
        which the output product is fast and its log-softmax over the classes is a
        reduction over the middle axis (the loss's ``value_and_derivative_t``); δ_L
        is then a transposed view.
        """
        M, n, K = Z.shape
        sw = batch.sw
        if type(self.loss) is SoftmaxCrossEntropy and K >= _TRANSPOSED_SOFTMAX_K:
            ZT = Z.transpose(1, 2)
            f, dT = self.loss.value_and_derivative_t(ZT.contiguous(), batch.Y.transpose(1, 2))
            if sw is not None:
                f.mul_(sw)
                dT.mul_(sw[:, None, :])
            return f, dT.div_(batch.divisor()).transpose(1, 2)
        f, dZ = self.loss.value_and_derivative(Z.reshape(M * n, K), batch.Y.reshape(M * n, K))
        f, delta = f.view(M, n), dZ.reshape(M, n, K)
        if sw is not None:
            f, delta = f * sw, delta * sw[:, :, None]
        return f, delta / batch.divisor()

    def _derivative(self, delta: torch.Tensor, A: torch.Tensor) -> None:
        """δ ← δ ⊙ σ'(Z), read off the activation's output A = σ(Z), in place."""
        if self.spec.activation == "relu":
            THRESHOLD_BACKWARD(delta, A, 0, grad_input=delta)
        elif self._dact is not None:
            self._dact(delta, A, grad_input=delta)
