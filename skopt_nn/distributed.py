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

import torch.distributed as dist

from ._dask_fit import _fit_on_dask, _process_group  # noqa: F401 - _process_group: tests
from ._data_parallel import _Comm, _fit_rank, last_fit_stats  # noqa: F401 - public

__all__ = ["fit"]

#: seconds a rank waits for the others (the process group's timeout on a dask cluster)
DEFAULT_TIMEOUT = 300.0


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
    shard may sit out an epoch, a different few each epoch when ``shuffle=True``
    (each rank orders its own shard, from the estimator's ``random_state`` as one
    process would; the orders differ between ranks, the parameters do not).
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
