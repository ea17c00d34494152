r"""A whole mini-batch epoch of a small MLP as one compiled call (CPU, numba).

On the lecture's networks a step is bound by the cost of each torch call (some
twenty of them, a few µs each), not by arithmetic: the 1-10-20-10-1 network on 16
rows is about 20 000 multiply-adds.  :func:`compiled_mlp_epoch` runs the epoch the
torch path would run — the same permutation, batches, backpropagation (lecture
Eq. 9-13), update rule, schedule and penalty — inside one numba function, and
returns ``None`` wherever it does not apply, so that the torch path runs instead:
no numba, a GPU, sparse rows, a batch larger than :data:`MAX_WORK` allows, a loss or
rule it does not know, ``SKOPT_NN_COMPILED=0``.

The products are plain loops in an order that vectorises without reassociating
sums (axpy rows), so a float64 epoch equals the torch path to rounding.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch

from ._compiled_epoch import LOSS_CODES
from .optim._schedules import KIND_CODES

#: numba is optional (the extra ``skopt_nn[compiled]``), and imported at the first
#: compiled epoch only: importing the package does not pay for it
_HAS_NUMBA = importlib.util.find_spec("numba") is not None

#: the largest batch size x parameter count that trains compiled: beyond it the
#: torch path's products (MKL) win.  Measured on a 2-core AMD EPYC, one thread,
#: compiled/torch time: 0.46 at 9k (10-20-3 network, batch 32), 1.7 at 77k
#: (20-50-3, batch 64), 3.9 at 1.1M (64-64-3, batch 256)
MAX_WORK = 32_000

_ACTIVATIONS = {"identity": 0, "relu": 1, "tanh": 2, "logistic": 3}
_RULES = {"sgd": 0, "momentum": 1, "adagrad": 2, "rmsprop": 3, "adam": 4}


def enabled() -> bool:
    """Whether the compiled epochs may run (numba present, not switched off)."""
    return _HAS_NUMBA and os.environ.get("SKOPT_NN_COMPILED", "1") != "0"


def _rule_terms(optimizer, state):
    """(rule code, hyperparameters, state arrays) of an update rule it knows, or None."""
    name = type(optimizer).name
    code = _RULES.get(name)
    if code is None or optimizer.batch_sampling() != "without_replacement":
        return None
    if name == "sgd":
        return code, np.zeros(4), (), 0
    if name == "momentum":
        return code, np.array([optimizer.momentum, float(optimizer.nesterov), 0, 0]), \
            (state.delta,), 0
    if name == "adagrad":
        return code, np.array([optimizer.epsilon, 0, 0, 0]), (state.sum_sq,), 0
    if not optimizer.elementwise:
        return None
    if name == "rmsprop":
        return code, np.array([optimizer.gamma, optimizer.epsilon, 0, 0]), (state.v,), 0
    return code, np.array([optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, 0]), \
        (state.m, state.v), state.count


def compiled_mlp_epoch(trainer, batcher, g: torch.Tensor, shuffle: bool):
    """The epoch of :func:`skopt_nn._epochs.stochastic_epoch` for an MLP, compiled;
    ``None`` where it does not apply."""
    from ._epochs import EpochResult

    plan = getattr(batcher, "_compiled_mlp", None)
    x, state = trainer.x, trainer.opt_state
    if plan is None or plan[0] is not x or plan[1] is not g or plan[2] is not state \
            or plan[3] is not trainer.optimizer:
        plan = batcher._compiled_mlp = (x, g, state, trainer.optimizer,
                                        _plan(trainer, batcher, g))
    args = plan[4]
    if args is None:
        return None
    from ._mlp_kernels import mlp_epoch

    data, schedule = batcher.data, trainer.schedule
    n = len(data)
    perm = trainer.shuffler.permutation(n) if shuffle else torch.arange(n)
    steps = np.array([KIND_CODES[schedule.kind], schedule.eta, schedule.power_t,
                      schedule.mu, schedule.t0])
    count = getattr(state, "count", 0)
    losses, sizes = args[-1], args[-2]
    k, count = mlp_epoch(*args[:3], perm.numpy(), *args[3:-2], count, steps, trainer.k, losses)
    trainer.k = int(k)
    if hasattr(state, "count"):
        state.count = int(count)
    epoch_loss = float(losses @ sizes) / n
    return EpochResult(epoch_loss, float(g.norm()), schedule(trainer.k), len(losses), n,
                       epoch_loss)


def _plan(trainer, batcher, g: torch.Tensor) -> tuple | None:
    """The kernel's arguments that stay the same over a training call's epochs (the
    NumPy views share the tensors' memory), or None where the kernel does not apply."""
    from ._mlp_objective import MLPObjective

    objective, x = trainer.objective, trainer.x
    data = batcher.data
    if not enabled() or not isinstance(objective, MLPObjective) or x.device.type != "cpu" \
            or not isinstance(data.X, torch.Tensor) \
            or objective.n_params * batcher.batch_size > MAX_WORK \
            or trainer.averager is not None or getattr(trainer, "l1", None) is not None \
            or x.dtype not in (torch.float32, torch.float64):
        return None
    loss = LOSS_CODES.get(type(objective.loss).name)
    rule = _rule_terms(trainer.optimizer, trainer.opt_state)
    if loss is None or rule is None or objective.activation not in _ACTIVATIONS:
        return None
    code, hyper, state, _ = rule
    n, b = len(data), batcher.batch_size
    empty = np.empty(0, x.numpy().dtype)
    arrays = [t.numpy() for t in state] + [empty] * (2 - len(state))
    n_batches = -(-n // b)
    sizes = np.full(n_batches, float(b))
    sizes[-1] = n - b * (n_batches - 1)
    sw = empty if data.sw is None else data.sw.numpy()
    return (data.X.numpy(), data.Y.numpy(), sw, b, x.numpy(), g.numpy(),
            np.array(objective._layers, dtype=np.int64), _ACTIVATIONS[objective.activation],
            loss, float(getattr(objective.loss, "epsilon", 0.0)), float(objective.alpha),
            float(data.weight_scale), code, hyper, arrays[0], arrays[1], sizes,
            np.empty(n_batches))


#: the population rules' names for the compiled kernel (skopt_nn._population._rules)
_POPULATION_RULES = {"_Plain": (0, ()), "_Momentum": (1, ("delta",)),
                     "_AdaGrad": (2, ("sum_sq",)), "_RMSProp": (3, ("v",)),
                     "_Adam": (4, ("m", "v"))}
#: the population's hyperparameter columns of each rule, in the kernel's order
_POPULATION_HYPER = {0: (), 1: ("momentum", "nesterov"), 2: ("epsilon",),
                     3: ("gamma", "epsilon"), 4: ("beta_1", "beta_2", "epsilon")}
#: the largest batch size x parameters per model that a population trains compiled
MAX_POPULATION_WORK = 32_000


def compiled_population_epoch(pop, R: torch.Tensor, sw):
    """A population's epoch (:meth:`skopt_nn._population._engine.Population.
    _stochastic_epoch`) in one compiled call, the models on the kernel's innermost
    axis; the (n_batches, M) batch losses and the last gradients (M, P), or ``None``
    where it does not apply."""
    net, X = pop.net, pop.X
    spec, b = net.spec, pop.config.batch_size
    M, P = X.shape
    n = R.shape[1]
    loss = LOSS_CODES.get(type(net.loss).name)
    rule = _POPULATION_RULES.get(type(pop.rule).__name__)
    if not enabled() or X.device.type != "cpu" or loss is None or rule is None \
            or spec.activation not in _ACTIVATIONS or P * b > MAX_POPULATION_WORK \
            or X.dtype not in (torch.float32, torch.float64) or pop.rows.X.dtype != X.dtype \
            or pop.rows.Y.dtype != X.dtype:
        return None
    from ._mlp_kernels import population_epoch

    code, fields = rule
    dtype = X.numpy().dtype
    pop.X, XT = _model_columns(pop.X)
    states = []
    for name in fields:
        pop.state[name], S = _model_columns(pop.state[name])
        states.append(S)
    states += [np.empty((0, 0), dtype)] * (2 - len(states))
    hyper = np.zeros((4, M))
    for row, name in enumerate(_POPULATION_HYPER[code]):
        hyper[row] = pop.rule.columns[name].numpy().ravel()
    sched = pop.schedules()
    GT = np.empty_like(XT)
    n_batches = -(-n // b)
    losses = np.empty((n_batches, M))
    k, count = population_epoch(
        pop.rows.X.numpy(), R.numpy(), pop.rows.counts.astype(np.int64), pop.rows.Y.numpy(),
        np.empty((M, 0), dtype) if sw is None else sw.numpy(), b, XT, GT,
        np.array(net.layers, dtype=np.int64), _ACTIVATIONS[spec.activation], loss,
        float(getattr(net.loss, "epsilon", 0.0)),
        net.alphas.numpy().ravel().astype(np.float64), bool(spec.penalty_per_batch),
        pop.rows.ws.numpy().ravel().astype(np.float64), bool(spec.fit_intercept), code,
        hyper, states[0], states[1], pop.rule.count, sched, pop.k, losses)
    pop.k = int(k)
    pop.rule.count = int(count)
    return torch.from_numpy(losses), torch.from_numpy(GT).T


def _model_columns(t: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """An (M, P) tensor as the (P, M) array the kernel updates in place, and the
    tensor to keep in its stead: the transposed view of that array (one copy, then
    none while the population keeps its members), so nothing is copied back."""
    if not t.T.is_contiguous():
        t = torch.from_numpy(np.ascontiguousarray(t.numpy().T)).T
    return t, t.T.numpy()
