"""skopt_nn: scikit-learn estimators trained by the lecture's first-order methods on PyTorch."""

from .linear_model import LinearClassifier, LinearRegressor

__all__ = ["LinearClassifier", "LinearRegressor"]
__version__ = "0.1.0"
