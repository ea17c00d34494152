"""scikit-learn's own MLP tests, run on our MLPs through a ``solver=`` adapter.

The adapter maps scikit-learn's solver settings to optimizer objects exactly as
the README's "Differences" list says (``solver='sgd'`` is Momentum with
Nesterov's look-ahead, ``'adam'`` is Adam with ε inside the root squared,
``'lbfgs'`` is LBFGS with ``max_fun``) and keeps scikit-learn's default step of
1e-3 where scikit-learn has one.  The tests listed run unchanged; they check
public behaviour only (the ones that reach into private methods, such as
``_initialize`` or ``_backprop``, are not drop-in material).
"""

import itertools

import pytest

from skopt_nn import MLPClassifier, MLPRegressor
from skopt_nn.optim import LBFGS, Adam, Momentum

sk_tests = pytest.importorskip("sklearn.neural_network.tests.test_mlp")


def _translate(params: dict) -> dict:
    params = dict(params)
    solver = params.pop("solver", "adam")
    momentum = params.pop("momentum", 0.9)
    nesterov = params.pop("nesterovs_momentum", True)
    beta_1, beta_2 = params.pop("beta_1", 0.9), params.pop("beta_2", 0.999)
    epsilon = params.pop("epsilon", 1e-8)
    max_fun = params.pop("max_fun", 15000)
    if solver == "sgd":
        params["optimizer"] = Momentum(momentum=momentum, nesterov=nesterov)
    elif solver == "adam":
        params["optimizer"] = Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon**2)
    else:
        params["optimizer"] = LBFGS(max_fun=max_fun)
    if solver == "lbfgs":
        params.pop("learning_rate_init", None)  # scikit-learn's L-BFGS has no step
    else:
        params.setdefault("learning_rate_init", 1e-3)
    return params


def _adapter(cls, made):
    def make(*args, **params):
        made.append(cls)
        return cls(*args, **_translate(params))

    return make


SKLEARN_TESTS = [
    # same weights as scikit-learn from the same random_state (full-batch GD and
    # Nesterov momentum, 100 steps: partial_fit equals fit, and R² > 0.65)
    "test_partial_fit_regression",
    # float32 and float64 training agree to rtol 5e-4
    "test_mlp_regressor_dtypes_casting",
    "test_partial_fit_classification",
    "test_partial_fit_unseen_classes",
    "test_lbfgs_classification",
    "test_lbfgs_regression",
    "test_multilabel_classification",
    "test_predict_proba_binary",
    "test_predict_proba_multiclass",
    "test_sparse_matrices",
    "test_tolerance",
    "test_warm_start",
    "test_early_stopping",
    "test_mlp_param_dtypes",
]


@pytest.mark.parametrize("name", SKLEARN_TESTS)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_mlp_test_passes_through_the_adapter(name, monkeypatch):
    made = []  # our estimators the test built
    ours = {sk_tests.MLPRegressor: _adapter(MLPRegressor, made),
            sk_tests.MLPClassifier: _adapter(MLPClassifier, made)}
    monkeypatch.setattr(sk_tests, "MLPRegressor", ours[sk_tests.MLPRegressor])
    monkeypatch.setattr(sk_tests, "MLPClassifier", ours[sk_tests.MLPClassifier])
    test = getattr(sk_tests, name)
    marks = getattr(test, "pytestmark", [])
    params = [m for m in marks if m.name == "parametrize"]
    if not params:
        test()
        assert made
        return
    # every combination of the test's own parametrisation, with our classes in place
    # of scikit-learn's (bound when its module was imported)

    names, values = [], []
    for mark in params:
        argnames = mark.args[0]
        argnames = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) \
            else list(argnames)
        rows = [v if len(argnames) > 1 else (v,) for v in mark.args[1]]
        names.append(argnames)
        values.append(rows)
    for combo in itertools.product(*values):
        kwargs = {k: ours.get(v, v) if isinstance(v, type) else v
                  for argnames, row in zip(names, combo) for k, v in zip(argnames, row)}
        test(**kwargs)
    assert made
