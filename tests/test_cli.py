"""``python -m skopt_nn``: the lecture experiment, CSV mode, linear mode and bad input."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import ALL_OPTIMIZERS
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import MLPRegressor
from skopt_nn.__main__ import main
from skopt_nn._cli.comparison import fit_status, fitted_network, network_prefix, run_comparison
from skopt_nn._cli.figures import PLOT_INSTALL


def table_rows(out, names):
    """``{optimizer: [column values]}`` for the table rows of ``names`` in ``out``."""
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in names}


def header(out):
    return next(line for line in out.splitlines() if "final_loss" in line).split()


@pytest.fixture
def write_csv(tmp_path):
    def write(frame, name="data.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return str(path)
    return write


@pytest.fixture
def numbers():
    """60 rows: two numeric features and a numeric target."""
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"x1": rng.randn(60), "x2": rng.randn(60)})
    df["y"] = 2 * df.x1 - df.x2
    return df


# -- the three modes ----------------------------------------------------------------------
def test_lecture_experiment_table_and_figure(tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert main(["--quick", "--optimizers", "adam,lbfgs,line_search", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert header(out) == ["final_loss", "test_mse", "epochs", "status", "seconds"]
    rows = table_rows(out, {"adam", "lbfgs", "line_search"})
    assert set(rows) == {"adam", "lbfgs", "line_search"}
    assert all(int(r[2]) == 50 for r in rows.values())  # --quick: 50 epochs each
    assert all(0 < float(r[1]) < 1.0 for r in rows.values())
    # no stopping rule in the lecture's runs: each ran its epochs, and the table says so
    assert all(r[3] == "max_iter" for r in rows.values())
    assert "no stopping rule" in out
    assert f"figure written to {png}" in out
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[1] > img.shape[0] > 300  # two panels side by side


def test_csv_mode_infers_the_task(write_csv, capsys):
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"x1": rng.randn(120), "x2": rng.randn(120),
                       "kind": rng.choice(["a", "b"], 120)})
    df["label"] = np.where(df.x1 + (df.kind == "a") > 0.5, "pos", "neg")
    df["value"] = 2 * df.x1 - df.x2
    path = write_csv(df)
    assert main(["--csv", path, "--target", "label", "--quick", "--optimizers",
                 "adam,lbfgs", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "MLPClassifier" in out and "test_accuracy" in header(out)
    assert main(["--csv", path, "--target", "value", "--quick", "--optimizers", "lbfgs",
                 "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "MLPRegressor" in out and "test_r2" in header(out)
    assert "standardised target" in out
    assert float(table_rows(out, {"lbfgs"})["lbfgs"][1]) > 0.9


def test_csv_integer_target_with_mostly_distinct_values_is_a_regression(write_csv, numbers,
                                                                       capsys):
    numbers["y"] = (100 * numbers.x1).round().astype(int)
    assert main(["--csv", write_csv(numbers), "--target", "y", "--quick", "--optimizers",
                 "lbfgs", "--plot", ""]) == 0
    assert "MLPRegressor" in capsys.readouterr().out


def test_csv_mode_on_diabetes_scales_the_target_and_reports_each_fit(write_csv, capsys):
    """The unscaled target (mean 152) made sgd diverge and adam, adagrad, lbfgs score R² < 0.

    Seed 1: with seed 0 the early-stopping split (scikit-learn's MLP split, 34 of the
    331 training rows) scores line search's second epoch best, and that model's test
    R² is 0.15; over seeds 1-7 every optimizer scores 0.32 or more."""
    path = write_csv(load_diabetes(as_frame=True).frame, "diabetes.csv")
    assert main(["--csv", path, "--target", "target", "--plot", "", "--random-state", "1"]) == 0
    out = capsys.readouterr().out
    assert "early stopping; standardised target" in out
    cols = header(out)
    rows = table_rows(out, set(ALL_OPTIMIZERS))
    assert len(rows) == 11
    for name, row in rows.items():
        r2, status = float(row[cols.index("test_r2")]), row[cols.index("status")]
        assert status in {"converged", "max_iter"}, name
        assert r2 > 0.3, (name, r2)
    assert "converged: a stopping rule ended the fit: the validation score stopped" in out


def test_linear_mode_writes_a_figure_with_a_panel_per_data_set(tmp_path, capsys):
    png = tmp_path / "linear.png"
    assert main(["--linear", "--quick", "--optimizers", "lbfgs,gd", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "LinearRegressor" in out and "LinearClassifier" in out
    assert "test_r2" in out and "test_accuracy" in out
    assert f"figure written to {png}" in out
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[1] > 2 * img.shape[0]  # two panels side by side


def test_linear_mode_runs_on_csv_data(write_csv, numbers, capsys):
    assert main(["--csv", write_csv(numbers), "--target", "y", "--linear", "--quick",
                 "--optimizers", "lbfgs", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "LinearRegressor on" in out
    assert float(table_rows(out, {"lbfgs"})["lbfgs"][1]) > 0.99


def test_nan_in_a_numeric_feature_is_imputed_and_said(write_csv, numbers, capsys):
    numbers.loc[::6, "x2"] = np.nan
    assert main(["--csv", write_csv(numbers), "--target", "y", "--quick", "--optimizers",
                 "lbfgs", "--plot", ""]) == 0
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if "imputed" in line]
    assert note == ["note: missing values in the numeric columns 'x2' (10) are imputed with "
                    "the column's median in the training data"]
    assert float(table_rows(out, {"lbfgs"})["lbfgs"][1]) > 0.5


# -- without matplotlib -------------------------------------------------------------------
def test_without_matplotlib_the_table_comes_with_a_hint(no_matplotlib, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--quick", "--optimizers", "adam"]) == 0
    out = capsys.readouterr().out
    assert "adam" in table_rows(out, {"adam"})
    hints = [line for line in out.splitlines() if PLOT_INSTALL in line]
    assert hints == [f"no figure: matplotlib is not installed ({PLOT_INSTALL} for the "
                     "cost-versus-iterations figure)"]
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_an_explicit_plot_is_refused_before_training(no_matplotlib,
                                                                        tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--plot", str(tmp_path / "fig.png")])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing trained
    assert PLOT_INSTALL in captured.err and len(captured.err.splitlines()) == 1


# -- bad arguments: one line on stderr, exit status 2 -------------------------------------
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("argv, message", [
    (["--max-iter", "0"], "argument --max-iter: must be at least 1, got 0"),
    (["--max-iter", "-5"], "argument --max-iter: must be at least 1, got -5"),
    (["--max-iter", "ten"], "argument --max-iter: 'ten' is not an integer"),
    (["--device", "cuda"], "--device: device='cuda' was requested but CUDA is not available"),
    (["--device", "warp9"], "--device: device='warp9' is not a valid torch device"),
    (["--target", "y"], "--target needs --csv FILE"),
    (["--csv", "data.csv"], "--csv needs --target COL"),
    (["--optimizers", "newton"], "unknown optimizers ['newton']"),
    (["--optimizers", ","], "--optimizers names no optimizer"),
    (["--plot", "fig.xyz"], "--plot fig.xyz: matplotlib cannot write '.xyz' files"),
    (["--plot", "missing-dir/fig.png"], "--plot missing-dir/fig.png: cannot write the figure "
                                        "there (No such file or directory)"),
    (["--plot", "."], "--plot .: is a directory"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    no_cuda(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--quick"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any training
    assert captured.err.startswith(f"python -m skopt_nn: error: {message}")
    assert captured.err.endswith(" (see --help)\n") and captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # the writability check leaves nothing behind


# -- bad --csv data: one line on stderr, main returns 2 -----------------------------------
def _frame(kind, numbers):
    if kind == "missing":
        return None
    if kind == "empty":
        return ""
    if kind == "header only":
        return "x1,x2,y\n"
    df = numbers.copy()
    if kind == "target all NaN":
        df["y"] = np.nan
    elif kind == "free text":
        df["y"] = [f"note number {i}" for i in range(len(df))]
    elif kind == "one class":
        df["y"] = "same"
    elif kind == "a class of one row":
        df["y"] = ["a", "b"] * 29 + ["a", "c"]
    elif kind == "too few rows":
        df = df.head(6)
    elif kind == "target only":
        df = df[["y"]]
    elif kind == "infinite feature":
        df.loc[3, "x1"] = np.inf
    elif kind == "no such column":
        df = df.rename(columns={"y": "z"})
    return df


@pytest.mark.parametrize("kind, message", [
    ("missing", "--csv {path}: no such file"),
    ("empty", "--csv {path}: the file is empty"),
    ("header only", "--csv {path}: the file has a header but no data rows"),
    ("target all NaN", "--target 'y': all 60 values are missing"),
    ("free text", "--target 'y' looks like free text (60 distinct values in 60 rows): a "
                  "classification target needs labels that repeat, and a regression target "
                  "needs numbers"),
    ("one class", "--target 'y' has a single value ('same'): nothing to learn"),
    ("a class of one row", "--target 'y': the class 'c' has one row; each class needs two or "
                           "more to be in both the training and the test data"),
    ("too few rows", "--target 'y': 6 rows have a target; at least 10 are needed"),
    ("target only", "--csv {path}: no feature columns besides the target 'y'"),
    ("infinite feature", "--csv {path}: the columns ['x1'] contain infinite values"),
    ("no such column", "--target 'y' is not a column of {path} (columns: ['x1', 'x2', 'z'])"),
])
def test_bad_csv_data_returns_2_with_one_line(kind, message, tmp_path, numbers, capsys):
    path = tmp_path / "data.csv"
    content = _frame(kind, numbers)
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        content.to_csv(path, index=False)
    assert main(["--csv", str(path), "--target", "y", "--quick", "--plot", ""]) == 2
    captured = capsys.readouterr()
    assert "final_loss" not in captured.out  # nothing trained
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("python -m skopt_nn: error: ")
    assert message.format(path=path) in err[0]


def test_command_line_errors_have_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "skopt_nn", "--csv",
                           str(tmp_path / "nope.csv"), "--target", "y"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"python -m skopt_nn: error: --csv {tmp_path / 'nope.csv'}: " \
                          "no such file\n"


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "skopt_nn", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--csv" in out and "--target" in out and "--linear" in out


# -- the pieces ---------------------------------------------------------------------------
def test_fit_status_reads_the_convergence_warnings():
    net = MLPRegressor(max_iter=5)
    net.n_iter_ = 5
    assert fit_status(["Training diverged at epoch 3 (loss 1e9 ...)"], net) == "diverged"
    assert fit_status(["Maximum iterations (5) reached and the optimization hasn't "
                       "converged yet."], net) == "max_iter"
    assert fit_status(["LBFGS stopped after 99 function evaluations (max_fun=99) "
                       "without converging."], net) == "max_fun"
    assert fit_status(["LBFGS: the line search found no step ..."], net) == "stalled"
    assert fit_status([], net) == "converged"
    free = MLPRegressor(max_iter=5, tol=None)
    free.n_iter_ = 5
    assert fit_status([], free) == "max_iter"  # no stopping rule: it ran every epoch


def test_run_comparison_reports_a_divergence(lecture_sine):
    X_tr, y_tr, X_te, y_te = lecture_sine
    net = MLPRegressor(hidden_layer_sizes=(10,), max_iter=20, random_state=0)
    table, fitted, messages = run_comparison(net, X_tr, y_tr, X_te, y_te, ["sgd", "lbfgs"],
                                             steps={"sgd": 50.0}, metric="test_mse")
    assert table.loc["sgd", "status"] == "diverged"
    assert "diverged" in messages["sgd"][0]
    assert table.loc["sgd", "epochs"] < 20
    assert table.loc["lbfgs", "status"] in {"converged", "max_iter"}
    assert np.isfinite(table["test_mse"]).all()


def test_run_comparison_reaches_the_network_inside_a_target_transformer(lecture_sine):
    X_tr, y_tr, X_te, y_te = lecture_sine
    model = make_pipeline(StandardScaler(), TransformedTargetRegressor(
        regressor=MLPRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0),
        transformer=StandardScaler()))
    assert network_prefix(model) == "transformedtargetregressor__regressor__"
    table, fitted, _ = run_comparison(model, X_tr, 100 + 50 * y_tr, X_te, 100 + 50 * y_te,
                                      ["adam", "lbfgs"], steps={"adam": 0.01})
    for name in ["adam", "lbfgs"]:
        assert isinstance(fitted[name], MLPRegressor)
        assert fitted[name].get_params()["optimizer"] == name
        assert table.loc[name, "epochs"] == fitted[name].n_iter_
        assert table.loc[name, "final_loss"] == fitted[name].loss_
    assert fitted["adam"].learning_rate_init == 0.01
    assert table.loc["lbfgs", "test_score"] > 0.3  # R² on the original scale
    assert fitted_network(fitted["adam"]) is fitted["adam"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_figure_names_its_axis_and_marks_coinciding_curves(lecture_sine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skopt_nn._cli.figures import draw_comparison, loss_label

    X, y, _, _ = lecture_sine
    net = MLPRegressor(hidden_layer_sizes=(10, 20, 10), alpha=0.0, tol=None, max_iter=15,
                       random_state=0)
    fitted = {opt: MLPRegressor(**{**net.get_params(), "optimizer": opt}).fit(X, y)
              for opt in ["line_search", "armijo", "adam"]}
    fig, ax = plt.subplots()
    disp = draw_comparison(ax, fitted, "lecture", loss_label(net))
    assert ax.get_ylabel() == "training loss:\n½ · mean squared error"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["line_search", "armijo (same steps as line_search)", "adam"]
    assert disp.lines_["armijo (same steps as line_search)"].get_linestyle() != "-"
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1  # the legend is beside the curves, not on them
    plt.close(fig)
