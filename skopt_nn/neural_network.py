"""Multilayer perceptrons trained by explicit backpropagation and any lecture optimizer.

Drop-in replacements for scikit-learn's ``MLPRegressor`` and ``MLPClassifier``:
the same parameters and fitted attributes, plus ``optimizer=`` (every method of
:mod:`skopt_nn.optim`; scikit-learn's ``solver``, ``momentum``, ``beta_1`` … are
the optimizer object's hyperparameters), ``device=`` and ``tol=None``.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._data import as_device_matrix
from ._device import resolve_device, torch_dtype
from ._estimator_base import BaseTorchEstimator
from ._mlp_objective import MLPObjective
from ._shuffle import Shuffler
from ._tasks import ClassificationTask, RegressionTask

_PREDICT_CHUNK = 1 << 16


class _BaseMLP(BaseTorchEstimator):
    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    }

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if np.ndim(sizes) == 0 else tuple(sizes)
        if any(int(s) <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return tuple(int(s) for s in sizes)

    def _make_objective(self, n_features, n_outputs):
        return MLPObjective((n_features, *self._hidden(), n_outputs), self.activation,
                            self._loss(n_outputs), self.alpha)

    def _initial_params(self, objective, random_state, dtype, device):
        return objective.init_params(random_state, dtype, device)

    def _shuffler(self, random_state, continuing):
        """scikit-learn's MLP stream: every call (fit, ``partial_fit``, ``warm_start``)
        draws its batch orders from its own ``check_random_state(random_state)``,
        after the initial weights and the validation split, from the stored order."""
        return Shuffler(random_state)

    def _validation_split(self, X, Y, sw, y, random_state, given=None):
        """scikit-learn's MLP split (``_fit_stochastic``): ``train_test_split`` drawn
        from the call's ``random_state`` after the initial weights, stratified where a
        classifier has one output (binary), not for multi-class or multilabel targets.

        scikit-learn stratifies by its binarised target, one column of 0/1; the one
        column of ±1 here orders the two classes the same way, so the split is the
        same.
        """
        stratify = Y[:, 0] if self._is_classifier() and Y.shape[1] == 1 else None
        return self._split(X, Y, sw, stratify, random_state, given)

    def _fitted_attributes(self, objective, x):
        Ws, bs = objective.unpack(x.detach().cpu())
        n_outputs = Ws[-1].shape[1]
        return {
            "coefs_": [W.numpy().copy() for W in Ws],
            "intercepts_": [b.numpy().copy() for b in bs],
            "n_layers_": len(Ws) + 1,
            "n_outputs_": n_outputs,
            "out_activation_": self._loss(n_outputs).out_activation,
        }

    def _flat_params(self):
        return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)])
                               for W, b in zip(self.coefs_, self.intercepts_)])

    def _predict_device(self) -> torch.device:
        try:
            return resolve_device(self.device)
        except ValueError:  # trained on a device this machine lacks
            return torch.device("cpu")

    def _decision(self, X):
        check_is_fitted(self, "coefs_")
        X = self._validate_X(X, reset=False)
        device = self._predict_device()
        dtype = torch_dtype(self.coefs_[0].dtype, device)
        # the fitted shapes, not hidden_layer_sizes (which set_params may have changed)
        sizes = (self.coefs_[0].shape[0], *(W.shape[1] for W in self.coefs_))
        objective = MLPObjective(sizes, self.activation, self._loss(sizes[-1]), self.alpha)
        x = torch.as_tensor(self._flat_params()).to(device, dtype)
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], _PREDICT_CHUNK):
                Xc = as_device_matrix(X[start:start + _PREDICT_CHUNK], dtype, device)
                out.append(objective.decision(x, Xc).cpu().numpy())
        Z = np.concatenate(out) if out else np.empty((0, self.n_outputs_))
        return Z.astype(self.coefs_[0].dtype, copy=False)



_MLP_DOC_PARAMS = """
    hidden_layer_sizes : array-like of int, default=(100,)
        Units of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden activation σ.
    optimizer : str or Optimizer, default='adam'
        Any method of :mod:`skopt_nn.optim` by name ('gd', 'line_search', 'armijo',
        'wolfe', 'steepest_descent', 'momentum', 'sgd', 'adagrad', 'rmsprop',
        'adam', 'lbfgs') or as an object, e.g. ``Adam(beta_1=0.8)`` or
        ``Momentum(momentum=0.9, nesterov=True)`` for scikit-learn's
        ``solver='sgd'``.  Full-batch methods take one step per epoch.
    alpha : float, default=1e-4
        L2 penalty, scaled as scikit-learn's: (alpha / 2S)·Σ‖W‖² with S the
        batch's total sample weight.
    batch_size : int or 'auto', default='auto'
        min(200, n_samples) for the mini-batch methods.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'optimal'}, default='constant'
        As scikit-learn's, plus 'optimal': Eq. 22's η_k = 1/(μ (t₀ + k − 1)) with
        μ = ``alpha`` and scikit-learn's SGD t₀ (the network's objective is not
        strongly convex, so this is a 1/k decay from a first step of α^(-1/4)).
    learning_rate_init : float or 'auto', default='auto'
        'auto': 1e-3 for Adam and momentum, 0.01 for SGD, AdaGrad and RMSProp,
        1 as the first trial step of the line searches and L-BFGS, and 1/L for
        'gd' with L measured along the first gradient.
    power_t : float, default=0.5
    max_iter : int, default=200
        Maximum number of epochs (iterations for the full-batch methods).
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        As scikit-learn's: every training call draws from
        ``check_random_state(random_state)``, in scikit-learn's order, the initial
        weights (first call), early stopping's validation split and each epoch's
        batch order, so the same value gives scikit-learn's weights, validation
        set and batches.
    tol : float or None, default=1e-4
        Tolerance of the stopping rules (as for
        :class:`~skopt_nn.LinearRegressor`); None runs exactly ``max_iter`` epochs.
    verbose : int, default=False
        1: a progress bar over epochs with the current loss (on a terminal);
        2: one line per epoch, as scikit-learn prints.
    warm_start : bool, default=False
        Continue from the previous solution, keeping the optimizer's state (its
        moments and step counter) and the schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and keep the weights with the
        best validation score, for every optimizer (scikit-learn's MLP applies it
        to 'sgd' and 'adam' only and ignores it for L-BFGS).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    device : str, default='auto'
        'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.
"""

_MLP_DOC_ATTRS = """
    loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    t_ : int
        Training samples seen over all calls.
    coefs_ : list of ndarray, shapes (fan_in, fan_out)
    intercepts_ : list of ndarray
    n_iter_ : int
        Epochs run by the last call.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    history_ : pandas.DataFrame
        Per-iteration loss, gradient norm, step size and function evaluations.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
"""


class MLPRegressor(RegressorMixin, RegressionTask, _BaseMLP):
    __doc__ = f"""Multilayer perceptron regressor, trained by backpropagation.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        Half squared error, or half Poisson deviance with a log link (the output
        is exp(z); targets must be non-negative), as scikit-learn's.{_MLP_DOC_PARAMS}
    Attributes
    ----------{_MLP_DOC_ATTRS}"""

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        optimizer="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init="auto",
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        device="auto",
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device

    def _encode_targets(self, y, sw, *, first_call, classes=None, warm_start=False):
        if self._loss(1).nonnegative_targets and np.any(np.asarray(y) < 0):
            raise ValueError(f"loss={self.loss!r} requires non-negative targets y.")
        return super()._encode_targets(y, sw, first_call=first_call, classes=classes,
                                       warm_start=warm_start)

    def _decision(self, X):
        return self._inverse_link(super()._decision(X))


def _has_log_loss(est) -> bool:
    return est.loss == "log_loss"


def _has_no_proba(est) -> bool:
    return not _has_log_loss(est)


class MLPClassifier(ClassifierMixin, ClassificationTask, _BaseMLP):
    __doc__ = f"""Multilayer perceptron classifier, trained by backpropagation.

    Binary and multilabel targets use logistic outputs, multi-class targets a
    softmax output with cross-entropy; ``loss='hinge'`` trains one-vs-rest hinge
    outputs instead (no probabilities).

    Parameters
    ----------{_MLP_DOC_PARAMS}
    loss : {{'log_loss', 'hinge'}}, default='log_loss'
    class_weight : dict, 'balanced' or None, default=None
        Per-class weights multiplying the sample weights.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,){_MLP_DOC_ATTRS}"""

    _supports_multilabel = True
    _allow_single_class = True
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"log_loss", "hinge"})],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        optimizer="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init="auto",
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        loss="log_loss",
        class_weight=None,
        device="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.loss = loss
        self.class_weight = class_weight
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on ``(X, y)``, continuing the optimizer state of earlier calls.

        ``classes`` (every label that may appear) is required on the first call.
        """
        if not hasattr(self, "_trainer"):
            if classes is None and np.ndim(y) == 1:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            if self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported for partial_fit; pass a dict.")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    @available_if(_has_log_loss)
    def predict_proba(self, X):
        """Probability estimates, shape (n_samples, n_classes) (or (n_samples,
        n_labels) for multilabel targets); ``loss='log_loss'`` only."""
        p = self._proba_from_decision(self._decision(X))
        eps = np.finfo(p.dtype).eps
        return np.clip(p, eps, 1 - eps)

    @available_if(_has_log_loss)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    @available_if(_has_no_proba)
    def decision_function(self, X):
        """Signed scores of the hinge outputs; ``loss='hinge'`` only.

        As scikit-learn's MLPClassifier, which has ``predict_proba`` and no
        ``decision_function``, the log-loss model offers probabilities only, so
        that duck-typed clients (``DecisionBoundaryDisplay``'s 'auto') use them.
        """
        return ClassificationTask.decision_function(self, X)

