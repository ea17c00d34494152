"""skopt_nn's GridSearchCV and RandomizedSearchCV equal scikit-learn's, their candidates
trained together."""

import numpy as np
import pytest
from sklearn import model_selection as sk
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor
from skopt_nn._population import _engine
from skopt_nn.model_selection import GridSearchCV, RandomizedSearchCV

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def populations(monkeypatch):
    """The sizes of the populations trained."""
    sizes = []
    init = _engine.Population.__init__

    def counting(self, members):
        sizes.append(len(members))
        init(self, members)

    monkeypatch.setattr(_engine.Population, "__init__", counting)
    return sizes


def assert_same_search(ours, theirs, X):
    """cv_results_ (but the times), the choice and the refitted model are the same."""
    a, b = ours.cv_results_, theirs.cv_results_
    assert set(a) == set(b)
    for key in a:
        if key.endswith("_time"):
            continue
        if key == "params":
            assert a[key] == b[key]
        elif np.asarray(a[key]).dtype.kind in "fiu":
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6, err_msg=key)
        else:
            assert list(a[key]) == list(b[key]), key
    for name in ("best_index_", "best_params_", "n_splits_", "multimetric_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if hasattr(theirs, "best_score_"):
        assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-6)
    if hasattr(theirs, "best_estimator_"):
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-9)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(100, 3, noise=5.0, random_state=0)
    return X, y / 50


@pytest.fixture(scope="module")
def classification():
    return make_classification(120, 5, n_informative=3, n_classes=3, random_state=0)


def test_mlp_regressor_grid_equals_scikit_learns(regression, populations):
    X, y = regression
    net = MLPRegressor(hidden_layer_sizes=(8, 6), optimizer="adam", batch_size=16,
                       max_iter=40, random_state=0)
    grid = {"learning_rate_init": [0.003, 0.01, 0.03], "alpha": [0.0, 1e-3]}
    ours = GridSearchCV(net, grid, cv=5, return_train_score=True).fit(X, y)
    assert populations == [30]  # 6 candidates x 5 folds, one computation
    assert_same_search(ours, sk.GridSearchCV(net, grid, cv=5, return_train_score=True)
                       .fit(X, y), X)


def test_folds_of_unequal_size_train_together(regression, populations):
    """103 rows in 5 folds: 82 or 83 training rows, 6 batches each, one computation."""
    X, y = make_regression(103, 3, noise=5.0, random_state=1)
    y = y / 50
    net = MLPRegressor(hidden_layer_sizes=(8, 6), optimizer="adam", batch_size=16,
                       max_iter=30, random_state=0)
    grid = {"learning_rate_init": [0.003, 0.03], "alpha": [0.0, 1e-2]}
    ours = GridSearchCV(net, grid, cv=5, return_train_score=True).fit(X, y)
    assert populations == [20]
    assert_same_search(ours, sk.GridSearchCV(net, grid, cv=5, return_train_score=True)
                       .fit(X, y), X)


def test_optimizers_differ_within_the_grid(classification, populations):
    """One group per optimizer class; tol and early stopping on."""
    X, y = classification
    net = MLPClassifier(hidden_layer_sizes=(7,), batch_size=20, max_iter=60, tol=1e-3,
                        n_iter_no_change=3, early_stopping=True, random_state=0)
    grid = {"optimizer": ["sgd", "momentum", "adam"], "learning_rate_init": [0.01, 0.1]}
    ours = GridSearchCV(net, grid, cv=3).fit(X, y)
    assert sorted(populations) == [6, 6, 6]
    assert_same_search(ours, sk.GridSearchCV(net, grid, cv=3).fit(X, y), X)


@pytest.mark.parametrize("Estimator", [LinearClassifier, LinearRegressor])
def test_linear_models_and_sample_weight(Estimator, classification, regression):
    X, y = classification if Estimator is LinearClassifier else regression
    sw = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    est = Estimator(optimizer="sgd", max_iter=15, random_state=0)
    grid = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.01, 0.05]}
    ours = GridSearchCV(est, grid, cv=4, return_train_score=True).fit(X, y, sample_weight=sw)
    theirs = sk.GridSearchCV(est, grid, cv=4, return_train_score=True).fit(X, y,
                                                                          sample_weight=sw)
    assert_same_search(ours, theirs, X)


def test_multimetric_scoring_and_refit_by_name(classification):
    X, y = classification
    est = LinearClassifier(optimizer="adam", max_iter=10, random_state=0)
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [0.01, 0.1]}
    kw = dict(scoring={"acc": "accuracy", "f1": "f1_macro"}, refit="f1", cv=3)
    assert_same_search(GridSearchCV(est, grid, **kw).fit(X, y),
                       sk.GridSearchCV(est, grid, **kw).fit(X, y), X)


def test_randomized_search_equals_scikit_learns(regression):
    X, y = regression
    net = MLPRegressor(hidden_layer_sizes=(5,), batch_size=20, max_iter=20, random_state=0)
    dist = {"learning_rate_init": [0.001, 0.003, 0.01, 0.03], "alpha": [0.0, 1e-4, 1e-2]}
    kw = dict(n_iter=5, cv=3, random_state=0)
    assert_same_search(RandomizedSearchCV(net, dist, **kw).fit(X, y),
                       sk.RandomizedSearchCV(net, dist, **kw).fit(X, y), X)


class CountingScaler(TransformerMixin, BaseEstimator):
    """StandardScaler that counts its fits (class-wide: clones share the count)."""

    fits = 0

    def __init__(self, with_mean=True):
        self.with_mean = with_mean

    def fit(self, X, y=None):
        type(self).fits += 1
        self.scaler_ = StandardScaler(with_mean=self.with_mean).fit(X)
        return self

    def transform(self, X):
        return self.scaler_.transform(X)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_pipeline_steps_fitted_once_per_split_and_setting(regression, n_jobs):
    X, y = regression
    pipe = Pipeline([("scale", CountingScaler()),
                     ("mlp", MLPRegressor(hidden_layer_sizes=(5,), batch_size=20,
                                          max_iter=15, random_state=0))])
    grid = {"scale__with_mean": [True, False], "mlp__alpha": [0.0, 1e-3, 1e-2]}
    CountingScaler.fits = 0
    ours = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(X, y)
    assert CountingScaler.fits == 2 * 3 + 1  # settings x splits, and the refit
    CountingScaler.fits = 0
    theirs = sk.GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert CountingScaler.fits == 6 * 3 + 1  # every candidate and split
    assert_same_search(ours, theirs, X)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_error_score_and_raise(regression):
    X, y = regression
    net = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    grid = {"learning_rate_init": [0.01, -1.0]}
    with pytest.warns(FitFailedWarning) as ours_warnings:
        ours = GridSearchCV(net, grid, cv=3).fit(X, y)
    with pytest.warns(FitFailedWarning):
        theirs = sk.GridSearchCV(net, grid, cv=3).fit(X, y)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    failed = [w for w in ours_warnings if w.category is FitFailedWarning]
    assert "learning_rate_init" in str(failed[0].message)
    assert_same_search(ours, theirs, X)
    with pytest.raises(ValueError, match="learning_rate_init"):
        GridSearchCV(net, grid, cv=3, error_score="raise").fit(X, y)


def test_other_estimators_and_step_replacements_take_scikit_learns_path(regression,
                                                                        populations):
    X, y = regression
    grid = {"alpha": [0.1, 1.0]}
    assert_same_search(GridSearchCV(Ridge(), grid, cv=3).fit(X, y),
                       sk.GridSearchCV(Ridge(), grid, cv=3).fit(X, y), X)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("model", MLPRegressor(hidden_layer_sizes=(4,), max_iter=5,
                                            random_state=0))])
    swap = {"model": [Ridge(), MLPRegressor(hidden_layer_sizes=(3,), max_iter=5,
                                            random_state=0)]}
    assert_same_search(GridSearchCV(pipe, swap, cv=3).fit(X, y),
                       sk.GridSearchCV(pipe, swap, cv=3).fit(X, y), X)
    assert populations == []


def test_dataframe_feature_names_and_verbose(regression, capsys):
    pd = pytest.importorskip("pandas")
    X, y = regression
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    net = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    search = GridSearchCV(net, {"alpha": [0.0, 1e-2]}, cv=3, verbose=1).fit(df, y)
    assert list(search.feature_names_in_) == ["a", "b", "c"]
    assert "Fitting 3 folds for each of 2 candidates, totalling 6 fits" in \
        capsys.readouterr().out


def test_n_jobs_trains_parts_of_the_models_in_threads(regression, populations):
    """A bare estimator's 30 fits, n_jobs=2: two parts of 15 in two threads, the
    results scikit-learn's."""
    X, y = regression
    net = MLPRegressor(hidden_layer_sizes=(8, 6), optimizer="adam", batch_size=16,
                       max_iter=20, random_state=0)
    grid = {"learning_rate_init": [0.003, 0.01, 0.03], "alpha": [0.0, 1e-3]}
    ours = GridSearchCV(net, grid, cv=5, n_jobs=2).fit(X, y)
    assert populations == [15, 15]
    assert_same_search(ours, sk.GridSearchCV(net, grid, cv=5).fit(X, y), X)


@pytest.mark.parametrize("scoring, train", [(None, False), (["r2", "neg_mean_squared_error"],
                                                             True)])
@pytest.mark.parametrize("verbose", [2, 3, 10])
def test_verbose_prints_scikit_learns_line_per_fit(regression, capsys, verbose, scoring,
                                                   train):
    """verbose > 1: scikit-learn's "[CV] END" line per fit, in its order, with the
    same parameters, split and scores (the times aside)."""
    import re

    X, y = regression
    net = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    grid = {"alpha": [0.0, 1e-2], "learning_rate_init": [1e-3, 1e-2]}
    kw = dict(cv=3, verbose=verbose, scoring=scoring, return_train_score=train,
              refit=scoring is None)

    def lines():
        out = capsys.readouterr().out.splitlines()
        return [re.sub(r"(?<=END )\.+", "", re.sub(r" total time=.*", "", line))
                for line in out if "] END " in line]

    GridSearchCV(net, grid, **kw).fit(X, y)
    ours = lines()
    sk.GridSearchCV(net, grid, **kw).fit(X, y)
    assert ours == lines()
    assert len(ours) == 12


def test_verbose_shows_a_bar_per_group_of_models(regression, monkeypatch):
    """verbose >= 1 gives fit_many's progress bar (one per group, over its epochs);
    without tqdm nothing, rather than fit_many's line per epoch."""
    import skopt_nn.model_selection as ms

    X, y = regression
    seen = []
    real = ms.fit_many

    def recording(*args, **kwargs):
        seen.append(kwargs["verbose"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ms, "fit_many", recording)
    net = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    for verbose in (0, 1, 3):
        GridSearchCV(net, {"alpha": [0.0, 1e-2]}, cv=3, verbose=verbose).fit(X, y)
    assert seen == [0, 1, 1]
    monkeypatch.setattr(ms, "find_spec", lambda name: None)
    GridSearchCV(net, {"alpha": [0.0, 1e-2]}, cv=3, verbose=1).fit(X, y)
    assert seen[-1] == 0
