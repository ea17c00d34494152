"""
SGD: step schedules, batch sizes and sampling
=============================================

Stochastic gradient descent replaces the full gradient by the gradient of one
sample (Eq. 16) or of a mini-batch of b samples (Eq. 26).  Three choices shape
its behaviour, and each is a parameter of the skopt_nn estimators:

* the step schedule η⁽ᵏ⁾ (Eq. 17): constant, 1/k or 1/√k, selected with
  ``learning_rate='constant'`` or ``learning_rate='invscaling'`` and
  ``power_t=1`` or ``0.5`` (η⁽ᵏ⁾ = η₀/k^power_t, k counting steps);
* the batch size b (``batch_size``), which trades the accuracy of each step
  against its cost (Eq. 27-31);
* how batches are drawn: disjoint batches of a fresh permutation every epoch
  (without replacement, Eq. 24-25) or independent bootstrap batches (with
  replacement), chosen by ``SGD(sampling=...)``.

All runs fit a least-squares :class:`skopt_nn.LinearRegressor` without penalty,
so the optimum f* is known from a direct solve and we can draw f − f*.
"""

# %%
# The problem and the measurement
# -------------------------------
# A linear model with noisy targets: at the optimum the residuals are not zero,
# so the per-sample gradients do not vanish there and SGD keeps moving.
# ``partial_fit`` runs exactly one epoch and keeps the optimizer's state and the
# step counter of the schedule between calls, so calling it repeatedly and
# evaluating the full cost f after each call gives f − f* per epoch.

import os
import time

import matplotlib.pyplot as plt
import numpy as np

from skopt_nn import LinearRegressor
from skopt_nn.optim import SGD

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
N_SAMPLES = 300 if FAST else 1000
N_EPOCHS = 12 if FAST else 50

rng = np.random.RandomState(0)
n, d = N_SAMPLES, 10
X = rng.randn(n, d) * np.linspace(0.5, 2.0, d)
y = X @ rng.randn(d) + 1.0 + rng.randn(n)

X1 = np.c_[X, np.ones(n)]  # the intercept as a last column
w_star = np.linalg.lstsq(X1, y, rcond=None)[0]


def cost(coef, intercept):
    """The estimator's objective: ½ mean squared residual (Eq. 14)."""
    return 0.5 * np.mean((X @ coef + intercept - y) ** 2)


f_star = cost(w_star[:-1], w_star[-1])
eigenvalues = np.linalg.eigvalsh(X1.T @ X1 / n)
print(f"L = {eigenvalues.max():.2f}, μ = {eigenvalues.min():.3f}, f* = {f_star:.4f}")


def train(n_epochs=N_EPOCHS, **params):
    """f − f* and the training seconds after every epoch of ``partial_fit``."""
    model = LinearRegressor(alpha=0.0, random_state=0, **{"optimizer": "sgd", **params})
    gaps, seconds = [cost(np.zeros(d), 0.0) - f_star], [0.0]
    for _ in range(n_epochs):
        start = time.perf_counter()
        model.partial_fit(X, y)
        seconds.append(seconds[-1] + time.perf_counter() - start)
        gaps.append(cost(model.coef_, model.intercept_[0]) - f_star)
    return np.array(gaps), np.array(seconds), model


# %%
# Step schedules
# --------------
# Mini-batches of 10 samples, three schedules.  A constant step makes fast
# progress at first and then stalls at a level proportional to η: the
# gradient noise never averages out (the "+ η" term of Eq. 21 and 23).  With
# η₀/k the steps shrink so fast that progress becomes slow (Eq. 19 only
# promises O(1/log t) in general).  η₀/√k sits in between (Eq. 20).  The right
# panel shows the step actually used at the end of each epoch, read from the
# estimator's ``history_``.

schedules = {
    "constant, η = 0.02": dict(learning_rate="constant", learning_rate_init=0.02),
    "1/k, η₀ = 0.5": dict(learning_rate="invscaling", power_t=1.0, learning_rate_init=0.5),
    "1/√k, η₀ = 0.05": dict(learning_rate="invscaling", power_t=0.5, learning_rate_init=0.05),
}
fig_s, (ax_gap, ax_eta) = plt.subplots(1, 2, figsize=(12, 4.5))
for label, params in schedules.items():
    gaps, _, model = train(batch_size=10, **params)
    ax_gap.plot(gaps, label=label)
    ax_eta.plot(model.history_["epoch"][1:], model.history_["step_size"][1:], label=label)
ax_gap.set_yscale("log")
ax_gap.set_xlabel("epoch")
ax_gap.set_ylabel("f − f*")
ax_gap.set_title("Mini-batch SGD (b = 10): schedules")
ax_gap.legend()
ax_eta.set_xscale("log")
ax_eta.set_yscale("log")
ax_eta.set_xlabel("epoch")
ax_eta.set_ylabel("step size η⁽ᵏ⁾ at the end of the epoch")
ax_eta.set_title("history_['step_size']")
ax_eta.legend()
fig_s.tight_layout()

# %%
# Batch sizes: accuracy versus speed
# ----------------------------------
# With a fixed step, the mini-batch gradient is the full gradient plus an error
# e_t (Eq. 27), and the rate of Eq. 28-29 carries a term ‖e_t‖² that does not
# decay with t.  Larger batches shrink this error, so the curve levels off
# lower; with b = n the method is gradient descent and there is no floor.
# But an epoch then makes fewer steps (n/b), so per epoch and per second the
# small batches start faster.  Per second (right panel), each step has a fixed
# overhead on top of its arithmetic, which penalises b = 1 most.

fig_b, (ax_epoch, ax_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for b in [1, 10, 100, n]:
    gaps, seconds, _ = train(batch_size=b, learning_rate_init=0.02)
    label = f"b = {b}" + (" (gradient descent)" if b == n else "")
    ax_epoch.plot(gaps, label=label)
    ax_time.plot(seconds[1:], gaps[1:], label=label)  # log axis: from the first epoch on
ax_epoch.set_yscale("log")
ax_epoch.set_xlabel("epoch")
ax_epoch.set_ylabel("f − f*")
ax_epoch.set_title("Constant step 0.02: per epoch")
ax_epoch.legend()
ax_time.set_xscale("log")
ax_time.set_xlabel("training seconds")
ax_time.set_title("... and per second")
fig_b.tight_layout()

# %%
# The gradient error of a batch: Eq. 30 and 31
# --------------------------------------------
# The size of e_t depends on how the batch is drawn.  At the optimum the full
# gradient is zero, so e_t is the batch gradient itself, and we can measure
# E‖e_t‖² by drawing many batches.  A simple random sample of b distinct points
# (without replacement) gives (1 − b/n)·σ²/b (Eq. 30), which vanishes at b = n;
# a bootstrap sample (with replacement) gives σ²/b (Eq. 31), which only vanishes
# as b → ∞ (we stop at b = 0.9n, where Eq. 30 is ten times smaller than
# Eq. 31).  Here σ² is the spread of the per-sample gradients (with the n − 1
# divisor in Eq. 30 and n in Eq. 31, which makes both formulas exact).

residual = X1 @ w_star - y
per_sample = residual[:, None] * X1  # ∇fᵢ(x*) of ½(aᵢᵀx − lᵢ)²; their mean is 0
spread = np.sum((per_sample - per_sample.mean(0)) ** 2) / n  # σ² with divisor n
batch_sizes = np.unique(np.geomspace(1, 0.9 * n, 12).astype(int))
n_draws = 200 if FAST else 1000
measured = {"without_replacement": [], "with_replacement": []}
for b in batch_sizes:
    for sampling, replace in [("without_replacement", False), ("with_replacement", True)]:
        errors = [np.sum(per_sample[rng.choice(n, b, replace=replace)].mean(0) ** 2)
                  for _ in range(n_draws)]
        measured[sampling].append(np.mean(errors))

fig_e, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(batch_sizes, measured["without_replacement"], "o", color="C0",
          label="measured, without replacement")
ax.loglog(batch_sizes, measured["with_replacement"], "s", color="C1", mfc="none",
          label="measured, with replacement")
ax.loglog(batch_sizes, (1 - batch_sizes / n) * spread * n / (n - 1) / batch_sizes, "-",
          color="C0", label="Eq. 30: (1 − b/n)·σ²/b")
ax.loglog(batch_sizes, spread / batch_sizes, "--", color="C1", label="Eq. 31: σ²/b")
ax.set_xlabel("batch size b")
ax.set_ylabel("E‖eₜ‖² at the optimum")
ax.set_title("Gradient error of a mini-batch")
ax.legend()

# %%
# Sampling with and without replacement in training
# -------------------------------------------------
# ``SGD(sampling='with_replacement')`` bootstraps every batch (n // b of them
# make an epoch); the default walks disjoint batches of a fresh permutation.
# With the same step and batch size, the smaller error of sampling without
# replacement lets it settle closer to f*, and the gap widens as b approaches n
# (Eq. 30 against Eq. 31).

fig_r, ax = plt.subplots(figsize=(6.5, 4.5))
for i, b in enumerate([n // 10, n // 2]):
    for sampling, style in [("without_replacement", "-"), ("with_replacement", "--")]:
        gaps, _, _ = train(n_epochs=2 * N_EPOCHS, optimizer=SGD(sampling=sampling),
                           batch_size=b, learning_rate_init=0.05)
        ax.plot(gaps, style, color=f"C{i}", label=f"b = {b}, {sampling.replace('_', ' ')}")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("f − f*")
ax.set_title("SGD(sampling=...), constant step 0.05")
ax.legend(fontsize="small")

plt.show()
