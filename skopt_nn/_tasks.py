"""Regression and classification: how targets are encoded, decoded and scored.

Shared by the linear models and the MLPs; the model classes only say what their
output z = f(X) is (``_decision``).
"""

from __future__ import annotations

import numpy as np
import scipy.special
from sklearn.base import _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d


class RegressionTask:
    """Targets are real values; one output per target column."""

    def _encode_targets(self, y, sw, *, first_call: bool, classes=None, warm_start=False):
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if first_call:
            self._y_ndim = y.ndim
            self._n_targets = Y.shape[1]
        elif Y.shape[1] != self._n_targets:
            raise ValueError(
                f"y has {Y.shape[1]} targets, but {type(self).__name__} was fitted with "
                f"{self._n_targets}; continuing a fit (warm_start or partial_fit) needs the "
                "same targets.")
        return Y, sw

    def _inverse_link(self, Z):
        """Prediction from the output z (the identity but for a log-link loss)."""
        return self._loss(Z.shape[1]).inverse_link(Z)

    def _output_score(self, Z: np.ndarray, Y_val: np.ndarray,
                      sample_weight: np.ndarray | None = None) -> float:
        """The early-stopping score, R², of the raw output ``Z`` on held-out targets."""
        return float(r2_score(Y_val, self._inverse_link(Z), sample_weight=sample_weight))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on ``(X, y)``, continuing the optimizer state of earlier calls."""
        return self._fit(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predict targets for ``X``.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        Z = self._decision(X)
        return Z.ravel() if self._y_ndim == 1 else Z


class ClassificationTask:
    """Targets are class labels (binary, multi-class or, for MLPs, multilabel)."""

    #: whether 2-D indicator targets are accepted
    _supports_multilabel = False
    #: whether a target with a single class is fitted (it then always predicts it)
    _allow_single_class = False

    def _loss_target(self, n_classes: int) -> str:
        """'sign' (±1 columns, one per class or one for binary) or 'onehot'."""
        return self._loss(1 if n_classes <= 2 else n_classes).target

    def _encode_targets(self, y, sw, *, first_call: bool, classes=None, warm_start=False):
        check_classification_targets(y)
        multilabel = np.ndim(y) == 2 and type_of_target(y) == "multilabel-indicator"
        if np.ndim(y) == 2 and not multilabel and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if multilabel and not self._supports_multilabel:
            raise ValueError(f"{type(self).__name__} does not support multilabel targets.")
        if first_call:
            if multilabel:
                self.classes_ = np.arange(y.shape[1])
            else:
                self.classes_ = np.unique(y) if classes is None else np.unique(classes)
            self._multilabel = multilabel
            if len(self.classes_) < 2 and not multilabel and not self._allow_single_class:
                raise ValueError(
                    "The training data contains one class only "
                    f"({self.classes_.tolist()!r}); at least 2 classes are needed.")
        elif multilabel != self._multilabel:
            raise ValueError("The type of target changed between calls (multilabel or not).")
        elif multilabel and np.shape(y)[1] != len(self.classes_):
            raise ValueError(f"y has {np.shape(y)[1]} labels, but the model was fitted with "
                             f"{len(self.classes_)}.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"`classes={list(classes)!r}` is not the same as on last call to partial_fit, "
                f"was: {self.classes_!r}")
        elif warm_start and not multilabel and not np.array_equal(np.unique(y), self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous "
                f"call to fit. Previously got {self.classes_}, `y` has {np.unique(y)}")
        if multilabel:
            Y = np.where(np.asarray(y) > 0, 1.0, -1.0)
            return Y, sw
        if not (first_call and classes is None):  # else classes_ are y's labels
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"`y` has classes not in `self.classes_`: y contains labels "
                    f"{unseen.tolist()!r} not in classes {self.classes_.tolist()!r}.")
        idx = np.searchsorted(self.classes_, y)
        sw = self._apply_class_weight(idx, sw)
        K = len(self.classes_)
        if self._loss_target(K) == "onehot":
            Y = np.eye(K)[idx]
        elif K <= 2:  # binary (or one class): one output, +1 for classes_[1]
            Y = np.where(idx == 1, 1.0, -1.0).reshape(-1, 1)
        else:
            Y = np.where(np.arange(K)[None, :] == idx[:, None], 1.0, -1.0)
        return Y, sw

    def _apply_class_weight(self, idx, sw):
        class_weight = getattr(self, "class_weight", None)
        if class_weight is None:
            return sw
        if class_weight == "balanced":
            counts = np.bincount(idx, minlength=len(self.classes_)).astype(np.float64)
            weights = np.where(counts > 0, len(idx) / (len(self.classes_) * np.maximum(counts, 1)),
                               1.0)
        else:
            weights = np.ones(len(self.classes_))
            for label, w in class_weight.items():
                pos = np.flatnonzero(self.classes_ == label)
                if pos.size == 0:
                    raise ValueError(f"class_weight has label {label!r}, which is not a class.")
                weights[pos] = w
        cw = weights[idx]
        return cw if sw is None else sw * cw

    def _output_score(self, Z: np.ndarray, Y_val: np.ndarray,
                      sample_weight: np.ndarray | None = None) -> float:
        """The early-stopping score, accuracy, of the raw output ``Z`` on held-out targets."""
        return float(accuracy_score(self._labels(Y_val), self._labels(Z),
                                    sample_weight=sample_weight))

    def _labels(self, Z):
        if self._multilabel:
            return (Z > 0).astype(int)
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, Z.shape[0])
        if Z.shape[1] == 1:
            return self.classes_[(Z[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(Z, axis=1)]

    def decision_function(self, X):
        """Signed scores: ``(n_samples,)`` for binary tasks, ``(n_samples, n_classes)`` else."""
        Z = self._decision(X)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def predict(self, X):
        """Predict class labels for ``X``."""
        return self._labels(self._decision(X))

    def _proba_from_decision(self, Z):
        if self._multilabel:
            return scipy.special.expit(Z)
        if Z.shape[1] == 1:
            p = scipy.special.expit(Z)
            return np.hstack([1 - p, p])
        return scipy.special.softmax(Z, axis=1)
