"""
The lecture notebook, end to end
================================

The course closes with a small PyTorch notebook: it fits a 1-10-20-10-1 ReLU
network to a noisy sine curve with Adam (step 0.02, mini-batches of 16, 1000
epochs), draws the training loss and compares the predictions with held-out
points.  This example does the same with :class:`skopt_nn.MLPRegressor`: the
data set class, the ``DataLoader``, the network class and the training loop of
the notebook all become one estimator with a ``fit`` method.

Adam's update is the lecture's Eq. 37-39; the gradient inside it comes from
backpropagation (Eq. 10-13) on each mini-batch (Eq. 26).
"""

# %%
# The data
# --------
# As in the notebook: 100 training and 100 test points with x drawn uniformly
# on [0, 10] and y = sin(x) plus uniform noise on [0, 0.8].  scikit-learn wants
# the samples in rows, so x becomes a column.
#
# Set the environment variable ``SKOPT_NN_EXAMPLES_FAST=1`` to run every example
# of this gallery in a few seconds (fewer epochs, smaller problems).

# sphinx_gallery_thumbnail_number = 3
import os

import matplotlib.pyplot as plt
import numpy as np

from skopt_nn import MLPRegressor
from skopt_nn.optim import Adam
from skopt_nn.plotting import LossCurveDisplay, PredictionDisplay

FAST = os.environ.get("SKOPT_NN_EXAMPLES_FAST") == "1"
N_EPOCHS = 100 if FAST else 1000

rng = np.random.RandomState(0)
x_train = rng.rand(100) * 10
y_train = np.sin(x_train) + rng.rand(100) * 0.8
x_test = rng.rand(100) * 10
y_test = np.sin(x_test) + rng.rand(100) * 0.8
X_train, X_test = x_train.reshape(-1, 1), x_test.reshape(-1, 1)

fig_data, ax = plt.subplots()
ax.scatter(x_train, y_train, c="r", s=12, label="train")
ax.scatter(x_test, y_test, c="b", s=12, label="test")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title("The notebook's data")
ax.legend()

# %%
# The network and the optimizer
# -----------------------------
# ``hidden_layer_sizes=(10, 20, 10)`` with ``activation='relu'`` is the
# notebook's ``NeuralNetwork`` class (one input and one output are read from the
# data).  ``optimizer=Adam()`` with ``learning_rate_init=0.02`` replaces
# ``torch.optim.Adam(net.parameters(), lr=0.02)``; the string ``'adam'`` would do
# the same.  The notebook neither penalises the weights nor stops early, hence
# ``alpha=0`` and ``tol=None`` (exactly ``max_iter`` epochs).
#
# ``verbose=1`` shows the notebook's tqdm progress bar (one tick per epoch, with
# the current loss) when ``tqdm`` is installed and the output is a terminal; in a
# script whose output is redirected, as when this page is built, the bar stays
# quiet.  ``verbose=2`` prints one line per epoch instead.

net = MLPRegressor(
    hidden_layer_sizes=(10, 20, 10),
    activation="relu",
    optimizer=Adam(),
    learning_rate_init=0.02,
    batch_size=16,
    max_iter=N_EPOCHS,
    alpha=0.0,
    tol=None,
    random_state=0,
    verbose=1,
)
net.fit(X_train, y_train)
print(f"{net.n_iter_} epochs, final training loss {net.loss_:.4f}")

# %%
# Loss versus epochs
# ------------------
# ``loss_curve_`` holds, for every epoch, the mean of its mini-batch losses,
# which is the notebook's ``loss_list``.  One difference: scikit-learn's squared
# error is ½(ŷ − y)², half of ``torch.nn.MSELoss``.
# :class:`~skopt_nn.plotting.LossCurveDisplay` draws it.

loss_display = LossCurveDisplay.from_estimator(net, log_scale=True)
loss_display.ax_.set_title(f"Adam, step 0.02, batch 16: {N_EPOCHS} epochs")

# %%
# ``history_`` has more per epoch: the gradient norm of the last mini-batch, the
# step size used, how many gradients were taken, and the elapsed seconds.

net.history_.tail()

# %%
# Predictions on the test data
# ----------------------------
# The notebook's last figure puts the predicted values next to the test points.
# :class:`~skopt_nn.plotting.PredictionDisplay` draws the test data and the
# network's prediction along the whole x range; we add the predictions at the
# test points as the notebook does.

y_pred = net.predict(X_test)
test_mse = np.mean((y_pred - y_test) ** 2)
print(f"test mean squared error: {test_mse:.4f}")

prediction_display = PredictionDisplay.from_estimator(net, X_test, y_test)
prediction_display.ax_.scatter(x_test, y_pred, c="g", s=12, marker="x",
                               label="prediction at the test points")
prediction_display.ax_.legend()
prediction_display.ax_.set_title(f"Test data and predictions (MSE {test_mse:.3f})")

plt.show()
