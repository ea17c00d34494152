r"""Scalar line searches over :math:`\varphi(\eta) = f(x + \eta d)`.

Every method that needs a step length along a direction ``d`` calls one of these
with the callables ``phi(eta) -> float`` and, where needed,
``dphi(eta) -> float`` (the directional derivative :math:`\nabla f(x+\eta d)^\top d`).
They know nothing about tensors, so they are shared by the gradient methods,
steepest descent and L-BFGS, and testable on plain functions.

Each returns a :class:`SearchResult`; ``step`` is 0.0 when no acceptable step was
found (the caller then keeps ``x``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy.optimize import brentq

#: φ or φ': a function of the step length η
ScalarFunction = Callable[[float], float]


@dataclass
class SearchResult:
    """Outcome of a line search.

    Attributes
    ----------
    step : float
        The accepted η (0.0 if none was found).
    phi : float
        φ(step).
    n_evals : int
        Number of evaluations of φ (or of φ and φ' together).
    dphi : float or None
        φ'(step) when the search evaluated it.
    """

    step: float
    phi: float
    n_evals: int
    dphi: float | None = None


def halving(phi: ScalarFunction, phi0: float, eta0: float = 1.0,
            max_halvings: int = 60) -> SearchResult:
    r"""The lecture's halving search.

    Lecture Eq. 5-7: start at ``eta0`` (the lecture's η = 1) and halve η until
    :math:`\varphi(\eta) < \varphi(0)`, i.e. until f decreases (Eq. 6).  For an
    L-smooth f this happens once η < 1/L (Eq. 7).
    """
    eta = eta0
    for n in range(1, max_halvings + 1):
        value = phi(eta)
        if value < phi0:  # Eq. 5-6
            return SearchResult(eta, value, n)
        eta *= 0.5
    return SearchResult(0.0, phi0, max_halvings)


def armijo(phi: ScalarFunction, phi0: float, dphi0: float, eta0: float = 1.0,
           c1: float = 1e-4, shrink: float = 0.5, max_iter: int = 60) -> SearchResult:
    r"""Armijo backtracking: shrink η until the sufficient-decrease condition holds.

    .. math:: \varphi(\eta) \le \varphi(0) + c_1\, \eta\, \varphi'(0)

    ``dphi0`` must be negative (a descent direction).
    """
    eta = eta0
    for n in range(1, max_iter + 1):
        value = phi(eta)
        if value <= phi0 + c1 * eta * dphi0:
            return SearchResult(eta, value, n)
        eta *= shrink
    return SearchResult(0.0, phi0, max_iter)


def _cubic_min(a, fa, fpa, b, fb, c, fc):
    """Minimiser of the cubic through (a, fa) with slope fpa, (b, fb), (c, fc)."""
    try:
        db, dc = b - a, c - a
        denom = (db * dc) ** 2 * (db - dc)
        rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
        A = (dc**2 * rb - db**2 * rc) / denom
        B = (-(dc**3) * rb + db**3 * rc) / denom
        radical = B * B - 3 * A * fpa
        xmin = a + (-B + math.sqrt(radical)) / (3 * A)
    except (ArithmeticError, ValueError):
        return None
    return xmin if math.isfinite(xmin) else None


def _quad_min(a, fa, fpa, b, fb):
    """Minimiser of the parabola through (a, fa) with slope fpa and (b, fb)."""
    try:
        db = b - a
        B = (fb - fa - fpa * db) / (db * db)
        xmin = a - fpa / (2.0 * B)
    except ArithmeticError:
        return None
    return xmin if math.isfinite(xmin) else None


def wolfe(phi: ScalarFunction, dphi: ScalarFunction, phi0: float, dphi0: float,
          eta0: float = 1.0, c1: float = 1e-4, c2: float = 0.9, eta_max: float | None = None,
          max_iter: int = 20) -> SearchResult:
    r"""Line search for the strong Wolfe conditions.

    .. math::
        \varphi(\eta) \le \varphi(0) + c_1 \eta \varphi'(0), \qquad
        |\varphi'(\eta)| \le c_2 |\varphi'(0)|

    Bracketing by doubling from ``eta0``, then zooming with cubic, quadratic or
    bisection trial points (Nocedal and Wright, Algorithms 3.5-3.6; the same
    scheme as :func:`scipy.optimize.line_search`).
    """
    n = 0

    def ev(eta):
        nonlocal n
        n += 1
        return phi(eta)

    def evd(eta):
        # φ'(η); evaluating it at a point where φ was just evaluated costs one
        # gradient, which callers usually compute together with φ.
        return dphi(eta)

    a_prev, f_prev, d_prev = 0.0, phi0, dphi0
    a = eta0 if eta_max is None else min(eta0, eta_max)
    fa = ev(a)
    for i in range(max_iter):
        if fa > phi0 + c1 * a * dphi0 or (i > 0 and fa >= f_prev):
            return _zoom(a_prev, a, f_prev, fa, d_prev, ev, evd, phi0, dphi0, c1, c2,
                         n_of=lambda: n)
        da = evd(a)
        if abs(da) <= -c2 * dphi0:
            return SearchResult(a, fa, n, da)
        if da >= 0:
            return _zoom(a, a_prev, fa, f_prev, da, ev, evd, phi0, dphi0, c1, c2,
                         n_of=lambda: n)
        a_next = 2.0 * a
        if eta_max is not None:
            if a >= eta_max:
                break
            a_next = min(a_next, eta_max)
        a_prev, f_prev, d_prev = a, fa, da
        a = a_next
        fa = ev(a)
    # no bracket found within max_iter: accept the last point if it decreased f
    if fa <= phi0 + c1 * a * dphi0:
        return SearchResult(a, fa, n)
    return SearchResult(0.0, phi0, n)


def _zoom(a_lo, a_hi, f_lo, f_hi, d_lo, ev, evd, phi0, dphi0, c1, c2, n_of, max_iter=30):
    """Shrink [a_lo, a_hi] until a point satisfies the strong Wolfe conditions."""
    a_rec, f_rec = 0.0, phi0
    for i in range(max_iter):
        width = a_hi - a_lo
        lo, hi = (a_hi, a_lo) if width < 0 else (a_lo, a_hi)
        a_j = None
        if i > 0:
            a_j = _cubic_min(a_lo, f_lo, d_lo, a_hi, f_hi, a_rec, f_rec)
            if a_j is not None and not (lo + 0.2 * abs(width) <= a_j <= hi - 0.2 * abs(width)):
                a_j = None
        if a_j is None:
            a_j = _quad_min(a_lo, f_lo, d_lo, a_hi, f_hi)
            if a_j is None or not (lo + 0.1 * abs(width) <= a_j <= hi - 0.1 * abs(width)):
                a_j = a_lo + 0.5 * width
        f_j = ev(a_j)
        if f_j > phi0 + c1 * a_j * dphi0 or f_j >= f_lo:
            a_rec, f_rec = a_hi, f_hi
            a_hi, f_hi = a_j, f_j
            continue
        d_j = evd(a_j)
        if abs(d_j) <= -c2 * dphi0:
            return SearchResult(a_j, f_j, n_of(), d_j)
        if d_j * (a_hi - a_lo) >= 0:
            a_rec, f_rec = a_hi, f_hi
            a_hi, f_hi = a_lo, f_lo
        else:
            a_rec, f_rec = a_lo, f_lo
        a_lo, f_lo, d_lo = a_j, f_j, d_j
    # the interval collapsed: a_lo satisfies sufficient decrease (or is 0)
    return SearchResult(a_lo, f_lo if a_lo > 0 else phi0, n_of())


#: relative accuracy of the root of φ': it saves the many evaluations Brent's method
#: spends in the rounding noise of φ' near machine precision
_EXACT_RTOL = 1e-10
#: significant bits the exact step is rounded to: single precision's relative
#: spacing, 6e-8, which costs a fraction δ² ≈ 4e-15 of the decrease of the exact step
#: (φ(η*(1 + δ)) − φ(η*) ≈ ½ φ''(η*) (η*δ)²)
_STEP_BITS = 24


def _round_step(eta: float) -> float:
    """``eta`` rounded to :data:`_STEP_BITS` significant bits.

    Steepest descent's exact step depends on the iterate with a large derivative
    along its zig-zag path, so rounding-level differences in φ' (a different order
    of summation, sample weights in place of repeated rows) grow from one iteration
    to the next (measured on a small MLP: from 1e-16 to 1e-3 in 200 iterations, and
    still 1e-2 with 36 bits).  Rounding the step to a grid much coarser than those
    differences makes equal problems take equal steps; the iterates then differ by
    rounding only, which does not grow.
    """
    if not eta > 0 or not math.isfinite(eta):
        return eta
    mantissa, exponent = math.frexp(eta)
    return math.ldexp(round(mantissa * 2**_STEP_BITS), exponent - _STEP_BITS)


def exact(phi: ScalarFunction, dphi: ScalarFunction, phi0: float, dphi0: float,
          eta0: float = 1.0, max_evals: int = 100) -> SearchResult:
    r"""Steepest descent's step, :math:`\eta = \arg\min_{\eta > 0} \varphi(\eta)`.

    The exact line search of lecture Eq. 9.

    The minimiser is found as the root of φ'(η) = 0, which can be located far
    more precisely than a minimisation from values of φ alone (about √ε).  A
    bracket [lo, hi] with φ'(lo) < 0 ≤ φ'(hi) is grown from ``eta0`` by doubling,
    then Brent's root finder closes it to a relative 1e-10, and the step is
    rounded to 24 significant bits (see :func:`_round_step`).  On a nonconvex φ
    this is a local minimiser along the ray.  ``dphi0`` = φ'(0) must be negative.
    When the root finder does not converge within ``max_evals`` its best estimate
    is used; a step that does not decrease φ falls back to the last point of
    descent, ``lo``, and otherwise to 0 (no step).
    """
    n = 0

    def ev(eta):
        nonlocal n
        n += 1
        return dphi(eta)

    lo, hi = 0.0, eta0
    d_hi = ev(hi)
    while d_hi < 0 and math.isfinite(d_hi) and n < max_evals // 2:
        lo, hi = hi, 2.0 * hi
        d_hi = ev(hi)
    if not math.isfinite(d_hi):  # overshoot into overflow: halve back towards lo
        while not math.isfinite(d_hi) and n < max_evals // 2:
            hi = 0.5 * (lo + hi)
            d_hi = ev(hi)
    if d_hi < 0 or not math.isfinite(d_hi):
        eta = lo if lo > 0 else 0.0
    elif d_hi == 0:
        eta = hi
    else:
        try:  # not converged within the budget: Brent's best estimate so far
            eta, _ = brentq(ev, lo, hi, xtol=_EXACT_RTOL * hi, rtol=_EXACT_RTOL,
                            maxiter=max(max_evals - n, 1), full_output=True, disp=False)
        except ValueError:  # φ' changed sign between evaluations (rounding): no root
            eta = lo
        eta = _round_step(eta)
    for trial in dict.fromkeys((eta, lo)):  # the root, else the last point of descent
        if not trial > 0:
            continue
        value = phi(trial)
        n += 1
        if value < phi0:
            return SearchResult(trial, value, n)
    return SearchResult(0.0, phi0, n)  # no decrease left (at the optimum up to rounding)
