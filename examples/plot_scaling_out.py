"""
Training on a dask cluster
==========================

:func:`skopt_nn.distributed.fit` trains one model on rows that are spread over
the workers of a dask cluster: each worker becomes a rank of a torch.distributed
process group, trains on the blocks it holds, and every step combines the ranks'
gradients with one ``all_reduce`` (the lecture's "parallel servers").  This
example starts a local cluster of two worker processes on the loopback
interface and shows the two promises of :doc:`/scaling_out`:

* a full-batch method (L-BFGS) makes the one-process iterations, to rounding;
* a mini-batch method (Adam) splits each global batch over the ranks and reaches
  the one-process model's score;

and, last, a scikit-learn grid search whose fits run on the same workers.

dask starts each worker as a new Python process, which imports the script that
started the cluster; so a script that starts one does its work under
``if __name__ == "__main__":`` (here, in :func:`main` at the end), or every
worker would start a cluster of its own.
"""

# %%
# The data, and the fits on the cluster and in one process
# --------------------------------------------------------
# The training rows become a dask array of two blocks, one on each worker (in
# practice: ``dask.dataframe.read_parquet`` ..., each worker reading its files).

import os
import time
import warnings

import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from skopt_nn import MLPClassifier, distributed

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
N_ROWS = 3000 if FAST else 12000

X, y = make_classification(N_ROWS, 20, n_informative=12, n_classes=3, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)


def fit_both(estimator, client):
    """The estimator fitted data-parallel on the cluster and in this process;
    each one's seconds."""
    chunk = -(-len(X_train) // 2)
    dX = client.persist(da.from_array(X_train, chunks=(chunk, -1)))
    dy = client.persist(da.from_array(y_train, chunks=chunk))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        ranks = distributed.fit(clone(estimator), dX, dy, client=client, timeout=120)
        seconds_ranks = time.perf_counter() - start
        start = time.perf_counter()
        one = clone(estimator).fit(X_train, y_train)
        seconds_one = time.perf_counter() - start
    return ranks, one, seconds_ranks, seconds_one


def parameters(net):
    return np.concatenate([a.ravel() for a in net.coefs_ + net.intercepts_])


# %%
# L-BFGS: the same model as one process
# -------------------------------------
# Every evaluation of the objective is the ranks' weighted means combined, so the
# line searches and the L-BFGS memory see the numbers one process would, up to
# the order of the sums.  On a network (a nonconvex objective) that last-digit
# difference grows over the iterations, as it would between two BLAS libraries:
# the curves agree to about 1e-14 at first and drift apart late in a long run,
# to models of the same quality.

lbfgs = MLPClassifier(hidden_layer_sizes=(32,), optimizer="lbfgs", alpha=1e-3,
                      max_iter=40 if FAST else 150, random_state=0)


def compare_lbfgs(client):
    ranks, one, *seconds = fit_both(lbfgs, client)
    f_ranks, f_one = np.array(ranks.loss_curve_), np.array(one.loss_curve_)
    n = min(len(f_ranks), len(f_one))
    drift = np.abs(f_ranks[:n] - f_one[:n]) / f_one[:n]
    print(f"L-BFGS: loss curves' relative difference {drift[:20].max():.1e} over the "
          f"first 20 iterations, {drift.max():.1e} over all {n}; largest parameter "
          f"difference {np.abs(parameters(ranks) - parameters(one)).max():.1e}")
    print(f"        test accuracy {ranks.score(X_test, y_test):.3f} (2 ranks) vs "
          f"{one.score(X_test, y_test):.3f} (one process)")
    return {"lbfgs_ranks": ranks, "lbfgs_one": one, "lbfgs_seconds": seconds,
            "lbfgs_drift": drift}

# %%
# Adam: each global batch split over the ranks
# --------------------------------------------
# With ``batch_size=256`` each rank takes 128 rows of its own shard a step; the
# batches are not the one-process fit's, so the iterates differ, but the model
# reaches the same score.

adam = MLPClassifier(hidden_layer_sizes=(32,), optimizer="adam", batch_size=256,
                     learning_rate_init=3e-3, max_iter=15 if FAST else 40, tol=None,
                     random_state=0)


def compare_adam(client):
    ranks, one, *seconds = fit_both(adam, client)
    scores = (ranks.score(X_test, y_test), one.score(X_test, y_test))
    print(f"Adam: test accuracy {scores[0]:.3f} (2 ranks) vs {scores[1]:.3f} (one process)")
    return {"adam_ranks": ranks, "adam_one": one, "adam_seconds": seconds,
            "adam_scores": scores}

# %%
# The loss curves
# ---------------
# The L-BFGS curves lie on each other (their difference is in the middle); the
# Adam curves differ by their batches.
# (On data this small, a fit takes well under a second, and the ranks' messages
# cost more than they save; :doc:`/scaling_out` says when data parallelism pays.)



def plot_curves(results):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[1].semilogy(np.maximum(results["lbfgs_drift"], 1e-17))
    axes[1].set(title="L-BFGS: 2 ranks vs one process", xlabel="iteration",
                ylabel="relative difference of the losses")
    for ax, (title, key) in zip(axes[::2], [("L-BFGS", "lbfgs"), ("Adam, batch 256", "adam")]):
        ranks, one = results[f"{key}_ranks"], results[f"{key}_one"]
        seconds = results[f"{key}_seconds"]
        ax.plot(one.loss_curve_, lw=3, alpha=0.5, label=f"one process ({seconds[1]:.2f} s)")
        ax.plot(ranks.loss_curve_, "--", label=f"2 ranks on the cluster ({seconds[0]:.2f} s)")
        ax.set(title=title, xlabel="epoch (L-BFGS: iteration)", ylabel="training loss",
               yscale="log")
        ax.legend()
    fig.tight_layout()

# %%
# A grid search whose fits run on the workers
# -------------------------------------------
# scikit-learn's searches run their fits through joblib; its ``"dask"`` backend
# sends them to the cluster.  The result is the search of ``n_jobs=1``.

grid = {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]}


def search_on_cluster():
    search = GridSearchCV(clone(adam).set_params(max_iter=10), grid, cv=3, n_jobs=-1)
    with joblib.parallel_backend("dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    print("best parameters on the cluster:", search.best_params_)
    return {"search": search}


# %%
# Everything on a cluster of two single-threaded workers
# ------------------------------------------------------
# On a real cluster, ``Client("tcp://scheduler-host:8786")`` replaces the
# ``LocalCluster``; nothing else changes.  This one listens on the loopback
# interface only.


def main():
    cluster = LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                           processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        results = {**compare_lbfgs(client), **compare_adam(client)}
        results.update(search_on_cluster())
    finally:
        client.close()
        cluster.close()
    plot_curves(results)
    return results


if __name__ == "__main__":
    results = main()
