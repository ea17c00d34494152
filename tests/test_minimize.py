"""Tests of :func:`skopt_nn.optim.minimize`: every method on functions whose answer is
known in closed form, the history it returns, the lecture's convergence criteria,
divergence handling and argument validation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _helpers import SEARCH_METHODS
from sklearn.exceptions import ConvergenceWarning

from skopt_nn.optim import OPTIMIZERS, Momentum, minimize

# --------------------------------------------------------------------------- #
# A strongly convex quadratic f(x) = ½ (x - x*)ᵀ A (x - x*), μ = 1, L = 10.     #
# --------------------------------------------------------------------------- #

DIM = 5
MU, L = 1.0, 10.0
_rng = np.random.default_rng(0)
_Q, _ = np.linalg.qr(_rng.normal(size=(DIM, DIM)))
EIGS = np.linspace(MU, L, DIM)
A = _Q @ np.diag(EIGS) @ _Q.T
X_STAR = _rng.normal(size=DIM)
X0 = _rng.normal(size=DIM)
At, Xt = torch.from_numpy(A), torch.from_numpy(X_STAR)


def quad(x):
    r = x - Xt
    return 0.5 * r @ At @ r


def quad_np(x):
    r = x - X_STAR
    return 0.5 * r @ A @ r


def quad_grad_np(x):
    return A @ (x - X_STAR)


def rosen(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def _run(*args, **kwargs):
    """minimize, turning any ConvergenceWarning into a test failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return minimize(*args, **kwargs)


# method -> the step settings it converges with on the quadratic.  AdaGrad damps
# its own step; RMSProp's normalised step needs a decaying η to settle (Eq. 17).
CONVERGENT = {
    "gd": {},
    "sgd": {},
    "momentum": {},
    "line_search": {},
    "armijo": {},
    "wolfe": {},
    "steepest_descent": {},
    "lbfgs": {},
    "adagrad": {"learning_rate_init": 1.0},
    "rmsprop": {"learning_rate_init": 0.5, "learning_rate": "invscaling"},
    "adam": {"learning_rate_init": 0.1},
}


def test_convergent_settings_cover_every_method():
    assert set(CONVERGENT) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(CONVERGENT))
def test_every_method_converges_on_strongly_convex_quadratic(name):
    tol = 1e-6
    res = _run(quad, X0.copy(), name, tol=tol, max_iter=3000, **CONVERGENT[name])
    assert res.success, res.message
    assert 0 < res.nit < 3000
    x = res.x.numpy()
    g = quad_grad_np(x)
    assert np.linalg.norm(g) <= tol
    # strong convexity: ‖x - x*‖ ≤ ‖∇f(x)‖ / μ
    assert np.linalg.norm(x - X_STAR) <= tol / MU * (1 + 1e-6)
    assert res.fun == pytest.approx(quad_np(x), rel=1e-10, abs=1e-18)
    np.testing.assert_allclose(res.grad.numpy(), g, rtol=1e-8, atol=1e-15)
    h = res.history
    assert len(h) == res.nit + 1
    assert h["loss"].iloc[0] == pytest.approx(quad_np(X0), rel=1e-14)
    assert h["loss"].iloc[-1] == res.fun
    assert h["grad_norm"].iloc[-1] == pytest.approx(np.linalg.norm(g), rel=1e-8, abs=1e-18)
    assert h["n_evals"].iloc[-1] == res.nfev
    assert np.all(np.diff(h["n_evals"].to_numpy()) > 0)


@pytest.mark.parametrize("name", SEARCH_METHODS)
@pytest.mark.parametrize("problem", ["quadratic", "rosenbrock"])
def test_search_methods_never_increase_the_loss(name, problem):
    if problem == "quadratic":
        res = _run(quad, X0.copy(), name, tol=1e-6, max_iter=500)
    else:
        res = _run(rosen, [-1.2, 1.0], name, tol=1e-6, max_iter=80)
    h = res.history
    assert len(h) == res.nit + 1
    loss, step, gnorm = (h[c].to_numpy() for c in ("loss", "step_size", "grad_norm"))
    assert np.all(np.diff(loss) <= 0)
    assert np.all(step[1:] > 0)
    if name == "line_search":  # Eq. 6: a strict decrease every iteration
        assert np.all(np.diff(loss) < 0)
    if name in ("armijo", "wolfe"):
        # sufficient decrease along -∇f: f_k ≤ f_{k-1} - c1 η_k ‖∇f_{k-1}‖²
        c1 = OPTIMIZERS[name]().c1
        bound = loss[:-1] - c1 * step[1:] * gnorm[:-1] ** 2
        assert np.all(loss[1:] <= bound + 1e-12 * np.abs(loss[:-1]))


@pytest.mark.parametrize("x0", [[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0], [-0.5, 1.5]])
def test_lbfgs_solves_rosenbrock(x0):
    res = _run(rosen, x0, "lbfgs", tol=1e-9, max_iter=500)
    assert res.success, res.message
    np.testing.assert_allclose(res.x.numpy(), [1.0, 1.0], atol=1e-6, rtol=0)
    assert res.nit < 200
    assert np.all(np.diff(res.history["loss"].to_numpy()) <= 0)


# --------------------------------------------------------------------------- #
# 'auto' step of gradient descent: η = 1/L (Eq. 3).                           #
# --------------------------------------------------------------------------- #


def test_gd_auto_step_is_one_over_L_along_top_eigenvector():
    """∇f(x0) along the top eigenvector: the estimate is exact and GD lands on x*."""
    x0 = X_STAR + 0.7 * _Q[:, -1]
    res = _run(quad, x0, "gd", tol=1e-8, max_iter=100)
    assert res.history["step_size"].iloc[1] == pytest.approx(1.0 / L, rel=1e-6)
    assert res.nit == 1  # x0 - (1/L) L (x0 - x*) = x*
    np.testing.assert_allclose(res.x.numpy(), X_STAR, atol=1e-8)


def test_gd_auto_step_converges_like_one_over_L():
    """Generic start: η ∈ [1/L, 2/L) and no more iterations than GD with η = 1/L needs."""
    tol = 1e-8
    res = _run(quad, X0.copy(), "gd", tol=tol, max_iter=5000)
    eta = res.history["step_size"].iloc[1]
    assert 1.0 / L * (1 - 1e-6) <= eta < 2.0 / L
    assert np.all(res.history["step_size"].to_numpy()[1:] == eta)  # constant schedule
    # GD with η = 1/L contracts ∇f by at most ρ = 1 - μ/L per step
    g0 = np.linalg.norm(quad_grad_np(X0))
    bound = math.ceil(math.log(tol / g0) / math.log(1 - MU / L))
    rho = max(abs(1 - eta * lam) for lam in EIGS)
    assert rho <= 1 - MU / L + 1e-9
    assert res.nit <= bound
    assert res.success


def test_gd_auto_step_does_not_diverge_when_gradient_misses_top_eigenvector():
    """f = ½(x₁² + 100 x₂²) from (1, 1e-3): ∇f(x0) = (1, 0.1) is nearly an
    eigenvector of the *small* eigenvalue.  An L estimated only along ∇f(x0) is
    ‖H∇f‖/‖∇f‖ ≈ 10, so η ≈ 0.1 > 2/L = 0.02 and gradient descent diverges.
    The lecture's 1/L (Eq. 3) needs the largest curvature, not the local one.
    """
    h = torch.tensor([1.0, 100.0], dtype=torch.float64)

    def f(x):
        return 0.5 * (h * x * x).sum()

    res = _run(f, [1.0, 1e-3], "gd", tol=1e-8, max_iter=5000)
    assert res.history["step_size"].iloc[1] < 2.0 / 100.0
    assert res.success, res.message


# --------------------------------------------------------------------------- #
# History and the convergence criteria.                                       #
# --------------------------------------------------------------------------- #


def _recorded(criterion, tol, lr=0.05, name="gd", max_iter=2000):
    seen = []
    res = _run(quad, X0.copy(), name, learning_rate_init=lr, tol=tol, max_iter=max_iter,
               criterion=criterion,
               callback=lambda k, x, f: seen.append((k, x.numpy().copy(), f)))
    xs = np.array([X0] + [x for _, x, _ in seen])
    return res, seen, xs


def test_history_matches_the_iterates():
    res, seen, xs = _recorded("gradient_norm", 1e-6)
    h = res.history
    assert list(h.columns) == ["loss", "grad_norm", "step_size", "n_evals"]
    assert h.index.name == "iteration"
    assert len(h) == res.nit + 1 == len(xs)
    assert [k for k, _, _ in seen] == list(range(1, res.nit + 1))
    np.testing.assert_allclose(h["loss"], [quad_np(x) for x in xs], rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose([f for _, _, f in seen], h["loss"].to_numpy()[1:], rtol=0)
    np.testing.assert_allclose(h["grad_norm"], [np.linalg.norm(quad_grad_np(x)) for x in xs],
                               rtol=1e-9, atol=1e-15)
    assert h["step_size"].iloc[0] == 0.0
    assert np.all(h["step_size"].to_numpy()[1:] == 0.05)
    # Eq. 4 between recorded iterates
    np.testing.assert_allclose(np.diff(xs, axis=0),
                               -0.05 * np.array([quad_grad_np(x) for x in xs[:-1]]),
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(res.x.numpy(), xs[-1])


def test_criterion_gradient_norm_stops_at_first_small_gradient():
    tol = 1e-6
    res, _, xs = _recorded("gradient_norm", tol)
    gn = [np.linalg.norm(quad_grad_np(x)) for x in xs]
    assert res.success
    assert gn[-1] <= tol * (1 + 1e-9)
    assert min(gn[:-1]) > tol


def test_criterion_cost_change_stops_at_first_small_change():
    tol = 1e-9
    res, _, xs = _recorded("cost_change", tol)
    df = np.abs(np.diff([quad_np(x) for x in xs]))
    assert res.success and res.nit == len(df)
    assert df[-1] <= tol * (1 + 1e-6)
    assert np.min(df[:-1]) > tol
    # it stopped well before the gradient was small: a different criterion
    assert np.linalg.norm(quad_grad_np(xs[-1])) > 1e-6


def test_criterion_gradient_change_stops_at_first_small_change():
    tol = 1e-5
    res, _, xs = _recorded("gradient_change", tol)
    dg = np.linalg.norm(np.diff([quad_grad_np(x) for x in xs], axis=0), axis=1)
    assert res.success and res.nit == len(dg)
    assert dg[-1] <= tol * (1 + 1e-6)
    assert np.min(dg[:-1]) > tol


# one of each kind: fixed step, adaptive step, line search, quasi-Newton
@pytest.mark.parametrize("name", ["gd", "adam", "wolfe", "lbfgs"])
def test_criterion_max_iter_runs_exactly_max_iter(name):
    max_iter = 7
    res = _run(rosen, [-1.2, 1.0], name, criterion="max_iter", tol=1e300, max_iter=max_iter,
               learning_rate_init=1e-4 if name == "gd" else "auto")
    assert res.nit == max_iter
    assert not res.success
    assert len(res.history) == max_iter + 1
    assert "Maximum number of iterations" in res.message


def test_max_iter_zero_returns_the_start():
    res = _run(quad, X0.copy(), "gd", max_iter=0)
    assert res.nit == 0 and not res.success
    np.testing.assert_array_equal(res.x.numpy(), X0)
    assert len(res.history) == 1
    assert res.fun == pytest.approx(quad_np(X0), rel=1e-14)


@pytest.mark.parametrize("criterion", ["gradient_norm", "cost_change", "gradient_change"])
def test_large_tolerance_stops_after_one_iteration(criterion):
    res = _run(quad, X0.copy(), "gd", criterion=criterion, tol=1e300, max_iter=50)
    assert res.nit == 1 and res.success


# the searches that stop when they find no decrease (see the docstring)
@pytest.mark.parametrize("name", ["line_search", "wolfe", "steepest_descent"])
def test_success_means_the_gradient_norm_criterion_holds(name):
    """``success``: "Whether the convergence criterion was met".

    With f* = -3 the line searches eventually find no decrease of f in floating
    point before ‖∇f‖ ≤ 1e-10; ``minimize`` then stops.  That is fine, but it must
    not report the criterion as met when it is not.
    """
    def f(x):
        return quad(x) - 3.0

    tol = 1e-10
    res = minimize(f, X0.copy(), name, tol=tol, max_iter=5000)
    assert not res.success or float(res.grad.norm()) <= tol, res.message


def test_max_iter_criterion_never_reports_success():
    """Documented: ``success`` is "always False for criterion='max_iter'"."""
    def f(x):
        return quad(x) - 3.0

    res = minimize(f, X0.copy(), "wolfe", criterion="max_iter", max_iter=3000)
    assert not res.success, res.message


# --------------------------------------------------------------------------- #
# Divergence.                                                                 #
# --------------------------------------------------------------------------- #


# the update rules whose step is η times the gradient (the adaptive ones rescale it)
@pytest.mark.parametrize("name", ["gd", "sgd", "momentum"])
def test_divergent_step_returns_last_finite_point_with_warning(name):
    """f = ½‖x‖² (L = 1) with η = 10: x_k = (1 - 10)^k x0 for GD; it blows up."""
    x0 = np.array([1.0, -2.0])

    def f(x):
        return 0.5 * (x * x).sum()

    with pytest.warns(ConvergenceWarning, match="[Dd]iverg"):
        res = minimize(f, x0.copy(), name, learning_rate_init=10.0, max_iter=1000)
    assert not res.success
    assert res.nit < 1000
    x = res.x.numpy()
    assert np.all(np.isfinite(x))
    assert res.fun == pytest.approx(0.5 * x @ x, rel=1e-14)
    assert len(res.history) == res.nit + 1
    assert np.all(np.isfinite(res.history.to_numpy()))
    if name in ("gd", "sgd"):
        np.testing.assert_allclose(x, (-9.0) ** res.nit * x0, rtol=1e-12)


# update rules, each at a step that raises f at first (see the docstring)
@pytest.mark.parametrize(
    "name, lr", [("adam", 0.5), ("rmsprop", 1.0), ("momentum", 0.15), ("gd", 0.19)])
def test_adding_a_constant_to_f_changes_nothing(name, lr):
    """f and f + c have the same gradients, so an update rule must take the same steps.

    With f(x) = ½xᵀAx - bᵀx from x0 = 0, f(x0) = 0; a first step that raises f a
    little must not be taken for divergence just because |f(x0)| is 0.
    """
    b = torch.from_numpy(np.random.default_rng(3).normal(size=DIM))

    def f0(x):
        return 0.5 * x @ At @ x - b @ x

    def f1(x):
        return f0(x) + 1.0

    runs = []
    for f in (f1, f0):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = minimize(f, np.zeros(DIM), name, learning_rate_init=lr, criterion="max_iter",
                           max_iter=30)
        runs.append((res, [str(w.message) for w in caught]))
    (r1, w1), (r0, w0) = runs
    assert w1 == [] and r1.nit == 30  # the shifted run is well behaved...
    assert np.all(np.abs(r1.x.numpy()) < 1e3)
    assert w0 == [] and r0.nit == 30  # ...so the unshifted one must be too
    np.testing.assert_allclose(r0.x.numpy(), r1.x.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- #
# Arguments.                                                                  #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"criterion": "loss"}, "criterion"),
        ({"optimizer": "newton"}, "optimizer"),
        ({"optimizer": 3}, "optimizer"),
        ({"learning_rate": "cosine"}, "learning_rate"),
        ({"learning_rate_init": -1.0}, "learning_rate_init"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"learning_rate_init": "fast"}, "learning_rate_init"),
        ({"max_iter": -1}, "max_iter"),
    ],
)
def test_invalid_arguments_raise_naming_the_parameter(kwargs, param):
    kwargs = {"optimizer": "gd", **kwargs}
    with pytest.raises(ValueError, match=param):
        minimize(quad, X0.copy(), **kwargs)


def test_invalid_optimizer_hyperparameters_are_rejected():
    """The estimators call ``optimizer._validate_params()``; minimize must too."""
    with pytest.raises(ValueError, match="momentum"):
        minimize(quad, X0.copy(), Momentum(momentum=1.5), max_iter=5)


# an update rule without and with state, and a search method
@pytest.mark.parametrize("name", ["gd", "adam", "lbfgs"])
def test_x0_is_not_modified(name):
    x0_np = X0.copy()
    x0_t = torch.from_numpy(X0.copy())
    for x0 in (x0_np, x0_t):
        res = minimize(quad, x0, name, max_iter=5, criterion="max_iter")
        assert res.nit == 5
    np.testing.assert_array_equal(x0_np, X0)
    np.testing.assert_array_equal(x0_t.numpy(), X0)


# update rules and search methods (these evaluate fun along a line)
@pytest.mark.parametrize("name", ["gd", "momentum", "wolfe", "lbfgs"])
def test_jac_true_matches_autograd(name):
    def fun_jac(x):
        xn = x.numpy()
        return quad_np(xn), quad_grad_np(xn)

    a = minimize(quad, X0.copy(), name, max_iter=20, criterion="max_iter",
                 learning_rate_init=0.05)
    b = minimize(fun_jac, X0.copy(), name, jac=True, max_iter=20, criterion="max_iter",
                 learning_rate_init=0.05)
    assert a.nit == b.nit
    np.testing.assert_allclose(a.x.numpy(), b.x.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-9, atol=1e-15)


# an update rule and a search method
@pytest.mark.parametrize("name", ["gd", "lbfgs"])
def test_matrix_shaped_x0(name):
    """x0 of any shape: the result has that shape and matches the flat problem."""
    x0 = np.concatenate([X0, [0.0]]).reshape(2, 3)

    def f6(x):
        v = x.reshape(-1)
        return quad(v[:DIM]) + 0.5 * v[DIM] ** 2

    res = minimize(f6, x0.copy(), name, max_iter=10, criterion="max_iter",
                   learning_rate_init=0.05)
    flat = minimize(lambda v: quad(v[:DIM]) + 0.5 * v[DIM] ** 2, x0.reshape(-1).copy(), name,
                    max_iter=10, criterion="max_iter", learning_rate_init=0.05)
    assert tuple(res.x.shape) == (2, 3) and tuple(res.grad.shape) == (2, 3)
    np.testing.assert_allclose(res.x.numpy().reshape(-1), flat.x.numpy(), rtol=1e-13)


# ----------------------------------------------------- careful arguments and results
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_tol_none_runs_exactly_max_iter(name):
    """No criterion: every iteration is taken, also after a line search has reached
    the optimum to rounding (L-BFGS solves the 5-D quadratic in about 5 steps)."""
    res = _run(quad, X0.copy(), name, tol=None, max_iter=40, learning_rate_init=0.01
               if name in ("adagrad", "rmsprop", "adam") else "auto")
    assert res.nit == 40 and len(res.history) == 41
    assert not res.success and "Maximum number of iterations (40)" in res.message
    assert res.fun < quad_np(X0)


@pytest.mark.parametrize("x0", [[-1.0, 2.0], [0.0, 1.0]])
def test_not_finite_at_x0_is_an_error_naming_x0(x0):
    with pytest.raises(ValueError, match=r"not finite at x0 \(f\(x0\) = (nan|-inf)\)"):
        minimize(lambda x: torch.log(x).sum(), x0, "gd")


def test_non_finite_gradient_at_x0_is_an_error():
    with pytest.raises(ValueError, match="gradient of fun is not finite at x0"):
        minimize(lambda x: torch.sqrt(x).sum(), [0.0, 1.0], "gd")


@pytest.mark.parametrize("jac", [False, True])
def test_non_scalar_objective_is_an_error(jac):
    fun = (lambda x: (x**2, 2 * x)) if jac else (lambda x: x**2)
    with pytest.raises(ValueError, match="must return a scalar value; fun.x. returned 5"):
        minimize(fun, X0.copy(), "gd", jac=jac)


def test_objective_not_built_from_x_is_an_error():
    with pytest.raises(ValueError, match="autograd"):
        minimize(lambda x: 3.0, X0.copy(), "gd")


def test_numpy_scalars_are_accepted_as_numbers():
    res = minimize(quad, X0.copy(), "gd", learning_rate_init=np.float32(0.05),
                   max_iter=np.int64(7), tol=np.float64(1e-12), power_t=np.float32(0.5),
                   learning_rate="invscaling")
    ref = minimize(quad, X0.copy(), "gd", learning_rate_init=float(np.float32(0.05)),
                   max_iter=7, tol=1e-12, learning_rate="invscaling")
    assert res.nit == 7
    np.testing.assert_array_equal(res.x.numpy(), ref.x.numpy())


@pytest.mark.parametrize(
    "kwargs, param",
    [({"tol": -1.0}, "tol"), ({"tol": "small"}, "tol"), ({"max_iter": 2.5}, "max_iter"),
     ({"power_t": -0.5}, "power_t"), ({"jac": "yes"}, "jac"), ({"callback": 3}, "callback")],
)
def test_arguments_are_validated_declaratively(kwargs, param):
    """The estimators' constraint machinery: an InvalidParameterError naming the
    parameter (both a ValueError and a TypeError, as scikit-learn's)."""
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of minimize"):
        minimize(quad, X0.copy(), "gd", **kwargs)
