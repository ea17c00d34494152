"""
The four losses of the linear models
====================================

The lecture's slide on stochastic gradient descent writes the cost as an average
of per-sample terms fᵢ (Eq. 14) and lists four classic choices for a linear
output z = aᵢᵀx and label lᵢ: least squares, absolute error, hinge and logistic.
skopt_nn offers all four:

* :class:`skopt_nn.LinearRegressor` with ``loss='squared_error'``
  (½(z − l)²) or ``loss='absolute_error'`` (the absolute value of z − l);
* :class:`skopt_nn.LinearClassifier` with ``loss='hinge'``
  (max(0, 1 − l·z)) or ``loss='logistic'`` (log(1 + exp(−l·z))), labels ±1.

(The slide omits the absolute value bars, and its logistic term has the log of
a reciprocal, i.e. the opposite sign; the library uses the usual forms above.)

This example draws the four functions, fits a line with each regression loss to
data with outliers, and draws the decision boundary of each classification loss.
"""

# %%
# The losses as functions of the residual and the margin
# ------------------------------------------------------
# The regression losses depend on the residual r = z − l, the classification
# losses on the margin m = l·z (positive when the sample is on the right side).
# Squared error grows quadratically, so a far-away point pulls hard on the fit;
# absolute error grows linearly, and its gradient has the same size for every
# point.  Hinge loss is zero once the margin exceeds one; logistic loss is
# smooth and never exactly zero.  Absolute error and hinge loss have a kink, so
# gradient methods use a subgradient there.

# sphinx_gallery_thumbnail_number = 3
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs

from skopt_nn import LinearClassifier, LinearRegressor

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
MAX_ITER = 40 if FAST else 200

r = np.linspace(-3, 3, 301)
fig_losses, (ax_reg, ax_clf) = plt.subplots(1, 2, figsize=(10, 4))
ax_reg.plot(r, 0.5 * r**2, label="squared error ½r²")
ax_reg.plot(r, np.abs(r), label="absolute error |r|")
ax_reg.set_xlabel("residual r = z − l")
ax_reg.set_ylim(0, 4.5)
ax_reg.legend()
ax_clf.plot(r, np.maximum(0, 1 - r), label="hinge max(0, 1 − m)")
ax_clf.plot(r, np.logaddexp(0, -r), label="logistic log(1 + e^(−m))")
ax_clf.plot(r, (r <= 0).astype(float), "k:", label="0-1 loss (misclassified)")
ax_clf.set_xlabel("margin m = l·z")
ax_clf.set_ylim(0, 4.5)
ax_clf.legend()
fig_losses.suptitle("Per-sample losses fᵢ")
fig_losses.tight_layout()

# %%
# Regression with outliers: squared versus absolute error
# -------------------------------------------------------
# 80 points around the line y = 1.5x + 0.5, ten of which are replaced by gross
# outliers near y = −8.  Both models use L-BFGS here (the default optimizer);
# any other method of :mod:`skopt_nn.optim` can be passed as ``optimizer=``.
# The squared-error fit is dragged towards the outliers, the absolute-error fit
# (a median-type estimate) barely moves.  We also fit the absolute error with
# mini-batch SGD and the 1/√k step schedule of Eq. 17, the textbook
# subgradient method for a nonsmooth convex cost.

rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, 80)
y = 1.5 * x + 0.5 + rng.normal(0, 0.5, 80)
outliers = rng.choice(80, 10, replace=False)
y[outliers] = -8 + rng.normal(0, 1, 10)
X = x.reshape(-1, 1)

regressors = {
    "squared error, L-BFGS": LinearRegressor(loss="squared_error", max_iter=MAX_ITER),
    "absolute error, L-BFGS": LinearRegressor(loss="absolute_error", max_iter=MAX_ITER),
    "absolute error, SGD 1/√k": LinearRegressor(
        loss="absolute_error", optimizer="sgd", batch_size=8, learning_rate="invscaling",
        power_t=0.5, learning_rate_init=0.5, max_iter=MAX_ITER, tol=None, random_state=0),
}
for name, reg in regressors.items():
    reg.fit(X, y)
    print(f"{name:26s} slope {reg.coef_[0]:6.3f}  intercept {reg.intercept_[0]:6.3f}  "
          f"({reg.n_iter_} epochs)")

fig_reg, ax = plt.subplots(figsize=(6.5, 4.5))
inliers = np.setdiff1d(np.arange(80), outliers)
ax.scatter(x[inliers], y[inliers], s=14, c="C7", label="data")
ax.scatter(x[outliers], y[outliers], s=24, c="k", marker="x", label="outliers")
grid = np.linspace(-3, 3, 50).reshape(-1, 1)
ax.plot(grid, 1.5 * grid + 0.5, "k--", lw=1, label="true line")
for (name, reg), style in zip(regressors.items(), ["-", "-", ":"]):
    ax.plot(grid, reg.predict(grid), style, lw=2, label=name)
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title("LinearRegressor: squared versus absolute error")
ax.legend(fontsize="small")

# %%
# Classification: hinge versus logistic loss
# ------------------------------------------
# Two overlapping Gaussian clouds.  Both classifiers are linear, so both
# boundaries are straight lines; they differ in which points shape them.
# Hinge loss ignores every point beyond the margin (l·z ≥ 1)
# and is driven by the points near the boundary; logistic loss weighs all
# points and gives class probabilities (``predict_proba``), drawn as the
# colour map.  The dashed lines are the hinge model's margins z = ±1.

Xc, yc = make_blobs(200, centers=[[-1, -1], [1.5, 1]], cluster_std=1.1, random_state=0)
hinge = LinearClassifier(loss="hinge", max_iter=MAX_ITER).fit(Xc, yc)
logistic = LinearClassifier(loss="logistic", max_iter=MAX_ITER).fit(Xc, yc)
for name, clf in [("hinge", hinge), ("logistic", logistic)]:
    print(f"{name:8s} training accuracy {clf.score(Xc, yc):.3f}  "
          f"w = {np.round(clf.coef_.ravel(), 3)}, b = {clf.intercept_[0]:.3f}")

xx, yy = np.meshgrid(np.linspace(-5, 5.5, 200), np.linspace(-4.5, 5, 200))
grid = np.c_[xx.ravel(), yy.ravel()]
fig_clf, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
for ax, (name, clf) in zip(axes, [("hinge", hinge), ("logistic", logistic)]):
    z = clf.decision_function(grid).reshape(xx.shape)
    if name == "logistic":
        proba = clf.predict_proba(grid)[:, 1].reshape(xx.shape)
        mesh = ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                           alpha=0.5)
        fig_clf.colorbar(mesh, ax=ax, label="P(class 1)")
    else:
        ax.contour(xx, yy, z, levels=[-1, 1], colors="k", linestyles="--", linewidths=1)
    ax.contour(xx, yy, z, levels=[0], colors="k", linewidths=2)
    ax.scatter(Xc[:, 0], Xc[:, 1], c=yc, cmap="RdBu_r", s=14, edgecolors="k", linewidths=0.3)
    ax.set_title(f"LinearClassifier(loss='{name}'): accuracy {clf.score(Xc, yc):.2f}")
    ax.set_xlabel("feature 1")
axes[0].set_ylabel("feature 2")
fig_clf.tight_layout()

plt.show()
