"""skopt_nn: scikit-learn estimators trained by the lecture's first-order methods on PyTorch."""

from .linear_model import LinearClassifier, LinearRegressor
from .neural_network import MLPClassifier, MLPRegressor

__all__ = ["LinearClassifier", "LinearRegressor", "MLPClassifier", "MLPRegressor"]
__version__ = "0.1.0"
