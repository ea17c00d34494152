"""What every skopt_nn estimator shares: parameters, validation, and one ``_fit``.

Subclasses supply the model (objective, initial parameters, fitted attributes)
and the task (how targets are encoded and scored); ``fit`` and ``partial_fit``
are thin wrappers over :meth:`BaseTorchEstimator._fit`, which hands the work to
the shared training loop in :mod:`skopt_nn._engine`.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._data import Dataset, as_device_matrix, normalise_weights, to_tensor
from ._device import cpu_training, resolve_device, torch_dtype
from ._engine import HISTORY_COLUMNS, Averager, FullBatchOracle, RunConfig, Trainer
from ._losses import Loss, get_loss
from ._penalty import CumulativeL1
from ._progress import CallbackSupportMixin, TrainingMonitor, callback_management_context
from ._shuffle import Shuffler
from ._warnings import warn
from .optim._initial_step import StartingPoint, initial_step
from .optim._registry import STEP_CONSTRAINTS, get_optimizer
from .optim._schedules import Schedule, optimal_offset

_VALIDATION_TOO_SMALL = (
    "The validation set is too small. Increase 'validation_fraction' or the size of your "
    "dataset (early_stopping=True holds out a validation split)."
)


def _start_l1(trainer, objective, optimizer) -> None:
    """The L1 penalty as a truncated-gradient step where the method takes steps (its
    state kept over calls while the penalty is the same), else as a subgradient."""
    l1 = getattr(objective, "l1", 0.0)
    truncates = l1 > 0 and optimizer.proximal
    if l1 > 0:
        objective.l1_subgradient = not truncates
    current = trainer.l1
    if not truncates:
        trainer.l1 = None
    elif current is None or current.strength != l1:
        trainer.l1 = CumulativeL1(l1, objective.n_params - objective.K)


def _device_dataset(X, Y, sw, dtype, device) -> Dataset:
    """The training rows on the device, sample weights normalised to mean one."""
    return Dataset(
        as_device_matrix(X, dtype, device),
        to_tensor(Y, dtype, device),
        None if sw is None else to_tensor(normalise_weights(sw, len(sw)), dtype, device),
        1.0 if sw is None else float(np.mean(sw)),
    )


def _check_class_weighted(sw: np.ndarray | None) -> None:
    """Refuse a class_weight that leaves no sample any weight (the objective is 0/0),
    with the error scikit-learn gives for such a sample_weight."""
    if sw is not None and not sw.sum() > 0:
        raise ValueError("Sample weights (sample_weight × class_weight) must contain at "
                         "least one non-zero number.")


@dataclass(eq=False)
class FitJob:
    """One training call, validated: its data on the device, objective and settings,
    and what it drew from ``check_random_state(random_state)``: the starting point of
    a first call, then the validation split, then the shuffler of its batch orders
    (:meth:`BaseTorchEstimator._shuffler`)."""

    X: Any  # the validated input (what the monitor and the size of the call see)
    y: Any
    optimizer: Any
    objective: Any
    data: Dataset
    config: RunConfig
    validation_set: tuple | None  # (X_val on the device, Y_val, sw_val) with early stopping
    early_stopping: bool
    continuing: bool
    device: torch.device
    dtype: torch.dtype
    #: the call's batch orders and bootstrap rows (given to the trainer)
    shuffler: Shuffler
    #: the starting parameters of a new trainer (None when continuing)
    x0: torch.Tensor | None = None
    trainer: Trainer | None = None

    @property
    def size(self) -> int:
        """The number of entries of X (which decides the CPU threads of the call)."""
        return self.X.shape[0] * self.X.shape[1]


class BaseTorchEstimator(CallbackSupportMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared parameters and training logic (not a public estimator)."""

    _parameter_constraints: dict = {
        **STEP_CONSTRAINTS,
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "verbose": ["verbose"],
        "device": [str, torch.device],
    }

    #: the linear models' ``loss_curve_`` is a NumPy array; the MLPs keep
    #: scikit-learn's list
    _loss_curve_as_array = False
    #: whether the objective is convex (the linear models): the 'auto' steps may then
    #: use its curvature bound L and the solution's scale; otherwise the mini-batch
    #: methods take scikit-learn's fixed steps and gradient descent 1/L measured at x⁰
    _convex = False

    # ------------------------------------------------------------------ hooks
    def _loss(self, n_outputs: int) -> Loss:
        """The loss object that ``loss`` names, for ``n_outputs`` outputs."""
        return get_loss(self.loss, n_outputs, multilabel=getattr(self, "_multilabel", False),
                        epsilon=getattr(self, "epsilon", None))

    @abstractmethod
    def _make_objective(self, n_features: int, n_outputs: int):
        """The model's objective (see :mod:`skopt_nn._linear_objective`)."""

    @abstractmethod
    def _initial_params(self, objective, random_state: np.random.RandomState, dtype, device):
        """The starting flat parameter vector (random numbers from ``random_state``)."""

    @abstractmethod
    def _fitted_attributes(self, objective, x: torch.Tensor) -> dict:
        """The model's NumPy fitted attributes for the flat parameters ``x``."""

    @abstractmethod
    def _flat_params(self) -> np.ndarray:
        """The fitted attributes packed as the flat parameter vector."""

    @abstractmethod
    def _encode_targets(self, y, sw, *, first_call: bool, classes=None, warm_start=False):
        """Targets as a 2-D float array for the loss, and the sample weights."""

    @abstractmethod
    def _output_score(self, Z: np.ndarray, Y_val: np.ndarray,
                      sample_weight: np.ndarray | None = None) -> float:
        """The early-stopping score (accuracy or R²) of the raw output on held-out
        targets, weighted by their sample weights where given."""

    def _validation_score(self, objective, x, X_val, Y_val, sw_val=None) -> float:
        """The early-stopping score of the model ``x`` on the held-out split."""
        return self._output_score(objective.decision(x, X_val).double().cpu().numpy(), Y_val,
                                  sw_val)

    # ------------------------------------------------------------------ helpers
    def _validate_X(self, X, reset: bool):
        return validate_data(
            self, X, reset=reset, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
        )

    def _sample_weight(self, sample_weight, X) -> np.ndarray | None:
        if sample_weight is None:
            return None
        # non-negative, and not all zero ("Sample weights must contain at least one ...")
        return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)

    def _resolved_optimizer(self):
        optimizer = get_optimizer(self.optimizer)
        if hasattr(optimizer, "_validate_params"):
            optimizer._validate_params()
        return optimizer

    @property
    def history_(self) -> pd.DataFrame:
        """Per-iteration record of the fits so far: loss, gradient norm, step size
        actually taken, number of function evaluations and elapsed seconds.

        Row 0 is the starting point x⁽⁰⁾.  For full-batch methods row k holds
        f(x⁽ᵏ⁾) and ‖∇f(x⁽ᵏ⁾)‖ after k iterations, and the step that led there (as
        :func:`skopt_nn.optim.minimize`'s history).  For mini-batch methods row k
        holds the mean of epoch k's batch losses (scikit-learn's ``loss_curve_``)
        and the gradient norm of its last batch; row 0 is then the loss on the
        first max(batch_size, 4096) rows.
        """
        check_is_fitted(self, "_trainer")
        return pd.DataFrame(self._trainer.history, columns=list(HISTORY_COLUMNS))

    # ------------------------------------------------------------------ training
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model with ``max_iter`` epochs of the chosen optimizer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None, *, incremental: bool = False, classes=None):
        """Validate, then train; bad input raises and leaves the estimator as it was.

        Any exception (KeyboardInterrupt before training starts included) restores
        the estimator's previous state, the trainer's from a snapshot taken on its
        device; an interrupt during training is not an error: it keeps the last
        whole epoch (see :meth:`Trainer.run`).
        """
        saved = dict(self.__dict__)
        trainer = getattr(self, "_trainer", None)
        snapshot = None if trainer is None else trainer.snapshot()
        try:
            return self._fit_unchecked(X, y, sample_weight, incremental, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if trainer is not None:
                trainer.restore(snapshot)
            raise

    def _fit_unchecked(self, X, y, sample_weight, incremental, classes):
        job = self._prepare(X, y, sample_weight, incremental, classes)
        monitor = TrainingMonitor(self, job.X, job.y, job.config.max_epochs,
                                  lambda x: self._fitted_attributes(job.objective, x))
        with cpu_training(job.device, job.size), callback_management_context(self):
            self._start(job)
            self.n_iter_ = self._run(job.trainer, job.objective, job.data, job.config,
                                     job.validation_set, monitor)
        self._publish(job.trainer, job.objective, job.early_stopping, job.continuing)
        return self

    def _prepare(self, X, y, sample_weight, incremental: bool, classes) -> FitJob:
        """Validate the parameters and the data of a training call; the call's job,
        without its trainer (:meth:`_start` makes or resumes it).

        The random numbers come in scikit-learn's MLP order from one
        ``check_random_state(random_state)`` per call: a first call's initial
        weights, then the validation split (:meth:`_validation_split`), then the
        epochs' batch orders (the job's :class:`Shuffler`).
        """
        continuing = hasattr(self, "_trainer") and (incremental or self.warm_start)
        self._validate_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True.")
        optimizer = self._resolved_optimizer()
        X, y = validate_data(
            self, X, y, reset=not continuing, accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32], multi_output=True, y_numeric=not self._is_classifier(),
        )
        given = self._sample_weight(sample_weight, X)
        Y, sw = self._encode_targets(y, given, first_call=not continuing, classes=classes,
                                     warm_start=continuing and not incremental)
        if getattr(self, "class_weight", None) is not None:
            _check_class_weighted(sw)
        device = resolve_device(self.device)
        dtype = torch_dtype(X.dtype, device)
        objective = self._make_objective(X.shape[1], Y.shape[1])
        random_state = check_random_state(self.random_state)
        x0 = None if continuing else \
            self._initial_params(objective, random_state, dtype, device)
        early_stopping = self.early_stopping and not incremental
        validation_set = None
        X_fit, Y_fit = X, Y
        if early_stopping:
            X_fit, X_val, Y_fit, Y_val, sw, sw_val = self._validation_split(
                X, Y, sw, y, random_state, given)
            validation_set = (as_device_matrix(X_val, dtype, device), Y_val, sw_val)
        config = RunConfig(max_epochs=1 if incremental else self.max_iter,
                           batch_size=self._batch_size(X.shape[0], optimizer),
                           shuffle=self.shuffle, tol=self.tol,
                           n_iter_no_change=self.n_iter_no_change,
                           warn_max_iter=not incremental)
        return FitJob(X, y, optimizer, objective,
                      _device_dataset(X_fit, Y_fit, sw, dtype, device), config,
                      validation_set, early_stopping, continuing, device, dtype,
                      self._shuffler(random_state, continuing), x0)

    def _shuffler(self, random_state: np.random.RandomState, continuing: bool) -> Shuffler:
        """The call's batch orders, once the call's other draws from ``random_state``
        are made.

        Here (the linear models, which cannot follow scikit-learn's SGD stream): one
        stream of their own, seeded from ``random_state`` by the first call and
        continued by the next (``partial_fit`` epochs continue a fit's), a fresh
        permutation each epoch; the MLPs take scikit-learn's MLP stream instead.
        """
        kept = getattr(self, "_trainer", None)
        if continuing and kept.shuffler is not None:
            return kept.shuffler
        seed = random_state.randint(np.iinfo(np.int32).max)
        return Shuffler(np.random.RandomState(seed), compose=False)

    def _start(self, job: FitJob) -> None:
        """Set ``job.trainer``: the fitted one resumed, or a new one from ``job.x0``;
        either way with the call's shuffler."""
        if job.continuing:
            job.trainer = self._trainer
            self._resume(job.trainer, job.objective, job.optimizer, job.data, job.device,
                         job.dtype)
        else:
            job.trainer = self._new_trainer(job.objective, job.optimizer, job.data, job.x0)
        job.trainer.shuffler = job.shuffler
        start = self._average_start()
        averager = job.trainer.averager
        if not start:
            job.trainer.averager = None
        elif averager is None or averager.start != start:
            job.trainer.averager = Averager(start)
        _start_l1(job.trainer, job.objective, job.optimizer)

    def _average_start(self) -> int:
        """The first step whose iterate is averaged (``average``); 0: no averaging."""
        average = getattr(self, "average", False)
        return int(average) if average is not True else 1

    def _new_trainer(self, objective, optimizer, data, x0) -> Trainer:
        """A trainer at the start ``x0`` (scikit-learn's initial weights for the
        MLPs), with its initial step."""
        # 'optimal' takes no η₀: its 'auto' step (1/L from the data, a Gram matrix) is
        # computed only if a later call changes the schedule (see _run)
        lr = math.nan if self.learning_rate == "optimal" and self.learning_rate_init == "auto" \
            else self._initial_step(optimizer, objective, data, x0)
        return Trainer(objective, x0, clone(optimizer),
                       Schedule(self.learning_rate, lr, self.power_t, **self._optimal_terms()),
                       learning_rate_init=self.learning_rate_init)

    def _optimal_terms(self) -> dict:
        """μ and t₀ of ``learning_rate='optimal'`` (none for the other schedules): μ =
        ``alpha``, the L2 penalty's strong convexity, t₀ scikit-learn's SGD heuristic."""
        if self.learning_rate != "optimal":
            return {}
        if not self.alpha > 0:
            raise ValueError("alpha must be > 0 since learning_rate is 'optimal': the step "
                             "1/(alpha (t0 + k - 1)) is computed from alpha.")
        return {"mu": float(self.alpha), "t0": optimal_offset(float(self.alpha),
                                                               self._loss(1))}

    def _resume(self, trainer, objective, optimizer, data, device, dtype) -> None:
        """Continue ``trainer`` (warm_start or partial_fit); a ``learning_rate_init``
        the user changed since restarts the schedule's base step."""
        trainer.resume(objective, optimizer, self._flat_params(), device, dtype)
        if self.learning_rate_init != trainer.learning_rate_init:
            trainer.schedule.eta = self._initial_step(optimizer, objective, data, trainer.x)
            trainer.learning_rate_init = self.learning_rate_init

    def _run(self, trainer, objective, data, config, validation_set, monitor) -> int:
        """Train ``trainer`` for this call; the number of epochs run."""
        trainer.schedule.kind, trainer.schedule.power_t = self.learning_rate, self.power_t
        if self.learning_rate != "optimal" and math.isnan(trainer.schedule.eta):
            trainer.schedule.eta = self._initial_step(trainer.optimizer, objective, data,
                                                      trainer.x)
        for name, value in self._optimal_terms().items():
            setattr(trainer.schedule, name, value)
        validation = None
        if validation_set is not None:
            X_val, Y_val, sw_val = validation_set
            validation = lambda x: self._validation_score(  # noqa: E731
                objective, x, X_val, Y_val, sw_val)
        n_iter = trainer.run(data, config, validation, monitor if monitor.active else None)
        if validation is not None and trainer.progress.best_x is not None:
            trainer.x.copy_(trainer.progress.best_x)
        try:
            monitor.close(trainer.x)
        except KeyboardInterrupt:  # in a callback at the very end: the fit is done
            warn("Training interrupted by user.")
        return n_iter

    def _publish(self, trainer, objective, early_stopping: bool, continuing: bool) -> None:
        """Set the fitted attributes from the trainer."""
        self._trainer = trainer
        for name, value in self._fitted_attributes(objective, trainer.model_x()).items():
            setattr(self, name, value)
        curve = trainer.loss_curve
        if self._loss_curve_as_array:
            self.loss_curve_ = np.asarray(curve)
        elif continuing and isinstance(getattr(self, "loss_curve_", None), list):
            self.loss_curve_.extend(curve[len(self.loss_curve_):])  # no copy per call
        else:
            self.loss_curve_ = list(curve)
        self.loss_ = curve[-1] if curve else trainer.initial_loss
        # no whole epoch (a first-epoch divergence or interrupt): the kept start's loss
        best = trainer.progress.best_loss
        self.best_loss_ = None if early_stopping else (best if math.isfinite(best) else
                                                       self.loss_)
        self.t_ = trainer.t
        self.validation_scores_ = list(trainer.log.validation_scores) if early_stopping \
            else None
        self.best_validation_score_ = trainer.progress.best_validation_score \
            if early_stopping else None

    def _initial_step(self, optimizer, objective, data, x) -> float:
        """η₀: ``learning_rate_init``, or the optimizer's rule for 'auto' (the model
        says whether it is convex, which gives its rules L and the solution's scale)."""
        return initial_step(optimizer, self.learning_rate_init, lambda: StartingPoint(
            FullBatchOracle(objective, data), x, lipschitz=lambda: objective.lipschitz(data),
            convex=self._convex, fixed_steps=not self._convex))

    def _batch_size(self, n: int, optimizer) -> int:
        if optimizer.full_batch:
            return n
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warn("Got `batch_size` less than 1 or larger than sample size. It is going to be "
                 "clipped")
        return min(self.batch_size, n)

    def _validation_split(self, X, Y, sw, y, random_state: np.random.RandomState,
                          given=None):
        """Early stopping's held-out split: ``(X, X_val, Y, Y_val, sw, given_val)``,
        ``given_val`` the held-out rows' share of the sample weights as given (what
        weights their score, as scikit-learn's; None without weights).

        Here (the linear models) stratified by the labels for a classifier with
        one label column, from a seed of its own: the first number the call draws
        from ``random_state`` (the shuffler's seed is the next); the MLPs take
        scikit-learn's MLP split instead.
        """
        stratify = y if self._is_classifier() and np.ndim(y) == 1 else None
        seed = random_state.randint(np.iinfo(np.int32).max)
        return self._split(X, Y, sw, stratify, seed, given)

    def _split(self, X, Y, sw, stratify, random_state, given=None):
        """``train_test_split`` of X, Y (and the weights) by ``validation_fraction``,
        with the error of a validation set too small: ``(X, X_val, Y, Y_val, sw,
        given_val)``."""
        weights = [w for w in (sw, given) if w is not None]
        try:  # (the rows' split does not depend on how many arrays are split)
            parts = train_test_split(X, Y, *weights, test_size=self.validation_fraction,
                                     random_state=random_state, stratify=stratify)
        except ValueError as exc:
            raise ValueError(f"{_VALIDATION_TOO_SMALL} ({exc})") from exc
        X, X_val, Y, Y_val = parts[:4]
        if X_val.shape[0] < 2:
            raise ValueError(_VALIDATION_TOO_SMALL)
        return (X, X_val, Y, Y_val, None if sw is None else parts[4],
                None if given is None else parts[-1])

    def _is_classifier(self) -> bool:
        return getattr(self.__sklearn_tags__(), "estimator_type", None) == "classifier"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
