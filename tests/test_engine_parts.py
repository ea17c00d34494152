"""The engine's parts, tested one by one.

* the optimizers' declared capabilities and their 'auto' step rules
  (:mod:`skopt_nn.optim._base`, :mod:`skopt_nn.optim._initial_step`);
* the one step interface: ``step`` of an update rule is its ``update``;
* the step counter on the Trainer, outside the optimizer's state;
* snapshot/restore of a continuing call that fails;
* :class:`skopt_nn._stopping.StoppingRules` on its own;
* warnings that point at the user's line;
* pickling the typed optimizer states;
* the full-batch iteration shared by ``minimize`` and the training loop.
"""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from _helpers import EpochInterrupt
from sklearn.exceptions import ConvergenceWarning

from skopt_nn import LinearClassifier, LinearRegressor, MLPRegressor
from skopt_nn import _stopping as stopping
from skopt_nn.optim import (
    LBFGS,
    OPTIMIZERS,
    SGD,
    Adam,
    Momentum,
    SearchMethod,
    UpdateRule,
    minimize,
)
from skopt_nn.optim._base import NoState, StepResult
from skopt_nn.optim._initial_step import StartingPoint
from skopt_nn.optim._schedules import Schedule
from skopt_nn.optim._update_rules import AdamState

ALL = list(OPTIMIZERS)
UPDATE_RULES = [n for n, cls in OPTIMIZERS.items() if issubclass(cls, UpdateRule)]
SEARCHES = [n for n, cls in OPTIMIZERS.items() if issubclass(cls, SearchMethod)]


def _classification_data(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = (X @ [1.0, -2.0, 0.5] > 0).astype(int)
    return X, y


class _QuadraticOracle:
    """f(x) = ½ xᵀAx and its gradient, counting evaluations."""

    def __init__(self, A):
        self.A, self.n = A, 0

    def value(self, x):
        self.n += 1
        return float(0.5 * x @ self.A @ x)

    def value_grad(self, x):
        self.n += 1
        return float(0.5 * x @ self.A @ x), self.A @ x


class _StubProblem:
    """A StepProblem with given answers, recording which questions were asked."""

    def __init__(self, L=4.0, scale=2.0, fixed_steps=False):
        self.L, self.scale, self.fixed_steps = L, scale, fixed_steps

    def lipschitz(self):
        return self.L

    def solution_scale(self):
        return self.scale


# ---------------------------------------------------------------- 1. capabilities
@pytest.mark.parametrize("name", ALL)
def test_searches_imply_full_batch_and_no_plateau_rule(name):
    """A method whose step evaluates f is full-batch and is not stopped by the plateau."""
    cls = OPTIMIZERS[name]
    assert cls.searches == issubclass(cls, SearchMethod)
    if cls.searches:
        assert cls.full_batch
        assert not cls.stops_on_plateau
    else:
        assert cls.stops_on_plateau


@pytest.mark.parametrize("name", ALL)
def test_evaluation_budget(name):
    """Only L-BFGS has an evaluation budget: its max_fun."""
    if name == "lbfgs":
        assert LBFGS(max_fun=7).evaluation_budget() == 7
        assert OPTIMIZERS[name]().evaluation_budget() == 15000
    else:
        assert OPTIMIZERS[name]().evaluation_budget() is None


@pytest.mark.parametrize("name", ALL)
def test_batch_sampling(name):
    """Every method draws without replacement but SGD(sampling='with_replacement')."""
    assert OPTIMIZERS[name]().batch_sampling() == "without_replacement"
    assert SGD(sampling="with_replacement").batch_sampling() == "with_replacement"


def _expected_auto_step(opt, L, scale, fixed):
    name = opt.name
    if opt.searches:
        return 1.0
    if name == "gd":
        return 1.0 / L
    if name == "sgd":
        return 0.01 if fixed else 1.0 / L
    if name == "momentum":
        return 1e-3 if fixed else (1.0 - opt.momentum) / L
    fraction = {"adagrad": 1.0, "rmsprop": 0.1, "adam": 0.3}[name]
    assert opt.auto_scale_fraction == fraction
    if scale is None:
        return {"adagrad": 0.01, "rmsprop": 0.01, "adam": 1e-3}[name]
    return fraction * scale


@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("scale", [2.0, None])
@pytest.mark.parametrize("name", ALL)
def test_auto_step_rules(name, scale, fixed):
    """Each method's documented 'auto' step on a stub problem (L = 4)."""
    opt = OPTIMIZERS[name]()
    got = opt.auto_step(_StubProblem(L=4.0, scale=scale, fixed_steps=fixed))
    assert got == pytest.approx(_expected_auto_step(opt, 4.0, scale, fixed), rel=1e-15)


def test_auto_step_momentum_uses_its_alpha():
    """Momentum's (1 − α)/L reads the instance's α."""
    assert Momentum(momentum=0.5).auto_step(_StubProblem(L=2.0)) == pytest.approx(0.25)


def test_auto_step_scale_methods_fall_back_for_zero_scale():
    """A zero solution scale (gradient 0 at x⁰) gives the fixed auto_learning_rate."""
    assert Adam().auto_step(_StubProblem(scale=0.0)) == Adam.auto_learning_rate


def _spd(n=5, seed=0):
    rng = np.random.RandomState(seed)
    Q, _ = np.linalg.qr(rng.randn(n, n))
    eig = np.array([0.5, 1.0, 1.5, 2.0, 10.0])  # a gap: power iteration converges fast
    return torch.tensor(Q @ np.diag(eig) @ Q.T), 10.0


def test_starting_point_lipschitz_estimated_on_quadratic():
    """Without a model bound, L is the largest Hessian eigenvalue of ½xᵀAx (power
    iteration on finite-difference Hessian products)."""
    A, lam = _spd()
    x0 = torch.ones(5, dtype=torch.float64)
    sp = StartingPoint(_QuadraticOracle(A), x0)
    assert sp.lipschitz() == pytest.approx(lam, rel=1e-3)
    assert sp.lipschitz() <= lam * (1 + 1e-6)  # a Rayleigh-type estimate: from below
    assert sp.solution_scale() is None  # not declared convex


def test_starting_point_model_bound_and_scale():
    """A model's bound is used as L (nothing estimated); the convex scale is max|∇f|/L."""
    A, _ = _spd()
    x0 = torch.ones(5, dtype=torch.float64)
    oracle = _QuadraticOracle(A)
    sp = StartingPoint(oracle, x0, lipschitz=lambda: 10.0, convex=True)
    assert sp.lipschitz() == 10.0
    assert sp.solution_scale() == pytest.approx(float((A @ x0).abs().max()) / 10.0)
    assert oracle.n == 1  # the gradient at x⁰ only


def test_starting_point_none_bound_falls_back_to_estimate():
    """A model bound that returns None means 'estimate it'."""
    A, lam = _spd()
    sp = StartingPoint(_QuadraticOracle(A), torch.ones(5, dtype=torch.float64),
                       lipschitz=lambda: None)
    assert sp.lipschitz() == pytest.approx(lam, rel=1e-3)


# ---------------------------------------------------------------- 2. the step interface
@pytest.mark.parametrize("name", UPDATE_RULES)
def test_update_rule_step_is_update(name):
    """``step`` of an update rule moves x exactly as ``update`` over three steps, and
    reports step_size = lr, no evaluation and no gradient."""
    opt = OPTIMIZERS[name]()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, dtype=torch.float64, generator=gen)
    grads = [torch.randn(6, dtype=torch.float64, generator=gen) for _ in range(3)]
    xa, xb = x0.clone(), x0.clone()
    sa, sb = opt.init_state(xa), opt.init_state(xb)
    for i, g in enumerate(grads):
        lr = 0.1 / (i + 1)
        res = opt.step(xa, 1.5, g.clone(), lr, sa)
        opt.update(xb, g.clone(), lr, sb)
        assert isinstance(res, StepResult)
        assert res.step_size == lr and res.n_evals == 0 and res.grad is None
        assert res.fun == 1.5
        assert torch.equal(xa, xb)
    assert not torch.equal(xa, x0)


@pytest.mark.parametrize("name", SEARCHES)
def test_search_step_of_zero_leaves_x(name):
    """A search that can find no decrease (f(x) reported 1e6 below its true value, so
    every trial point is worse) returns a step of 0 and leaves x bit-identical."""
    A, _ = _spd()
    opt = OPTIMIZERS[name]()
    x = torch.ones(5, dtype=torch.float64)
    oracle = _QuadraticOracle(A)
    f, g = oracle.value_grad(x)
    res = opt.step(x, f - 1e6, g, 1.0, opt.init_state(x), oracle)
    assert res.step_size == 0.0
    assert res.n_evals >= 1
    assert torch.equal(x, torch.ones(5, dtype=torch.float64))


@pytest.mark.parametrize("name", SEARCHES)
def test_search_at_stationary_point_leaves_x(name):
    """At ∇f = 0 a search leaves x where it is, whatever step it reports."""
    A, _ = _spd()
    opt = OPTIMIZERS[name]()
    x = torch.zeros(5, dtype=torch.float64)
    oracle = _QuadraticOracle(A)
    f, g = oracle.value_grad(x)
    opt.step(x, f, g, 1.0, opt.init_state(x), oracle)
    assert torch.equal(x, torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("name", SEARCHES)
def test_search_step_decreases_on_quadratic(name):
    """Away from the minimiser a search step decreases f, and reports its evaluations."""
    A, _ = _spd()
    opt = OPTIMIZERS[name]()
    x = torch.ones(5, dtype=torch.float64)
    oracle = _QuadraticOracle(A)
    f, g = oracle.value_grad(x)
    oracle.n = 0
    res = opt.step(x, f, g, 1.0, opt.init_state(x), oracle)
    assert res.step_size > 0
    assert oracle.value(x) < f
    assert res.n_evals == oracle.n - 1 >= 1


def test_stateless_methods_keep_no_state():
    """GD, SGD and the line searches keep a NoState."""
    for name in ("gd", "sgd", "line_search", "armijo", "wolfe"):
        assert isinstance(OPTIMIZERS[name]().init_state(torch.zeros(2)), NoState)


# ---------------------------------------------------------------- 3. the step counter
def _regression_data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 2)
    return X, X @ [1.0, -1.0] + 0.5


def test_schedule_formula():
    """The Schedule itself: η₀/k^power_t with k 1-based."""
    s = Schedule("invscaling", 0.3, 0.25)
    assert s(1) == 0.3 and s(16) == pytest.approx(0.15)
    assert math.isclose(Schedule("constant", 0.3)(100), 0.3)


def test_invscaling_counter_continues_across_optimizer_reset():
    """A changed optimizer hyperparameter resets the state, not the schedule: k keeps
    counting and the step sizes continue η₀/k^power_t."""
    X, y = _regression_data(n=40)
    eta0, power_t, b = 0.05, 0.5, 10
    est = LinearRegressor(optimizer=SGD(), learning_rate="invscaling", learning_rate_init=eta0,
                          power_t=power_t, batch_size=b, max_iter=3, tol=None, warm_start=True,
                          random_state=0, device="cpu")
    est.fit(X, y)
    assert est._trainer.k == 3 * 4
    state_before = est._trainer.optimizer
    est.set_params(optimizer=SGD(sampling="with_replacement"))
    est.fit(X, y)
    assert est._trainer.optimizer is not state_before  # the optimizer was restarted
    assert est._trainer.optimizer.sampling == "with_replacement"
    assert est._trainer.k == 6 * 4  # n // b bootstrap batches per epoch
    steps = est.history_["step_size"].to_numpy()[1:]
    expected = [eta0 / (4 * e) ** power_t for e in range(1, 7)]
    np.testing.assert_allclose(steps, expected, rtol=1e-12)
    assert np.all(np.diff(steps) < 0)


def test_adam_count_restarts_but_trainer_k_does_not():
    """After a state reset Adam's bias-correction count starts again from 0 while the
    Trainer's k continues."""
    X, y = _regression_data(n=40)
    est = LinearRegressor(optimizer=Adam(), learning_rate_init=0.01, batch_size=10,
                          max_iter=2, tol=None, warm_start=True, random_state=0, device="cpu")
    est.fit(X, y)
    tr = est._trainer
    assert isinstance(tr.opt_state, AdamState)
    assert tr.opt_state.count == tr.k == 8
    est.set_params(optimizer=Adam(beta_1=0.8))
    est.fit(X, y)
    assert est._trainer is tr
    assert tr.k == 16
    assert tr.opt_state.count == 8  # restarted at 0, then the second call's 8 steps


def test_unchanged_optimizer_keeps_state_across_warm_start():
    """The same hyperparameters keep the state: Adam's count follows k."""
    X, y = _regression_data(n=40)
    est = LinearRegressor(optimizer="adam", learning_rate_init=0.01, batch_size=10,
                          max_iter=2, tol=None, warm_start=True, random_state=0, device="cpu")
    est.fit(X, y)
    est.fit(X, y)
    assert est._trainer.opt_state.count == est._trainer.k == 16


# ---------------------------------------------------------------- 4. snapshot / restore
def _trainer_facts(est):
    tr = est._trainer
    state = copy.deepcopy(tr.opt_state)
    return {
        "x": tr.x.clone(), "state": state, "k": tr.k, "t": tr.t,
        "rows": len(est.history_), "shuffler": tr.shuffler.key(),
        "coef": est.coef_.copy(), "intercept": est.intercept_.copy(),
        "eta": tr.schedule.eta,
    }


def _assert_same_facts(a, b):
    assert torch.equal(a["x"], b["x"])
    assert type(a["state"]) is type(b["state"])
    assert a["state"].count == b["state"].count
    assert torch.equal(a["state"].m, b["state"].m)
    assert torch.equal(a["state"].v, b["state"].v)
    for key in ("k", "t", "rows", "eta"):
        assert a[key] == b[key], key
    assert a["shuffler"] == b["shuffler"]
    np.testing.assert_array_equal(a["coef"], b["coef"])
    np.testing.assert_array_equal(a["intercept"], b["intercept"])


def _started(kind):
    """An Adam model after two partial_fit calls, and its data."""
    if kind == "classifier":
        X, y = _classification_data()
        est = LinearClassifier(optimizer="adam", learning_rate_init=0.05, batch_size=16,
                               tol=None, random_state=0, device="cpu")
        est.partial_fit(X, y, classes=[0, 1])
    else:
        X, y = _regression_data(n=60)
        est = LinearRegressor(optimizer="adam", learning_rate_init=0.05, batch_size=16,
                              tol=None, random_state=0, device="cpu")
        est.partial_fit(X, y)
    est.partial_fit(X, y)
    return est, X, y


def _started_classifier():
    return _started("classifier")


class _FailingObjective:
    """Wraps an objective; its ``value_grad`` raises after ``after`` calls."""

    def __init__(self, inner, after):
        self._inner, self._after, self._calls = inner, after, 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def value_grad(self, *args):
        self._calls += 1
        if self._calls > self._after:
            raise RuntimeError("boom")
        return self._inner.value_grad(*args)


def _fail_wrong_features(clf, X, y, monkeypatch):
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :1], y)


def _fail_unseen_class(clf, X, y, monkeypatch):
    y2 = y.copy()
    y2[0] = 7
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y2)


def _fail_interrupt_before_training(clf, X, y, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(clf), "_make_objective", interrupted)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(X, y)
    monkeypatch.undo()


def _fail_during_training(clf, X, y, monkeypatch):
    """An error in the middle of the epoch, after some steps changed x and the moments."""
    make = type(clf)._make_objective
    monkeypatch.setattr(type(clf), "_make_objective",
                        lambda self, *a: _FailingObjective(make(self, *a), after=2))
    with pytest.raises(RuntimeError, match="boom"):
        clf.partial_fit(X, y)
    monkeypatch.undo()


def _fail_non_finite_start(clf, X, y, monkeypatch):
    """A ValueError raised by the loop itself (non-finite loss at the start), after
    resume changed the trainer (new learning_rate_init restarts the schedule's eta)."""
    clf.set_params(learning_rate_init=0.5)
    with pytest.raises(ValueError, match="non-finite"):
        clf.partial_fit(X * 1e200, y)  # (1e200)² overflows the squared error
    clf.set_params(learning_rate_init=0.05)


FAILURES = [(_fail_wrong_features, "classifier"), (_fail_wrong_features, "regressor"),
            (_fail_unseen_class, "classifier"), (_fail_interrupt_before_training, "classifier"),
            (_fail_during_training, "classifier"), (_fail_during_training, "regressor"),
            (_fail_non_finite_start, "regressor")]


@pytest.mark.parametrize("fail, kind", FAILURES,
                         ids=[f"{f.__name__[6:]}-{k}" for f, k in FAILURES])
def test_failed_partial_fit_restores_everything(fail, kind, monkeypatch):
    """A failed continuing call leaves x, the optimizer state, k, t, the records, the
    shuffler and the fitted attributes as they were; the next successful call gives
    bit-identical results to a twin that never had the failed call."""
    clf, X, y = _started(kind)
    twin, _, _ = _started(kind)
    before = _trainer_facts(clf)
    trainer = clf._trainer
    fail(clf, X, y, monkeypatch)
    assert clf._trainer is trainer
    _assert_same_facts(before, _trainer_facts(clf))
    clf.partial_fit(X, y)
    twin.partial_fit(X, y)
    _assert_same_facts(_trainer_facts(twin), _trainer_facts(clf))
    assert clf.history_["loss"].equals(twin.history_["loss"])
    np.testing.assert_array_equal(clf.loss_curve_, twin.loss_curve_)


def test_successful_partial_fit_keeps_the_trainer_object():
    """A successful partial_fit continues the same Trainer (no deep copy) and adds one
    history row per call; a failed one adds none."""
    clf, X, y = _started_classifier()
    tr, x_tensor = clf._trainer, clf._trainer.x
    rows = len(clf.history_)
    clf.partial_fit(X, y)
    assert clf._trainer is tr
    assert clf._trainer.x is x_tensor  # updated in place
    assert len(clf.history_) == rows + 1
    with pytest.raises(ValueError):
        clf.partial_fit(X[:, :1], y)
    assert len(clf.history_) == rows + 1
    assert list(clf.history_["epoch"]) == list(range(rows + 1))


# ---------------------------------------------------------------- 5. StoppingRules
def _rules(tol=1e-4, n=2, plateau=True, smooth=True):
    return stopping.StoppingRules(tol, n, plateau, smooth)


def _epoch(rules, progress, loss, schedule=None, score=None, gmax=1.0, stalled=False,
           x=None):
    return rules.after_epoch(progress, loss, score, torch.zeros(2) if x is None else x,
                             schedule or Schedule("constant", 0.1), gmax, stalled)


def test_rules_without_tol_never_stop():
    """tol=None: no reason whatever the epoch, but the best loss is still recorded."""
    rules, progress = _rules(tol=None), stopping.Progress()
    for loss in (1.0, 1.0, 1.0, 1.0, 2.0):
        assert _epoch(rules, progress, loss, gmax=0.0, stalled=True) is None
    assert progress.best_loss == 1.0


def test_rules_gradient_converged():
    """max|∇f| ≤ tol is CONVERGED (before the stall and plateau rules)."""
    rules = _rules(tol=1e-3)
    assert _epoch(rules, stopping.Progress(), 1.0, gmax=1e-3, stalled=True) == \
        stopping.CONVERGED
    assert _epoch(rules, stopping.Progress(), 1.0, gmax=2e-3) is None


@pytest.mark.parametrize("smooth, reason", [(True, stopping.STALLED),
                                            (False, stopping.CONVERGED)])
def test_rules_failed_search(smooth, reason):
    """A failed search with the gradient above tol: STALLED for a smooth loss, CONVERGED
    for a nonsmooth one (at a kink)."""
    rules = _rules(smooth=smooth, plateau=False)
    assert _epoch(rules, stopping.Progress(), 1.0, gmax=1.0, stalled=True) == reason


def test_rules_no_plateau_for_search_methods():
    """plateau=False and no validation score: a flat loss never stops."""
    rules, progress = _rules(plateau=False), stopping.Progress()
    for _ in range(10):
        assert _epoch(rules, progress, 1.0) is None
    assert progress.no_improve == 0


def test_rules_plateau_constant():
    """'constant': CONVERGED after n_iter_no_change + 1 epochs without improving by tol."""
    rules, progress = _rules(tol=1e-4, n=2), stopping.Progress()
    schedule = Schedule("constant", 0.1)
    assert _epoch(rules, progress, 1.0, schedule) is None  # improves on inf
    assert _epoch(rules, progress, 1.0 - 5e-5, schedule) is None  # less than tol: 1
    assert progress.no_improve == 1
    assert _epoch(rules, progress, 1.0, schedule) is None  # 2
    assert _epoch(rules, progress, 1.0, schedule) == stopping.CONVERGED  # 3 > 2
    assert progress.no_improve == 0
    assert schedule.eta == 0.1


def test_rules_plateau_improvement_resets_counter():
    """An improvement by more than tol resets the count."""
    rules, progress = _rules(tol=1e-4, n=2), stopping.Progress()
    for loss in (1.0, 1.0, 1.0):
        _epoch(rules, progress, loss)
    assert progress.no_improve == 2
    assert _epoch(rules, progress, 0.5) is None
    assert progress.no_improve == 0
    assert progress.best_loss == 0.5


def test_rules_plateau_adaptive():
    """'adaptive': each plateau divides eta by 5 and training goes on; a plateau at
    eta <= 1e-6 stops."""
    rules, progress = _rules(tol=1e-4, n=1), stopping.Progress()
    schedule = Schedule("adaptive", 1e-5)
    reasons = [_epoch(rules, progress, 1.0, schedule) for _ in range(5)]
    # epoch 1 improves on inf; epochs 2-3 are the first plateau (2 > 1): η = 2e-6;
    # epochs 4-5 the second: η = 4e-7, still trained with
    assert reasons == [None] * 5
    assert schedule.eta == pytest.approx(4e-7)
    # epochs 6-7: a plateau at η <= 1e-6 stops
    assert _epoch(rules, progress, 1.0, schedule) is None
    assert _epoch(rules, progress, 1.0, schedule) == stopping.CONVERGED
    assert schedule.eta == pytest.approx(4e-7)


def test_rules_adaptive_matches_scikit_learn_order():
    """scikit-learn's order: at η = 2e-6 a plateau divides to 4e-7 and training goes
    on; the plateau after that (η = 4e-7 <= 1e-6) stops."""
    rules, progress = _rules(tol=1e-4, n=1), stopping.Progress()
    schedule = Schedule("adaptive", 2e-6)
    reasons = [_epoch(rules, progress, 1.0, schedule) for _ in range(3)]
    assert reasons == [None, None, None]
    assert schedule.eta == pytest.approx(4e-7)
    _epoch(rules, progress, 1.0, schedule)
    assert _epoch(rules, progress, 1.0, schedule) == stopping.CONVERGED


def test_rules_adaptive_plateau_count():
    """'adaptive' with n=1: the plateaus come every 2 non-improving epochs."""
    rules, progress = _rules(tol=1e-4, n=1), stopping.Progress()
    schedule = Schedule("adaptive", 1.0)
    etas = []
    for _ in range(7):
        assert _epoch(rules, progress, 1.0, schedule) is None
        etas.append(schedule.eta)
    assert etas == pytest.approx([1.0, 1.0, 0.2, 0.2, 0.04, 0.04, 0.008])


def test_rules_validation_score():
    """With a validation score: an improving score resets the count and stores best_x;
    a score that does not improve by tol counts, even if the training loss improves."""
    rules, progress = _rules(tol=1e-3, n=1, plateau=False), stopping.Progress()
    x = torch.tensor([1.0, 2.0])
    assert _epoch(rules, progress, 1.0, score=0.5, x=x) is None
    assert torch.equal(progress.best_x, x) and progress.best_x is not x
    x.add_(1.0)  # the loop updates x in place: best_x is a copy
    assert torch.equal(progress.best_x, torch.tensor([1.0, 2.0]))
    assert _epoch(rules, progress, 0.5, score=0.5, x=x) is None  # no better score: 1
    assert progress.no_improve == 1
    assert _epoch(rules, progress, 0.4, score=0.6, x=x) is None  # better: reset
    assert progress.no_improve == 0
    assert torch.equal(progress.best_x, x)
    assert progress.best_validation_score == 0.6
    assert _epoch(rules, progress, 0.3, score=0.6, x=x * 0) is None
    assert _epoch(rules, progress, 0.2, score=0.6005, x=x * 0) == stopping.CONVERGED
    # a score higher but by less than tol is still stored as the best
    assert progress.best_validation_score == 0.6005
    assert torch.equal(progress.best_x, torch.zeros(2))


# ---------------------------------------------------------------- 6. warnings' location
def _only_warning(record, category, match):
    hits = [w for w in record if issubclass(w.category, category) and match in
            str(w.message)]
    assert len(hits) == 1, [str(w.message) for w in record]
    return hits[0]


def test_max_iter_warning_points_at_caller_linear(linear_data):
    """LinearRegressor.fit's max_iter ConvergenceWarning points at this file."""
    X, y = linear_data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as record:
        LinearRegressor(max_iter=2, device="cpu").fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "Maximum").filename == __file__


def test_max_iter_warning_points_at_caller_mlp(linear_data):
    """MLPRegressor.fit's max_iter ConvergenceWarning points at this file."""
    X, y = linear_data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as record:
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                     device="cpu").fit(X[:100], y[:100])
    assert _only_warning(record, ConvergenceWarning, "Maximum").filename == __file__


def test_divergence_warning_points_at_caller(linear_data):
    """The divergence warning of a huge SGD step points at this file (fit and
    partial_fit)."""
    X, y = linear_data
    est = LinearRegressor(optimizer="sgd", learning_rate_init=1e6, max_iter=5,
                          random_state=0, device="cpu")
    with pytest.warns(ConvergenceWarning, match="diverged") as record:
        est.fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "diverged").filename == __file__
    with pytest.warns(ConvergenceWarning, match="diverged") as record:
        est.partial_fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "diverged").filename == __file__


def test_mlp_partial_fit_divergence_warning_points_at_caller(linear_data):
    """MLPRegressor.partial_fit's divergence warning points at this file."""
    X, y = linear_data
    est = MLPRegressor(hidden_layer_sizes=(4,), optimizer="sgd", learning_rate_init=1e6,
                       random_state=0, device="cpu")
    with pytest.warns(ConvergenceWarning, match="diverged") as record:
        est.partial_fit(X[:200], y[:200])
    assert _only_warning(record, ConvergenceWarning, "diverged").filename == __file__


def test_max_fun_warning_points_at_caller(linear_data):
    """L-BFGS's evaluation-budget warning points at this file."""
    X, y = linear_data
    with pytest.warns(ConvergenceWarning, match="max_fun") as record:
        LinearRegressor(optimizer=LBFGS(max_fun=3), device="cpu").fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "max_fun").filename == __file__


def test_warm_start_max_iter_warning_points_at_caller(linear_data):
    """The second, continuing fit of warm_start warns at this file too."""
    X, y = linear_data
    est = LinearRegressor(max_iter=1, warm_start=True, device="cpu")
    with pytest.warns(ConvergenceWarning, match="Maximum"):
        est.fit(X, y)
    with pytest.warns(ConvergenceWarning, match="Maximum") as record:
        est.fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "Maximum").filename == __file__


def test_minimize_divergence_warning_points_at_caller():
    """minimize's divergence warning points at this file."""
    with pytest.warns(ConvergenceWarning, match="Diverged") as record:
        minimize(lambda x: (x**2).sum(), [1.0, 2.0], "gd", learning_rate_init=100.0,
                 max_iter=50)
    assert _only_warning(record, ConvergenceWarning, "Diverged").filename == __file__


def test_batch_size_warning_points_at_caller(linear_data):
    """The batch_size-clipped warning points at this file."""
    X, y = linear_data
    with pytest.warns(UserWarning, match="batch_size") as record:
        LinearRegressor(optimizer="sgd", batch_size=5000, max_iter=1, tol=None,
                        device="cpu").fit(X, y)
    assert _only_warning(record, UserWarning, "batch_size").filename == __file__


def test_interrupt_warning_points_at_caller():
    """Ctrl-C in a callback during training: its UserWarning points at this file."""
    X, y = _classification_data()
    clf = LinearClassifier(optimizer="sgd", max_iter=5, tol=None, random_state=0,
                           device="cpu")
    clf.set_callbacks(EpochInterrupt("begin", 3))
    with pytest.warns(UserWarning, match="interrupted") as record:
        clf.fit(X, y)
    assert _only_warning(record, UserWarning, "interrupted").filename == __file__


def test_warnings_point_at_caller_through_pipelines_and_searches(linear_data):
    """Inside a Pipeline, a scikit-learn search (n_jobs=1) and fit_many the warning
    still points at the user's line, not at scikit-learn's or this library's frames."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skopt_nn import fit_many

    X, y = linear_data
    pipe = make_pipeline(StandardScaler(), LinearRegressor(max_iter=1, device="cpu"))
    with pytest.warns(ConvergenceWarning, match="Maximum") as record:
        pipe.fit(X, y)
    assert _only_warning(record, ConvergenceWarning, "Maximum").filename == __file__
    search = GridSearchCV(LinearRegressor(max_iter=1, device="cpu"), {"alpha": [1e-4]}, cv=2,
                          refit=False)
    with pytest.warns(ConvergenceWarning, match="Maximum") as record:
        search.fit(X, y)
    assert {w.filename for w in record if w.category is ConvergenceWarning} == {__file__}
    models = [MLPRegressor(hidden_layer_sizes=(3,), max_iter=1, alpha=a, random_state=0,
                           device="cpu") for a in (1e-4, 1e-3)]
    with pytest.warns(ConvergenceWarning, match="Maximum") as record:
        fit_many(models, X[:100], y[:100])
    assert {w.filename for w in record if w.category is ConvergenceWarning} == {__file__}


# ---------------------------------------------------------------- 7. pickling typed states
def _tensors(obj):
    """Every tensor or ndarray inside a nested state."""
    if isinstance(obj, torch.Tensor | np.ndarray):
        return [obj]
    if hasattr(obj, "__dataclass_fields__"):
        return [t for f in obj.__dataclass_fields__ for t in _tensors(getattr(obj, f))]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in _tensors(v)]
    return []


@pytest.mark.parametrize("name", ALL)
def test_pickled_state_continues_identically(name):
    """A pickled and unpickled classifier continues bit-identically to the original;
    its optimizer state keeps its type and holds tensors."""
    X, y = _classification_data()
    clf = LinearClassifier(optimizer=name, max_iter=3, tol=None, random_state=0,
                           device="cpu").fit(X, y)
    copy_ = pickle.loads(pickle.dumps(clf))
    state, state2 = clf._trainer.opt_state, copy_._trainer.opt_state
    assert type(state2) is type(state)
    tensors, tensors2 = _tensors(state), _tensors(state2)
    assert len(tensors) == len(tensors2)
    assert all(isinstance(t, torch.Tensor) for t in tensors2)
    for a, b in zip(tensors, tensors2, strict=True):
        assert torch.equal(a, b)
    assert copy_._trainer.k == clf._trainer.k
    clf.partial_fit(X, y)
    copy_.partial_fit(X, y)
    np.testing.assert_array_equal(clf.coef_, copy_.coef_)
    np.testing.assert_array_equal(clf.intercept_, copy_.intercept_)
    assert copy_._trainer.k == clf._trainer.k


def test_pickled_shuffler_continues_or_is_left_to_the_next_call():
    """A linear model's batch orders continue over calls on a stream of its own: it is
    pickled (as its NumPy state), and the copy continues with the original's orders.
    An MLP's composed orders belong to their call (scikit-learn's): not pickled, and
    the next call draws afresh either way."""
    X, y = _classification_data(n=100)
    kw = dict(optimizer="sgd", batch_size=16, max_iter=2, tol=None, random_state=0,
              device="cpu")
    clf = LinearClassifier(**kw).fit(X, y)
    copy_ = pickle.loads(pickle.dumps(clf))
    assert copy_._trainer.shuffler.key() == clf._trainer.shuffler.key()
    for _ in range(2):
        clf.partial_fit(X, y)
        copy_.partial_fit(X, y)
    np.testing.assert_array_equal(clf.coef_, copy_.coef_)
    fresh = LinearClassifier(**kw).fit(X, y)
    fresh._trainer.shuffler = None  # a second stream from the seed: other orders
    fresh.partial_fit(X, y)
    fresh.partial_fit(X, y)
    assert not np.array_equal(fresh.coef_, clf.coef_)
    reg = MLPRegressor(hidden_layer_sizes=(4,), **kw).fit(X, y)
    twin = pickle.loads(pickle.dumps(reg))
    assert reg._trainer.shuffler is not None and twin._trainer.shuffler is None
    reg.partial_fit(X, y)
    twin.partial_fit(X, y)
    np.testing.assert_array_equal(reg.coefs_[0], twin.coefs_[0])


def test_pickled_state_nonempty_for_stateful_methods():
    """The states worth pickling do hold tensors (the check above is not vacuous)."""
    X, y = _classification_data()
    # Adam: m, v and, for torch's fused kernel where it exists, the step count
    adam = 3 if hasattr(torch, "_fused_adam_") else 2
    for name, n in (("adam", adam), ("momentum", 1), ("adagrad", 1), ("rmsprop", 1)):
        clf = LinearClassifier(optimizer=name, max_iter=3, tol=None, random_state=0,
                               device="cpu").fit(X, y)
        assert len(_tensors(pickle.loads(pickle.dumps(clf))._trainer.opt_state)) == n
    clf = LinearClassifier(optimizer="lbfgs", max_iter=3, tol=None, random_state=0,
                           device="cpu").fit(X, y)
    assert len(_tensors(pickle.loads(pickle.dumps(clf))._trainer.opt_state)) >= 3


# ---------------------------------------------------------------- 8. shared iteration
def test_minimize_and_training_loop_share_the_iteration():
    """Gradient descent with a fixed step gives the same loss curve from ``minimize`` on
    F(w) = mean((Xw − y)²)/2 and from LinearRegressor (alpha=0, no intercept)."""
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3)
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(50)
    eta, n_iter = 0.1, 15
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def F(w):
        return ((Xt @ w - yt) ** 2).mean() / 2

    res = minimize(F, np.zeros(3), "gd", learning_rate_init=eta, tol=None, max_iter=n_iter)
    est = LinearRegressor(optimizer="gd", learning_rate_init=eta, tol=None, alpha=0.0,
                          fit_intercept=False, max_iter=n_iter, device="cpu").fit(X, y)
    a = res.history["loss"].to_numpy()
    b = est.history_["loss"].to_numpy()
    assert len(a) == len(b) == n_iter + 1
    np.testing.assert_allclose(b[1:], a[1:], rtol=1e-10)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-10)
    assert np.all(np.diff(a) < 0)
    np.testing.assert_allclose(est.history_["step_size"].to_numpy()[1:], eta)
    np.testing.assert_allclose(est.coef_, res.x.numpy(), rtol=1e-10)

