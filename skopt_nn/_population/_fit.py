"""``fit_many``: fit a list of skopt_nn estimators at once, each on its own rows.

Each estimator is prepared by its own code (validation, target encoding, its
starting weights, validation split, shuffler and initial step: what its ``fit`` does
before training), the prepared fits are grouped by what must be equal to
share one computation, each group is trained as one :class:`._engine.Population`,
and each estimator publishes its fitted attributes from its own trainer.  What
cannot be batched is fitted alone by its own ``fit``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from joblib import cpu_count
from sklearn.utils import _safe_indexing

from .. import _stopping as stopping
from .._device import cpu_training
from .._estimator_base import BaseTorchEstimator
from .._progress import PopulationProgress
from ._engine import Member, Population, Stopped
from ._rules import population_rule, structure

#: a population holds at most this many bytes of parameters, optimizer state and
#: gathered rows; a larger group is split
MAX_POPULATION_BYTES = 1 << 30


def _rows_of(a, rows):
    return a if rows is None or a is None else _safe_indexing(a, rows)


def fit_many(estimators: Sequence, X, y=None, *, rows: Sequence | None = None,
             sample_weight=None, errors: str = "raise", verbose: int = 0,
             n_jobs: int | None = None):
    """Fit every estimator of ``estimators`` on its own training rows of ``(X, y)``,
    training those that can share a computation together.

    Each estimator ends up as ``est.fit(X[rows[i]], y[rows[i]],
    sample_weight=sample_weight[rows[i]])`` leaves it: the same fitted attributes,
    records (``loss_curve_``, ``history_``, ``n_iter_``), warnings and pickles, to
    rounding (the batched products add in another order).  Estimators train together when
    they have the same class, architecture (``hidden_layer_sizes``, ``activation``,
    loss, ``fit_intercept``), optimizer class and its shape settings (``elementwise``),
    effective ``batch_size``, number of batches an epoch makes (of training rows, for a
    full-batch step), dtype and device, and early stopping with a validation split of
    the same size; everything else may differ within a group: ``alpha``, the optimizer's
    hyperparameters (steps, betas, momentum, Nesterov, epsilon, gamma),
    ``learning_rate`` and ``learning_rate_init``, ``power_t``, ``max_iter``, ``tol``,
    ``n_iter_no_change``, ``shuffle``, ``random_state`` and the rows themselves.  Fitted
    alone, by their own ``fit``: the search methods (line searches, steepest descent,
    L-BFGS), SGD with ``sampling='with_replacement'``, ``elementwise=False``, sparse
    input, ``verbose``, callbacks, ``warm_start`` on a fitted estimator, a group of one,
    and a model whose training diverges (it is trained again alone, which gives its own
    fit's recovery).

    Parameters
    ----------
    estimators : sequence of skopt_nn estimators
        Fitted in place.
    X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    rows : sequence of index arrays, default=None
        ``rows[i]`` are the training rows of ``estimators[i]`` (None: all rows).
        Estimators given the same array object share one copy of its rows.
    sample_weight : array-like of shape (n_samples,), default=None
        Sliced by each estimator's rows.
    errors : {'raise', 'return'}, default='raise'
        What a fit that fails does: raise its exception, or leave the estimator
        as it was and return the exception in the list.
    verbose : int, default=0
        1: a progress bar per group of models trained together (over the epochs
        of its longest fit, with how many models still train); 2: one line per
        epoch and group.  The estimators' own ``verbose`` makes them train alone.
    n_jobs : int, default=None
        Threads that train groups side by side (None: 1, -1: all cores, as joblib
        counts them).  Where there are fewer groups than threads, the groups are
        cut into parts (of two models or more) so that every thread has one; each
        model's fit is the same computation in any part (to rounding, as above).
        The compiled kernels and torch release the GIL while they compute.  An error
        (or Ctrl-C) stops the other threads at their next epoch and is raised once
        all have ended, every batched estimator left as it was.

    Returns
    -------
    list
        With ``errors='raise'`` the estimators; with ``'return'`` one entry per
        estimator: ``None`` where it was fitted, else the exception its fit raised.
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    threads = _thread_count(n_jobs)
    estimators = list(estimators)
    rows = [None] * len(estimators) if rows is None else list(rows)
    if len(rows) != len(estimators):
        raise ValueError(f"rows has {len(rows)} entries for {len(estimators)} estimators.")
    sw = None if sample_weight is None else np.asarray(sample_weight)
    subsets: dict = {}
    for r in rows:  # one copy per distinct rows object
        if id(r) not in subsets:
            subsets[id(r)] = (_rows_of(X, r), _rows_of(y, r), _rows_of(sw, r))
    data = [subsets[id(r)] for r in rows]
    failures: list = [None] * len(estimators)
    members, alone = _prepare(estimators, data, failures, errors)
    try:
        groups = []
        for group in _groups(members):  # a group of one trains alone
            if len(group) > 1:
                groups.append(group)
            else:
                alone.append(group[0][0])
        groups = _shared_out(groups, threads)

        def train(number, group, stop):
            title = f"fit_many group {number}/{len(groups)} ({len(group)} models)"
            _train(group, alone, PopulationProgress(verbose, title, max(
                m.job.config.max_epochs for _, m, _ in group)) if verbose else None, stop)

        _run([lambda stop, n=n, g=g: train(n, g, stop) for n, g in enumerate(groups, 1)],
             threads)
    except BaseException:  # Ctrl-C or an error: every batched estimator as it was
        for _, m, saved in members:
            m.estimator.__dict__.clear()
            m.estimator.__dict__.update(saved)
        raise

    def fit_alone(i, stop):
        if stop.is_set():
            return
        try:
            estimators[i].fit(*data[i][:2], sample_weight=data[i][2])
        except Exception as exc:  # noqa: BLE001 - raised or returned below
            failures[i] = exc

    alone = sorted(alone)
    _run([lambda stop, i=i: fit_alone(i, stop) for i in alone], threads)
    first = next((failures[i] for i in alone if failures[i] is not None), None)
    if errors == "raise" and first is not None:
        raise first
    return estimators if errors == "raise" else failures


def _batchable(est, X) -> bool:
    return isinstance(est, BaseTorchEstimator) and not est.verbose and \
        not est._average_start() and \
        not getattr(est, "_skl_callbacks", None) and not sp.issparse(X) and \
        not (est.warm_start and hasattr(est, "_trainer"))


def _prepare(estimators, data, failures, errors):
    """Each batchable estimator's prepared fit, as ``(index, Member, saved state)``;
    the indices of the others."""
    members, alone = [], []
    for i, est in enumerate(estimators):
        X, y, sw = data[i]
        if not _batchable(est, X):
            alone.append(i)
            continue
        saved = dict(est.__dict__)
        try:
            job = est._prepare(X, y, sw, False, None)
            if job.objective.network() is None or population_rule(job.optimizer) is None \
                    or getattr(job.objective, "l1", 0.0) > 0 \
                    or not isinstance(job.data.X, torch.Tensor):
                est.__dict__.clear()
                est.__dict__.update(saved)
                alone.append(i)
                continue
            with cpu_training(job.device, job.size):
                est._start(job)
        except Exception as exc:  # noqa: BLE001 - raised or returned
            est.__dict__.clear()
            est.__dict__.update(saved)
            if errors == "raise":
                raise
            failures[i] = exc
            continue
        members.append((i, Member(est, job), saved))
    return members, alone


def _rows_key(job) -> tuple:
    """What of the training rows' number must be equal: all of it for a full-batch
    step; for mini-batches the number of batches an epoch makes (the last batch may
    be shorter for some)."""
    n, b = len(job.data), job.config.batch_size
    if job.optimizer.full_batch or b >= n:
        return ("full", n)
    return ("mini", -(-n // b))


def _key(member: Member) -> tuple:
    """What must be equal for two prepared fits to train together."""
    job = member.job
    val = None if job.validation_set is None else len(job.validation_set[1])
    return (type(member.estimator), job.objective.network(), structure(job.optimizer),
            job.config.batch_size, _rows_key(job), job.data.sw is None, job.data.Y.shape[1],
            job.data.X.dtype, str(job.device), val)


def _groups(members: list) -> list[list]:
    """The prepared fits grouped by :func:`_key`, large groups split by memory."""
    groups: dict = {}
    for entry in members:
        groups.setdefault(_key(entry[1]), []).append(entry)
    out = []
    for group in groups.values():
        job = group[0][1].job
        n, P = len(job.data), job.objective.n_params
        per_model = job.data.X.element_size() * (8 * P + n * (job.data.X.shape[1] + 2))
        size = max(1, MAX_POPULATION_BYTES // per_model)
        out.extend(group[i:i + size] for i in range(0, len(group), size))
    return out


def _thread_count(n_jobs: int | None) -> int:
    """joblib's reading of ``n_jobs`` (None: 1; -1: every core, -2 all but one...),
    whatever backend is active: these are this process's threads."""
    if n_jobs is None:
        return 1
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning.")
    return max(1, cpu_count() + 1 + n_jobs if n_jobs < 0 else n_jobs)


def _run(tasks: list, threads: int) -> None:
    """Call each of ``tasks`` with a stop event, in ``threads`` threads where more than
    one (threads, not processes: the estimators are fitted in place); thread k takes
    tasks k, k + threads, ... (the parts of a group are near-equal).

    When a task raises (or Ctrl-C reaches the waiting caller), the event asks the
    others to stop at their next epoch, and the first error is raised once every
    thread has ended: no thread still writes to an estimator after the call."""
    stop = threading.Event()
    if threads <= 1 or len(tasks) <= 1:
        for task in tasks:
            task(stop)
        return
    errors: list = []

    def work(mine):
        for index, task in mine:
            if stop.is_set():
                return
            try:
                task(stop)
            except BaseException as exc:  # noqa: BLE001 - raised by the caller below
                errors.append((index, exc))
                stop.set()
                return

    count = min(threads, len(tasks))
    numbered = list(enumerate(tasks))
    workers = [threading.Thread(target=work, args=(numbered[k::count],), daemon=True,
                                name=f"skopt_nn-fit_many-{k}") for k in range(count)]
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // count))  # torch's threads shared out
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.05)  # a short wait, so that Ctrl-C reaches this thread
    except BaseException:
        stop.set()
        for worker in workers:
            if worker.ident is not None:  # started
                worker.join()
        raise
    finally:
        torch.set_num_threads(before)
    if errors:
        errors.sort(key=lambda e: (isinstance(e[1], Stopped), e[0]))
        raise errors[0][1]


def _shared_out(groups: list[list], threads: int) -> list[list]:
    """``groups`` with each cut into near-equal parts of two models or more where
    there are fewer groups than ``threads``, so that every thread gets a part."""
    if len(groups) >= threads:
        return groups
    out = []
    for group in groups:
        parts = max(1, min(-(-threads // len(groups)), len(group) // 2))
        bounds = np.linspace(0, len(group), parts + 1).round().astype(int)
        out.extend(group[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return out


def _train(group: list, alone: list, progress: PopulationProgress | None,
           stop: threading.Event | None = None) -> None:
    """Train one group as a population and publish each estimator's fit (``stop``:
    see :meth:`Population.run`)."""
    job = group[0][1].job
    try:
        with cpu_training(job.device, job.size):
            Population([m for _, m, _ in group]).run(progress, stop)
    finally:
        if progress is not None:
            progress.close()
    for i, m, saved in group:
        if m.alone:
            m.estimator.__dict__.clear()
            m.estimator.__dict__.update(saved)
            alone.append(i)
        else:
            _publish(m)


def _publish(m: Member) -> None:
    """The estimator's fitted attributes from its trainer, as its own fit sets them."""
    est, job = m.estimator, m.job
    trainer = job.trainer
    if job.validation_set is not None and trainer.progress.best_x is not None:
        trainer.x.copy_(trainer.progress.best_x)
    est.n_iter_ = m.epochs
    est._publish(trainer, job.objective, job.early_stopping, job.continuing)
    if m.reason is not None:
        stopping.warn_stop(m.reason, **trainer.context(m.reason, m.last, m.start, job.config,
                                                       0))
