"""
Choosing the optimizer by grid search
=====================================

The optimizer of every skopt_nn estimator is an ordinary hyperparameter, so
scikit-learn's model selection tools can choose it.  ``optimizer=`` takes a name
(``'adam'``) or an object (``Momentum(momentum=0.9)``); when it is an object, its
own hyperparameters are reachable with the double-underscore syntax, e.g.
``optimizer__momentum``, exactly as the steps of a pipeline are.

This example tunes a small :class:`skopt_nn.MLPClassifier` on a pandas
DataFrame that mixes numeric and categorical columns; a
:class:`~sklearn.compose.ColumnTransformer` standardises the former and one-hot
encodes the latter in front of the network.
"""

# %%
# A mixed-type data set
# ---------------------
# A made-up customer table: age and income are numbers, the plan and the region
# are categories.  Whether a customer leaves ("churn") depends on all four
# through a nonlinear rule plus noise.

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skopt_nn import MLPClassifier
from skopt_nn.optim import Adam, Momentum

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
N_SAMPLES = 240 if FAST else 600
MAX_ITER = 30 if FAST else 150

rng = np.random.RandomState(0)
data = pd.DataFrame({
    "age": rng.randint(18, 80, N_SAMPLES),
    "income": rng.lognormal(10, 0.5, N_SAMPLES).round(-2),
    "plan": rng.choice(["basic", "plus", "pro"], N_SAMPLES),
    "region": rng.choice(["north", "south", "east", "west"], N_SAMPLES),
})
score = (0.05 * (data["age"] - 45) - (np.log(data["income"]) - 10)
         + data["plan"].map({"basic": 1.0, "plus": 0.0, "pro": -1.0})
         + 0.5 * (data["region"] == "south") + 0.5 * np.sin(data["age"] / 5))
target = np.where(score + 0.5 * rng.logistic(size=N_SAMPLES) > 0, "churn", "stay")
X_train, X_test, y_train, y_test = train_test_split(data, target, random_state=0,
                                                    stratify=target)
data.head()

# %%
# The pipeline
# ------------
# The column transformer selects columns by name.  The network has one hidden
# layer of 16 ReLU units; its ``optimizer`` is what we search over.

preprocess = make_column_transformer(
    (StandardScaler(), ["age", "income"]),
    (OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
)
model = Pipeline([
    ("prep", preprocess),
    ("mlp", MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
                          max_iter=MAX_ITER, random_state=0)),
])

# %%
# The grid
# --------
# A list of grids lets each optimizer have its own hyperparameters:
#
# * four methods by name, each with its default hyperparameters: Adam
#   (Eq. 37-39), RMSProp (Eq. 35-36), L-BFGS, and gradient descent with a Wolfe
#   line search;
# * momentum (Eq. 8) as an object, with α searched through the nested name
#   ``mlp__optimizer__momentum`` (α = 0 is plain mini-batch SGD, Eq. 26);
# * Adam as an object, with its first-moment decay β₁ (the lecture's γ₁ in
#   Eq. 37) searched the same way.
#
# The grid search clones the optimizer object for every candidate, so the
# objects written here are never modified.

param_grid = [
    {"mlp__optimizer": ["adam", "rmsprop", "lbfgs", "wolfe"]},
    {"mlp__optimizer": [Momentum()], "mlp__optimizer__momentum": [0.0, 0.5, 0.9]},
    {"mlp__optimizer": [Adam()], "mlp__optimizer__beta_1": [0.5, 0.9]},
]
search = GridSearchCV(model, param_grid, cv=3)
with warnings.catch_warnings():
    # short runs: some candidates stop at max_iter before the loss settles
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

# %%
# The results table
# -----------------
# ``cv_results_`` has one row per candidate.  We give each a readable label
# and keep the mean and spread of the cross-validated accuracy and the fit time.


def label(params):
    optimizer = params["mlp__optimizer"]
    if isinstance(optimizer, str):
        return f"'{optimizer}'"
    nested = ", ".join(f"{key.rsplit('__', 1)[1]}={value}"
                       for key, value in params.items() if key != "mlp__optimizer")
    return f"{type(optimizer).__name__}({nested})"


results = pd.DataFrame(search.cv_results_)
results["candidate"] = [label(p) for p in results["params"]]
table = (results.set_index("candidate")
         [["mean_test_score", "std_test_score", "mean_fit_time", "rank_test_score"]]
         .sort_values("rank_test_score"))
table.round(3)

# %%
# The best candidate, refitted on the whole training split by the grid search,
# is then scored on the held-out test split.

print("best:", label(search.best_params_))
print(f"cross-validated accuracy {search.best_score_:.3f}, "
      f"test accuracy {search.score(X_test, y_test):.3f}")

# %%
# Accuracy and cost of each candidate
# -----------------------------------
# Bars show the mean accuracy over the three folds, with one standard deviation
# as error bars; the right panel shows the mean fit time.  Without momentum,
# mini-batch SGD at this small step has not converged after these few epochs,
# which is the oscillation-damping effect the lecture credits momentum with.

fig, (ax_score, ax_time) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
positions = np.arange(len(results))
ax_score.barh(positions, results["mean_test_score"], xerr=results["std_test_score"],
              color="C0", alpha=0.8)
ax_score.set_yticks(positions, results["candidate"])
ax_score.set_xlim(0.5, 1.0)
ax_score.set_xlabel("cross-validated accuracy")
ax_score.invert_yaxis()
ax_time.barh(positions, results["mean_fit_time"], color="C1", alpha=0.8)
ax_time.set_xlabel("mean fit time (s)")
fig.suptitle("Grid search over optimizers")
fig.tight_layout()

plt.show()
