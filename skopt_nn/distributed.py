"""Data-parallel training: one fit over data split across processes.

:func:`fit` trains an ordinary skopt_nn estimator on data whose rows are spread
over the ranks of a :mod:`torch.distributed` process group, as the same
computation as one process on the concatenated rows:

* the objective's value and gradient are each rank's weighted mean over its own
  rows, combined by one ``all_reduce`` of one flat buffer (the gradient times the
  rank's row count, the loss times it, the row count and the weight sum) and
  divided by the global count; the L2 penalty is then added once, scaled as one
  process scales it (the linear models: α/2 ‖W‖²; the MLPs: α/2S ‖W‖², S the
  global batch's sum of raw sample weights).  Every evaluation of the full-batch
  methods (gradient descent, the line searches, steepest descent, L-BFGS) goes
  through it, so they run unchanged;
* a mini-batch method's global batch of ``batch_size`` rows is split over the
  ranks: each takes ``batch_size // world_size`` rows of its shard per step and
  every rank takes the same number of steps per epoch, the smallest
  ``shard_rows // (batch_size // world_size)`` over the ranks; one ``all_reduce``
  a step;
* every global decision is the same on every rank because it is taken on reduced
  numbers: sample weights are normalised over the whole data (the global weight sum
  and row count), the classes are the union of the ranks' labels,
  ``class_weight='balanced'`` counts the classes over all ranks, the starting
  weights come from one seed (rank 0's, where ``random_state`` is not an int), and
  the epoch losses that decide stopping and divergence are global.  With early
  stopping each rank holds out ``validation_fraction`` of its own shard and the
  score is the ranks' scores averaged, weighted by their held-out rows (the global
  accuracy for a classifier; for R² an approximation of the R² of the union).

Two ways to run it:

* inside a process group you started (``torchrun``, or
  :func:`torch.multiprocessing.spawn` and :func:`torch.distributed.init_process_group`;
  gloo on the CPU, nccl on CUDA): every rank calls ``fit(est, X_shard, y_shard)``
  with its own rows and gets the same fitted ``est``;
* with a ``dask.distributed`` :class:`~distributed.Client` and dask arrays or
  DataFrames: one rank per worker that holds blocks of ``X``, each training on the
  blocks it already holds; a gloo process group among those workers on the first
  worker's host; rank 0's fitted estimator comes back.

After a fit, ``last_fit_stats`` holds this process's share of it: the seconds
spent in ``all_reduce`` (waiting for the other ranks included), the number of
calls and the fit's seconds (``benchmarks/distributed.py`` reports them).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import itertools
import math
import os
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
from sklearn.utils import check_random_state

from ._data import Dataset, EpochBatcher, SparseRows, matmul, tmatmul
from ._linear_objective import largest_eigenvalue
from ._objective import Objective

__all__ = ["fit"]

#: seconds a rank waits for the others (the process group's timeout on a dask cluster)
DEFAULT_TIMEOUT = 300.0

#: the last fit's communication on this process: seconds in ``all_reduce`` and calls
last_fit_stats: dict = {}


# --------------------------------------------------------------------------- collectives
class _Comm:
    """The collectives of one rank's fit, with the time spent in ``all_reduce``."""

    def __init__(self, group=None):
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        backend = dist.get_backend(group)
        self.device = torch.device("cuda", torch.cuda.current_device()) \
            if backend == "nccl" else torch.device("cpu")
        self.seconds, self.calls = 0.0, 0

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place (``t`` on :attr:`device`)."""
        start = time.perf_counter()
        dist.all_reduce(t, group=self.group)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return t

    def sum(self, values) -> list[float]:
        """The sums over the ranks of a few numbers, in float64."""
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        return self.all_reduce(t).tolist()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order."""
        out = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def agree(self, exc: BaseException | None) -> None:
        """Raise on every rank when any rank failed: its own error on the failing
        rank (the caller re-raises it), a RuntimeError naming it elsewhere."""
        errors = self.gather(None if exc is None else f"{type(exc).__name__}: {exc}")
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if failed and exc is None:
            r, e = failed[0]
            raise RuntimeError(f"skopt_nn.distributed.fit: rank {r} failed ({e}); "
                               "the fit is stopped on every rank.")


# --------------------------------------------------------------------------- the objective
def _penalty_mask(spec, n_params: int, dtype, device) -> torch.Tensor:
    """1 on the penalised weights, 0 on the intercepts, in the layout
    ``[W_1.ravel(), b_1, W_2.ravel(), b_2, ...]`` of the linear models and MLPs."""
    mask = torch.zeros(n_params, dtype=dtype, device=device)
    start = 0
    for fan_in, fan_out in zip(spec.layer_sizes[:-1], spec.layer_sizes[1:]):
        mask[start:start + fan_in * fan_out] = 1
        start += fan_in * fan_out + fan_out
    if start != n_params:
        raise ValueError("The model's parameter layout is not the layered one.")
    return mask


class DataParallelObjective(Objective):
    """A rank's objective whose value and gradient are those of all ranks' rows.

    ``inner`` (a copy of the model's objective, without its penalty) gives the
    weighted mean over this rank's rows; the ranks' means, times their row counts,
    are summed in one ``all_reduce`` and divided by the global count, then the
    penalty is added as one process adds it.  Anything else (``decision``,
    ``unpack``, ``project``...) is the model's.
    """

    def __init__(self, inner: Objective, comm: _Comm, weight_scale: float):
        spec = inner.network()
        if spec is None or not hasattr(inner, "alpha"):
            raise TypeError(f"{type(inner).__name__} is not a layered model objective.")
        self.model = inner
        self.inner = copy.deepcopy(inner)  # no penalty: it is added after the reduction
        self.alpha = float(inner.alpha)
        self.inner.alpha = 0.0
        self.comm, self.weight_scale = comm, float(weight_scale)
        self.per_batch = spec.penalty_per_batch
        self._spec = spec
        self.loss, self.n_params = inner.loss, inner.n_params
        self._buf: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None

    def __getattr__(self, name):  # the model's layout and helpers
        if name in ("model", "inner"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def network(self):
        return None  # never stacked in a population

    def decision(self, x, X):
        return self.model.decision(x, X)

    def project(self, x):
        return self.model.project(x)

    def _buffer(self, x: torch.Tensor) -> torch.Tensor:
        if self._buf is None or self._buf.dtype != x.dtype:
            self._buf = torch.empty(self.n_params + 3, dtype=x.dtype, device=self.comm.device)
        return self._buf

    def _masked(self, x: torch.Tensor) -> torch.Tensor:
        m = self._mask
        if m is None or m.dtype != x.dtype or m.device != x.device:
            m = self._mask = _penalty_mask(self._spec, self.n_params, x.dtype, x.device)
        return x * m

    def _reduce(self, tail: torch.Tensor, f: torch.Tensor, data: Dataset):
        """Fill ``tail`` = [F·n, n, Σ s] for this rank and sum it over the ranks."""
        n = len(data)
        tail[0].copy_(f).mul_(n)
        tail[1].fill_(n)
        if data.sw is None:
            tail[2].fill_(n)
        else:
            tail[2].copy_(data.sw.sum())

    def _penalise(self, x, F, tail, g=None):
        """F (and g) plus the penalty, c = α, or α/S with S = weight_scale · Σ s."""
        if self.alpha == 0.0:
            return F
        xm = self._masked(x)
        if self.per_batch:
            c = (self.alpha / self.weight_scale) / tail[2].to(x.device)
            if g is not None:
                g.addcmul_(xm, c)
        else:
            c = self.alpha
            if g is not None:
                g.add_(xm, alpha=c)
        return F + 0.5 * c * torch.dot(xm, xm)

    def value(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        tail = self._buffer(x)[-3:]
        self._reduce(tail, self.inner.value(x, data).detach(), data)
        self.comm.all_reduce(tail)
        F = (tail[0] / tail[1]).to(x.device)
        return self._penalise(x, F, tail)

    def value_grad(self, x: torch.Tensor, data: Dataset, g: torch.Tensor) -> torch.Tensor:
        buf = self._buffer(x)
        P = self.n_params
        f = self.inner.value_grad(x, data, g)
        torch.mul(g, len(data), out=buf[:P]) if buf.device == g.device else \
            buf[:P].copy_(g).mul_(len(data))
        tail = buf[P:]
        self._reduce(tail, f, data)
        self.comm.all_reduce(buf)
        g.copy_(buf[:P]).div_(tail[1].to(g.device))
        F = (tail[0] / tail[1]).to(x.device)
        return self._penalise(x, F, tail, g)

    def curvature(self, d: torch.Tensor, data: Dataset) -> float | None:
        q = self.inner.curvature(d, data)  # None or not by the loss: the same on every rank
        if q is None:
            return None
        n = len(data)
        total, N, _ = self.comm.sum([q * n, n, 0.0])
        dm = self._masked(d)
        return total / N + (0.0 if self.per_batch else self.alpha * float(torch.dot(dm, dm)))

    def lipschitz(self, data: Dataset) -> float | None:
        """The linear models' L from the Gram matrix of all ranks' rows (fewer than
        2048 features) or a power iteration over them; None where the model has none."""
        model = self.model
        if type(model).lipschitz is Objective.lipschitz or not hasattr(model, "_gram"):
            return None
        n = len(data)
        k = model.d + 1 if model.fit_intercept else model.d
        if model.d < 2048:
            G = _local_gram(model, data) * n
            G = torch.cat([G.reshape(-1), G.new_tensor([n])]).to(self.comm.device)
            self.comm.all_reduce(G)
            lam = float(torch.linalg.eigvalsh((G[:-1] / G[-1]).reshape(k, k).cpu())[-1])
        else:
            lam = self._power_iteration(data)
        return model.loss.output_curvature(model.K) * lam + self.alpha

    def _power_iteration(self, data: Dataset, n_power: int = 50) -> float:
        model, n = self.model, len(data)
        N = self.comm.sum([n])[0]

        def apply(v):  # the ranks' ÃᵀDÃ v summed, over all rows
            z = model.augmented_product(lambda w: matmul(data.X, w), v, data.sw)
            hv = torch.cat([tmatmul(data.X, z).reshape(-1),
                            z.sum(0) if model.fit_intercept else z.new_zeros(1)])
            return self.comm.all_reduce(hv.to(self.comm.device)).to(v.device) / N

        v = torch.ones(model.d + 1, dtype=data.Y.dtype, device=data.Y.device)
        return largest_eigenvalue(apply, v, n_power)


def _local_gram(model, data: Dataset) -> torch.Tensor:
    """ÃᵀDÃ/n of this rank's rows in float64 (Ã with the intercept's column)."""
    X, sw = data.X, data.sw
    if not isinstance(X, SparseRows):
        return model._gram(X, sw)
    A = X.csr.astype(np.float64)
    if model.fit_intercept:
        A = sp.hstack([A, np.ones((len(data), 1))], format="csr")
    Aw = A if sw is None else sp.diags(sw.double().cpu().numpy()) @ A
    return torch.from_numpy(np.asarray((Aw.T @ A).toarray()) / len(data))


# --------------------------------------------------------------------------- the batches
class ShareBatcher(EpochBatcher):
    """A rank's share of each global batch: ``steps`` batches of its shard per epoch
    (the same number on every rank); the epoch's loss is their batches' mean."""

    def __init__(self, data: Dataset, batch_size: int, steps: int):
        super().__init__(data, batch_size)
        self.steps = steps
        self._share_sizes: torch.Tensor | None = None

    def sizes(self, dtype, device):
        if self._share_sizes is None or self._share_sizes.dtype != dtype:
            self._share_sizes = torch.full((self.steps,), len(self.data) / self.steps,
                                           dtype=dtype, device=device)
        return self._share_sizes

    def epoch(self, perm):
        return itertools.islice(super().epoch(perm), self.steps)


# --------------------------------------------------------------------------- one rank's fit
class _RankContext:
    """What a rank's fit adds to the estimator's: the reductions after validation."""

    def __init__(self, comm: _Comm, batch_size):
        self.comm, self.batch_size = comm, batch_size
        self.objective: DataParallelObjective | None = None

    def adapt(self, job):
        comm, data = self.comm, job.data
        n = len(data)
        raw = data.weight_scale * n  # this rank's sum of raw weights (normalised: Σ s = n)
        N, raw_total = comm.sum([n, raw])
        weight_scale = raw_total / N
        sw = None if data.sw is None else data.sw * ((N / raw_total) * (raw / n))
        job.data = Dataset(data.X, data.Y, sw, weight_scale if sw is not None else 1.0)
        self.objective = DataParallelObjective(job.objective, comm, job.data.weight_scale)
        job.objective = self.objective
        job.config = self._config(job, n, int(N))
        return job

    def _config(self, job, n: int, N: int):
        B = self.batch_size
        B = min(200, N) if B == "auto" else min(int(B), N)
        if job.optimizer.full_batch or B >= N:
            return dataclasses.replace(job.config, batch_size=n)
        b = B // self.comm.world
        counts = self.comm.gather(n // max(b, 1))
        steps = min(counts)
        if b < 1 or steps < 1:
            raise ValueError(
                f"batch_size={B} over {self.comm.world} ranks gives {b} rows a rank and a "
                f"step, more than the smallest shard's {n if b < 1 else 'rows'}: use a "
                "larger batch_size or larger shards.")
        if job.optimizer.batch_sampling() == "with_replacement" and len(set(counts)) > 1:
            raise ValueError("sampling='with_replacement' needs shards with the same number "
                             f"of batches of {b} rows on every rank (got {counts}).")
        return dataclasses.replace(job.config, batch_size=b,
                                   batcher=functools.partial(ShareBatcher, steps=steps))

    def validation_score(self, score: float, n_val: int) -> float:
        total, n = self.comm.sum([score * n_val, n_val])
        return total / n


_CONTEXT = "_skopt_nn_rank"


class _RankMixin:
    """Put in front of an estimator's class for one rank's fit (see :func:`fit`)."""

    def _prepare(self, *args, **kwargs):
        ctx = self.__dict__[_CONTEXT]
        try:
            job = super()._prepare(*args, **kwargs)
        except Exception as exc:
            ctx.comm.agree(exc)
            raise
        ctx.comm.agree(None)
        return ctx.adapt(job)

    def _validation_score(self, objective, x, X_val, Y_val):
        score = super()._validation_score(objective, x, X_val, Y_val)
        return self.__dict__[_CONTEXT].validation_score(score, len(Y_val))


@functools.cache
def _rank_class(cls):
    return type(cls.__name__, (_RankMixin, cls), {"__module__": cls.__module__,
                                                   "__qualname__": cls.__qualname__})


def _shape(X) -> tuple[int, int]:
    shape = X.shape if hasattr(X, "shape") else np.shape(X)
    if len(shape) != 2:
        raise ValueError(f"Expected a 2D array for X, got {len(shape)}D.")
    return int(shape[0]), int(shape[1])


def _facts(estimator, X, y, sample_weight, rank: int) -> dict:
    """What a rank tells the others before its fit."""
    n, d = _shape(X)
    facts = {"n": int(n), "d": int(d), "weighted": sample_weight is not None,
             "labels": None, "seed": None}
    is_classifier = getattr(estimator.__sklearn_tags__(), "estimator_type", None) == \
        "classifier"
    y_arr = np.asarray(y)
    if is_classifier and (y_arr.ndim == 1 or (y_arr.ndim == 2 and y_arr.shape[1] == 1)):
        facts["labels"] = np.unique(y_arr.ravel())
    rs = estimator.random_state
    if rank == 0 and not isinstance(rs, (int, np.integer)):
        facts["seed"] = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
    return facts


def _fit_rank(estimator, X, y, sample_weight, comm: _Comm):
    """One rank's part of :func:`fit` (all ranks call it with their shards)."""
    start = time.perf_counter()
    seconds0 = comm.seconds
    try:
        facts = _facts(estimator, X, y, sample_weight, comm.rank)
        exc = None
    except Exception as e:  # noqa: BLE001 - told to every rank below
        facts, exc = None, e
    everyone = comm.gather((facts, None if exc is None else f"{type(exc).__name__}: {exc}"))
    failed = [(r, e) for r, (_, e) in enumerate(everyone) if e is not None]
    if failed:
        if exc is not None:
            raise exc
        raise RuntimeError(f"skopt_nn.distributed.fit: rank {failed[0][0]} failed "
                           f"({failed[0][1]}); the fit is stopped on every rank.")
    facts = [f for f, _ in everyone]
    widths = {f["d"] for f in facts}
    if len(widths) > 1:
        raise ValueError(f"The ranks' X have different numbers of features: "
                         f"{[f['d'] for f in facts]}.")
    if min(f["n"] for f in facts) < 1:
        raise ValueError(f"Every rank needs rows; got {[f['n'] for f in facts]}.")
    if any(f["weighted"] for f in facts) and sample_weight is None:
        sample_weight = np.ones(facts[comm.rank]["n"])
    classes = None
    if facts[0]["labels"] is not None:
        classes = np.unique(np.concatenate([f["labels"] for f in facts]))

    saved_params = estimator.get_params(deep=False)
    overrides = {}
    if facts[0]["seed"] is not None:
        overrides["random_state"] = facts[0]["seed"]
    if getattr(estimator, "class_weight", None) == "balanced" and classes is not None:
        overrides["class_weight"] = _balanced(comm, y, classes)
    cls = type(estimator)
    t_before = estimator._trainer.t if estimator.warm_start and \
        hasattr(estimator, "_trainer") else 0
    estimator.set_params(**overrides)
    estimator.__dict__[_CONTEXT] = ctx = _RankContext(comm, estimator.batch_size)
    estimator.__class__ = _rank_class(cls)
    try:
        estimator._fit(X, y, sample_weight, classes=classes)
    finally:
        estimator.__class__ = cls
        estimator.__dict__.pop(_CONTEXT, None)
        estimator.set_params(**{k: saved_params[k] for k in overrides})
    trainer = estimator._trainer
    if ctx.objective is not None and trainer.objective is ctx.objective:
        trainer.objective = ctx.objective.model
    # trainer.t grew by this rank's rows; the fit saw every rank's
    seen = comm.sum([trainer.t - t_before])[0]
    trainer.t = estimator.t_ = t_before + int(round(seen))
    _check_same(comm, trainer.x)
    last_fit_stats.clear()
    last_fit_stats.update(allreduce_seconds=comm.seconds - seconds0, allreduce_calls=comm.calls,
                          fit_seconds=time.perf_counter() - start, rank=comm.rank,
                          world_size=comm.world)
    return estimator


def _balanced(comm: _Comm, y, classes) -> dict:
    """``class_weight='balanced'`` over every rank's labels, as a dict."""
    idx = np.searchsorted(classes, np.asarray(y).ravel())
    counts = np.bincount(idx, minlength=len(classes)).astype(np.float64)
    counts = np.asarray(comm.sum(list(counts)))
    n = counts.sum()
    return {c: (n / (len(classes) * k) if k > 0 else 1.0) for c, k in zip(classes, counts)}


def _check_same(comm: _Comm, x: torch.Tensor) -> None:
    """Every rank ends with rank 0's parameters (the fit's decisions were global)."""
    ref = x.detach().to(comm.device, copy=True)
    dist.broadcast(ref, src=dist.get_global_rank(comm.group, 0) if comm.group else 0,
                   group=comm.group)
    differ = comm.sum([float(not torch.equal(ref, x.detach().to(comm.device)))])[0]
    if differ:
        raise RuntimeError("skopt_nn.distributed.fit: the ranks ended with different "
                           "parameters.")


# --------------------------------------------------------------------------- public entry
def fit(estimator, X, y, *, sample_weight=None, client=None, timeout: float = DEFAULT_TIMEOUT):
    """Fit ``estimator`` data-parallel, as one process would on all the rows.

    Parameters
    ----------
    estimator : skopt_nn estimator
        :class:`~skopt_nn.LinearRegressor`, :class:`~skopt_nn.LinearClassifier`,
        :class:`~skopt_nn.MLPRegressor` or :class:`~skopt_nn.MLPClassifier`, with any
        optimizer.
    X : array-like or sparse matrix, or a dask array or DataFrame with ``client``
        Without ``client``: this rank's rows.  With it: all the rows, as a dask
        collection split in row blocks.
    y : array-like, or a dask array, Series or DataFrame with ``client``
        The targets of those rows.
    sample_weight : array-like or dask array, default=None
        The rows' weights (normalised over all the rows, as one process would).
    client : dask.distributed.Client, default=None
        Run one rank on each worker that holds blocks of ``X`` instead of in the
        calling process group.
    timeout : float, default=300
        With ``client``: seconds a rank waits for the others in a collective (the gloo
        process group's timeout) and the longest the client takes to report a rank
        that failed or a worker that left.  Without it the process group's own timeout
        (``init_process_group(timeout=...)``) applies.

    Returns
    -------
    estimator
        Without ``client``: ``estimator`` itself, fitted, the same on every rank.
        With it: rank 0's fitted copy (``estimator`` is not changed), an ordinary
        estimator that pickles and predicts anywhere.

    Raises
    ------
    RuntimeError
        When another rank failed or (with ``client``) a worker running a rank died;
        the fit stops on every rank.

    Notes
    -----
    A mini-batch epoch takes ``min(shard_rows // (batch_size // world_size))``
    global batches (one process takes ``ceil(n / batch_size)``): a few rows of each
    shard may sit out an epoch, a different few each epoch when ``shuffle=True``.
    The mini-batch fit's starting loss (divergence's reference and ``history_``'s
    row 0) is measured on each rank's first rows.  ``t_`` counts every rank's rows.
    """
    from ._estimator_base import BaseTorchEstimator

    if not isinstance(estimator, BaseTorchEstimator):
        raise TypeError("skopt_nn.distributed.fit trains skopt_nn's estimators, got "
                        f"{type(estimator).__name__}.")
    if client is not None:
        return _fit_on_dask(estimator, X, y, sample_weight, client, float(timeout))
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "skopt_nn.distributed.fit needs a torch.distributed process group (start the "
            "script with torchrun and call torch.distributed.init_process_group()), or a "
            "dask client=.")
    return _fit_rank(estimator, X, y, sample_weight, _Comm())


# --------------------------------------------------------------------------- dask
def _free_port(host: str) -> int:
    """A free TCP port on ``host`` (run on rank 0's worker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _concat(blocks):
    if not blocks:
        return None
    if any(sp.issparse(b) for b in blocks):
        return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
    return np.concatenate([np.asarray(b) for b in blocks])


@contextlib.contextmanager
def _process_group(host: str, port: int, rank: int, world: int, timeout: float,
                   backend: str = "gloo"):
    """A default process group whose rendezvous store listens on ``host`` only.

    ``TCPStore(host, port, is_master=True)`` listens on every interface whatever
    ``host`` says; rank 0 therefore binds the listening socket itself and hands it
    to the store.  On a loopback ``host``, gloo is told to use ``lo`` too.
    """
    if host in ("127.0.0.1", "localhost"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    if dist.is_initialized():
        raise RuntimeError("This process already has a torch.distributed process group "
                           "(another fit still running?).")
    wait = timedelta(seconds=timeout)
    if rank == 0:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        try:
            store = dist.TCPStore(host, port, world, True, timeout=wait,
                                  master_listen_fd=listener.fileno())
        except BaseException:
            listener.close()
            raise
        listener.detach()  # the store owns the socket now (and closes it)
    else:
        store = dist.TCPStore(host, port, world, False, timeout=wait)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=wait)
    del store
    try:
        yield
    finally:
        dist.destroy_process_group()


def _rank_task(estimator, X_blocks, y_blocks, w_blocks, rank, world, host, port, timeout):
    """One rank on a dask worker: join the process group, fit its blocks, leave."""
    X, y = _concat(X_blocks), _concat(y_blocks)
    sw = None if w_blocks is None else _concat(w_blocks)
    with _process_group(host, port, rank, world, timeout):
        estimator = fit(estimator, X, y, sample_weight=sw)
    return estimator if rank == 0 else None


def _dask_rows(a, name: str):
    """A dask array of rows (a dask DataFrame or Series converted, columns in one block)."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(a, (dd.DataFrame, dd.Series)):
        a = a.to_dask_array(lengths=True)
    elif not isinstance(a, da.Array):
        raise TypeError(f"With client=, {name} must be a dask array or DataFrame, got "
                        f"{type(a).__name__}.")
    if any(math.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    if a.ndim == 2 and a.numblocks[1] > 1:
        a = a.rechunk({1: -1})
    return a


def _fit_on_dask(estimator, X, y, sample_weight, client, timeout):
    from distributed import futures_of, wait

    X = _dask_rows(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array for X, got {X.ndim}D.")
    y = _dask_rows(y, "y").rechunk({0: X.chunks[0]})
    sw = None if sample_weight is None else \
        _dask_rows(sample_weight, "sample_weight").rechunk({0: X.chunks[0]})
    parts = [X, y] + ([] if sw is None else [sw])
    parts = client.persist(parts)
    block_futures = []
    for a in parts:
        by_key = {f.key: f for f in futures_of(a)}
        keys = a.__dask_keys__()
        block_futures.append([by_key[k[0] if isinstance(k, list) else k] for k in keys])
    wait([f for bf in block_futures for f in bf])  # loading the data is not a rank's failure
    holders = client.who_has(block_futures[0])
    ranks: dict[str, list[int]] = {}
    for i, f in enumerate(block_futures[0]):
        where = sorted(holders.get(f.key, ()))
        if not where:
            raise RuntimeError(f"Block {i} of X is on no worker.")
        ranks.setdefault(where[0], []).append(i)
    workers = sorted(ranks)
    world = len(workers)
    host = urlsplit(workers[0]).hostname
    if host is None:
        raise ValueError(f"Cannot start a gloo process group on worker {workers[0]!r}.")
    port = client.submit(_free_port, host, workers=[workers[0]], pure=False).result(timeout)
    futures = []
    for rank, addr in enumerate(workers):
        rows = ranks[addr]
        blocks = [[bf[i] for i in rows] for bf in block_futures]
        futures.append(client.submit(
            _rank_task, estimator, blocks[0], blocks[1], blocks[2] if sw is not None else None,
            rank, world, host, port, timeout, workers=[addr], allow_other_workers=False,
            pure=False, retries=0, key=f"skopt_nn-distributed-fit-rank{rank}-{port}"))
    try:
        results = _wait_ranks(client, futures, workers, timeout, wait)
    finally:
        del parts, block_futures
    return results[0]


def _wait_ranks(client, futures, workers, timeout, wait):
    """The ranks' results; on a failed rank or a lost worker: cancel all and raise."""
    poll = min(1.0, timeout)
    lost_since = None
    while True:
        pending = [f for f in futures if f.status == "pending"]
        if pending:
            try:
                wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
        if all(f.status == "finished" for f in futures):
            return client.gather(futures)
        failed = [(r, f) for r, f in enumerate(futures) if f.status == "error"]
        alive = set(client.scheduler_info(n_workers=-1)["workers"])
        lost = [(r, w) for r, w in enumerate(workers) if w not in alive]
        if lost and lost_since is None:
            lost_since = time.monotonic()
        if lost and not failed and time.monotonic() - lost_since < min(2 * poll, timeout):
            continue  # a surviving rank's error usually follows at once
        if not (failed or lost or any(f.status == "cancelled" for f in futures)):
            continue
        errors = [(r, f.exception(timeout=poll)) for r, f in failed]
        client.cancel(futures, force=True)
        why = "; ".join(f"worker {w} running rank {r} left the cluster (it died or was "
                        "restarted)" for r, w in lost)
        if failed:
            r, exc = errors[0]
            why = f"rank {r} on worker {workers[r]} failed: {exc!r}" + \
                (f"; {why}" if why else "")
            raise RuntimeError(f"skopt_nn.distributed.fit: {why}; the fit is stopped on "
                               "every rank.") from exc
        raise RuntimeError(f"skopt_nn.distributed.fit: {why or 'a rank was cancelled'}; "
                           "the fit is stopped on every rank.")
