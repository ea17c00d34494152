"""
A grid search that trains its candidates together
=================================================

The course asks its students to compare the methods: which optimizer, at which
step size, fits the lecture's network best?  A cross-validated grid search
answers that, but it makes many small fits: here 5 optimizers x 4 steps x 5
folds = 100 fits of the notebook's 1-10-20-10-1 network.  Such a network's fit
is bound by the cost of each call, not by arithmetic, so
:class:`skopt_nn.model_selection.GridSearchCV` trains the candidates of each
optimizer together, as one batched computation per group, and returns what
scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` returns for the
same estimator: the same ``cv_results_``, ``best_params_`` and refitted model.
"""

# %%
# The lecture's data and network
# ------------------------------
# y = sin(x) + U(0, 0.8) on 100 training points; the network and batch size of
# the notebook, trained without a stopping rule.

import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV

from skopt_nn import MLPRegressor
from skopt_nn.datasets import make_lecture_sine
from skopt_nn.model_selection import GridSearchCV

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
MAX_ITER = 30 if FAST else 200

X_train, y_train, X_test, y_test = make_lecture_sine()
net = MLPRegressor(hidden_layer_sizes=(10, 20, 10), batch_size=16, max_iter=MAX_ITER,
                   tol=None, alpha=0.0, random_state=0)

# %%
# The grid: five of the lecture's methods, four step sizes each
# -------------------------------------------------------------
# Mini-batch SGD (Eq. 26), momentum (Eq. 8), AdaGrad (Eq. 32-34), RMSProp
# (Eq. 35-36) and Adam (Eq. 37-39).  Models with the same optimizer class train
# together; their step sizes are per-model columns of one computation.

param_grid = {
    "optimizer": ["sgd", "momentum", "adagrad", "rmsprop", "adam"],
    "learning_rate_init": [0.001, 0.003, 0.01, 0.03],
}

# %%
# The same search, two ways
# -------------------------
# scikit-learn's search fits the 100 models one after the other; skopt_nn's
# trains the 20 of each optimizer (4 steps x 5 folds) at once.

with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    start = time.perf_counter()
    sequential = SklearnGridSearchCV(net, param_grid, cv=5).fit(X_train, y_train)
    sequential_seconds = time.perf_counter() - start
    start = time.perf_counter()
    batched = GridSearchCV(net, param_grid, cv=5).fit(X_train, y_train)
    batched_seconds = time.perf_counter() - start

print(f"scikit-learn's GridSearchCV: {sequential_seconds:.2f} s")
print(f"skopt_nn's GridSearchCV:     {batched_seconds:.2f} s "
      f"({sequential_seconds / batched_seconds:.1f}x faster)")
print("same best candidate:", batched.best_params_ == sequential.best_params_,
      batched.best_params_)

# %%
# The results agree to rounding
# -----------------------------
# Every candidate's cross-validated R² is the same in both searches (the batched
# products add in another order, so they agree to about 1e-12, not bit for bit).

scores = pd.DataFrame({
    "optimizer": [p["optimizer"] for p in batched.cv_results_["params"]],
    "learning_rate_init": [p["learning_rate_init"] for p in batched.cv_results_["params"]],
    "batched": batched.cv_results_["mean_test_score"],
    "sequential": sequential.cv_results_["mean_test_score"],
})
largest_difference = float(np.max(np.abs(scores["batched"] - scores["sequential"])))
print(f"largest difference of a mean test score: {largest_difference:.1e}")
scores.pivot(index="learning_rate_init", columns="optimizer", values="batched").round(3)

# %%
# The methods side by side, and the cost of the search
# ----------------------------------------------------
# Left: cross-validated R² against the step size, one line per method (the
# adaptive methods tolerate a wider range of steps).  Right: the search's time.

fig, (ax_score, ax_time) = plt.subplots(1, 2, figsize=(11, 4.2),
                                        gridspec_kw={"width_ratios": [2, 1]})
for name, part in scores.groupby("optimizer", sort=False):
    ax_score.plot(part["learning_rate_init"], part["batched"], marker="o", label=name)
ax_score.set_xscale("log")
ax_score.set_xlabel("learning_rate_init")
ax_score.set_ylabel("mean cross-validated R²")
ax_score.set_ylim(max(-1.0, scores["batched"].min() - 0.05), 1.0)
ax_score.legend(title="optimizer")
ax_score.set_title(f"{len(scores)} candidates x 5 folds, {MAX_ITER} epochs")
ax_time.bar(["scikit-learn's\nGridSearchCV", "skopt_nn's\nGridSearchCV"],
            [sequential_seconds, batched_seconds], color=["tab:gray", "tab:blue"])
ax_time.set_ylabel("seconds")
ax_time.set_title("time of the search")
fig.tight_layout()
plt.show()

# %%
# The refitted best model predicts the test set as any fitted estimator does.

print(f"test R² of the best model: {batched.score(X_test, y_test):.3f}")
