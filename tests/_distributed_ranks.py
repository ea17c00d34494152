"""Rank processes for tests/test_distributed.py.

Imported by spawned children (:func:`run_rank`), or run as a script by
``torchrun`` (``python _distributed_ranks.py CASES.pkl OUT.pkl``, the process
group from torchrun's environment).  Each rank fits its shard of every case with
:func:`skopt_nn.distributed.fit` on a gloo process group, and rank 0 writes the
fitted estimators to a pickle for the test to compare with a one-process fit.
"""

from __future__ import annotations

import os
import pickle
import warnings


def shards(X, y, sw, world, sizes=None):
    """Rows split in ``world`` consecutive shards (``sizes``: their lengths)."""
    import numpy as np

    n = X.shape[0]
    cuts = np.cumsum(sizes)[:-1] if sizes is not None else \
        [n * r // world for r in range(1, world)]
    idx = np.split(np.arange(n), cuts)
    return [(X[i], y[i], None if sw is None else sw[i]) for i in idx]


def run_rank(rank, world, port, cases, out_path):
    """A spawned rank: fit every case on this rank's shard; rank 0 pickles the results."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    from skopt_nn import distributed

    # gloo on 127.0.0.1, the rendezvous store listening there only
    with distributed._process_group("127.0.0.1", port, rank, world, timeout=60):
        fit_cases(rank, world, cases, out_path)


def fit_cases(rank, world, cases, out_path):
    """Fit every case on this rank's shard in the current process group; rank 0
    pickles the results (an exception stands for a failed fit)."""
    import torch

    from skopt_nn import distributed

    torch.set_num_threads(1)
    results = {}
    for name, (est, X, y, sw, sizes) in cases.items():
        Xr, yr, swr = shards(X, y, sw, world, sizes)[rank]
        if name == "bad_features" and rank == 1:
            Xr = Xr[:, :-1]
        if name == "bad_target" and rank == 1:
            yr = yr.copy()
            yr[0] = float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                distributed.fit(est, Xr, yr, sample_weight=swr)
                results[name] = est
            except Exception as exc:  # noqa: BLE001 - the test reads it
                results[name] = exc
        results[name + ":stats"] = dict(distributed.last_fit_stats)
    if rank == 0:
        with open(out_path, "wb") as f:
            pickle.dump(results, f)


def main(cases_path, out_path):
    """Under torchrun: join the group from its environment and fit the cases."""
    from datetime import timedelta

    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    try:
        with open(cases_path, "rb") as f:
            cases = pickle.load(f)
        fit_cases(dist.get_rank(), dist.get_world_size(), cases, out_path)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:3])
