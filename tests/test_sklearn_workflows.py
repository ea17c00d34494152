"""The workflows users bring from scikit-learn: searches, pipelines, DataFrames, persistence."""

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from _helpers import ALL_OPTIMIZERS, ESTIMATORS
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor
from skopt_nn.optim import Adam, Momentum

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def frame():
    """A DataFrame with numeric, nullable-integer, categorical and string columns."""
    X, y = make_classification(240, 4, n_informative=3, n_redundant=0, random_state=0)
    rng = np.random.RandomState(0)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["count"] = pd.array(rng.randint(0, 5, len(df)), dtype="Int64")
    df.loc[::17, "count"] = pd.NA
    df["colour"] = pd.Categorical(rng.choice(["red", "green", "blue"], len(df)))
    df["city"] = pd.array(rng.choice(["x", "y"], len(df)), dtype="string")
    labels = pd.Series(np.where(y == 1, "yes", "no"), name="target", dtype="category")
    return df, labels


def _preprocess():
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    return make_column_transformer(
        (numeric, make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    )


def test_pipeline_on_dataframe_with_categorical_and_nullable_columns(frame):
    df, y = frame
    model = make_pipeline(_preprocess(), MLPClassifier((16,), max_iter=100, random_state=0))
    model.fit(df, y)
    pred = model.predict(df)
    ref = make_pipeline(_preprocess(), LogisticRegression()).fit(df, y)
    assert set(pred) <= {"yes", "no"} and model.score(df, y) >= ref.score(df, y) - 0.02
    assert list(model[-1].classes_) == ["no", "yes"]
    # the network sees the transformed features, named by the ColumnTransformer
    assert model[-1].n_features_in_ == model[0].transform(df[:2]).shape[1]


def test_feature_names_and_column_order(frame):
    df, _ = frame
    X = df[["a", "b", "c", "d"]]
    y = (X["a"] > 0).astype(int)
    est = LinearClassifier(random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="[Ff]eature names"):
        est.predict(X[["b", "a", "c", "d"]])
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X.to_numpy())


def test_string_columns_give_clear_error(frame):
    df, y = frame
    with pytest.raises(ValueError, match="could not convert|string"):
        MLPClassifier(max_iter=5).fit(df[["a", "city"]], y)


def test_cross_val_score_with_series_target(frame):
    df, y = frame
    scores = cross_val_score(make_pipeline(_preprocess(), LinearClassifier(random_state=0)),
                             df, y, cv=3)
    ref = cross_val_score(make_pipeline(_preprocess(), LogisticRegression()), df, y, cv=3)
    assert scores.shape == (3,) and scores.mean() >= ref.mean() - 0.02
    yr = pd.Series(df["a"] * 2.0 - df["b"], name="t")
    r2 = cross_val_score(LinearRegressor(random_state=0), df[["a", "b"]], yr, cv=3)
    assert r2.min() > 0.99


def test_nullable_targets():
    X, y = make_classification(120, 3, n_informative=2, n_redundant=0, random_state=0)
    yb = pd.Series(y.astype(bool), dtype="boolean")
    clf = LinearClassifier(random_state=0).fit(X, yb)
    assert len(clf.classes_) == 2 and clf.score(X, yb) > 0.8
    yi = pd.Series(y, dtype="Int64")
    yi[0] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        LinearClassifier().fit(X, yi)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_optimizer_strings_and_objects(n_jobs):
    """Also: with n_jobs=2 each worker runs torch with at most cpu_count // 2 threads."""
    import torch

    def threads(est, X, y):
        return float(torch.get_num_threads())

    X, y = make_classification(200, 6, random_state=0)
    grid = GridSearchCV(
        MLPClassifier((8,), max_iter=60, random_state=0),
        [{"optimizer": ["adam", "sgd", "lbfgs"], "learning_rate_init": ["auto"]},
         {"optimizer": [Momentum(), Adam(beta_1=0.5)], "learning_rate_init": [0.01]}],
        scoring={"accuracy": "accuracy", "threads": threads}, refit="accuracy",
        cv=2, n_jobs=n_jobs).fit(X, y)
    assert len(grid.cv_results_["params"]) == 5
    assert grid.best_score_ > 0.8
    assert hasattr(grid.best_estimator_, "coefs_")
    if n_jobs > 1:
        limit = max(1, (os.cpu_count() or 1) // n_jobs)
        assert grid.cv_results_["mean_test_threads"].max() <= limit


def test_nested_optimizer_parameters_in_searches():
    X, y = make_regression(150, 5, noise=1.0, random_state=0)
    est = LinearRegressor(optimizer=Momentum(), learning_rate_init=0.05, max_iter=50,
                          random_state=0)
    grid = GridSearchCV(est, {"optimizer__momentum": [0.0, 0.5, 0.9],
                              "optimizer__nesterov": [False, True]}, cv=2).fit(X, y)
    seen = {(p["optimizer__momentum"], p["optimizer__nesterov"])
            for p in grid.cv_results_["params"]}
    assert len(seen) == 6
    # the search did not mutate the estimator it was given
    assert est.optimizer.momentum == 0.9 and est.optimizer.nesterov is False
    best = grid.best_estimator_.optimizer
    assert (best.momentum, best.nesterov) == (grid.best_params_["optimizer__momentum"],
                                              grid.best_params_["optimizer__nesterov"])
    rnd = RandomizedSearchCV(
        LinearRegressor(optimizer=Adam(), max_iter=50, random_state=0),
        {"optimizer__beta_1": [0.5, 0.8, 0.9], "learning_rate_init": [0.1, 1.0, 5.0]},
        n_iter=4, cv=2, random_state=0).fit(X, y)
    assert len(rnd.cv_results_["params"]) == 4 and rnd.best_score_ > 0.9


def test_clone_and_pickle_keep_params_and_predictions():
    X, y = make_classification(100, 4, random_state=0)
    est = MLPClassifier((6,), optimizer=Adam(beta_2=0.99), max_iter=30, random_state=0)
    twin = clone(est)
    assert twin.optimizer is not est.optimizer and twin.optimizer.beta_2 == 0.99
    est.fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_skops_persistence_trusts_only_our_types():
    sio = pytest.importorskip("skops.io")
    X, y = make_classification(100, 4, random_state=0)
    est = MLPClassifier((6,), optimizer="lbfgs", max_iter=30, random_state=0).fit(X, y)
    blob = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=blob)
    assert untrusted and all(t.startswith("skopt_nn.") for t in untrusted)
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(blob)
    loaded = sio.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.set_params(warm_start=True, max_iter=3).fit(X, y)  # training state came back
    assert loaded.n_iter_ == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_one_pass_of_partial_fit_over_blocks_learns_with_the_defaults(cls):
    """As dask-ml's Incremental trains: one partial_fit per block, one pass over 20k
    rows in 10 blocks, every optimizer at its defaults ('auto' step).  Each must get
    most of the way (over chance) to a full L-BFGS fit's test score: 90% for the
    convex linear models, half way for the networks (a full fit takes many passes;
    one pass of Adam at scikit-learn's 1e-3 is 100 steps)."""
    classifier = cls in (LinearClassifier, MLPClassifier)
    if classifier:
        X, y = make_classification(22000, 10, n_informative=5, random_state=0)
        chance, extra = 0.5, {"classes": [0, 1]}
    else:
        X, y = make_regression(22000, 10, n_informative=5, noise=10, bias=3, random_state=0)
        X = StandardScaler().fit_transform(X)
        y = y / y.std() if cls is MLPRegressor else y  # the linear model takes it as is
        chance, extra = 0.0, {}
    X_tr, y_tr, X_te, y_te = X[:20000], y[:20000], X[20000:], y[20000:]
    reference = cls(optimizer="lbfgs", random_state=0).fit(X_tr, y_tr).score(X_te, y_te)
    scores = {}
    for name in ALL_OPTIMIZERS:
        est = cls(optimizer=name, random_state=0)
        for X_block, y_block in zip(np.array_split(X_tr, 10), np.array_split(y_tr, 10)):
            est.partial_fit(X_block, y_block, **extra)
        scores[name] = est.score(X_te, y_te)
    fraction = 0.5 if cls in (MLPRegressor, MLPClassifier) else 0.9
    poor = {k: round(v, 3) for k, v in scores.items()
            if v - chance < fraction * (reference - chance)}
    assert not poor, f"reference {reference:.3f}"
