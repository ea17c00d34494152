""":func:`skopt_nn.distributed.fit` on a dask cluster: one rank per worker that
holds blocks of ``X``, a gloo process group among them whose rendezvous listens
on one host only, and the client watching for ranks that fail."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import numpy as np
import scipy.sparse as sp
import torch.distributed as dist

from ._data_parallel import _Comm, _fit_rank


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
        estimator = _fit_rank(estimator, X, y, sw, _Comm())
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
