"""``minimize``: the lecture's methods on any differentiable function of a tensor."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._base import Optimizer
from ._criteria import CRITERIA, converged, diverged
from ._initial_step import StartingPoint, initial_step
from ._iteration import full_batch_iteration
from ._registry import STEP_CONSTRAINTS, get_optimizer
from ._schedules import Schedule


@dataclass
class OptimizeResult:
    """The outcome of :func:`minimize`.

    Attributes
    ----------
    x : torch.Tensor
        The final point.
    fun : float
        f(x).
    grad : torch.Tensor
        ∇f(x).
    nit : int
        Number of iterations.
    nfev : int
        Number of evaluations of f (with or without its gradient).
    success : bool
        Whether the convergence criterion was met (always False for
        ``criterion='max_iter'``).
    message : str
    history : pandas.DataFrame
        One row per iterate x⁽⁰⁾ … x⁽ⁿⁱᵗ⁾: ``loss``, ``grad_norm``, ``step_size``
        (the step that led to it) and ``n_evals``.
    """

    x: torch.Tensor
    fun: float
    grad: torch.Tensor
    nit: int
    nfev: int
    success: bool
    message: str
    history: pd.DataFrame


class _FunctionOracle:
    """f and ∇f of a Python function of a tensor (gradients by autograd)."""

    def __init__(self, fun: Callable, jac: bool):
        self.fun, self.jac, self.nfev = fun, jac, 0

    def value(self, x: torch.Tensor) -> float:
        self.nfev += 1
        with torch.no_grad():
            out = self.fun(x)
        return _scalar(out[0] if self.jac else out)

    def value_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.nfev += 1
        if self.jac:
            f, g = self.fun(x)
            g = torch.as_tensor(g, dtype=x.dtype, device=x.device).detach().clone()
            if g.numel() != x.numel():
                raise ValueError(
                    f"With jac=True, fun must return (f, grad) with grad shaped like x0; grad "
                    f"has {g.numel()} elements and x0 has {x.numel()}.")
            return _scalar(f), g.reshape(x.shape)
        xr = x.detach().clone().requires_grad_(True)
        f = self.fun(xr)
        value = _scalar(f)
        if not (isinstance(f, torch.Tensor) and f.requires_grad):
            raise ValueError(
                "fun(x) must be computed from x with torch operations, so that autograd can "
                "differentiate it (or return (f, grad) with jac=True); it returned "
                f"{type(f).__name__} {value!r}, which does not depend on x.")
        (g,) = torch.autograd.grad(f.reshape(()), xr)
        return value, g.detach()


def _scalar(f) -> float:
    """``f`` as a float; a clear error when the objective is not scalar (as scipy's)."""
    size = f.numel() if isinstance(f, torch.Tensor) else np.size(f)
    if size != 1:
        raise ValueError(
            "The user-provided objective function must return a scalar value; fun(x) "
            f"returned {size} values (shape {tuple(np.shape(f))}).")
    return float(f.detach() if isinstance(f, torch.Tensor) else np.asarray(f).reshape(()))


def _start_vector(x0) -> torch.Tensor:
    """x⁰ as a new float tensor (float64 unless x0 is a floating tensor); x0 is left alone."""
    if isinstance(x0, torch.Tensor):
        x = x0.detach().clone()
        return x if x.is_floating_point() else x.double()
    return torch.tensor(np.asarray(x0, dtype=np.float64))


class _Run:
    """The iterations of one ``minimize`` call and their history rows."""

    def __init__(self, opt: Optimizer, oracle: _FunctionOracle, schedule: Schedule,
                 criterion: str, tol: float | None, callback: Callable | None):
        self.opt, self.oracle, self.schedule = opt, oracle, schedule
        self.criterion, self.tol, self.callback = criterion, tol, callback
        self.rows: list[tuple] = []

    def iterate(self, x: torch.Tensor, f: float, g: torch.Tensor, max_iter: int):
        """Iterate in place on ``x`` from f(x) = ``f``, ∇f(x) = ``g``; return the last
        (f, g), the number of iterations, success and the message."""
        criterion, tol, schedule = self.criterion, self.tol, self.schedule
        state = self.opt.init_state(x)
        self.rows = [(f, float(g.norm()), 0.0, self.oracle.nfev)]
        for k in range(1, max_iter + 1):
            x_prev = x.clone()
            it = full_batch_iteration(self.opt, x, f, g, schedule(k), state, self.oracle)
            if it.stalled and criterion != "max_iter":
                success = converged(criterion, tol, f, f, g, g)
                return f, g, k - 1, success, (
                    "The line search found no decrease: precision lost "
                    f"({criterion} {'met' if success else 'not met'}).")
            if diverged(it.fun, self.rows[0][0]) or not bool(torch.isfinite(x).all()):
                x.copy_(x_prev)
                message = (f"Diverged at iteration {k} with learning rate {schedule.eta:g}; "
                           "the last finite point is returned.")
                warnings.warn(message, ConvergenceWarning, stacklevel=4)  # minimize's caller
                return f, g, k - 1, False, message
            done = criterion != "max_iter" and converged(criterion, tol, f, it.fun, g, it.grad)
            f, g = it.fun, it.grad
            self.rows.append((f, float(g.norm()), it.step_size, self.oracle.nfev))
            if self.callback is not None:
                self.callback(k, x, f)
            if done:
                return f, g, k, True, f"Converged: {criterion} <= {tol:g}."
        return f, g, max_iter, False, f"Maximum number of iterations ({max_iter}) reached."


@validate_params(
    {
        "fun": [callable],
        "x0": ["array-like", Real, torch.Tensor],
        **STEP_CONSTRAINTS,
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "criterion": [StrOptions(set(CRITERIA))],
        "jac": ["boolean"],
        "callback": [callable, None],
    },
    prefer_skip_nested_validation=True,
)
def minimize(
    fun: Callable[[torch.Tensor], torch.Tensor],
    x0,
    optimizer: str | Optimizer = "gd",
    *,
    learning_rate_init: float | str = "auto",
    learning_rate: str = "constant",
    power_t: float = 0.5,
    max_iter: int = 1000,
    tol: float | None = 1e-6,
    criterion: str = "gradient_norm",
    jac: bool = False,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
) -> OptimizeResult:
    r"""Minimise ``fun`` from ``x0`` with one of the lecture's methods.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> scalar tensor`` differentiable by autograd, or, with
        ``jac=True``, ``fun(x) -> (f, grad)``.
    x0 : array-like or torch.Tensor
        Starting point (a float64 tensor is used unless ``x0`` is a float32 tensor).
    optimizer : str or Optimizer, default='gd'
        Any name of :data:`skopt_nn.optim.OPTIMIZERS` or an optimizer object.  All
        methods use the full gradient here.
    learning_rate_init : float or 'auto', default='auto'
        η₀.  'auto': 1 (first trial of the line searches), 1/L for gradient
        descent and SGD and (1 − α)/L for momentum α, with L estimated from the
        gradient's change over a small step (Eq. 3), 0.01 for AdaGrad and RMSProp,
        1e-3 for Adam.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step schedule (Eq. 17); 'adaptive' behaves as 'constant' here ('optimal',
        which needs the objective's strong convexity, is the estimators' only).
    power_t : float, default=0.5
    max_iter : int, default=1000
    tol : float or None, default=1e-6
        ε of the convergence criterion; None runs exactly ``max_iter`` iterations
        (as ``criterion='max_iter'``).
    criterion : {'gradient_norm', 'cost_change', 'gradient_change', 'max_iter'}
        The lecture's convergence criteria.
    jac : bool, default=False
        Whether ``fun`` returns its gradient too.
    callback : callable, optional
        ``callback(k, x, f)`` after each iteration.

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ValueError
        For an invalid argument (naming it), a ``fun`` that does not return a
        scalar, or a ``fun`` that is not finite at ``x0``.

    Notes
    -----
    Without a criterion (``tol=None`` or ``criterion='max_iter'``) every one of
    the ``max_iter`` iterations is taken: an iteration whose line search finds no
    decrease leaves x where it is (step 0).  With one, such an iteration ends the
    run.  A divergence (f not finite, or far above f(x⁰)) always ends it, with a
    ConvergenceWarning and the last finite point.
    """
    opt = get_optimizer(optimizer)
    opt._validate_params()
    if tol is None:
        criterion = "max_iter"
    x = _start_vector(x0)
    shape = x.shape
    x = x.reshape(-1)

    def flat_fun(v):
        out = fun(v.view(shape))
        if jac:
            return out[0], torch.as_tensor(out[1]).reshape(-1)
        return out

    oracle = _FunctionOracle(flat_fun, jac)
    f, g = oracle.value_grad(x)
    if not math.isfinite(f):
        raise ValueError(f"fun is not finite at x0 (f(x0) = {f!r}): start where f is finite.")
    if not bool(torch.isfinite(g).all()):
        raise ValueError("The gradient of fun is not finite at x0: start where it is finite.")
    lr = initial_step(opt, learning_rate_init, lambda: StartingPoint(oracle, x, grad=g))
    run = _Run(opt, oracle, Schedule(learning_rate, lr, float(power_t)), criterion, tol,
               None if callback is None else lambda k, v, fk: callback(k, v.view(shape), fk))
    f, g, nit, success, message = run.iterate(x, f, g, int(max_iter))
    rows = run.rows
    history = pd.DataFrame(rows, columns=["loss", "grad_norm", "step_size", "n_evals"])
    history.index.name = "iteration"
    return OptimizeResult(x.view(shape), f, g.view(shape), nit, oracle.nfev, success, message,
                          history)
