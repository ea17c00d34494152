"""skopt_nn.distributed.fit and the dask recipes (docs/scaling_out.rst).

Two ranks on 127.0.0.1: spawned gloo processes, the same under ``torchrun
--nproc-per-node=2`` (in a network namespace that has only the loopback
interface), and a 2-worker dask LocalCluster.  Full-batch methods must equal one process on the
concatenated rows to 1e-8 (float64); mini-batch methods must reach its test score.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor

dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from skopt_nn import distributed  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import _distributed_ranks as ranks  # noqa: E402

os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_fit(est, X, y, sw=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, sample_weight=sw)


def _params(est) -> np.ndarray:
    if hasattr(est, "coef_"):
        return np.concatenate([np.ravel(est.coef_), np.ravel(est.intercept_)])
    return np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_])


# --------------------------------------------------------------------------- data
_Xr, _yr = make_regression(600, 8, noise=5.0, random_state=0)
_yr = _yr / _yr.std()
_Xc, _yc = make_classification(600, 8, n_informative=5, n_classes=3, random_state=0)
_sw = np.random.RandomState(0).uniform(0.2, 3.0, 600)
# the mini-batch task: 1600 training rows, 400 test rows
_Xm, _ym = make_regression(2000, 10, noise=10.0, random_state=1)
_ym = _ym / _ym.std()
_Xm_train, _ym_train, _Xm_test, _ym_test = _Xm[:1600], _ym[:1600], _Xm[1600:], _ym[1600:]

#: name -> (estimator, X, y, sample_weight, shard sizes or None for halves)
FULL_BATCH = {
    "linear_lbfgs_weights": (LinearRegressor(optimizer="lbfgs", alpha=0.1, max_iter=50),
                             _Xr, _yr, _sw, None),
    "linear_gd_uneven": (LinearRegressor(optimizer="gd", alpha=0.1, max_iter=30),
                         _Xr, _yr, None, [250, 350]),
    "mlp_lbfgs_weights": (MLPRegressor(hidden_layer_sizes=(7,), optimizer="lbfgs", alpha=0.1,
                                       max_iter=30, random_state=0), _Xr, _yr, _sw, None),
    "mlp_classifier_lbfgs": (MLPClassifier(hidden_layer_sizes=(7,), optimizer="lbfgs",
                                           alpha=0.01, max_iter=30, random_state=0),
                             _Xc, _yc, _sw, None),
    "linear_classifier_gd_sparse": (LinearClassifier(optimizer="gd", alpha=0.01, max_iter=20),
                                    sp.csr_matrix(np.where(_Xc > 0.5, _Xc, 0.0)), _yc, _sw,
                                    None),
    "linear_classifier_gd_balanced": (
        LinearClassifier(optimizer="gd", alpha=0.01, max_iter=30, class_weight="balanced"),
        _Xc, _yc, None, [200, 400]),
}
MINI_BATCH = {
    "mlp_adam": (MLPRegressor(hidden_layer_sizes=(16,), optimizer="adam", batch_size=64,
                              learning_rate_init=0.01, max_iter=60, tol=None, random_state=0),
                 _Xm_train, _ym_train, None, None),
    "linear_sgd": (LinearRegressor(optimizer="sgd", batch_size=32, learning_rate="constant",
                                   learning_rate_init=0.01, max_iter=20, tol=None),
                   _Xm_train, _ym_train, None, None),
    "mlp_adam_early_stopping": (
        MLPRegressor(hidden_layer_sizes=(16,), optimizer="adam", batch_size=64,
                     learning_rate_init=0.01, max_iter=60, early_stopping=True,
                     random_state=0), _Xm_train, _ym_train, None, None),
}
# rank 1's X has a column fewer: every rank must raise
FAILING = {
    "bad_features": (LinearRegressor(optimizer="lbfgs"), _Xr, _yr, None, None),
    "bad_target": (LinearRegressor(optimizer="lbfgs"), _Xr, _yr, None, None),
}


def _netns_torchrun_command():
    """The argv that runs torchrun in a new network namespace that has only ``lo``,
    or None where this machine cannot make one (not root, no ``unshare``/``ip``).

    torchrun's rendezvous store listens on every interface; inside the namespace
    the only interface is the loopback one, so the ranks reach nothing else."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if sys.platform != "linux" or unshare is None or ip is None:
        return None
    try:
        ok = subprocess.run([unshare, "-n", ip, "link", "set", "lo", "up"],
                            capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return None
    return [unshare, "-n", "sh", "-c", f'{ip} link set lo up && exec "$@"', "torchrun",
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node=2"]


@pytest.fixture(scope="module", params=["spawn", "torchrun"])
def launched(request, tmp_path_factory):
    """Every case fitted by 2 gloo ranks on their halves, in one launch: processes
    spawned by torch.multiprocessing, or started by ``torchrun --nproc-per-node=2``."""
    out = tmp_path_factory.mktemp("ranks") / "results.pkl"
    cases = {**FULL_BATCH, **MINI_BATCH, **FAILING}
    if request.param == "spawn":
        import torch.multiprocessing as mp

        mp.spawn(ranks.run_rank, args=(2, _free_port(), cases, str(out)), nprocs=2,
                 join=True)
    else:
        command = _netns_torchrun_command()
        if command is None:
            pytest.skip("no network namespace with only the loopback interface for torchrun "
                        "(needs Linux, root, unshare and ip)")
        cases_path = out.with_name("cases.pkl")
        with open(cases_path, "wb") as f:
            pickle.dump(cases, f)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
        proc = subprocess.run([*command, ranks.__file__, str(cases_path), str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("name", list(FULL_BATCH))
def test_ranks_full_batch_equals_one_process(launched, name):
    est, X, y, sw, _ = FULL_BATCH[name]
    one = _quiet_fit(clone(est), X, y, sw)
    got = launched[name]
    assert not isinstance(got, Exception), got
    np.testing.assert_allclose(_params(got), _params(one), rtol=0, atol=1e-8)
    assert got.loss_ == pytest.approx(one.loss_, rel=1e-10)
    assert got.n_iter_ == one.n_iter_
    assert launched[name + ":stats"]["allreduce_calls"] > 0


@pytest.mark.parametrize("name", ["mlp_adam", "linear_sgd"])
def test_ranks_mini_batch_reaches_one_process_score(launched, name):
    est, X, y, sw, _ = MINI_BATCH[name]
    one = _quiet_fit(clone(est), X, y, sw)
    got = launched[name]
    assert not isinstance(got, Exception), got
    assert got.score(_Xm_test, _ym_test) >= one.score(_Xm_test, _ym_test) - 0.01
    assert got.t_ == got.n_iter_ * 2 * (800 // (est.batch_size // 2)) * (est.batch_size // 2)


def test_ranks_early_stopping(launched):
    got = launched["mlp_adam_early_stopping"]
    assert not isinstance(got, Exception), got
    assert len(got.validation_scores_) == got.n_iter_ < 60
    assert got.score(_Xm_test, _ym_test) > 0.9


def test_ranks_failing_rank_stops_every_rank(launched):
    # rank 0 sees rank 1's error; rank 1 (not returned) raised its own
    assert isinstance(launched["bad_features"], ValueError)
    assert "different numbers of features" in str(launched["bad_features"])
    assert isinstance(launched["bad_target"], RuntimeError)
    assert "rank 1 failed" in str(launched["bad_target"])


def test_without_process_group_raises():
    with pytest.raises(RuntimeError, match="process group"):
        distributed.fit(LinearRegressor(), _Xr, _yr)
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="skopt_nn's estimators"):
        distributed.fit(Ridge(), _Xr, _yr)


# --------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def client():
    pytest.importorskip("dask")
    distributed_ = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed_.LocalCluster(host="127.0.0.1", n_workers=2,
                                            threads_per_worker=1, processes=True,
                                            dashboard_address=None)
        c = distributed_.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _blocks(X, y, sw=None, chunk=150):
    import dask.array as da

    return (da.from_array(X, chunks=(chunk, X.shape[1])), da.from_array(y, chunks=chunk),
            None if sw is None else da.from_array(sw, chunks=chunk))


@pytest.mark.parametrize("name", ["linear_lbfgs_weights", "mlp_classifier_lbfgs"])
def test_dask_full_batch_equals_one_process(client, name):
    est, X, y, sw, _ = FULL_BATCH[name]
    dX, dy, dsw = _blocks(X, y, sw)
    got = distributed.fit(est, dX, dy, sample_weight=dsw, client=client, timeout=30)
    one = _quiet_fit(clone(est), X, y, sw)
    assert got is not est and not hasattr(est, "n_iter_")
    np.testing.assert_allclose(_params(got), _params(one), rtol=0, atol=1e-8)
    got = pickle.loads(pickle.dumps(got))  # an ordinary estimator
    np.testing.assert_allclose(got.predict(X[:20]), one.predict(X[:20]), atol=1e-8)


def test_dask_mini_batch_and_dataframe(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    est, X, y, _, _ = MINI_BATCH["mlp_adam"]
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]),
                           npartitions=4)
    target = dd.from_pandas(pd.Series(y), npartitions=4)
    got = distributed.fit(est, frame, target, client=client, timeout=30)
    one = _quiet_fit(clone(est), X, y)
    assert got.score(_Xm_test, _ym_test) >= one.score(_Xm_test, _ym_test) - 0.01


def test_dask_gridsearch_matches_n_jobs_1(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    grid = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.01, 0.05]}
    est = LinearClassifier(optimizer="sgd", max_iter=5, tol=None, random_state=0)
    one = GridSearchCV(est, grid, cv=3, n_jobs=1).fit(_Xc, _yc)
    with joblib.parallel_backend("dask"):
        par = GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(_Xc, _yc)
    np.testing.assert_array_equal(par.cv_results_["mean_test_score"],
                                  one.cv_results_["mean_test_score"])
    assert par.best_params_ == one.best_params_


def test_incremental_equals_partial_fit_block_by_block(client):
    pytest.importorskip("dask_ml")
    from dask_ml.wrappers import Incremental

    X, y = _Xc, _yc
    dX, dy, _ = _blocks(X, y, chunk=200)
    est = LinearClassifier(optimizer="adam", learning_rate_init=0.01, random_state=0)
    inc = Incremental(clone(est), shuffle_blocks=False)
    inc.fit(dX, dy, classes=np.unique(y))
    inc.partial_fit(dX, dy, classes=np.unique(y))  # a second pass
    ref = clone(est)
    for _ in range(2):
        for start in range(0, len(X), 200):
            ref.partial_fit(X[start:start + 200], y[start:start + 200], classes=np.unique(y))
    np.testing.assert_allclose(inc.estimator_.coef_, ref.coef_, rtol=0, atol=1e-12)


def test_parallel_post_fit_predicts_dask_arrays(client):
    pytest.importorskip("dask_ml")
    import dask.array as da
    from dask_ml.wrappers import ParallelPostFit

    est = ParallelPostFit(LinearRegressor(optimizer="lbfgs")).fit(_Xr, _yr)
    dX = da.from_array(_Xr, chunks=(100, 8))
    pred = est.predict(dX)
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), est.estimator.predict(_Xr), atol=1e-12)


def test_incremental_search_with_client_scheduler(client):
    pytest.importorskip("dask_ml")
    import dask
    from dask_ml.model_selection import IncrementalSearchCV

    dX, dy, _ = _blocks(_Xc, _yc, chunk=100)
    est = LinearClassifier(optimizer="sgd", random_state=0)
    search = IncrementalSearchCV(est, {"alpha": [1e-4, 1e-3, 1e-2]}, n_initial_parameters=3,
                                 max_iter=3, decay_rate=None, random_state=0)
    with dask.config.set(scheduler=client.get):  # the workaround documented
        search.fit(dX, dy, classes=np.unique(_yc))
    assert search.best_score_ > 0.5


def test_dask_killed_worker_raises_within_timeout(client):
    """Last: it restarts a worker."""
    est = MLPRegressor(hidden_layer_sizes=(32,), optimizer="adam", batch_size=32,
                       max_iter=100000, tol=None, random_state=0)
    dX, dy, _ = _blocks(_Xm, _ym, chunk=500)
    pids = client.run(os.getpid)

    def rank1_worker():
        for _ in range(300):
            for addr, keys in client.processing().items():
                if any("distributed-fit-rank1" in str(k) for k in keys):
                    return addr
            time.sleep(0.1)

    def kill():
        addr = rank1_worker()
        time.sleep(1.0)  # mid-fit
        os.kill(pids[addr], signal.SIGKILL)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="rank|worker"):
        distributed.fit(est, dX, dy, client=client, timeout=20)
    assert time.monotonic() - start < 40
    killer.join(5)
    client.wait_for_workers(2, timeout=60)


def test_torchrun_recipe_runs(tmp_path):
    """docs/_scripts/torchrun_train.py under torchrun: rank 0 saves the model it
    reports, and that model scores what it printed."""
    import joblib

    path = os.path.join(os.path.dirname(__file__), "..", "docs", "_scripts",
                        "torchrun_train.py")
    with open(path) as f:
        compile(f.read(), path, "exec")
    command = _netns_torchrun_command()
    if command is None:
        pytest.skip("no network namespace with only the loopback interface for torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    proc = subprocess.run([*command, os.path.abspath(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = float(proc.stdout.split("training accuracy")[1].split()[0])
    X, y = make_classification(20_000, 20, n_informative=10, n_classes=3, random_state=0)
    clf = joblib.load(tmp_path / "model.joblib")
    assert clf.score(X, y) == pytest.approx(printed, abs=1e-3)
    assert printed > 0.9
