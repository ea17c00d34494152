"""Time one implementation of one workload in this (fresh) process.

Run by ``benchmarks/run.py``, one process per config per round, so that peak
RSS belongs to one config.  Steps: cap the thread pools, load the cached data,
build the training closure, then ``--warmup`` untimed fits and ``--repeats``
timed fits (wall clock with ``perf_counter``, CPU with ``process_time``: all of
this process's threads).  The test metric is computed after the last fit,
outside the timer.  Prints exactly one JSON line on stdout.

    python benchmarks/worker.py --workload w2 --impl ours_sgd_log --threads 1
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
import traceback

from workloads import WORKLOADS, Options, prepare_data


def peak_rss_mb() -> float:
    """``ru_maxrss`` in MB (KiB on Linux).

    Linux carries the parent's high-water mark over ``fork`` + ``exec``, so this
    is only the worker's own peak because ``run.py`` keeps the parent small (it
    generates the data in a separate process).  :func:`hwm_mb` cross-checks it.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_mb() -> float | None:
    """VmHWM of /proc/self/status: this process image's own peak RSS (Linux only)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def limit_threads(n: int, uses_torch: bool):
    """torch intra-op threads (torch impls only) and the BLAS/OpenMP pools to ``n``.

    scikit-learn is imported first so that its OpenMP runtime is loaded and
    covered by the threadpoolctl limit.  The returned object must stay alive.
    """
    if uses_torch:
        import torch

        torch.set_num_threads(n)
    import sklearn.linear_model  # noqa: F401
    import sklearn.neural_network  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def missing_requirement(requires) -> str | None:
    for req in requires:
        module, _, attr = req.partition(":")
        try:
            mod = importlib.import_module(module)
            if attr:
                getattr(mod, attr)
        except (ImportError, AttributeError) as exc:
            return f"{req} not importable ({type(exc).__name__}: {exc})"
    return None


def emit(**fields) -> None:
    fields["peak_rss_mb"] = round(peak_rss_mb(), 1)
    hwm = hwm_mb()
    fields["vmhwm_mb"] = hwm and round(hwm, 1)
    fields["loadavg1"] = round(os.getloadavg()[0], 2)
    fields["python"] = platform.python_version()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        fields["torch"] = torch.__version__
        fields["torch_threads"] = torch.get_num_threads()
    print(json.dumps(fields), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prepare", default=None, metavar="W1,W2",
                   help="only generate and cache the data of these workloads")
    p.add_argument("--workload", choices=sorted(WORKLOADS))
    p.add_argument("--impl")
    p.add_argument("--repeats", type=int, default=None, help="timed fits (workload default)")
    p.add_argument("--warmup", type=int, default=1, help="untimed fits first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.prepare:
        prepare_data(a.prepare.split(","), a.seed)
        return
    if not (a.workload and a.impl):
        p.error("--workload and --impl are required")

    wl = WORKLOADS[a.workload]
    impl = wl.impl(a.impl)
    repeats = a.repeats if a.repeats is not None else wl.repeats
    head = {"workload": wl.key, "impl": impl.name, "threads": a.threads,
            "device": a.device if impl.uses_torch else "cpu"}

    missing = missing_requirement(impl.requires)
    if missing:
        emit(status="unavailable", reason=missing, **head)
        return
    try:
        _limits = limit_threads(a.threads, impl.uses_torch)  # noqa: F841 (keep alive)
        data = wl.load(a.seed)
        X_test, y_test = data[2], data[3]
        train = impl.build(data, Options(seed=a.seed, device=a.device))
        base_rss = peak_rss_mb()  # imports + data, before any fit
        t0 = time.perf_counter()
        for _ in range(a.warmup):
            train()
        first_s = (time.perf_counter() - t0) / a.warmup if a.warmup else None
        walls, cpus = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            predict, info = train()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        value = wl.score(predict(X_test), y_test)
    except Exception as exc:  # report, don't crash the suite
        emit(status="error", reason=f"{type(exc).__name__}: {exc}",
             traceback=traceback.format_exc()[-3000:], **head)
        return
    emit(status="ok", median_s=round(statistics.median(walls), 6),
         median_cpu_s=round(statistics.median(cpus), 6),
         times_s=[round(t, 5) for t in walls], first_s=first_s and round(first_s, 5),
         metric=wl.metric, value=value, base_rss_mb=round(base_rss, 1), info=info, **head)


if __name__ == "__main__":
    main()
