"""skopt_nn: scikit-learn estimators trained by the lecture's first-order methods on PyTorch."""

from ._population import fit_many
from .linear_model import LinearClassifier, LinearRegressor
from .neural_network import MLPClassifier, MLPRegressor

__all__ = ["LinearClassifier", "LinearRegressor", "MLPClassifier", "MLPRegressor", "fit_many"]
__version__ = "0.1.0"
