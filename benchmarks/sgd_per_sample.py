"""Per-sample and mini-batch SGD of the linear models against scikit-learn's SGDClassifier.

The compiled epoch (numba, ``skopt_nn._compiled_epoch``) against the compiled loop
of ``SGDClassifier``, both on one thread, measured in the same run:

(a) 200k x 100 dense float64 (make_classification), hinge, batch_size=1,
    learning_rate='optimal', alpha=1e-4, 5 epochs;
(b) sparse text-like CSR, 100k x 50k at 0.1% density (50 nonzeros a row, rows of unit
    norm, labels from a sparse linear rule with 5% flipped), the same settings;
(c) the W2 workload (``benchmarks/workloads.py``: 200k x 100 float32), logistic,
    batch_size=256, 5 epochs, against SGDClassifier(log_loss, constant eta0=0.01).

Each fit is timed ``--repeats`` times after one warm-up fit (the first fit of a
process compiles the kernels, or loads them from numba's cache; its time is printed
apart).  Ratios are ours / scikit-learn's (below 1: faster).  The torch path
(``SKOPT_NN_COMPILED=0``) is timed on a share of the epoch for (a) and (b), where a
whole fit would take minutes.

Usage: ``python benchmarks/sgd_per_sample.py [--repeats 3] [--only a,b,c]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def dense_data(seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(250_000, 100, n_informative=20, n_redundant=10,
                               random_state=seed)
    return X[:200_000], y[:200_000], X[200_000:], y[200_000:]


def sparse_data(seed=0, n_train=100_000, n_test=20_000, d=50_000, per_row=50):
    import scipy.sparse as sp

    rng = np.random.RandomState(seed)
    n = n_train + n_test
    # word frequencies: a Zipf-like column law, as in text
    p = 1.0 / np.arange(1, d + 1) ** 0.8
    p /= p.sum()
    cols = rng.choice(d, size=(n, per_row), p=p)
    vals = rng.exponential(1.0, size=(n, per_row))
    X = sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, n * per_row + 1, per_row)),
                      shape=(n, d))
    X.sum_duplicates()
    X = sp.csr_matrix(X.multiply(1.0 / np.sqrt(X.multiply(X).sum(1))))
    w = np.zeros(d)
    informative = rng.choice(d, 2000, replace=False)
    w[informative] = rng.normal(size=2000)
    y = (X @ w > 0).astype(int)
    flip = rng.uniform(size=n) < 0.05
    y[flip] = 1 - y[flip]
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def timed(make, X, y, Xt, yt, repeats):
    times, model = [], None
    for _ in range(repeats):
        model = make()
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), min(times), float((model.predict(Xt) == yt).mean())


def torch_path_time(make, X, y, rows):
    """Seconds of one torch-path epoch on all rows, from one epoch on ``rows`` rows."""
    os.environ["SKOPT_NN_COMPILED"] = "0"
    try:
        model = make()
        model.set_params(max_iter=1)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[:rows], y[:rows])
        return (time.perf_counter() - t) * X.shape[0] / rows
    finally:
        del os.environ["SKOPT_NN_COMPILED"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="a,b,c")
    args = parser.parse_args()

    import torch
    from sklearn.linear_model import SGDClassifier
    from threadpoolctl import threadpool_limits

    from skopt_nn import LinearClassifier
    from skopt_nn import _compiled_epoch as ce

    torch.set_num_threads(1)
    _limits = threadpool_limits(1)  # noqa: F841 - keep the limit for the run
    print(f"CPU: {cpu_model()}; one thread; numba compiled epoch: {ce.enabled()}")
    print(f"{'case':<34}{'ours s':>9}{'sklearn s':>11}{'ratio':>7}{'acc ours':>10}"
          f"{'acc sk':>8}")

    def per_sample(**kw):
        return lambda: LinearClassifier(loss="hinge", optimizer="sgd", batch_size=1,
                                        learning_rate="optimal", alpha=1e-4, max_iter=5,
                                        tol=None, random_state=0, **kw)

    def sk_per_sample():
        return SGDClassifier(loss="hinge", learning_rate="optimal", alpha=1e-4, max_iter=5,
                             tol=None, random_state=0)

    cases = []
    # 'optimal' does not use learning_rate_init, but its default 'auto' still estimates
    # the Lipschitz constant at the start of a fit (a power iteration on sparse data):
    # the rows with a number give the same model without that cost
    if "a" in args.only:
        cases.append(("(a) dense 200k x 100, batch 1", dense_data, per_sample(),
                      sk_per_sample, 5_000))
        cases.append(("(a) the same, lr_init=0.01 (unused)", dense_data,
                      per_sample(learning_rate_init=0.01), sk_per_sample, None))
    if "b" in args.only:
        cases.append(("(b) CSR 100k x 50k 0.1%, batch 1", sparse_data, per_sample(),
                      sk_per_sample, 2_000))
        cases.append(("(b) the same, lr_init=0.01 (unused)", sparse_data,
                      per_sample(learning_rate_init=0.01), sk_per_sample, None))
    if "c" in args.only:
        from workloads import linear_data

        def w2(**kw):
            return lambda: LinearClassifier(loss="logistic", optimizer="sgd", batch_size=256,
                                            max_iter=5, tol=None, random_state=0, **kw)

        def sk_w2():
            return SGDClassifier(loss="log_loss", max_iter=5, tol=None,
                                 learning_rate="constant", eta0=0.01, random_state=0)

        cases.append(("(c) W2 batch 256, lr 'auto'", lambda: linear_data(0), w2(), sk_w2,
                      None))
        cases.append(("(c) W2 batch 256, lr 0.01", lambda: linear_data(0),
                      w2(learning_rate_init=0.01), sk_w2, None))
    data_cache = {}
    for name, load, ours, theirs, torch_rows in cases:
        if name[:3] not in data_cache:
            data_cache[name[:3]] = load()
        X, y, Xt, yt = data_cache[name[:3]]
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours().set_params(max_iter=1).fit(X[:1000], y[:1000])
        first = time.perf_counter() - t
        med, best, acc = timed(ours, X, y, Xt, yt, args.repeats)
        sk_med, sk_best, sk_acc = timed(theirs, X, y, Xt, yt, args.repeats)
        print(f"{name:<34}{med:>9.3f}{sk_med:>11.3f}{med / sk_med:>7.2f}{acc:>10.4f}"
              f"{sk_acc:>8.4f}   (min {best:.3f} / {sk_best:.3f}; first small fit "
              f"{first:.2f} s)")
        if torch_rows is not None:
            tp = torch_path_time(ours, X, y, torch_rows)
            print(f"{'':<34}torch path: ~{tp:.1f} s an epoch ({tp / X.shape[0] * 1e6:.0f} us "
                  f"a step, from {torch_rows} rows), {tp * 5 / med:.0f}x the compiled fit")
        elif name.startswith("(c)"):
            os.environ["SKOPT_NN_COMPILED"] = "0"
            tp, _, tacc = timed(ours, X, y, Xt, yt, 1)
            del os.environ["SKOPT_NN_COMPILED"]
            print(f"{'':<34}torch path: {tp:.3f} s, accuracy {tacc:.4f}")


if __name__ == "__main__":
    main()
