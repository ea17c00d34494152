"""Time grid searches: skopt_nn's batched GridSearchCV beside scikit-learn's, in one run.

    python benchmarks/search.py [--workloads s1,s2] [--rounds 2] [--sweep] [--n-jobs 1]

Workloads (one thread, every config in its own fresh process, round-robin):

* ``s1``: the lecture task (100 points of y = sin(x) + U(0, 0.8), float64), a
  1-10-20-10-1 ReLU MLPRegressor, Adam, batch 16, 300 epochs run to the end;
  the grid: ``learning_rate_init`` in 6 values x ``alpha`` in 4 values, 5-fold CV
  (120 fits).
* ``s2``: W3's data (50k x 64 float32, 10 classes), an MLPClassifier with one
  hidden layer of 64, Adam, batch 256, 5 epochs; ``learning_rate_init`` in 4 x
  ``alpha`` in 2, 3-fold CV (24 fits).

Implementations: ``sklearn_sklearn`` (scikit-learn's GridSearchCV over
scikit-learn's MLP), ``sklearn_ours`` (scikit-learn's GridSearchCV over skopt_nn's
MLP: the fits one by one) and ``ours`` (``skopt_nn.model_selection.GridSearchCV``:
the fits of a fold trained together).  The table gives each one's median time,
its ratio to both anchors measured in the same round, peak RSS and best score.

``--n-jobs N`` gives every search ``n_jobs=N`` (scikit-learn's: N worker processes;
ours: the batched models cut into N parts trained in N threads); each process still
runs one BLAS/torch thread.  The targets are stated for ``--n-jobs 1``.

``--sweep`` adds how ``skopt_nn.fit_many`` grows with the number of models K
(1, 8, 32, 128, 512) on both workloads (s2 with 1 epoch), each K in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from workloads import mlp_data  # noqa: E402

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
S1_GRID = {"learning_rate_init": [0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
           "alpha": [0.0, 1e-4, 1e-3, 1e-2]}
S2_GRID = {"learning_rate_init": [3e-4, 1e-3, 3e-3, 1e-2], "alpha": [1e-4, 1e-2]}
S1_EPOCHS, S2_EPOCHS, SWEEP = 300, 5, (1, 8, 32, 128, 512)


# --------------------------------------------------------------------------- the work
def _data(workload: str):
    if workload == "s1":
        from skopt_nn.datasets import make_lecture_sine

        X, y, _, _ = make_lecture_sine()
        return X, y
    X, y, _, _ = mlp_data(0)
    return X, y


def _estimator(workload: str, library: str, epochs: int | None = None):
    """The workload's estimator, run to its last epoch (no early stop)."""
    if workload == "s1":
        kw = dict(hidden_layer_sizes=(10, 20, 10), batch_size=16,
                  max_iter=epochs or S1_EPOCHS, random_state=0)
    else:
        kw = dict(hidden_layer_sizes=(64,), batch_size=256, max_iter=epochs or S2_EPOCHS,
                  random_state=0)
    if library == "sklearn":
        from sklearn import neural_network as nn

        cls = nn.MLPRegressor if workload == "s1" else nn.MLPClassifier
        return cls(solver="adam", tol=0.0, n_iter_no_change=10**6, **kw)
    import skopt_nn

    cls = skopt_nn.MLPRegressor if workload == "s1" else skopt_nn.MLPClassifier
    return cls(optimizer="adam", tol=None, **kw)


def _search(workload: str, impl: str, n_jobs: int = 1):
    from sklearn import model_selection as sk

    grid = S1_GRID if workload == "s1" else S2_GRID
    cv = 5 if workload == "s1" else 3
    if impl == "ours":
        from skopt_nn.model_selection import GridSearchCV

        return GridSearchCV(_estimator(workload, "skopt_nn"), grid, cv=cv, n_jobs=n_jobs)
    library = "sklearn" if impl == "sklearn_sklearn" else "skopt_nn"
    return sk.GridSearchCV(_estimator(workload, library), grid, cv=cv, n_jobs=n_jobs)


def run_config(workload: str, impl: str, n_jobs: int = 1) -> dict:
    """One timed search (or, for ``sweep_K``, one fit_many of K models)."""
    import warnings

    import numpy as np

    X, y = _data(workload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if impl.startswith("sweep_"):
            from sklearn.model_selection import KFold

            import skopt_nn

            k = int(impl.split("_")[1])
            epochs = None if workload == "s1" else 1
            train = next(iter(KFold(5 if workload == "s1" else 3).split(X)))[0]
            rates = np.geomspace(1e-4, 1e-1, k)
            models = [_estimator(workload, "skopt_nn", epochs).set_params(
                learning_rate_init=float(r)) for r in rates]
            start = time.perf_counter()
            skopt_nn.fit_many(models, X, y, rows=[train] * k)
            seconds = time.perf_counter() - start
            score = max(m.score(X, y) for m in models)
        else:
            search = _search(workload, impl, n_jobs)
            start = time.perf_counter()
            search.fit(X, y)
            seconds = time.perf_counter() - start
            score = float(search.best_score_)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "score": score}


# --------------------------------------------------------------------------- the driver
def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _spawn(workload: str, impl: str, threads: int, n_jobs: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT,
                                                                     os.environ.get("PYTHONPATH")])))
    env.update({v: str(threads) for v in THREAD_VARS})
    out = subprocess.run([sys.executable, __file__, "--worker", workload, impl,
                          "--n-jobs", str(n_jobs)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="s1,s2")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps(run_config(*a.worker, n_jobs=a.n_jobs)))
        return
    print(f"CPU: {_cpu_model()}; {a.threads} thread(s) per process; n_jobs={a.n_jobs}; "
          f"python {platform.python_version()}")
    impls = ("sklearn_sklearn", "sklearn_ours", "ours")
    for wl in a.workloads.split(","):
        _mlp_data_cached(wl)
        rows = {impl: [] for impl in impls}
        for r in range(a.rounds):
            order = impls[r % 3:] + impls[:r % 3]
            for impl in order:
                rows[impl].append(_spawn(wl, impl, a.threads, a.n_jobs))
        _table(wl, rows)
        if a.sweep:
            _sweep(wl, a.threads)


def _mlp_data_cached(workload: str) -> None:
    if workload == "s2":
        mlp_data(0)  # generated once, before any timed process


def _table(workload: str, rows: dict) -> None:
    title = {"s1": "lecture task, 24 candidates x 5 folds, 300 epochs",
             "s2": "W3 data, hidden (64,), 8 candidates x 3 folds, 5 epochs"}[workload]
    print(f"\n{workload}: {title}")
    print(f"{'implementation':<18}{'seconds':>9}{'/ sk+sk':>9}{'/ sk+ours':>11}{'peak MB':>9}"
          f"{'best score':>12}")
    rounds = len(next(iter(rows.values())))
    for impl, results in rows.items():
        if any("error" in r for r in results):
            print(f"{impl:<18} error: {next(r['error'] for r in results if 'error' in r)}")
            continue
        ratio = {ref: statistics.median(results[i]["seconds"] / rows[ref][i]["seconds"]
                                        for i in range(rounds)
                                        if "error" not in rows[ref][i])
                 for ref in ("sklearn_sklearn", "sklearn_ours")}
        print(f"{impl:<18}{statistics.median(r['seconds'] for r in results):>9.2f}"
              f"{ratio['sklearn_sklearn']:>9.3f}{ratio['sklearn_ours']:>11.3f}"
              f"{max(r['peak_mb'] for r in results):>9.0f}{results[0]['score']:>12.4f}")


def _sweep(workload: str, threads: int) -> None:
    print(f"\n{workload}: fit_many of K models on one fold "
          f"({'300 epochs' if workload == 's1' else '1 epoch'})")
    print(f"{'K':>5}{'seconds':>9}{'per model':>11}{'peak MB':>9}")
    for k in SWEEP:
        r = _spawn(workload, f"sweep_{k}", threads)
        if "error" in r:
            print(f"{k:>5} error: {r['error']}")
            continue
        print(f"{k:>5}{r['seconds']:>9.2f}{r['seconds'] / k:>11.4f}{r['peak_mb']:>9.0f}")


if __name__ == "__main__":
    main()
