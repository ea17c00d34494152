"""Reference tests for the scalar line searches and the full-batch search methods.

* ``wolfe`` against :func:`scipy.optimize.line_search` (same c1, c2, direction
  -∇f, first trial η = 1) and the strong Wolfe conditions at every returned step;
* ``armijo`` and ``halving`` (lecture Eq. 5-7): the accepted step satisfies its
  test and the trial before it did not;
* ``exact`` (steepest descent, Eq. 9) against the closed form gᵀg / gᵀHg;
* ``iterate`` of the search methods on an oracle, L-BFGS's two-loop recursion
  against the dense BFGS inverse-Hessian update.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.optimize._linesearch as scipy_ls
import torch
from scipy.optimize import rosen, rosen_der

from skopt_nn.optim import (
    LBFGS,
    ArmijoLineSearch,
    HalvingLineSearch,
    SteepestDescent,
    WolfeLineSearch,
    line_search,
)

C1 = 1e-4

# --------------------------------------------------------------------------- #
# Test functions: a quadratic, Rosenbrock, an L2-regularised logistic loss.   #
# --------------------------------------------------------------------------- #

_rng = np.random.default_rng(0)
_Q, _ = np.linalg.qr(_rng.normal(size=(4, 4)))
A_QUAD = _Q @ np.diag([1.0, 2.0, 5.0, 20.0]) @ _Q.T
B_QUAD = _rng.normal(size=4)


def quad_f(x):
    return 0.5 * x @ A_QUAD @ x - B_QUAD @ x


def quad_g(x):
    return A_QUAD @ x - B_QUAD


_X_LOG = _rng.normal(size=(60, 4))
_Y_LOG = np.where(_X_LOG @ _rng.normal(size=4) + 0.5 * _rng.normal(size=60) > 0, 1.0, -1.0)
_ALPHA = 0.05


def logreg_f(w):
    return np.mean(np.logaddexp(0.0, -_Y_LOG * (_X_LOG @ w))) + _ALPHA * w @ w


def logreg_g(w):
    s = 1.0 / (1.0 + np.exp(_Y_LOG * (_X_LOG @ w)))
    return -(_X_LOG.T @ (_Y_LOG * s)) / len(_Y_LOG) + 2 * _ALPHA * w


CASES = (
    [(f"quadratic-{i}", quad_f, quad_g, p)
     for i, p in enumerate([np.ones(4), np.array([0.1, -0.2, 0.05, 0.3]), 5 * _rng.normal(size=4)])]
    + [(f"rosenbrock{tuple(p)}", rosen, rosen_der, np.array(p, dtype=float))
       for p in ([-1.2, 1.0], [0.0, 0.0], [2.0, 2.0], [-0.5, 1.5], [1.5, -0.5], [0.9, 0.8])]
    + [(f"logistic-{i}", logreg_f, logreg_g, p)
       for i, p in enumerate([np.zeros(4), _rng.normal(size=4), 3 * _rng.normal(size=4)])]
)
CASE_IDS = [c[0] for c in CASES]
CASE_ARGS = [c[1:] for c in CASES]


def _ray(f, g, x, d=None):
    d = -g(x) if d is None else d

    def phi(eta):
        return float(f(x + eta * d))

    def dphi(eta):
        return float(g(x + eta * d) @ d)

    return phi, dphi, d


def _assert_strong_wolfe(phi, dphi, res, c1, c2):
    phi0, dphi0 = phi(0.0), dphi(0.0)
    assert res.step > 0
    assert res.phi == pytest.approx(phi(res.step), rel=1e-13, abs=1e-300)
    assert res.phi <= phi0 + c1 * res.step * dphi0  # sufficient decrease
    assert abs(dphi(res.step)) <= -c2 * dphi0  # strong curvature condition
    if res.dphi is not None:
        assert res.dphi == pytest.approx(dphi(res.step), rel=1e-12, abs=1e-300)


def _wolfe_vs_scipy(f, g, x, c2, monkeypatch):
    """Run both searches; also report whether scipy interpolated on a reversed bracket.

    scipy's ``_zoom`` measures the safeguard band with the *signed* width
    ``dalpha = a_hi - a_lo``; when a_lo > a_hi it admits trial points outside the
    bracket (scipy/scipy#13695, open).  The library uses ``abs(width)`` (Nocedal and
    Wright's safeguard), so the two trial sequences may part there, both ending at
    valid strong Wolfe steps.  Everywhere else the algorithms are the same and the
    accepted steps must agree.
    """
    phi, dphi, d = _ray(f, g, x)
    res = line_search.wolfe(phi, dphi, phi(0.0), dphi(0.0), eta0=1.0, c1=C1, c2=c2)

    reversed_bracket = []
    cubic, quad = scipy_ls._cubicmin, scipy_ls._quadmin

    def rec_cubic(a_lo, f_lo, d_lo, a_hi, *rest):
        reversed_bracket.append(a_lo > a_hi)
        return cubic(a_lo, f_lo, d_lo, a_hi, *rest)

    def rec_quad(a_lo, f_lo, d_lo, a_hi, *rest):
        reversed_bracket.append(a_lo > a_hi)
        return quad(a_lo, f_lo, d_lo, a_hi, *rest)

    monkeypatch.setattr(scipy_ls, "_cubicmin", rec_cubic)
    monkeypatch.setattr(scipy_ls, "_quadmin", rec_quad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy_ls.LineSearchWarning)
        alpha, fc, _, new_f, _, _ = scipy.optimize.line_search(
            f, g, x, d, gfk=g(x), old_fval=f(x), c1=C1, c2=c2)
    monkeypatch.undo()
    return phi, dphi, res, alpha, fc, new_f, any(reversed_bracket)


@pytest.mark.parametrize("c2", [0.9, 0.5, 0.1])
@pytest.mark.parametrize("f, g, x", CASE_ARGS, ids=CASE_IDS)
def test_wolfe_strong_conditions_and_scipy(f, g, x, c2, monkeypatch):
    phi, dphi, res, alpha, fc, new_f, reversed_bracket = _wolfe_vs_scipy(f, g, x, c2, monkeypatch)
    _assert_strong_wolfe(phi, dphi, res, C1, c2)
    if alpha is not None and not reversed_bracket:
        assert res.step == pytest.approx(alpha, rel=1e-10)
        assert res.phi == pytest.approx(new_f, rel=1e-12, abs=1e-300)
        assert res.n_evals == fc  # both count evaluations of φ beyond φ(0)


def test_wolfe_scipy_comparison_is_not_vacuous(monkeypatch):
    """Most cases must actually be compared with scipy (at the default c2)."""
    compared = 0
    for f, g, x in CASE_ARGS:
        *_, alpha, _, _, rev = _wolfe_vs_scipy(f, g, x, 0.9, monkeypatch)
        compared += alpha is not None and not rev
    assert compared >= len(CASES) - 2


def test_wolfe_respects_eta_max_and_expands():
    """φ decreasing on [0, 10]: bracketing doubles from eta0, eta_max caps it."""
    phi, dphi, _ = _ray(quad_f, quad_g, np.array([1.0, -2.0, 0.5, 3.0]))
    res = line_search.wolfe(phi, dphi, phi(0.0), dphi(0.0), eta0=1e-4, c1=C1, c2=0.1)
    _assert_strong_wolfe(phi, dphi, res, C1, 0.1)
    assert res.step > 1e-4
    capped = line_search.wolfe(phi, dphi, phi(0.0), dphi(0.0), eta0=1e-4, c1=C1, c2=0.1,
                               eta_max=2e-4)
    assert 0 < capped.step <= 2e-4


# --------------------------------------------------------------------------- #
# Armijo and halving.                                                         #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("c1, shrink, eta0", [(1e-4, 0.5, 1.0), (0.3, 0.3, 1.0), (1e-4, 0.7, 10.0)])
@pytest.mark.parametrize("f, g, x", CASE_ARGS, ids=CASE_IDS)
def test_armijo(f, g, x, c1, shrink, eta0):
    phi, dphi, _ = _ray(f, g, x)
    phi0, dphi0 = phi(0.0), dphi(0.0)
    res = line_search.armijo(phi, phi0, dphi0, eta0=eta0, c1=c1, shrink=shrink)
    assert 0 < res.step <= eta0
    assert res.phi == phi(res.step)
    assert res.phi <= phi0 + c1 * res.step * dphi0
    j = round(math.log(res.step / eta0) / math.log(shrink))  # step = eta0 * shrink**j
    assert res.step == pytest.approx(eta0 * shrink**j, rel=1e-12)
    assert res.n_evals == j + 1
    if res.step < eta0:
        prev = res.step / shrink
        assert phi(prev) > phi0 + c1 * prev * dphi0


@pytest.mark.parametrize("eta0", [1.0, 8.0, 1e-3])
@pytest.mark.parametrize("f, g, x", CASE_ARGS, ids=CASE_IDS)
def test_halving(f, g, x, eta0):
    """Eq. 5-7: halve η until f decreases; 2η did not decrease f."""
    phi, _, _ = _ray(f, g, x)
    phi0 = phi(0.0)
    res = line_search.halving(phi, phi0, eta0=eta0)
    assert 0 < res.step <= eta0
    assert res.phi == phi(res.step) < phi0
    j = round(math.log2(eta0 / res.step))
    assert res.step == eta0 * 0.5**j
    assert res.n_evals == j + 1
    if res.step < eta0:
        assert phi(2 * res.step) >= phi0


@pytest.mark.parametrize("eta0", [1.0, 4.0])
@pytest.mark.parametrize("shrink", [0.5, 0.3])
@pytest.mark.parametrize("c1", [1e-4, 0.5, 0.75, 0.9])
def test_armijo_on_parabola_closed_form(c1, shrink, eta0):
    """φ(η) = -η + η²/2: φ(η) ≤ φ(0) + c1 η φ'(0) iff η ≤ 2(1 - c1), so the step is
    the first eta0·shrinkʲ at or below 2(1 - c1)."""
    res = line_search.armijo(lambda e: -e + 0.5 * e * e, 0.0, -1.0, eta0=eta0, c1=c1,
                             shrink=shrink)
    j = 0
    while eta0 * shrink**j > 2 * (1 - c1):
        j += 1
    assert res.step == pytest.approx(eta0 * shrink**j, rel=1e-12)
    assert res.n_evals == j + 1


@pytest.mark.parametrize("eta0", [1.0, 3.0, 64.0])
def test_halving_on_parabola_closed_form(eta0):
    """φ(η) = -η + η²/2 < φ(0) iff 0 < η < 2: the first eta0·2⁻ʲ below 2."""
    res = line_search.halving(lambda e: -e + 0.5 * e * e, 0.0, eta0=eta0)
    j = 0
    while not eta0 * 0.5**j < 2.0:
        j += 1
    assert res.step == eta0 * 0.5**j
    assert res.n_evals == j + 1


@pytest.mark.parametrize("c1, c2", [(1e-4, 0.9), (1e-4, 0.1), (0.3, 0.5)])
@pytest.mark.parametrize("eta0", [1e-3, 1.0, 1.5, 30.0])
def test_wolfe_on_parabola_lands_in_the_wolfe_interval(c1, c2, eta0):
    """φ(η) = -η + η²/2: strong Wolfe ⇔ |η - 1| ≤ c2 and η ≤ 2(1 - c1)."""
    res = line_search.wolfe(lambda e: -e + 0.5 * e * e, lambda e: e - 1.0, 0.0, -1.0,
                            eta0=eta0, c1=c1, c2=c2)
    assert 1 - c2 <= res.step <= min(1 + c2, 2 * (1 - c1))
    if 1 - c2 <= eta0 <= min(1 + c2, 2 * (1 - c1)):
        assert res.step == eta0 and res.n_evals == 1  # the first trial is accepted


def test_halving_stops_below_two_over_L():
    """Eq. 7 on f(x) = L x²/2 from x = 1: f decreases iff 0 < η < 2/L."""
    L = 37.0

    def phi(eta):
        return 0.5 * L * (1.0 - eta * L) ** 2

    res = line_search.halving(phi, phi(0.0), eta0=1.0)
    assert res.step < 2 / L <= 2 * res.step


def test_no_descent_returns_zero_step():
    def phi(eta):
        return 1.0 + eta**2

    res = line_search.halving(phi, 1.0, eta0=1.0, max_halvings=10)
    assert (res.step, res.phi, res.n_evals) == (0.0, 1.0, 10)
    res = line_search.armijo(phi, 1.0, -1.0, eta0=1.0, max_iter=10)
    assert (res.step, res.phi, res.n_evals) == (0.0, 1.0, 10)


# --------------------------------------------------------------------------- #
# Exact line search (steepest descent, Eq. 9).                                #
# --------------------------------------------------------------------------- #


def _spd(seed, d=5, cond=50.0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = Q @ np.diag(np.geomspace(1.0, cond, d)) @ Q.T
    return A, rng.normal(size=d), rng.normal(size=d)


@pytest.mark.parametrize("eta0", [1e-3, 1.0, 100.0])
@pytest.mark.parametrize("seed", range(4))
def test_exact_on_quadratic_is_closed_form(seed, eta0):
    A, b, x = _spd(seed)
    g = A @ x - b

    def phi(eta):
        y = x - eta * g
        return float(0.5 * y @ A @ y - b @ y)

    def dphi(eta):
        return float((A @ (x - eta * g) - b) @ -g)

    res = line_search.exact(phi, dphi, phi(0.0), dphi(0.0), eta0=eta0)
    eta_star = (g @ g) / (g @ A @ g)
    assert res.step == pytest.approx(eta_star, rel=2**-24)  # rounded to 24 bits
    assert res.phi == phi(res.step)
    # the rounded step keeps all but a fraction δ² ≈ 4e-15 of the exact decrease
    decrease = phi(0.0) - phi(eta_star)
    assert res.phi - phi(eta_star) <= 1e-13 * decrease + 4e-16 * abs(phi(eta_star))


def test_exact_finds_local_minimiser_of_nonquadratic():
    res = line_search.exact(lambda e: math.exp(e) - 2.0 * e, lambda e: math.exp(e) - 2.0,
                            1.0, -1.0, eta0=1.0)
    assert res.step == pytest.approx(math.log(2.0), rel=2**-24)  # rounded to 24 bits
    # first local minimiser of -sin along η > 0 is π/2 (then 5π/2, ...)
    for eta0 in (0.1, 1.0):
        res = line_search.exact(lambda e: -math.sin(e), lambda e: -math.cos(e), 0.0, -1.0,
                                eta0=eta0)
        assert res.step == pytest.approx(math.pi / 2, rel=2**-24)
        assert res.phi == pytest.approx(-1.0, rel=1e-15)


# --------------------------------------------------------------------------- #
# Search methods: one ``iterate`` on an oracle.                              #
# --------------------------------------------------------------------------- #


class NumpyOracle:
    """f and ∇f of a NumPy function, seen through tensors (counts evaluations)."""

    def __init__(self, f, g):
        self.f, self.g, self.n = f, g, 0

    def value(self, x):
        self.n += 1
        return float(self.f(x.numpy()))

    def value_grad(self, x):
        self.n += 1
        xn = x.numpy()
        return float(self.f(xn)), torch.from_numpy(np.array(self.g(xn), dtype=np.float64))


class QuadraticOracle(NumpyOracle):
    """The quadratic with its exact curvature dᵀAd, as the linear models provide."""

    def __init__(self, A, b):
        super().__init__(lambda x: 0.5 * x @ A @ x - b @ x, lambda x: A @ x - b)
        self.A = A

    def curvature(self, d):
        dn = d.numpy()
        return float(dn @ self.A @ dn)


def res_as_search(step_result):
    return line_search.SearchResult(step_result.step_size, step_result.fun, step_result.n_evals)


def _start(oracle, x0):
    x = torch.tensor(x0, dtype=torch.float64)
    f, g = oracle.value_grad(x)
    return x, f, g


@pytest.mark.parametrize("seed", range(3))
def test_steepest_descent_with_curvature_is_closed_form(seed):
    A, b, x0 = _spd(seed)
    oracle = QuadraticOracle(A, b)
    x, f, g = _start(oracle, x0)
    opt = SteepestDescent()
    state = opt.init_state(x)
    res = opt.iterate(x, f, g, 1.0, state, oracle)
    gn = A @ x0 - b
    eta = (gn @ gn) / (gn @ A @ gn)
    assert res.step_size == pytest.approx(eta, rel=1e-12)
    np.testing.assert_allclose(x.numpy(), x0 - eta * gn, rtol=1e-12, atol=1e-14)
    assert res.fun == pytest.approx(float(oracle.f(x0 - eta * gn)), rel=1e-12)
    assert res.n_evals == 1


@pytest.mark.parametrize("with_curvature", [True, False])
def test_steepest_descent_successive_gradients_are_orthogonal(with_curvature):
    """With the exact step of Eq. 9, ∇f(x_{k+1}) ⟂ ∇f(x_k) on a quadratic."""
    A, b, x0 = _spd(11, cond=20.0)
    oracle = QuadraticOracle(A, b) if with_curvature else NumpyOracle(
        lambda x: 0.5 * x @ A @ x - b @ x, lambda x: A @ x - b)
    x, f, g = _start(oracle, x0)
    opt = SteepestDescent()
    state = opt.init_state(x)
    tol = 1e-12 if with_curvature else 1e-7
    for _ in range(5):
        res = opt.iterate(x, f, g, 1.0, state, oracle)
        assert res.fun < f
        g_new = torch.from_numpy(A @ x.numpy() - b)
        assert abs(float(g_new @ g)) <= tol * float(g_new.norm() * g.norm())
        f, g = res.fun, g_new


@pytest.mark.parametrize(
    "opt", [HalvingLineSearch(), ArmijoLineSearch(c1=0.3, shrink=0.4), WolfeLineSearch(c2=0.5)],
    ids=["halving", "armijo", "wolfe"])
@pytest.mark.parametrize("f, g, x0", CASE_ARGS, ids=CASE_IDS)
def test_search_method_iterate_steps_along_minus_gradient(opt, f, g, x0):
    oracle = NumpyOracle(f, g)
    x, fun, grad = _start(oracle, x0)
    state = opt.init_state(x)
    lr = 1.0
    res = opt.iterate(x, fun, grad, lr, state, oracle)
    gn = g(x0)
    np.testing.assert_allclose(x.numpy(), x0 - res.step_size * gn, rtol=1e-14, atol=1e-15)
    assert res.fun == pytest.approx(f(x.numpy()), rel=1e-14, abs=1e-300)
    assert res.fun < fun
    if res.grad is not None:
        np.testing.assert_allclose(res.grad.numpy(), g(x.numpy()), rtol=1e-12)
    # the step is what the scalar search gives on φ(η) = f(x0 - η∇f(x0))
    phi, dphi, _ = _ray(f, g, x0)
    if isinstance(opt, HalvingLineSearch):
        want = line_search.halving(phi, fun, eta0=lr)
    elif isinstance(opt, ArmijoLineSearch):
        want = line_search.armijo(phi, fun, dphi(0.0), eta0=lr, c1=opt.c1, shrink=opt.shrink)
    else:
        want = line_search.wolfe(phi, dphi, fun, dphi(0.0), eta0=lr, c1=opt.c1, c2=opt.c2)
        _assert_strong_wolfe(phi, dphi, res_as_search(res), opt.c1, opt.c2)
    # (torch's x + ηd and NumPy's differ in the last bit, hence approx)
    assert res.step_size == pytest.approx(want.step, rel=1e-10)
    assert res.n_evals == want.n_evals


# --------------------------------------------------------------------------- #
# L-BFGS.                                                                     #
# --------------------------------------------------------------------------- #


def _dense_bfgs_inverse(S, Y):
    """H from H0 = (sᵀy / yᵀy) I (last pair) and H⁺ = VᵀHV + ρ s sᵀ, V = I - ρ y sᵀ."""
    d = S[-1].size
    H = (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1]) * np.eye(d)
    for s, y in zip(S, Y):
        rho = 1.0 / (y @ s)
        V = np.eye(d) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


@pytest.mark.parametrize("memory", [2, 4, 10])
def test_lbfgs_two_loop_recursion_matches_dense_bfgs(memory):
    A, b, x0 = _spd(5, d=8, cond=1e3)
    oracle = QuadraticOracle(A, b)
    x, f, g = _start(oracle, x0)
    opt = LBFGS(memory=memory)
    state = opt.init_state(x)
    for _ in range(6):
        x_old = x.clone()
        res = opt.iterate(x, f, g, 1.0, state, oracle)
        assert res.fun < f
        f, g = res.fun, (res.grad if res.grad is not None else oracle.value_grad(x)[1])
        # the stored pair is the step just taken and the change of gradient
        np.testing.assert_allclose(state.s[-1].numpy(), (x - x_old).numpy(), rtol=1e-14)
        np.testing.assert_allclose(state.y[-1].numpy(), A @ (x - x_old).numpy(), rtol=1e-8,
                                   atol=1e-12)
    assert len(state.s) == min(memory, 6)
    S = [s.numpy() for s in state.s]
    Y = [y.numpy() for y in state.y]
    H = _dense_bfgs_inverse(S, Y)
    probe = np.random.default_rng(1).normal(size=8)
    got = opt._direction(torch.from_numpy(probe), state).numpy()
    np.testing.assert_allclose(got, -H @ probe, rtol=1e-9, atol=1e-12 * np.abs(H @ probe).max())
    # secant equation for the newest pair: H y = s
    np.testing.assert_allclose(opt._direction(state.y[-1], state).numpy(), -S[-1],
                               rtol=1e-9, atol=1e-12 * np.abs(S[-1]).max())


def test_lbfgs_iterate_satisfies_strong_wolfe_along_its_direction():
    oracle = NumpyOracle(rosen, rosen_der)
    x, f, g = _start(oracle, np.array([-1.2, 1.0]))
    opt = LBFGS(c2=0.9)
    state = opt.init_state(x)
    for _ in range(8):
        x_old = x.numpy().copy()
        d = opt._direction(g, state).numpy() if state.s else -g.numpy()
        res = opt.iterate(x, f, g, 1.0, state, oracle)
        assert res.step_size > 0
        np.testing.assert_allclose(x.numpy(), x_old + res.step_size * d, rtol=1e-12, atol=1e-14)
        phi, dphi, _ = _ray(rosen, rosen_der, x_old, d)
        _assert_strong_wolfe(phi, dphi, res_as_search(res), opt.c1, opt.c2)
        np.testing.assert_allclose(res.grad.numpy(), rosen_der(x.numpy()), rtol=1e-12)
        f, g = res.fun, res.grad
