"""Constants and plain functions shared by the test files (fixtures are in conftest.py).

The optimizer lists are derived from the registry ``skopt_nn.optim.OPTIMIZERS``
(in its order), so that a new optimizer is tested wherever its kind is.
"""

import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from skopt_nn import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor
from skopt_nn.optim import OPTIMIZERS, SearchMethod

#: the repository's root (README.md, docs/, examples/)
ROOT = Path(__file__).resolve().parents[1]

#: every optimizer name
ALL_OPTIMIZERS = list(OPTIMIZERS)
#: the methods that take one step per epoch on the whole data set
FULL_BATCH_OPTIMIZERS = [name for name, cls in OPTIMIZERS.items() if cls.full_batch]
#: the methods that take a step per mini-batch
MINIBATCH_OPTIMIZERS = [name for name, cls in OPTIMIZERS.items() if not cls.full_batch]
#: the full-batch methods that search for their step along a direction
SEARCH_METHODS = [name for name, cls in OPTIMIZERS.items() if issubclass(cls, SearchMethod)]

#: every estimator of skopt_nn
ESTIMATORS = [LinearRegressor, LinearClassifier, MLPRegressor, MLPClassifier]


def quiet_fit(est, X, y):
    """``est.fit(X, y)`` with its ConvergenceWarnings ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


class EpochInterrupt:
    """A scikit-learn callback that raises Ctrl-C at the start or end of an epoch."""

    def __init__(self, when, epoch):
        self.when, self.epoch, self.seen = when, epoch, 0

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        if context.task_name == "epoch" and self.when == "begin":
            self.seen += 1
            if self.seen == self.epoch:
                raise KeyboardInterrupt

    def on_fit_task_end(self, estimator, context):
        if context.task_name == "epoch" and self.when == "end":
            self.seen += 1
            if self.seen == self.epoch:
                raise KeyboardInterrupt
        return False


def spy_compiled_mlp_epoch(monkeypatch) -> list:
    """Record, for every epoch from now on, whether the compiled MLP epoch ran (True)
    or gave way to the torch path (False)."""
    from skopt_nn import _compiled_mlp

    runs = []
    original = _compiled_mlp.compiled_mlp_epoch

    def spy(*args):
        result = original(*args)
        runs.append(result is not None)
        return result

    monkeypatch.setattr("skopt_nn._epochs.compiled_mlp_epoch", spy)
    return runs
