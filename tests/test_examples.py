"""Every gallery example runs in its fast mode and computes and draws what it claims.

The examples in ``examples/`` are run with ``runpy`` under
``SKOPT_NN_EXAMPLES_FAST=1`` and matplotlib's Agg backend; each test then looks
at the example's own variables and figures.
"""

import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _helpers import ROOT  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("plot_*.py"))


@pytest.fixture
def run_example(monkeypatch):
    """Run one example in fast mode; return its namespace and its figures."""
    monkeypatch.setenv("SKOPT_NN_EXAMPLES_FAST", "1")
    plt.close("all")

    def run(name):
        import runpy

        with warnings.catch_warnings():
            # short fast-mode runs may stop at max_iter; the checks below judge them
            warnings.simplefilter("ignore", ConvergenceWarning)
            namespace = runpy.run_path(str(EXAMPLES_DIR / name), run_name="__main__")
        figures = [plt.figure(n) for n in plt.get_fignums()]
        return namespace, figures

    yield run
    plt.close("all")


def test_every_example_is_checked():
    assert set(EXAMPLES) == set(CHECKS), "add a check for each new example"


def _lines(ax):
    return [line for line in ax.get_lines() if line.get_label() != "_nolegend_"]


def check_lecture_notebook(ns, figures):
    assert len(figures) == 3  # data, loss curve, predictions
    net = ns["net"]
    assert net.n_iter_ == ns["N_EPOCHS"] == 100
    assert [c.shape for c in net.coefs_] == [(1, 10), (10, 20), (20, 10), (10, 1)]
    assert len(ns["loss_display"].line_.get_xdata()) == 100
    assert net.history_.shape[0] == 101 and (net.history_["step_size"][1:] == 0.02).all()
    assert net.loss_curve_[-1] < 0.6 * net.loss_curve_[0]
    assert ns["test_mse"] < 0.2  # noise alone is 0.8²/12 ≈ 0.05
    line = ns["prediction_display"].prediction_line_
    assert len(line.get_xdata()) == 200


def check_gridsearch_optimizers(ns, figures):
    results = ns["results"]
    assert len(results) == 9
    labels = set(results["candidate"])
    assert {"'adam'", "'lbfgs'", "Momentum(momentum=0.9)", "Adam(beta_1=0.5)"} <= labels
    assert ns["search"].best_score_ > 0.7
    (fig,) = figures
    ax_score, ax_time = fig.axes[:2]
    assert len(ax_score.patches) == len(ax_time.patches) == 9
    # the grid's objects are cloned, never modified
    assert ns["param_grid"][1]["mlp__optimizer"][0].momentum == 0.9


def check_batched_search(ns, figures):
    batched, sequential = ns["batched"], ns["sequential"]
    assert len(ns["scores"]) == 20
    assert ns["largest_difference"] < 1e-6
    assert batched.best_params_ == sequential.best_params_
    for key in ("rank_test_score", "params"):
        assert list(batched.cv_results_[key]) == list(sequential.cv_results_[key])
    np.testing.assert_allclose(batched.best_estimator_.predict(ns["X_test"]),
                               sequential.best_estimator_.predict(ns["X_test"]), atol=1e-9)
    (fig,) = figures
    ax_score, ax_time = fig.axes
    assert len(_lines(ax_score)) == 5
    assert len(ax_time.patches) == 2


def check_linear_losses(ns, figures):
    assert len(figures) == 3
    ax_reg, ax_clf = figures[0].axes
    assert len(_lines(ax_reg)) == 2 and len(_lines(ax_clf)) == 3
    slopes = {name: reg.coef_[0] for name, reg in ns["regressors"].items()}
    # the outliers pull the least-squares line, not the absolute-error lines
    assert abs(slopes["absolute error, L-BFGS"] - 1.5) < 0.1
    assert abs(slopes["absolute error, SGD 1/√k"] - 1.5) < 0.15
    assert abs(slopes["squared error, L-BFGS"] - 1.5) > 0.15
    assert ns["hinge"].score(ns["Xc"], ns["yc"]) > 0.85
    assert ns["logistic"].score(ns["Xc"], ns["yc"]) > 0.85
    assert len(_lines(figures[1].axes[0])) == 4  # true line and three fits


def check_line_searches(ns, figures):
    assert len(figures) == 3
    results_q, results_r = ns["results_q"], ns["results_r"]
    assert len(results_q) == len(results_r) == 6
    cost_q = figures[0].axes[0]
    assert len(cost_q.get_lines()) == 6
    gaps = {k: r.fun - ns["f_star_quadratic"] for k, r in results_q.items()}
    assert all(g >= -1e-12 for g in gaps.values())
    assert max(gaps[k] for k in gaps if not k.startswith("gd")) < gaps["gd (η = 1/L)"]
    fixed = results_q["gd (η = 1/L)"].history["step_size"][1:]
    assert np.allclose(fixed, 0.01, rtol=0.05)  # 1/L with L = 100
    halving = results_q["line_search (halving)"].history["step_size"][1:]
    assert np.allclose(np.log2(halving), np.round(np.log2(halving)))  # powers of 1/2
    paths = ns["paths_r"]
    assert all(len(p) == results_r[k].nit + 1 for k, p in paths.items())
    assert results_r["wolfe"].fun < results_r["gd (η = 1/L)"].fun


def check_sgd_schedules(ns, figures):
    assert len(figures) == 4
    assert len(figures[0].axes[0].get_lines()) == 3
    assert len(figures[1].axes[0].get_lines()) == 4
    n, spread = ns["n"], ns["spread"]
    b = ns["batch_sizes"]
    without = np.asarray(ns["measured"]["without_replacement"])
    with_ = np.asarray(ns["measured"]["with_replacement"])
    small = b <= n // 10
    # Eq. 30 and 31 within sampling error
    np.testing.assert_allclose(without[small], (1 - b[small] / n) * spread * n / (n - 1)
                               / b[small], rtol=0.3)
    np.testing.assert_allclose(with_[small], spread / b[small], rtol=0.3)
    assert without[-1] < 0.3 * with_[-1]  # b = 0.9n
    assert len(figures[3].axes[0].get_lines()) == 4


def check_convergence_rates(ns, figures):
    assert len(figures) == 4
    assert -1.1 < ns["slope"] < -0.9
    t, gap = ns["t"], ns["gap"][1:]
    assert np.all(gap <= 2 * ns["L"] * ns["R2"] / t)  # Eq. 18
    gd_gap, mu, L = ns["gd_gap"], ns["mu_r"], ns["L_r"]
    k = np.arange(len(gd_gap))
    assert np.all(gd_gap[gd_gap > 1e-12] <= ((1 - mu / L) ** k * gd_gap[0])[gd_gap > 1e-12]
                  * (1 + 1e-9))
    sgd = ns["sgd_results"]
    assert len(sgd) == 5
    assert sgd["η = 1/(μt) (Eq. 22)"][-1] < sgd["η = 0.2/t (Eq. 19)"][-1]
    assert len(figures[2].axes[0].get_lines()) == 10  # 5 runs, 3 scaled bounds, 2 floors


def check_scaling_out(ns, figures):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    results = ns["results"]
    drift = results["lbfgs_drift"]
    assert len(drift) == results["lbfgs_one"].n_iter_ == results["lbfgs_ranks"].n_iter_
    assert drift[:20].max() < 1e-10  # the one-process iterations, to rounding
    lbfgs_scores = [results[k].score(ns["X_test"], ns["y_test"])
                    for k in ("lbfgs_ranks", "lbfgs_one")]
    assert abs(lbfgs_scores[0] - lbfgs_scores[1]) < 0.01
    ranks, one = results["adam_scores"]
    assert ranks >= one - 0.02 and ranks > 0.6
    assert results["adam_ranks"].n_iter_ == ns["adam"].max_iter
    (fig,) = figures
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 1, 2]
    # the search on the cluster is the search of n_jobs=1
    search = results["search"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(clone(search.estimator), search.param_grid, cv=3).fit(
            ns["X_train"], ns["y_train"])
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], atol=1e-12)
    assert search.best_params_ == local.best_params_


CHECKS = {
    "plot_scaling_out.py": check_scaling_out,
    "plot_lecture_notebook.py": check_lecture_notebook,
    "plot_gridsearch_optimizers.py": check_gridsearch_optimizers,
    "plot_batched_search.py": check_batched_search,
    "plot_linear_losses.py": check_linear_losses,
    "plot_line_searches.py": check_line_searches,
    "plot_sgd_schedules.py": check_sgd_schedules,
    "plot_convergence_rates.py": check_convergence_rates,
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example(name, run_example):
    namespace, figures = run_example(name)
    assert figures, f"{name} drew no figure"
    CHECKS[name](namespace, figures)
