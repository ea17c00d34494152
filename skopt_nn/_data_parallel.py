"""One rank's part of :func:`skopt_nn.distributed.fit`: the collectives, the
data-parallel objective and batches, and the rank's fit inside a process group
(see that module for the method)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
from sklearn.utils import check_random_state

from ._data import Dataset, EpochBatcher, SparseRows, matmul, tmatmul
from ._linear_objective import largest_eigenvalue
from ._objective import Objective

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

    def validation_score(self, score: float, weight: float) -> float:
        """The ranks' scores averaged, each weighted by its held-out rows (their
        number, or their sample weights' sum)."""
        total, n = self.comm.sum([score * weight, weight])
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

    def _validation_score(self, objective, x, X_val, Y_val, sw_val=None):
        score = super()._validation_score(objective, x, X_val, Y_val, sw_val)
        weight = len(Y_val) if sw_val is None else float(np.sum(sw_val))
        return self.__dict__[_CONTEXT].validation_score(score, weight)


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
