"""A compiled (numba) mini-batch epoch for the linear models on the CPU.

The torch path of :func:`skopt_nn._epochs.stochastic_epoch` costs a few torch
calls a step, 100-200 us per step at ``batch_size=1``; here a whole epoch of a
:class:`~skopt_nn._linear_objective.LinearObjective` trained by SGD, momentum,
AdaGrad, RMSProp or Adam is one call of a compiled loop that follows the torch
path's arithmetic: the same permutation (drawn from the trainer's shuffler), the
same batches, gradient (sample weights, the unscaled penalty α/2‖W‖², the intercept
unpenalised), update rule, schedule, averaging, batch losses and last gradient.
The results agree with the torch path to rounding (the sums run in another
order), not bit for bit.

:func:`compiled_stochastic_epoch` returns ``None`` wherever it does not apply
(numba missing, ``SKOPT_NN_COMPILED=0``, not a CPU, another objective, optimizer,
sampling, loss or dtype) and the torch path runs instead.

Dense rows are walked with contiguous loops.  Sparse CSR rows touch only their
nonzeros for the loss's part of the gradient; with plain SGD the penalty's shrink
of every weight is kept as a scale, W = s·V, and each step multiplies s by
(1 − ηα) (scikit-learn's ``sgd_fast`` does the same), so that a step costs the
row's nonzeros only.  The other rules update every coordinate each step anyway
(their state decays everywhere), so with them a sparse step is dense in the
parameters.

Adding a loss: a per-sample function ``f = _name(z, Y, row, dZ, i, K, eps)`` that
writes ∂f/∂z of the K outputs ``z`` (float64) for the targets ``Y[row]`` into
``dZ[i]`` and returns f, an entry in :data:`LOSS_CODES` and its branch in
:func:`_loss_terms`.  Computation is in float64 for float32 data too (the
parameters are stored back in float32).
"""

from __future__ import annotations

import importlib.util
import os
from typing import NamedTuple

import numpy as np
import torch

from .optim._schedules import KIND_CODES

#: numba is optional (the extra ``compiled``) and imported by the first compiled epoch:
#: importing the package does not pay for it
_HAS_NUMBA = importlib.util.find_spec("numba") is not None

#: the environment variable that turns the compiled epoch off (``SKOPT_NN_COMPILED=0``)
ENV_SWITCH = "SKOPT_NN_COMPILED"

#: the losses the kernels know, by :attr:`Loss.name`, and their codes in
#: ``_linear_kernels._loss_terms`` (the MLP kernels use the same functions)
LOSS_CODES = {
    "squared_error": 0,
    "absolute_error": 1,
    "hinge": 2,
    "logistic": 3,
    "softmax": 4,
    "huber": 5,
    "epsilon_insensitive": 6,
    "squared_epsilon_insensitive": 7,
    "modified_huber": 8,
    "squared_hinge": 9,
    "perceptron": 10,
    "poisson": 11,  # the MLPs' (a linear model has none)
}
RULE_SGD, RULE_MOMENTUM, RULE_ADAGRAD, RULE_RMSPROP, RULE_ADAM = range(5)
SCHEDULE_CODES = KIND_CODES
#: below this the scale s of W = s·V is folded into V (scikit-learn's threshold)
_MIN_SCALE = 1e-9
#: rows ahead whose memory is prefetched: an epoch visits the rows in a random order,
#: and without it each row waits on memory (200k x 100 float64, batch 1: 540 ns a
#: step instead of about 200)
_AHEAD = 6


def _rule(optimizer, state):
    """(code, hyperparameters, state arrays as tensors) of an update rule, or None."""
    from .optim._update_rules import SGD, AdaGrad, Adam, Momentum, RMSProp

    kind = type(optimizer)
    if kind is SGD:
        return RULE_SGD, [], ()
    if kind is Momentum:
        return RULE_MOMENTUM, [optimizer.momentum, float(bool(optimizer.nesterov))], \
            (state.delta,)
    if kind is AdaGrad:
        return RULE_ADAGRAD, [optimizer.epsilon], (state.sum_sq,)
    if kind is RMSProp:
        return RULE_RMSPROP, [optimizer.gamma, optimizer.epsilon,
                              float(bool(optimizer.elementwise))], (state.v,)
    if kind is Adam:
        return RULE_ADAM, [optimizer.beta_1, optimizer.beta_2, optimizer.epsilon,
                           float(bool(optimizer.elementwise))], (state.m, state.v)
    return None


def _host_array(t: torch.Tensor, dtype: torch.dtype, flat: bool = False):
    """A NumPy view of a CPU tensor that the kernels may write, or None."""
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu" or t.dtype != dtype or \
            not t.is_contiguous() or t.requires_grad:
        return None
    a = t.numpy()
    return a.reshape(-1) if flat else a


def _l1_terms(trainer, x: torch.Tensor, n_weights: int) -> tuple:
    """(u, q, λ) of the L1 truncation (its state made here on the first step), or empty
    arrays and λ = 0."""
    l1 = trainer.l1
    if l1 is None:
        empty = np.empty(0, dtype=x.numpy().dtype)
        return empty, empty, 0.0
    if l1.u is None or l1.u.shape != (n_weights,):
        l1.u, l1.q = torch.zeros_like(x[:n_weights]), torch.zeros_like(x[:n_weights])
    return l1.u.numpy(), l1.q.numpy(), float(l1.strength)


def enabled() -> bool:
    """Whether the compiled epoch is available and not switched off."""
    return _HAS_NUMBA and os.environ.get(ENV_SWITCH, "1") != "0"


class _Arrays(NamedTuple):
    """A linear epoch's host arrays: the data's, the parameters', the rule's state."""

    X: tuple  # (X,) dense, or (crow, col, val) sparse
    Y: np.ndarray
    sw: np.ndarray  # empty: unit weights
    x: np.ndarray
    g: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


def _applies(trainer, batcher):
    """(loss code, rule terms) where the compiled epoch runs this epoch, else None."""
    from ._data import SparseRows
    from ._engine import Averager
    from ._linear_objective import LinearObjective

    obj, x, opt, data = trainer.objective, trainer.x, trainer.optimizer, batcher.data
    if type(obj) is not LinearObjective or x.device.type != "cpu" or \
            x.dtype not in (torch.float32, torch.float64) or \
            opt.batch_sampling() != "without_replacement" or \
            (trainer.l1 is not None and isinstance(data.X, SparseRows)):
        return None  # the L1 truncation on sparse rows: the torch path
    code = LOSS_CODES.get(getattr(obj.loss, "name", None))
    rule = _rule(opt, trainer.opt_state)
    avg, n = trainer.averager, len(data)
    if code is None or rule is None or trainer.schedule.kind not in SCHEDULE_CODES or \
            n == 0 or (avg is not None and type(avg) is not Averager) or \
            data.Y.shape != (n, obj.K) or x.numel() != obj.d * obj.K + obj.K:
        return None
    return code, rule


def _arrays(trainer, data, g: torch.Tensor, state_tensors) -> _Arrays | None:
    """The epoch's tensors as host arrays the kernels write through, or None where
    one cannot be (not contiguous, another dtype)."""
    from ._data import SparseRows

    dtype = trainer.x.dtype
    xa, ga, Y = (_host_array(t, dtype) for t in (trainer.x, g, data.Y))
    states = [_host_array(t, dtype, flat=True) for t in state_tensors]
    sw = np.empty(0, dtype=np.float64 if dtype == torch.float64 else np.float32) \
        if data.sw is None else _host_array(data.sw, dtype)
    if xa is None or ga is None or Y is None or sw is None or any(s is None for s in states):
        return None
    X = data.X
    if isinstance(X, SparseRows):
        parts = (_host_array(X.crow, X.crow.dtype), _host_array(X.col, X.col.dtype),
                 _host_array(X.val, dtype))
        if any(p is None for p in parts) or parts[0].dtype != np.int64 or \
                parts[1].dtype != np.int64:
            return None
    else:
        parts = (_host_array(X, dtype),)
        if parts[0] is None or parts[0].ndim != 2 or parts[0].shape[1] != trainer.objective.d:
            return None
    empty = np.empty(0, dtype=xa.dtype)
    return _Arrays(parts, Y, sw, xa, ga, states[0] if states else empty,
                   states[1] if len(states) > 1 else empty)


def _averaging(trainer, xa: np.ndarray):
    """(the running average's array, a new average's tensor or None), or None where
    the average cannot be written in place."""
    avg = trainer.averager
    if avg is None:
        return np.empty(0, dtype=xa.dtype), None
    if avg.x is None:
        new_avg = torch.empty_like(trainer.x)
        return new_avg.numpy(), new_avg
    avg_x = _host_array(avg.x, trainer.x.dtype)
    return None if avg_x is None or avg_x.shape != xa.shape else (avg_x, None)


def compiled_stochastic_epoch(trainer, batcher, g: torch.Tensor, shuffle: bool):
    """The epoch of :func:`skopt_nn._epochs.stochastic_epoch`, compiled; ``None``
    where it does not apply (the torch path then runs)."""
    if not enabled():
        return None
    from ._epochs import EpochResult

    applies = _applies(trainer, batcher)
    if applies is None:
        return None
    code, (rule_code, hp, state_tensors) = applies
    data, batch_size, obj, x = batcher.data, batcher.batch_size, trainer.objective, trainer.x
    arrays = _arrays(trainer, data, g, state_tensors)
    averaging = None if arrays is None else _averaging(trainer, arrays.x)
    if averaging is None:
        return None
    avg_x, new_avg = averaging
    avg, schedule, n = trainer.averager, trainer.schedule, len(data)
    count = trainer.opt_state.count if rule_code == RULE_ADAM else 0
    # the torch path's permutation, from the same shuffler
    perm = (trainer.shuffler.permutation(n) if shuffle else torch.arange(n)).numpy()
    n_batches = (n + batch_size - 1) // batch_size
    losses = np.empty(n_batches, dtype=arrays.x.dtype)
    k0 = trainer.k
    avg_start, avg_n = (avg.start, avg.n) if avg is not None else (0, 0)
    common = (perm, arrays.x, arrays.g, batch_size, obj.K, bool(obj.fit_intercept),
              float(obj.alpha), code, float(getattr(obj.loss, "epsilon", 0.0)), rule_code,
              np.asarray(hp, dtype=np.float64), arrays.s1, arrays.s2, count,
              SCHEDULE_CODES[schedule.kind], float(schedule.eta), float(schedule.power_t),
              float(schedule.mu), float(schedule.t0), k0, avg_x, avg_start, avg_n, losses)
    from ._linear_kernels import _dense_epoch, _sparse_epoch

    if len(arrays.X) == 3:
        _sparse_epoch(*arrays.X, obj.d, arrays.Y, arrays.sw, *common)
    else:
        _dense_epoch(arrays.X[0], arrays.Y, arrays.sw, *common,
                     *_l1_terms(trainer, x, obj.d * obj.K))
    trainer.k = k0 + n_batches
    if rule_code == RULE_ADAM:
        trainer.opt_state.count = count + n_batches
    if avg is not None:
        avg.n += max(0, trainer.k - max(avg.start, k0 + 1) + 1)
        if new_avg is not None and avg.n > 0:
            avg.x = new_avg
    total = torch.from_numpy(losses).to(torch.float64)
    loss = float(torch.dot(total, batcher.sizes(torch.float64, x.device))) / n
    return EpochResult(loss, float(g.norm()), schedule(trainer.k), n_batches, n, loss)
