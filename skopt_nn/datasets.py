"""The lecture notebook's data set."""

from __future__ import annotations

import numpy as np


def make_lecture_sine(n_samples: int = 100, noise: float = 0.8, random_state=0):
    """The notebook's regression task: x ~ U(0, 10), y = sin(x) + U(0, noise).

    Draws the training set, then a test set of the same size the same way (in
    the notebook's order: x_train, y_train, x_test, y_test).

    Parameters
    ----------
    n_samples : int, default=100
        Points in each of the two sets.
    noise : float, default=0.8
        Width of the uniform noise added to sin(x).
    random_state : int or RandomState, default=0

    Returns
    -------
    X_train : ndarray of shape (n_samples, 1)
    y_train : ndarray of shape (n_samples,)
    X_test : ndarray of shape (n_samples, 1)
    y_test : ndarray of shape (n_samples,)
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else \
        np.random.RandomState(random_state)
    x_tr = rng.rand(n_samples) * 10
    y_tr = np.sin(x_tr) + rng.rand(n_samples) * noise
    x_te = rng.rand(n_samples) * 10
    y_te = np.sin(x_te) + rng.rand(n_samples) * noise
    return x_tr[:, None], y_tr, x_te[:, None], y_te
