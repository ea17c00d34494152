"""Progress output, scikit-learn callbacks, history_ and the plots."""

import io
import sys

import matplotlib
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skopt_nn import LinearClassifier, LinearRegressor, MLPRegressor  # noqa: E402
from skopt_nn.optim import minimize  # noqa: E402
from skopt_nn.plotting import (  # noqa: E402
    LossCurveDisplay,
    OptimizerComparisonDisplay,
    PredictionDisplay,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    return make_classification(150, 5, random_state=0)


def test_verbose_2_prints_one_line_per_epoch(data, capsys):
    X, y = data
    LinearClassifier(optimizer="sgd", max_iter=4, tol=None, verbose=2).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"Iteration {k}" for k in range(1, 5)]
    assert all("loss = " in line for line in lines)


def test_verbose_1_shows_a_tqdm_bar_with_the_loss(data, monkeypatch):
    pytest.importorskip("tqdm")
    X, y = data
    stream = io.StringIO()
    stream.isatty = lambda: True  # an interactive terminal
    monkeypatch.setattr(sys, "stderr", stream)
    LinearClassifier(optimizer="sgd", max_iter=5, tol=None, verbose=1).fit(X, y)
    text = stream.getvalue()
    assert "LinearClassifier" in text and "5/5" in text and "loss=" in text


def test_verbose_1_is_quiet_in_logs(data, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    X, y = data
    stream = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", stream)
    LinearClassifier(optimizer="sgd", max_iter=5, tol=None, verbose=1).fit(X, y)
    assert stream.getvalue() == "" and capsys.readouterr().out == ""


def test_sklearn_callbacks_see_every_epoch_and_can_stop(data):
    callback_mod = pytest.importorskip("sklearn.callback")
    X, y = data

    class Recorder:
        def __init__(self, stop_at=None):
            self.begin, self.end, self.scores, self.stop_at = 0, 0, [], stop_at

        def setup(self, estimator, context):
            self.setup_called = True

        def teardown(self, estimator, context):
            self.teardown_called = True

        def on_fit_task_begin(self, estimator, context):
            if context.task_name == "epoch":
                self.begin += 1

        def on_fit_task_end(self, estimator, context, *, X=None, y=None,
                            fitted_estimator=None):
            if context.task_name != "epoch":
                return False
            self.end += 1
            self.scores.append(fitted_estimator.score(X, y))
            return self.stop_at is not None and self.end >= self.stop_at

    assert isinstance(Recorder(), callback_mod.FitCallback)
    rec = Recorder()
    clf = LinearClassifier(optimizer="sgd", max_iter=6, tol=None).set_callbacks(rec).fit(X, y)
    assert rec.begin == rec.end == 6 and rec.setup_called and rec.teardown_called
    # the fitted copy handed to the callback predicts with that epoch's weights
    assert rec.scores[-1] == pytest.approx(clf.score(X, y))
    stopper = Recorder(stop_at=3)
    clf = LinearClassifier(optimizer="sgd", max_iter=50, tol=None).set_callbacks(stopper)
    clf.fit(X, y)
    assert clf.n_iter_ == 3


def test_history_records_steps_and_evaluations(data):
    X, y = data
    est = LinearClassifier(optimizer="armijo", max_iter=8, tol=None).fit(X, y)
    h = est.history_
    assert list(h.columns) == ["epoch", "loss", "grad_norm", "step_size", "n_evals", "time"]
    assert len(h) == 9 and h.epoch.tolist() == list(range(9))
    np.testing.assert_allclose(h.loss.iloc[1:], est.loss_curve_)
    assert (h.n_evals.iloc[1:] >= 1).all() and (h.step_size.iloc[1:] > 0).all()
    # Armijo halves from 1: every accepted step is a power of one half
    np.testing.assert_allclose(np.log2(h.step_size.iloc[1:]) % 1, 0, atol=1e-12)
    assert h.grad_norm.iloc[1:].notna().all() and h.time.is_monotonic_increasing


def test_loss_curve_display_draws_the_curve(data):
    X, y = data
    est = LinearClassifier(optimizer="sgd", early_stopping=True, max_iter=20,
                           random_state=0).fit(X, y)
    disp = LossCurveDisplay.from_estimator(est)
    np.testing.assert_allclose(disp.line_.get_ydata(), est.loss_curve_)
    np.testing.assert_array_equal(disp.line_.get_xdata(), np.arange(1, est.n_iter_ + 1))
    np.testing.assert_allclose(disp.validation_line_.get_ydata(), est.validation_scores_)
    assert disp.ax_.get_xlabel() == "epoch"
    _, ax = plt.subplots()
    assert LossCurveDisplay.from_estimator(est, ax=ax, log_scale=True).ax_ is ax
    assert ax.get_yscale() == "log"


def test_optimizer_comparison_display_from_estimators_and_results():
    X, y = make_regression(80, 3, noise=0.1, random_state=0)
    fitted = {opt: LinearRegressor(optimizer=opt, max_iter=15, tol=None).fit(X, y)
              for opt in ["gd", "wolfe"]}
    fitted["minimize"] = minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd",
                                  learning_rate_init=0.1, max_iter=10)
    disp = OptimizerComparisonDisplay.from_estimators(fitted)
    assert set(disp.lines_) == {"gd", "wolfe", "minimize"}
    np.testing.assert_allclose(disp.lines_["gd"].get_ydata(), fitted["gd"].history_.loss)
    assert disp.ax_.get_yscale() == "log"
    labels = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert labels == ["gd", "wolfe", "minimize"]
    assert disp.ax_.get_ylabel() == "cost"
    gap = OptimizerComparisonDisplay.from_estimators({"m": fitted["minimize"]}, optimum=0.0)
    np.testing.assert_allclose(gap.lines_["m"].get_ydata(), fitted["minimize"].history.loss)
    assert gap.ax_.get_ylabel() == "cost − f*"


def test_optimizer_comparison_display_names_its_cost():
    X, y = make_regression(60, 2, noise=0.1, random_state=0)
    fitted = {"gd": LinearRegressor(optimizer="gd", max_iter=5, tol=None).fit(X, y)}
    disp = OptimizerComparisonDisplay.from_estimators(fitted, ylabel="½ · mean squared error")
    assert disp.ax_.get_ylabel() == "½ · mean squared error"
    gap = OptimizerComparisonDisplay(disp.curves, optimum=0.0).plot(ylabel="½ MSE")
    assert gap.ax_.get_ylabel() == "½ MSE − f*"


def test_prediction_display_draws_data_and_predictions():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 1) * 6
    y = np.sin(X[:, 0])
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=50, tol=None, random_state=0).fit(X, y)
    disp = PredictionDisplay.from_estimator(reg, X, y, n_grid=50)
    np.testing.assert_allclose(disp.data_points_.get_offsets(), np.c_[X[:, 0], y])
    grid = disp.prediction_line_.get_xdata()
    assert len(grid) == 50 and grid.min() == X.min() and grid.max() == X.max()
    np.testing.assert_allclose(disp.prediction_line_.get_ydata(), reg.predict(grid[:, None]))
    with pytest.raises(ValueError, match="one feature"):
        PredictionDisplay.from_estimator(reg, np.c_[X, X], y)


def test_plotting_without_matplotlib_says_how_to_install(no_matplotlib):
    import skopt_nn.plotting as plotting

    with pytest.raises(ImportError, match="pip install matplotlib"):
        plotting._pyplot()


def test_sklearn_progress_bar_and_scoring_monitor_inside_a_search(data, capsys):
    callback = pytest.importorskip("sklearn.callback")
    pytest.importorskip("rich")
    from sklearn.model_selection import GridSearchCV

    from skopt_nn import MLPClassifier

    X, y = data
    GridSearchCV(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, tol=None),
                 {"alpha": [1e-4, 1e-3]}, cv=2).set_callbacks(callback.ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "GridSearchCV - fit" in out and out.count("MLPClassifier - fit") >= 5  # 4 + refit

    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = LinearClassifier(optimizer="sgd", max_iter=4, tol=None).set_callbacks(monitor)
    clf.fit(X, y)
    table = monitor.get_logs().data_as_pandas
    scores = table.iloc[:, -1].to_numpy()
    assert len(table) == 1 + 4  # the fit's root task and one task per epoch
    assert scores[-1] == pytest.approx(clf.score(X, y))


def test_early_stopping_with_callbacks(linear_data):
    callback = pytest.importorskip("sklearn.callback")
    X, y = linear_data
    yc = (y > 1).astype(int)
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = LinearClassifier(optimizer="sgd", max_iter=4, tol=None, early_stopping=True)
    clf.set_callbacks(monitor).fit(X, yc)
    assert len(monitor.get_logs().data_as_pandas) == 1 + 4
