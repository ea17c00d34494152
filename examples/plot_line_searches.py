"""
Fixed step, line searches and steepest descent
==============================================

Gradient descent needs a step size η.  The lecture offers several ways to pick
it, all available in :func:`skopt_nn.optim.minimize`:

* ``'gd'``: a fixed step η = 1/L (Eq. 3-4), with the gradient's Lipschitz
  constant L estimated at the starting point;
* ``'line_search'``: start from η = 1 and halve η until f decreases (Eq. 5-7);
* ``'armijo'``: backtrack until f decreases *enough*, by at least
  c₁·η·‖∇f‖² (Armijo's condition);
* ``'wolfe'``: a step that also satisfies the strong Wolfe curvature condition;
* ``'steepest_descent'``: the exact minimiser along −∇f (Eq. 9).

We run them on an ill-conditioned quadratic and on the Rosenbrock function and
compare the cost against the iterations (the lecture's "cost versus iterations"
figure) and the step sizes each method actually took, which every result
records in ``history['step_size']``.
"""

# %%
# Two test problems
# -----------------
# A 30-dimensional convex quadratic f(x) = ½xᵀAx − bᵀx whose Hessian A has
# eigenvalues from 1 to 100 (condition number 100), so L = 100 and f* is known
# in closed form; and Rosenbrock's banana-shaped valley
# f(x, y) = (1 − x)² + 100(y − x²)², minimum 0 at (1, 1), from the classic start
# (−1.2, 1).  ``minimize`` takes any function of a torch tensor and
# differentiates it with autograd.

# sphinx_gallery_thumbnail_number = 2
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from skopt_nn.optim import ArmijoLineSearch, minimize
from skopt_nn.plotting import OptimizerComparisonDisplay

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
ITER_QUADRATIC = 60 if FAST else 300
ITER_ROSENBROCK = 60 if FAST else 500

rng = np.random.RandomState(0)
d = 30
Q, _ = np.linalg.qr(rng.randn(d, d))
A = torch.tensor(Q @ np.diag(np.logspace(0, 2, d)) @ Q.T)
b = torch.tensor(Q @ rng.randn(d))


def quadratic(x):
    return 0.5 * x @ A @ x - b @ x


x_star = torch.linalg.solve(A, b)
f_star_quadratic = float(quadratic(x_star))


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


METHODS = {
    "gd (η = 1/L)": "gd",
    "line_search (halving)": "line_search",
    "armijo (c₁ = 1e-4)": "armijo",
    "armijo (c₁ = 0.5)": ArmijoLineSearch(c1=0.5),
    "wolfe": "wolfe",
    "steepest_descent": "steepest_descent",
}


def run_all(fun, x0, max_iter):
    results, paths = {}, {}
    for label, optimizer in METHODS.items():
        path = [np.asarray(x0, dtype=float)]

        def callback(k, x, f, path=path):  # called after every iteration
            path.append(x.detach().numpy().copy())

        results[label] = minimize(fun, x0, optimizer=optimizer, max_iter=max_iter, tol=1e-10,
                                  callback=callback)
        paths[label] = np.array(path)
    return results, paths


def summary(results, f_star):
    return pd.DataFrame({
        "iterations": {k: r.nit for k, r in results.items()},
        "evaluations of f": {k: r.nfev for k, r in results.items()},
        "f − f*": {k: r.fun - f_star for k, r in results.items()},
    })


def plot_steps(results, ax):
    for i, (label, result) in enumerate(results.items()):
        steps = result.history["step_size"].iloc[1:]  # row 0 is the starting point
        ax.plot(steps.index, steps, ".", ms=3, color=f"C{i}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("step size η taken")
    ax.set_title("Step sizes")


# %%
# The quadratic
# -------------
# The fixed step 1/L = 0.01 is safe but made for the stiffest direction; along
# the flattest one it gains only 1% per iteration.  The line searches try η = 1
# first and settle on 1/16 to 1/64, larger than 1/L, and the cost falls faster
# per iteration, at the price of several evaluations of f per iteration (the
# table).  With the default c₁ = 10⁻⁴, Armijo's condition accepts exactly the
# step that the halving search accepts, so the two curves coincide; c₁ = 0.5
# demands more decrease and takes other steps.  Steepest descent takes the
# exact step along −∇f, which on a badly conditioned quadratic is known to
# zigzag, so it is not the fastest here.

results_q, _ = run_all(quadratic, np.zeros(d), ITER_QUADRATIC)
fig_q, (ax_cost, ax_step) = plt.subplots(1, 2, figsize=(12, 4.5))
OptimizerComparisonDisplay.from_estimators(results_q, optimum=f_star_quadratic, ax=ax_cost)
ax_cost.set_title("Quadratic, κ = 100: cost − f* versus iterations")
plot_steps(results_q, ax_step)
ax_step.axhline(0.01, color="k", lw=0.8, ls="--")
ax_step.annotate("1/L", (0, 0.01), xytext=(2, 4), textcoords="offset points")
fig_q.tight_layout()
summary(results_q, f_star_quadratic)

# %%
# Rosenbrock
# ----------
# Here the curvature changes along the valley.  The fixed step estimated at the
# start (where the curvature is largest) crawls.  The searches adapt η at every
# iteration; the Wolfe search can take steps of 1 and more.  Steepest descent
# zigzags across the narrow valley with short exact steps.  The left panel shows
# the paths on the level sets of f.

results_r, paths_r = run_all(rosenbrock, [-1.2, 1.0], ITER_ROSENBROCK)
fig_r, (ax_path, ax_cost, ax_step) = plt.subplots(1, 3, figsize=(16, 4.5))
xx, yy = np.meshgrid(np.linspace(-1.6, 1.4, 300), np.linspace(-0.6, 1.8, 300))
zz = (1 - xx) ** 2 + 100 * (yy - xx**2) ** 2
ax_path.contour(xx, yy, zz, levels=np.logspace(-1, 3, 12), colors="0.7", linewidths=0.7)
for i, (label, path) in enumerate(paths_r.items()):
    ax_path.plot(path[:, 0], path[:, 1], "-", lw=1, color=f"C{i}", label=label)
ax_path.plot([1], [1], "k*", ms=12)
ax_path.set_title("Paths from (−1.2, 1)")
ax_path.set_xlabel("x")
ax_path.set_ylabel("y")
OptimizerComparisonDisplay.from_estimators(results_r, optimum=0.0, ax=ax_cost)
ax_cost.set_title("Rosenbrock: cost − f* versus iterations")
plot_steps(results_r, ax_step)
fig_r.tight_layout()
summary(results_r, 0.0)

# %%
# Iterations are not the whole cost: a line search evaluates f several times
# per iteration.  Drawn against the number of evaluations of f
# (``history['n_evals']``, cumulative), the halving search and Armijo lose part
# of their lead over the fixed step on the quadratic.

fig_e, ax = plt.subplots(figsize=(6.5, 4.5))
for i, (label, result) in enumerate(results_q.items()):
    h = result.history
    ax.plot(h["n_evals"], h["loss"] - f_star_quadratic, color=f"C{i}", label=label)
ax.set_yscale("log")
ax.set_xlabel("evaluations of f")
ax.set_ylabel("cost − f*")
ax.set_title("Quadratic: cost − f* versus work")
ax.legend(fontsize="small")

plt.show()
