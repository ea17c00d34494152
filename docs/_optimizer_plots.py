"""Test problems for the convergence plots of the optimizer pages (docs/optimizers/).

Each page's ``.. plot::`` block imports what it needs from here, so that the code
shown on the page is only the part about the optimizer.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

#: the same switch as the gallery: a quick build in CI
FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
#: epochs for the runs on the lecture notebook's task
EPOCHS = 100 if FAST else 300

ROSENBROCK_START = [-1.2, 1.0]

# the runs on these pages are short by design; a max_iter warning says nothing new
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def quadratic(d=30, condition=100.0, seed=0):
    """f(x) = ½xᵀAx − bᵀx, A with eigenvalues from 1 to ``condition``.

    Returns ``(f, x0, f_star)``; L = ``condition`` and μ = 1.
    """
    rng = np.random.RandomState(seed)
    Q, _ = np.linalg.qr(rng.randn(d, d))
    A = torch.tensor(Q @ np.diag(np.logspace(0, np.log10(condition), d)) @ Q.T)
    b = torch.tensor(Q @ rng.randn(d))

    def f(x):
        return 0.5 * x @ A @ x - b @ x

    f_star = float(f(torch.linalg.solve(A, b)))
    return f, np.zeros(d), f_star


def scaled_quadratic():
    """f(x) = ½ Σ λⱼ xⱼ² with λ = 1 and 100 on alternate coordinates (badly scaled axes)."""
    scales = torch.tensor([1.0, 100.0] * 5, dtype=torch.float64)

    def f(x):
        return 0.5 * torch.sum(scales * x * x)

    return f, np.random.RandomState(0).randn(10), 0.0


def rosenbrock(x):
    """(1 − x₀)² + 100 (x₁ − x₀²)², minimum 0 at (1, 1)."""
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def lecture_data(seed=0):
    """The lecture notebook's training set: y = sin(x) + U(0, 0.8), x ~ U(0, 10)."""
    from skopt_nn.datasets import make_lecture_sine

    X, y, _, _ = make_lecture_sine(random_state=seed)
    return X, y


def lecture_net(optimizer, learning_rate_init):
    """The notebook's network: 1-10-20-10-1 ReLU, batches of 16, no penalty, EPOCHS epochs."""
    from skopt_nn import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(10, 20, 10), optimizer=optimizer,
                        learning_rate_init=learning_rate_init, batch_size=16,
                        max_iter=EPOCHS, alpha=0.0, tol=None, random_state=0)


def panels(n=2):
    """A row of ``n`` axes."""
    _, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.6))
    return axes


def plot_steps(results, ax, title="Step sizes taken"):
    """``history['step_size']`` of each minimize result, against the iteration."""
    for i, (label, res) in enumerate(results.items()):
        steps = res.history["step_size"].iloc[1:]
        ax.plot(steps.index, steps, ".", ms=3, color=f"C{i}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("η")
    ax.set_title(title)
    ax.legend(fontsize="small")
