"""Grid and randomized searches whose candidates train together.

:class:`GridSearchCV` and :class:`RandomizedSearchCV` are scikit-learn's, with
the same parameters, attributes and ``cv_results_``; what differs is how the
fits are made: the fits of every candidate and split of a skopt_nn estimator
(or of a Pipeline ending in one) go through :func:`skopt_nn.fit_many`, which
trains those of one architecture, optimizer class and batch size as one
batched computation.  The scores, their aggregation into ``cv_results_``, the
choice of the best candidate and the refit are scikit-learn's own code.
"""

from __future__ import annotations

import time
import traceback
from collections import defaultdict
from importlib.util import find_spec
from inspect import signature
from itertools import product

from joblib import Parallel, delayed, logger
from sklearn import model_selection as _sk
from sklearn.base import _fit_context, clone, is_classifier
from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import _insert_error_scores
from sklearn.model_selection._validation import (
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.pipeline import Pipeline
from sklearn.utils._metadata_requests import _routing_enabled
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_method_params, _num_samples, indexable

from ._estimator_base import BaseTorchEstimator
from ._population import fit_many

__all__ = ["GridSearchCV", "RandomizedSearchCV"]


def _final_step(estimator):
    """``(prefix, name, final)``: a skopt_nn estimator alone (prefix None) or as the
    last step of a Pipeline; None where the search cannot batch it."""
    if isinstance(estimator, BaseTorchEstimator):
        return None, None, estimator
    if isinstance(estimator, Pipeline) and isinstance(estimator.steps[-1][1],
                                                      BaseTorchEstimator):
        return estimator[:-1], estimator.steps[-1][0], estimator.steps[-1][1]
    return None


def _bars(verbose: int) -> int:
    """fit_many's ``verbose`` for a search's: a progress bar per group of models
    (over its epochs) from 1 on, where tqdm is installed; nothing otherwise (fit_many's
    line per epoch would flood a search's output)."""
    return 1 if verbose > 0 and find_spec("tqdm") is not None else 0


def _end_message(verbose: int, params: dict, split: tuple, candidate: tuple, result: dict,
                 train: bool) -> str:
    """The line scikit-learn's ``_fit_and_score`` prints after a fit for ``verbose > 1``:
    the parameters, from 3 on the split (and from 10 the candidate) and the scores, the
    fit's and scoring's time, right-aligned to 80 columns."""
    where = f" {split[0] + 1}/{split[1]}" if verbose > 2 else ""
    if verbose > 9:
        where += f"; {candidate[0] + 1}/{candidate[1]}"
    head = f"[CV{where}] END "
    msg = ", ".join(f"{k}={params[k]}" for k in sorted(params))
    msg += ";" if msg else ""
    if verbose > 2:
        test, fitted = result["test_scores"], result.get("train_scores")
        if isinstance(test, dict):
            for name in sorted(test):
                msg += f" {name}: (" + (f"train={fitted[name]:.3f}, " if train else "") + \
                    f"test={test[name]:.3f})"
        else:
            msg += ", score=" + (f"(train={fitted:.3f}, test={test:.3f})" if train
                                 else f"{test:.3f}")
    msg += f" total time={logger.short_format_time(result['fit_time'] + result['score_time'])}"
    return head + "." * (80 - len(head) - len(msg)) + msg


class _BatchedSearchMixin:
    """The fits of a search through :func:`skopt_nn.fit_many` (see the module)."""

    def _batchable(self, params: dict) -> bool:
        if _final_step(self.estimator) is None or _routing_enabled():
            return False
        if getattr(self, "_skl_callbacks", None):
            return False
        if isinstance(self.estimator, Pipeline) and "sample_weight" in params:
            return False  # a Pipeline takes no sample_weight without routing: sklearn says so
        return set(params) <= {"sample_weight", "groups"}

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **params):
        """Run fit with all sets of parameters, the candidates trained together.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        **params : dict
            ``sample_weight`` (split by the CV as the data) and ``groups`` (for the
            splitter); other fit parameters make the search scikit-learn's own.

        Returns
        -------
        self : object
        """
        if not self._batchable(params):
            return super().fit(X, y, **params)
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        self._checked_cv_orig = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self._check_input_parameters(X=X, y=y, split_params=routed.splitter.split)
        self.n_splits_ = self._checked_cv_orig.get_n_splits(X, y, **routed.splitter.split)
        context = _Context(self, X, y, scorers, routed)
        all_params, all_out, all_more = [], [], defaultdict(list)
        results: dict = {}

        def evaluate_candidates(candidate_params, cv=None, more_results=None,
                                callback_ctx=None):
            nonlocal results
            candidates = list(candidate_params)
            splits = list((cv or self._checked_cv_orig).split(X, y, **routed.splitter.split))
            if len(splits) != self.n_splits_:
                raise ValueError("cv.split and cv.get_n_splits return inconsistent results. "
                                 f"Expected {self.n_splits_} splits, got {len(splits)}")
            if self.verbose > 0:
                print(f"Fitting {len(splits)} folds for each of {len(candidates)} candidates,"
                      f" totalling {len(splits) * len(candidates)} fits")
            out = context.evaluate(candidates, splits)
            if len(out) < 1:
                raise ValueError("No fits were performed. Was the CV iterator empty? "
                                 "Were there no candidates?")
            _warn_or_raise_about_fit_failures(out, self.error_score)
            if callable(self.scoring):
                _insert_error_scores(out, self.error_score)
            all_params.extend(candidates)
            all_out.extend(out)
            for key, value in (more_results or {}).items():
                all_more[key].extend(value)
            results = self._format_results(all_params, self.n_splits_, all_out, all_more)
            return results

        self._search(evaluate_candidates, X, y)
        first = all_out[0]["test_scores"]
        self.multimetric_ = isinstance(first, dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(first)
            refit_metric = self.refit
        self._choose_and_refit(results, refit_metric, X, y, routed)
        self.scorer_ = scorers._scorers if isinstance(scorers, _MultimetricScorer) else scorers
        self.cv_results_ = results
        return self

    def _search(self, evaluate_candidates, X, y) -> None:
        """``_run_search`` with the (inert: no callbacks here) callback context that
        scikit-learn >= 1.9 hands it."""
        if "callback_ctx" not in signature(self._run_search).parameters or \
                not hasattr(self, "_init_callback_context"):
            self._run_search(evaluate_candidates)
            return
        root = self._init_callback_context(max_subtasks=1 + (self.refit is not False))
        root.call_on_fit_task_begin(estimator=self, X=X, y=y)
        self._run_search(evaluate_candidates, callback_ctx=root)
        root.call_on_fit_task_end(estimator=self, X=X, y=y)

    def _choose_and_refit(self, results, refit_metric, X, y, routed) -> None:
        """``best_index_``, ``best_params_``, ``best_score_`` and the refit, as
        scikit-learn's search sets them."""
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(
                **clone(self.best_params_, safe=False))
            start = time.time()
            fit_params = routed.estimator.fit
            if y is not None:
                self.best_estimator_.fit(X, y, **fit_params)
            else:
                self.best_estimator_.fit(X, **fit_params)
            self.refit_time_ = time.time() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_


class _Context:
    """What the evaluation of candidates needs of one ``fit`` call."""

    def __init__(self, search, X, y, scorers, routed):
        self.search, self.X, self.y, self.scorers = search, X, y, scorers
        self.fit_params = routed.estimator.fit
        self.score_params = routed.scorer.score
        self.prefix, self.name, _ = _final_step(search.estimator)
        self._parts: dict = {}  # (split, train/test) -> its rows, see _part

    # -- grouping ------------------------------------------------------------------------
    def _split_params(self, params: dict):
        """(params of the earlier steps, params of the final step) or None where a
        candidate replaces a step (scikit-learn's own path then fits it)."""
        if self.prefix is None:
            return {}, params
        head = f"{self.name}__"
        step_names = {name for name, _ in self.search.estimator.steps}
        if any(k in step_names or k == "steps" or k == "memory" for k in params):
            return None
        before = {k: v for k, v in params.items() if not k.startswith(head)}
        final = {k[len(head):]: v for k, v in params.items() if k.startswith(head)}
        return before, final

    def evaluate(self, candidates: list, splits: list) -> list:
        """One result dict per (candidate, split), in scikit-learn's order."""
        self._parts = {}  # these splits' rows, not an earlier call's
        out: dict = {}
        tasks, alone = defaultdict(list), []
        for c, params in enumerate(candidates):
            parts = self._split_params(params)
            if parts is None:
                alone.append(c)
                continue
            tasks[repr(sorted(parts[0].items()))].append((c, parts))
        jobs = [(s, group) for group in tasks.values() for s in range(len(splits))]
        if self.prefix is None:  # one call: the models of every split train together
            jobs = [(None, tasks.get(repr([]), []))] if tasks else []
        n_jobs = self.search.n_jobs
        runs = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(self._fit_group)(s, group, candidates, splits) for s, group in jobs) \
            if n_jobs not in (None, 1) and len(jobs) > 1 else \
            [self._fit_group(s, group, candidates, splits) for s, group in jobs]
        for run in runs:
            out.update(run)
        for c in alone:
            for s in range(len(splits)):
                out[c, s] = self._sklearn_fit(candidates[c], splits[s])
        order = list(product(range(len(candidates)), range(len(splits))))
        if self.search.verbose > 1:  # scikit-learn's line per fit, in its order
            for c, s in order:
                print(_end_message(self.search.verbose, candidates[c], (s, len(splits)),
                                   (c, len(candidates)), out[c, s],
                                   self.search.return_train_score))
        return [out[key] for key in order]

    # -- fitting and scoring ---------------------------------------------------------------
    def _fit_group(self, split, group, candidates, splits) -> dict:
        """Fit the candidates of ``group`` (same earlier-step settings) on one split
        (``split``) or, for a bare estimator, on every split; score each."""
        X, y, search = self.X, self.y, self.search
        sw = self.fit_params.get("sample_weight")
        ids = range(len(splits)) if split is None else [split]
        start = time.time()
        pairs, models, rows = [], [], []
        prefix = None
        for s in ids:
            train = splits[s][0]
            if self.prefix is not None:  # the earlier steps, fitted once for the group
                prefix = clone(self.prefix).set_params(**group[0][1][0])
                X_train, y_train = _safe_split(search.estimator, X, y, train)
                Xt = prefix.fit_transform(X_train, y_train)
            for c, (_, final) in group:
                est = clone(self.search.estimator if self.prefix is None else
                            self.search.estimator.steps[-1][1])
                pairs.append((c, s))
                models.append(est.set_params(**clone(final, safe=False)))
                rows.append(train)
        if self.prefix is None:  # the search's n_jobs: threads over parts of the models
            errors = fit_many(models, X, y, rows=rows, sample_weight=sw, errors="return",
                              n_jobs=search.n_jobs, verbose=_bars(search.verbose))
        else:
            errors = fit_many(models, Xt, y_train, errors="return",
                              verbose=_bars(search.verbose))
        fit_time = (time.time() - start) / max(len(models), 1)
        out = {}
        for (c, s), model, error in zip(pairs, models, errors, strict=True):
            fitted = model if prefix is None else Pipeline([*prefix.steps, (self.name, model)])
            out[c, s] = self._result(fitted, error, splits, s, fit_time)
        return out

    def _part(self, splits, s: int, which: int) -> tuple:
        """``(X, y, score params)`` of split ``s``'s training (0) or test (1) rows, made
        once for all the candidates scored on them."""
        key = (s, which)
        hit = self._parts.get(key)
        if hit is None:
            train, test = splits[s]
            rows, against = (train, None) if which == 0 else (test, train)
            X, y = _safe_split(self.search.estimator, self.X, self.y, rows, against)
            hit = self._parts[key] = (X, y, _check_method_params(self.X, self.score_params,
                                                                 rows))
        return hit

    def _result(self, estimator, error, splits, s: int, fit_time) -> dict:
        """scikit-learn's ``_fit_and_score`` result for one fitted (or failed) model."""
        search, scorer = self.search, self.scorers
        result = {}
        if error is not None:
            if search.error_score == "raise":
                raise error
            if isinstance(scorer, _MultimetricScorer):
                test_scores = {name: search.error_score for name in scorer._scorers}
            else:
                test_scores = search.error_score
            train_scores = test_scores.copy() if isinstance(test_scores, dict) else test_scores
            result["fit_error"] = "".join(traceback.format_exception(error))
            score_time = 0.0
        else:
            result["fit_error"] = None
            start = time.time()
            X, y, params = self._part(splits, s, 1)
            test_scores = _score(estimator, X, y, scorer, params, search.error_score)
            score_time = time.time() - start
            if search.return_train_score:
                X, y, params = self._part(splits, s, 0)
                train_scores = _score(estimator, X, y, scorer, params, search.error_score)
        result["test_scores"] = test_scores
        if search.return_train_score:
            result["train_scores"] = train_scores
        result["n_test_samples"] = _num_samples(self._part(splits, s, 1)[0])
        result["fit_time"] = fit_time
        result["score_time"] = score_time
        return result

    def _sklearn_fit(self, params, split) -> dict:
        from sklearn.model_selection._validation import _fit_and_score

        search = self.search
        train, test = split
        return _fit_and_score(
            clone(search.estimator), self.X, self.y, scorer=self.scorers, train=train,
            test=test, verbose=0, parameters=params,  # its line: evaluate's
            fit_params=self.fit_params, score_params=self.score_params,
            return_train_score=search.return_train_score, return_n_test_samples=True,
            return_times=True, error_score=search.error_score)


class GridSearchCV(_BatchedSearchMixin, _sk.GridSearchCV):
    """scikit-learn's GridSearchCV, with the candidates trained together.

    The parameters, attributes and ``cv_results_`` are those of
    :class:`sklearn.model_selection.GridSearchCV`.  For a skopt_nn estimator, or a
    Pipeline whose last step is one, the fits of all candidates and splits go
    through :func:`skopt_nn.fit_many`: those with the same architecture,
    optimizer class and batch size train as one batched computation (see its
    documentation for what may differ inside one group and what is fitted
    alone).  A Pipeline's earlier steps are fitted once per split and per
    setting of their own parameters.  ``fit_time`` is a group's time shared
    equally by its models.  Scikit-learn's own search runs instead for other
    estimators, candidates that replace a pipeline step, fit parameters other
    than ``sample_weight`` and ``groups``, metadata routing, and callbacks.
    ``n_jobs`` spreads the work over threads: a pipeline's (split, setting) groups,
    or for a bare estimator parts of the batched models (:func:`skopt_nn.fit_many`'s
    ``n_jobs``).  ``verbose``: from 1 a progress bar per group of models trained
    together (over its epochs; it needs tqdm), from 2 scikit-learn's line per fit
    (its parameters, from 3 its split and scores), printed in scikit-learn's order
    once the fits are scored.
    """


class RandomizedSearchCV(_BatchedSearchMixin, _sk.RandomizedSearchCV):
    """scikit-learn's RandomizedSearchCV, with the candidates trained together.

    As :class:`GridSearchCV` (the same batching and fallbacks), for the candidates
    that :class:`sklearn.model_selection.RandomizedSearchCV` samples.
    """
