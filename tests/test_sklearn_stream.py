"""The shuffler draws scikit-learn's MLP batch orders.

``sklearn.utils.shuffle`` composed epoch by epoch, as scikit-learn's MLP
``_fit_stochastic`` shuffles its sample indices, from the same ``RandomState``.
"""

import numpy as np
import torch
from sklearn.utils import shuffle

from skopt_nn._shuffle import Shuffler


# --------------------------------------------------------------------------- the stream
def test_permutation_draws_what_sklearn_shuffle_draws():
    """``sklearn.utils.shuffle`` (``resample(replace=False)``: arange, then
    ``rs.shuffle``) and ``rs.permutation(n)`` take the same numbers: the composed
    orders are equal epoch by epoch and the streams end in the same state."""
    rs, order = np.random.RandomState(3), np.arange(37)
    shuffler = Shuffler(3)
    for _ in range(5):
        order = shuffle(order, random_state=rs)
        np.testing.assert_array_equal(shuffler.permutation(37).numpy(), order)
    assert shuffler.random_state.randint(10**9) == rs.randint(10**9)


def test_shuffler_state_key_copy_and_bootstrap_rows():
    a, b = Shuffler(0), Shuffler(np.random.RandomState(0))
    assert a.key() == b.key()
    copy = a.copy()
    perm = a.permutation(10)
    assert perm.dtype == torch.int64 and perm.device.type == "cpu"
    assert a.key() != b.key() and copy.key() == b.key()  # the copy did not move
    np.testing.assert_array_equal(copy.permutation(10).numpy(), perm.numpy())
    assert a.key() == copy.key()
    # the same stream state but another order: other next draws, another key
    b.random_state.set_state(a.random_state.get_state())
    assert a.key() != b.key()
    state = a.get_state()
    first = a.permutation(10)
    a.set_state(state)
    np.testing.assert_array_equal(a.permutation(10).numpy(), first.numpy())
    rows = Shuffler(5).randint(7, 4)
    np.testing.assert_array_equal(rows.numpy(), np.random.RandomState(5).randint(7, size=4))
    # without composing, each epoch's order is the stream's permutation itself
    plain, rs = Shuffler(1, compose=False), np.random.RandomState(1)
    for _ in range(3):
        np.testing.assert_array_equal(plain.permutation(9).numpy(), rs.permutation(9))
