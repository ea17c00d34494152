"""
Convergence rates against the lecture's bounds
==============================================

The lecture states how fast the gap f(x⁽ᵗ⁾) − f* shrinks:

* gradient descent on a convex, L-smooth f: at most 2L‖x⁽⁰⁾ − x*‖²/(t + 1),
  i.e. O(1/t) (Eq. 18);
* on a μ-strongly convex f the gap shrinks geometrically, like (1 − μ/L)ᵗ;
  with a constant step, SGD follows this rate only down to a floor of order η
  (Eq. 23; Eq. 29 for mini-batches);
* SGD with the schedules of Eq. 17: O(1/log t) for η⁽ᵗ⁾ = 1/t (Eq. 19),
  O(log t/√t) for 1/√t (Eq. 20), O(1/t + η) for a constant η (Eq. 21), and
  O(1/t) for η⁽ᵗ⁾ = 1/(μt) on a strongly convex f (Eq. 22).

This example measures the gaps and draws them on log scales next to these
bounds.  The bounds are upper bounds: a curve below its bound, and falling at
least as steeply, agrees with the theory.
"""

# %%
# Gradient descent on a convex problem: O(1/t)
# --------------------------------------------
# Take f(x) = ½ Σⱼ λⱼ xⱼ² with 300 curvatures λⱼ spread evenly on a log scale
# from 10⁻⁶ to 1, started from x⁽⁰⁾ = (1, …, 1).  Then L = 1, x* = 0, f* = 0.
# The problem is strongly convex only with μ = 10⁻⁶, far too weak to matter
# within a thousand iterations: every decade of curvatures is fully solved at
# its own time scale 1/λ, and together they give exactly the sublinear decay
# that Eq. 18 allows.  We run ``minimize`` with ``'gd'`` and the step 1/L
# (Eq. 3), with ``criterion='max_iter'`` so that it runs all iterations.  On a
# log-log plot an O(1/t) curve is a straight line of slope −1.

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from skopt_nn import LinearRegressor
from skopt_nn.optim import SGD, minimize
from skopt_nn.plotting import OptimizerComparisonDisplay

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
GD_ITERATIONS = 200 if FAST else 1000

curvatures = torch.tensor(np.logspace(-6, 0, 300))


def convex_quadratic(x):
    return 0.5 * torch.sum(curvatures * x * x)


x0 = np.ones(300)
L, R2 = 1.0, float(np.sum(x0**2))  # L and ‖x⁽⁰⁾ − x*‖²
result = minimize(convex_quadratic, x0, optimizer="gd", learning_rate_init=1 / L,
                  max_iter=GD_ITERATIONS, criterion="max_iter")
gap = result.history["loss"].to_numpy()  # f* = 0
t = np.arange(1, len(gap))

fig_gd, (ax, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
ax.loglog(t, gap[1:], label="gradient descent, η = 1/L")
ax.loglog(t, 2 * L * R2 / t, "k--", label="Eq. 18: 2L‖x⁽⁰⁾ − x*‖²/t")
ax.set_xlabel("iteration t")
ax.set_ylabel("f(x⁽ᵗ⁾) − f*")
ax.set_title("Convex: gradient descent and the O(1/t) bound")
ax.legend()
ax_t.semilogx(t, t * gap[1:], label="t · (f − f*)")
ax_t.axhline(2 * L * R2, color="k", ls="--", label="2L‖x⁽⁰⁾ − x*‖²")
ax_t.set_yscale("log")
ax_t.set_xlabel("iteration t")
ax_t.set_title("Scaled by t: bounded, as Eq. 18 says")
ax_t.legend()
fig_gd.tight_layout()
slope = np.polyfit(np.log(t[t >= 10]), np.log(gap[1:][t >= 10]), 1)[0]
print(f"fitted log-log slope of the gap: {slope:.2f} (O(1/t) means -1)")

# %%
# Strong convexity: a linear rate, and SGD's floor
# ------------------------------------------------
# A ridge regression with standardised features is μ-strongly convex; L and μ
# are the largest and smallest eigenvalues of its Hessian, and f* comes from the
# normal equations.  :class:`skopt_nn.LinearRegressor` with ``optimizer='gd'``
# takes η = 1/L by default (Eq. 3) and one full-gradient step per epoch, so
# ``partial_fit`` (one epoch) is one iteration, after which we evaluate the
# cost of the fitted coefficients.  Gradient descent follows the straight
# line (1 − μ/L)ᵗ on a semi-log plot.  Mini-batch SGD with a constant step
# starts along the same line, per step, but levels off at a floor: the "+ η"
# (or + ‖eₜ‖²) term of Eq. 23 and 29.  A ten times smaller step lowers the
# floor, and reaches it more slowly (the SGD runs take three times as many
# steps as gradient descent).

rng = np.random.RandomState(0)
n, d, alpha = 400, 8, 0.05
X = rng.randn(n, d)
X = (X - X.mean(0)) / X.std(0) * np.linspace(0.3, 1.5, d)  # centred, unequal scales
y = X @ rng.randn(d) + 2.0 + rng.randn(n)

# objective ½ mean(residual²) + (α/2)‖w‖² with an unpenalised intercept;
# X is centred, so the intercept decouples: b* = mean(y), Hessian blocks H and 1
H = X.T @ X / n + alpha * np.eye(d)
w_star = np.linalg.solve(H, X.T @ (y - y.mean()) / n)
hessian_eigenvalues = np.r_[np.linalg.eigvalsh(H), 1.0]
L_r, mu_r = hessian_eigenvalues.max(), hessian_eigenvalues.min()


def ridge_cost(coef, intercept):
    return 0.5 * np.mean((X @ coef + intercept - y) ** 2) + 0.5 * alpha * coef @ coef


f_star = ridge_cost(w_star, y.mean())
n_steps = 60 if FAST else 200
gd = LinearRegressor(optimizer="gd", alpha=alpha)
gd_gap = [ridge_cost(np.zeros(d), 0.0) - f_star]  # the models start from zero
for _ in range(n_steps):
    gd.partial_fit(X, y)
    gd_gap.append(ridge_cost(gd.coef_, gd.intercept_[0]) - f_star)
gd_gap = np.array(gd_gap)

batch = 40
sgd_runs = {}
for fraction in (1.0, 0.1):
    sgd = LinearRegressor(optimizer="sgd", alpha=alpha, batch_size=batch,
                          learning_rate_init=fraction / L_r, random_state=0)
    sgd_gap, sgd_steps = [ridge_cost(np.zeros(d), 0.0) - f_star], [0]
    for _ in range(3 * n_steps * batch // n):  # three times as many steps as GD
        sgd.partial_fit(X, y)  # one epoch: n / batch steps
        sgd_gap.append(ridge_cost(sgd.coef_, sgd.intercept_[0]) - f_star)
        sgd_steps.append(sgd_steps[-1] + n // batch)
    sgd_runs[fraction] = (np.array(sgd_steps), np.array(sgd_gap))

fig_sc, ax = plt.subplots(figsize=(6.5, 4.5))
ax.semilogy(gd_gap, label="gradient descent, η = 1/L")
for fraction, (sgd_steps, sgd_gap) in sgd_runs.items():
    eta = "1/L" if fraction == 1.0 else f"{fraction:g}/L"
    ax.semilogy(sgd_steps, sgd_gap, "o-", ms=3, label=f"mini-batch SGD, b = {batch}, η = {eta}")
steps = np.arange(3 * n_steps + 1)
ax.semilogy(steps, (1 - mu_r / L_r) ** steps * gd_gap[0], "k--",
            label=f"(1 − μ/L)ᵗ (f⁽⁰⁾ − f*),  μ/L = {mu_r / L_r:.3f}")
ax.set_xlabel("step t")
ax.set_ylabel("f(x⁽ᵗ⁾) − f*")
ax.set_title("Strongly convex: linear rate (Eq. 23, 29)")
ax.legend(fontsize="small")
print(f"L = {L_r:.3f}, μ = {mu_r:.3f}")

# %%
# SGD step schedules: Eq. 19-22
# -----------------------------
# One-sample SGD (b = 1) on a least-squares problem, with the samples drawn
# with replacement, as the theory assumes (``SGD(sampling='with_replacement')``;
# shuffled epochs converge faster than these bounds).  The schedules are
# η⁽ᵗ⁾ = η₀/t and η₀/√t (``learning_rate='invscaling'`` with ``power_t`` 1 and
# 0.5), two constant steps, and Eq. 22's η⁽ᵗ⁾ = 1/(μt), i.e. η₀ = 1/μ.
#
# The O(·) bounds hide their constants, so each dashed reference curve is the
# bound's shape scaled by the smallest factor that puts it above the whole
# measured curve.  Where the measured gap falls away below its reference, the
# method is faster than the bound guarantees; the bound is never violated by
# construction, so the slopes are what to compare.  With a constant step the
# gap stops decreasing at a level that shrinks with η (the "+ η" of Eq. 21):
# the dotted lines mark the mean of the last half of each constant-step run.

n_sgd = 100 if FAST else 200
n_epochs = 10 if FAST else 50
Xs = rng.randn(n_sgd, 5) * np.sqrt(np.linspace(0.5, 2.0, 5))
Xs -= Xs.mean(0)
ys = Xs @ rng.randn(5) + 1.0 + 0.5 * rng.randn(n_sgd)
Xs1 = np.c_[Xs, np.ones(n_sgd)]
ws = np.linalg.lstsq(Xs1, ys, rcond=None)[0]


def ls_cost(coef, intercept):
    return 0.5 * np.mean((Xs @ coef + intercept - ys) ** 2)


fs_star = ls_cost(ws[:-1], ws[-1])
mu_s = np.linalg.eigvalsh(Xs1.T @ Xs1 / n_sgd).min()

runs = {
    "η = 0.2/t (Eq. 19)": (dict(learning_rate="invscaling", power_t=1.0, learning_rate_init=0.2),
                           lambda t: 1 / np.log(t + 1)),
    "η = 0.2/√t (Eq. 20)": (dict(learning_rate="invscaling", power_t=0.5,
                                 learning_rate_init=0.2),
                            lambda t: np.log(t + 1) / np.sqrt(t)),
    "η = 1/(μt) (Eq. 22)": (dict(learning_rate="invscaling", power_t=1.0,
                                 learning_rate_init=1 / mu_s), lambda t: 1 / t),
    "η = 0.02 (Eq. 21)": (dict(learning_rate="constant", learning_rate_init=0.02), None),
    "η = 0.005 (Eq. 21)": (dict(learning_rate="constant", learning_rate_init=0.005), None),
}
sgd_results = {}
for label, (params, _) in runs.items():
    model = LinearRegressor(optimizer=SGD(sampling="with_replacement"), batch_size=1,
                            alpha=0.0, random_state=0, **params)
    gaps = []
    for _ in range(n_epochs):
        model.partial_fit(Xs, ys)
        gaps.append(ls_cost(model.coef_, model.intercept_[0]) - fs_star)
    sgd_results[label] = np.array(gaps)
iterations = n_sgd * np.arange(1, n_epochs + 1)  # one step per sample

fig_sgd, ax = plt.subplots(figsize=(8, 5))
for i, (label, (_, shape)) in enumerate(runs.items()):
    gaps = sgd_results[label]
    ax.loglog(iterations, gaps, "-", color=f"C{i}", label=label)
    if shape is not None:
        scale = np.max(gaps / shape(iterations))
        ax.loglog(iterations, scale * shape(iterations), "--", color=f"C{i}", lw=1)
    else:
        ax.axhline(np.mean(gaps[n_epochs // 2:]), color=f"C{i}", ls=":", lw=1)
ax.set_xlabel("SGD iteration t (samples drawn)")
ax.set_ylabel("f(x⁽ᵗ⁾) − f*")
ax.set_title("SGD schedules (b = 1, with replacement); dashed: scaled bounds")
ax.legend(fontsize="small")
for label, gaps in sgd_results.items():
    print(f"{label:22s} final gap {gaps[-1]:.2e}")

# %%
# The same comparison in the library's own display
# ------------------------------------------------
# :class:`~skopt_nn.plotting.OptimizerComparisonDisplay` draws f − f* against
# iterations for ``minimize`` results (or fitted estimators).  Here it compares
# gradient descent with 1/L, the Wolfe line search and L-BFGS on the convex
# quadratic of the first section: the line search gains a constant factor,
# while L-BFGS's curvature model changes the picture altogether.

comparison = {
    "gd, η = 1/L": result,
    "wolfe": minimize(convex_quadratic, x0, optimizer="wolfe", max_iter=GD_ITERATIONS // 4,
                      criterion="max_iter"),
    "lbfgs": minimize(convex_quadratic, x0, optimizer="lbfgs", max_iter=GD_ITERATIONS // 4,
                      tol=1e-12),
}
display = OptimizerComparisonDisplay.from_estimators(comparison, optimum=0.0)
display.ax_.set_xscale("symlog", linthresh=1)
display.ax_.set_xlim(left=0)
display.ax_.set_title("Convex quadratic: cost − f* versus iterations")

plt.show()
