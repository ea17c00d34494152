"""Time data-parallel training: 2 gloo ranks against one process.

    python benchmarks/distributed.py [--epochs 5] [--repeats 3] [--ranks 2]

The workload is W3-sized regression: ``make_regression(50_000 x 64)`` as float32
(targets standardised), an ``MLPRegressor`` with one hidden layer of 64 ReLU
units, Adam, learning rate 1e-3, global batch 2048, ``--epochs`` epochs run to the
end (``tol=None``).  Each rank is a process spawned on 127.0.0.1 (gloo), with one
torch thread, training on its half of the rows through
:func:`skopt_nn.distributed.fit`; the baselines are one process fitting all the
rows with one thread and with ``--ranks`` threads.  Reported: the best fit time of
``--repeats``, the time ratio to the one-thread process, the communication share
(seconds inside ``all_reduce`` / fit seconds, rank 0) and the training R² (equal
up to the per-rank batches), with the CPU model from ``lscpu``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import warnings

N_ROWS, N_FEATURES, HIDDEN, BATCH, LR = 50_000, 64, (64,), 2048, 1e-3


def _data():
    import numpy as np
    from sklearn.datasets import make_regression

    X, y = make_regression(N_ROWS, N_FEATURES, n_informative=40, noise=10.0, random_state=0)
    return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)


#: what the command line changes (``--hidden``, ``--batch``, ``--optimizer``)
SETTINGS = {"hidden": HIDDEN, "batch": BATCH, "optimizer": "adam"}


def _estimator(epochs: int, settings: dict):
    from skopt_nn import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=settings["hidden"], optimizer=settings["optimizer"],
                        learning_rate_init=LR, batch_size=settings["batch"], max_iter=epochs,
                        tol=None, random_state=0)


def _fit_quietly(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def _rank(rank, world, port, epochs, repeats, settings, out):
    import torch
    import torch.distributed as dist

    from skopt_nn import distributed

    torch.set_num_threads(1)
    # gloo on 127.0.0.1, the rendezvous store listening there only
    with distributed._process_group("127.0.0.1", port, rank, world, timeout=120):
        X, y = _data()
        rows = slice(rank * N_ROWS // world, (rank + 1) * N_ROWS // world)
        runs = []
        for _ in range(repeats):
            est = _estimator(epochs, settings)
            dist.barrier()
            start = time.perf_counter()
            _fit_quietly(lambda est=est: distributed.fit(est, X[rows], y[rows]))
            wall = time.perf_counter() - start
            runs.append((wall, dict(distributed.last_fit_stats), est.score(X, y)))
    if rank == 0:
        with open(out, "wb") as f:
            pickle.dump(runs, f)


def _one_process(threads: int, epochs: int, repeats: int, settings: dict):
    import torch

    X, y = _data()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    runs = []
    try:
        for _ in range(repeats):
            est = _estimator(epochs, settings)
            start = time.perf_counter()
            _fit_quietly(lambda est=est: est.fit(X, y))
            runs.append((time.perf_counter() - start, est.score(X, y)))
    finally:
        torch.set_num_threads(previous)
    return min(runs)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--hidden", default="64", help="hidden layer sizes, e.g. 256,256")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--optimizer", default="adam", help="adam, sgd, lbfgs, gd...")
    args = parser.parse_args(argv)
    settings = {"hidden": tuple(int(h) for h in args.hidden.split(",")),
                "batch": args.batch, "optimizer": args.optimizer}
    import torch.multiprocessing as mp

    print(f"CPU: {_cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"workload: {N_ROWS} x {N_FEATURES} float32 regression, MLP {settings['hidden']} "
          f"ReLU, {args.optimizer}, global batch {args.batch}, {args.epochs} epochs, "
          f"best of {args.repeats}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "runs.pkl")
        mp.spawn(_rank, args=(args.ranks, port, args.epochs, args.repeats, settings, out),
                 nprocs=args.ranks, join=True)
        with open(out, "rb") as f:
            runs = pickle.load(f)
    wall, stats, r2 = min(runs, key=lambda r: r[0])
    one, one_r2 = _one_process(1, args.epochs, args.repeats, settings)
    many, many_r2 = _one_process(args.ranks, args.epochs, args.repeats, settings)
    share = stats["allreduce_seconds"] / stats["fit_seconds"]
    rows = [("1 process, 1 thread", one, one_r2, ""),
            (f"1 process, {args.ranks} threads", many, many_r2, ""),
            (f"{args.ranks} ranks x 1 thread (gloo)", wall, r2,
             f"{100 * share:.0f}% in all_reduce ({stats['allreduce_calls']} calls, "
             f"{1e3 * stats['allreduce_seconds'] / stats['allreduce_calls']:.2f} ms each)")]
    print(f"{'':34s} {'fit s':>7s} {'vs 1x1':>7s} {'train R2':>9s}  communication")
    for name, t, score, comm in rows:
        print(f"{name:34s} {t:7.2f} {t / one:7.2f} {score:9.4f}  {comm}")


if __name__ == "__main__":
    sys.exit(main())
