"""``python -m skopt_nn``: the lecture experiment, CSV mode and linear mode."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skopt_nn.__main__ import main


def test_lecture_experiment_table_and_figure(tmp_path, capsys):
    png = tmp_path / "cmp.png"
    assert main(["--quick", "--optimizers", "adam,lbfgs,line_search", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "final_loss" in line)
    assert header.split() == ["final_loss", "test_mse", "epochs", "seconds"]
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in {"adam", "lbfgs", "line_search"}}
    assert set(rows) == {"adam", "lbfgs", "line_search"}
    assert all(int(r[2]) == 50 for r in rows.values())  # --quick: 50 epochs each
    assert all(0 < float(r[1]) < 1.0 for r in rows.values())
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[1] > img.shape[0] > 300  # two panels side by side


def test_csv_mode_infers_the_task(tmp_path, capsys):
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"x1": rng.randn(120), "x2": rng.randn(120),
                       "kind": rng.choice(["a", "b"], 120)})
    df["label"] = np.where(df.x1 + (df.kind == "a") > 0.5, "pos", "neg")
    df["value"] = 2 * df.x1 - df.x2
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    assert main(["--csv", str(path), "--target", "label", "--quick", "--optimizers",
                 "adam,lbfgs", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "MLPClassifier" in out and "test_accuracy" in out
    assert main(["--csv", str(path), "--target", "value", "--quick", "--optimizers", "lbfgs",
                 "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "MLPRegressor" in out and "test_r2" in out
    assert main(["--csv", str(path), "--target", "nope", "--quick"]) == 2


def test_bad_arguments_exit_with_a_message():
    with pytest.raises(SystemExit):
        main(["--optimizers", "newton"])
    with pytest.raises(SystemExit):
        main(["--csv", "x.csv"])


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "skopt_nn", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--csv" in out and "--target" in out and "--linear" in out
