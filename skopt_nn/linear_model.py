"""Linear models trained by any of the lecture's optimizers.

:class:`LinearRegressor` (least squares, absolute error, Huber, ε-insensitive) and
:class:`LinearClassifier` (logistic, hinge, modified Huber, squared hinge,
perceptron) minimise

    (Σᵢ wᵢ fᵢ) / (Σᵢ wᵢ) + alpha R(coef)

from all-zero coefficients (the intercept is not penalised), with R = ½‖coef‖²
(``penalty='l2'``, the default: with unit weights the lecture's Eq. 14), ‖coef‖₁
(``'l1'``), their mix (1 − l1_ratio)/2 ‖coef‖² + l1_ratio ‖coef‖₁ (``'elasticnet'``)
or none: scikit-learn's SGD estimators' objective.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._estimator_base import BaseTorchEstimator
from ._linear_objective import LinearObjective
from ._tasks import ClassificationTask, RegressionTask


class _LinearModel(BaseTorchEstimator):
    _loss_curve_as_array = True
    _parameter_constraints: dict = {
        **BaseTorchEstimator._parameter_constraints,
        "fit_intercept": ["boolean"],
        "average": ["boolean", Interval(Integral, 0, None, closed="left")],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
    }

    _convex = True

    def _penalty_terms(self) -> tuple[float, float]:
        """(α_L2, λ_L1) of the penalty: α(1 − ρ) and αρ for the elastic net."""
        rho = {None: None, "l2": 0.0, "l1": 1.0}.get(self.penalty, self.l1_ratio)
        if rho is None:
            return 0.0, 0.0
        return float(self.alpha) * (1.0 - rho), float(self.alpha) * rho

    def _make_objective(self, n_features, n_outputs):
        l2, l1 = self._penalty_terms()
        return LinearObjective(self._loss(n_outputs), n_features, n_outputs, l2,
                               self.fit_intercept, l1)

    def _initial_params(self, objective, random_state, dtype, device):
        return torch.zeros(objective.n_params, dtype=dtype, device=device)

    def _fitted_attributes(self, objective, x):
        W, b = objective.unpack(x.detach().cpu())
        return {"coef_": W.numpy().T.copy(), "intercept_": b.numpy().copy()}

    def _flat_params(self):
        W = np.asarray(self.coef_).reshape(-1, self.n_features_in_).T
        return np.concatenate([W.ravel(), np.ravel(self.intercept_)])

    def _decision(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return np.asarray(X @ self.coef_.T) + self.intercept_



class LinearRegressor(RegressorMixin, RegressionTask, _LinearModel):
    """Linear regression by first-order optimisation.

    Parameters
    ----------
    loss : {'squared_error', 'absolute_error', 'huber', 'epsilon_insensitive', \
'squared_epsilon_insensitive'}, default='squared_error'
        The per-sample loss of r = aᵀx − l (averaged over targets): ``½r²``,
        ``|r|``, Huber's ½r² for ``|r| ≤ ε`` and ε``|r|`` − ½ε² beyond (robust to
        outliers), the support-vector loss max(0, ``|r|`` − ε), or its square
        (scikit-learn's SGDRegressor losses).
    epsilon : float, default=0.1
        ε of the Huber and ε-insensitive losses (ignored by the others).
    optimizer : str or Optimizer, default='lbfgs'
        One of 'gd', 'line_search', 'armijo', 'wolfe', 'steepest_descent',
        'momentum', 'sgd', 'adagrad', 'rmsprop', 'adam', 'lbfgs', or an object of
        :mod:`skopt_nn.optim` (its hyperparameters are then grid-searchable as
        ``optimizer__<name>``).
    learning_rate_init : float or 'auto', default='auto'
        The step η₀.  'auto': η = 1 as the first trial of the line searches,
        η = 1/L (Eq. 3, L from the data) for 'gd' and 'sgd', (1 − α)/L for
        momentum α; for AdaGrad, RMSProp and Adam, whose steps move each
        coefficient by about η, a fraction (1, 0.1 and 0.3) of the scale of the
        solution, max|∇F(x⁰)|/L (the largest move of a 1/L gradient step).
    learning_rate : {'constant', 'invscaling', 'adaptive', 'optimal'}, default='constant'
        Step-size schedule (Eq. 17): η₀, η₀/k^power_t, or η₀ divided by 5 on
        each loss plateau; 'optimal' is Eq. 22's 1/(μk) for the α-strongly convex
        objective, η_k = 1/(α (t₀ + k − 1)) with scikit-learn's t₀ (its SGD
        estimators' default; ``learning_rate_init`` is then not used).
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic methods; 'auto' is min(200, n_samples).
        The full-batch methods ignore it.
    max_iter : int, default=200
        Maximum number of epochs (one step per epoch for full-batch methods).
    tol : float or None, default=1e-4
        Stop when the largest gradient component falls to ``tol`` (full-batch
        methods), or when the loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs (all but the line searches, steepest descent and
        L-BFGS).  None runs exactly ``max_iter`` epochs.
    n_iter_no_change : int, default=10
    alpha : float, default=1e-4
        Strength of the penalty; also μ of ``learning_rate='optimal'``.
    penalty : {'l2', 'l1', 'elasticnet'} or None, default='l2'
        R(coef) in alpha R: ½‖coef‖², ‖coef‖₁, (1 − l1_ratio)/2 ‖coef‖² + l1_ratio
        ‖coef‖₁, or none.  The L1 part is a truncated-gradient step after each
        update (Tsuruoka et al.'s cumulative penalty, scikit-learn's) for gd, sgd,
        momentum, adagrad, rmsprop and adam, so coefficients become exactly 0; the
        line searches, steepest descent and L-BFGS take its subgradient (small
        coefficients instead of zeros).
    l1_ratio : float, default=0.15
        The elastic net's mix ρ in [0, 1] (``penalty='elasticnet'`` only).
    fit_intercept : bool, default=True
    shuffle : bool, default=True
        Reshuffle the rows every epoch (mini-batch methods).
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling, bootstrap sampling and the validation split.
    warm_start : bool, default=False
        Continue from the previous fit, keeping the optimizer state and schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its R² stops
        improving, and keep the best coefficients.
    validation_fraction : float, default=0.1
    average : bool or int, default=False
        Averaged SGD (Polyak-Ruppert, as scikit-learn's ``average``): ``coef_`` and
        ``intercept_`` are the mean of the iterates x⁽ᵏ⁾ over the steps k ≥ average
        (``True``: all steps), x̄ ← x̄ + (x⁽ᵏ⁾ − x̄)/n after each step; k counts
        steps, that is samples at ``batch_size=1``.  Training continues from the
        last iterate (``partial_fit``, ``warm_start``); early stopping scores the
        iterate, not the average.
    verbose : int, default=0
        1: a progress bar over epochs with the current loss (on a terminal);
        2: one line per epoch with the loss.
    device : str, default='auto'
        'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : ndarray of shape (1,) or (n_targets,)
    n_iter_ : int
        Epochs run by the last call to ``fit`` (or ``partial_fit``).
    t_ : int
        Number of training samples seen, over all calls.
    loss_ : float
    loss_curve_ : ndarray of shape (n_iter_total,)
        Loss per epoch (for full-batch methods, f after each iteration).
    best_loss_ : float
    history_ : pandas.DataFrame
        Per-iteration loss, gradient norm, step size and function evaluations.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    _parameter_constraints: dict = {
        **_LinearModel._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber", "epsilon_insensitive",
                             "squared_epsilon_insensitive"})],
        "epsilon": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        loss="squared_error",
        *,
        epsilon=0.1,
        optimizer="lbfgs",
        learning_rate_init="auto",
        learning_rate="constant",
        power_t=0.5,
        batch_size="auto",
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        alpha=1e-4,
        penalty="l2",
        l1_ratio=0.15,
        fit_intercept=True,
        shuffle=True,
        random_state=None,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        average=False,
        verbose=0,
        device="auto",
    ):
        self.loss = loss
        self.epsilon = epsilon
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.alpha = alpha
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.average = average
        self.verbose = verbose
        self.device = device

    def _fitted_attributes(self, objective, x):
        attrs = super()._fitted_attributes(objective, x)
        if self._y_ndim == 1:
            attrs["coef_"] = attrs["coef_"].ravel()
        return attrs

    def _decision(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        coef = self.coef_.reshape(-1, self.n_features_in_)
        return np.asarray(X @ coef.T) + self.intercept_


def _has_proba(est) -> bool:
    return est.loss in ("logistic", "log_loss", "modified_huber")


class LinearClassifier(ClassifierMixin, ClassificationTask, _LinearModel):
    """Linear classification by first-order optimisation.

    Binary problems use one output with labels ±1; multi-class problems use one
    output per class: multinomial (softmax cross-entropy) for ``'logistic'`` and
    one-vs-rest for the other losses.

    Parameters
    ----------
    loss : {'logistic', 'log_loss', 'hinge', 'modified_huber', 'squared_hinge', \
'perceptron'}, default='logistic'
        The per-sample loss of the margin m = l·aᵀx: log(1 + exp(−m)) (computed
        stably; 'log_loss' is scikit-learn's name for it), max(0, 1 − m), the
        modified Huber loss (max(0, 1 − m)² for m ≥ −1, −4m below: a smooth hinge
        with probabilities), max(0, 1 − m)², or max(0, −m).
    class_weight : dict, 'balanced' or None, default=None
        Weights multiplying the sample weights of each class.
    optimizer, learning_rate_init, learning_rate, power_t, batch_size, max_iter, tol, \
n_iter_no_change, alpha, penalty, l1_ratio, fit_intercept, shuffle, random_state, \
warm_start, early_stopping, validation_fraction, average, verbose, device
        As for :class:`LinearRegressor`; early stopping scores accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_, t_, loss_, loss_curve_, best_loss_, history_, n_features_in_, \
feature_names_in_
        As for :class:`LinearRegressor`.
    """

    _parameter_constraints: dict = {
        **_LinearModel._parameter_constraints,
        "loss": [StrOptions({"logistic", "log_loss", "hinge", "modified_huber", "squared_hinge",
                             "perceptron"})],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(
        self,
        loss="logistic",
        *,
        optimizer="lbfgs",
        learning_rate_init="auto",
        learning_rate="constant",
        power_t=0.5,
        batch_size="auto",
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        alpha=1e-4,
        penalty="l2",
        l1_ratio=0.15,
        fit_intercept=True,
        class_weight=None,
        shuffle=True,
        random_state=None,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        average=False,
        verbose=0,
        device="auto",
    ):
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.alpha = alpha
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.average = average
        self.verbose = verbose
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on ``(X, y)``, continuing the optimizer state of earlier calls.

        ``classes`` (all labels that will ever appear) is required on the first call.
        """
        if not hasattr(self, "_trainer"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            if self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported for partial_fit; pass a dict.")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes): the logistic and the
        modified Huber losses only.

        For the modified Huber loss, (clip(z, −1, 1) + 1)/2 per class (Zhang 2004),
        normalised over the classes of a multi-class model (uniform where every
        class scores 0), as scikit-learn's SGDClassifier.
        """
        Z = self._decision(X)
        if self.loss != "modified_huber":
            return self._proba_from_decision(Z)
        p = (np.clip(Z, -1.0, 1.0) + 1.0) / 2.0
        if self._multilabel:
            return p
        if p.shape[1] == 1:
            return np.hstack([1.0 - p, p])
        total = p.sum(axis=1, keepdims=True)
        zero = total[:, 0] == 0
        p[zero], total[zero] = 1.0, p.shape[1]
        return p / total

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))
