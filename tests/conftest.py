import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
# the timed layout choices go to a store of the test session's own, not the user's
_CACHE = tempfile.mkdtemp(prefix="skopt_nn-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["SKOPT_NN_CACHE_DIR"] = _CACHE

import builtins  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# On 2 cores, torch's default thread pool with two pytest workers ran 5x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def linear_data():
    """1000 rows of 3 features and the noise-free target X @ [1, 2, 3] + 1."""
    rng = np.random.RandomState(0)
    X = rng.randn(1000, 3)
    return X, X @ [1.0, 2.0, 3.0] + 1.0


@pytest.fixture
def lecture_sine():
    """The lecture's sine task at seed 0: X_train, y_train, X_test, y_test."""
    from skopt_nn.datasets import make_lecture_sine

    return make_lecture_sine(random_state=0)


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Imports of matplotlib fail, as in an install without the ``plot`` extra."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
