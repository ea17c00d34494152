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

from ._base import Optimizer, SearchMethod
from ._criteria import CRITERIA, converged, diverged
from ._registry import STEP_CONSTRAINTS, get_optimizer
from ._schedules import Schedule, local_lipschitz


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
        descent, SGD and momentum with L estimated from the gradient's change over a
        small step (Eq. 3), 0.01 for AdaGrad and RMSProp, 1e-3 for Adam.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step schedule (Eq. 17); 'adaptive' behaves as 'constant' here.
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
    if isinstance(x0, torch.Tensor):
        x = x0.detach().clone()
        if not x.is_floating_point():
            x = x.double()
    else:
        x = torch.tensor(np.asarray(x0, dtype=np.float64))  # a copy: x0 is left alone
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
    if learning_rate_init == "auto":
        lr = opt.auto_learning_rate
        if lr is None:
            lr = 1.0 / local_lipschitz(oracle, x, g)
    else:
        lr = float(learning_rate_init)
    schedule = Schedule(learning_rate, lr, float(power_t))
    state = opt.init_state(x)
    rows = [(f, float(g.norm()), 0.0, oracle.nfev)]
    success, message = False, f"Maximum number of iterations ({max_iter}) reached."
    nit = 0
    for k in range(1, int(max_iter) + 1):
        x_prev = x.clone()
        if isinstance(opt, SearchMethod):
            res = opt.iterate(x, f, g, schedule(k), state, oracle)
            step = res.step_size
            if step == 0.0 and criterion != "max_iter":
                success = converged(criterion, tol, f, f, g, g)
                message = ("The line search found no decrease: precision lost "
                           f"({criterion} {'met' if success else 'not met'}).")
                break
            if step == 0.0:  # no criterion: the iteration counts, x stays
                f_new, g_new = f, g
            elif res.grad is not None:
                f_new, g_new = res.fun, res.grad
            else:
                f_new, g_new = oracle.value_grad(x)
        else:
            step = schedule(k)
            opt.update(x, g, step, state)
            f_new, g_new = oracle.value_grad(x)
        if diverged(f_new, rows[0][0]) or not bool(torch.isfinite(x).all()):
            x.copy_(x_prev)
            message = (f"Diverged at iteration {k} with learning rate {schedule.eta:g}; "
                       "the last finite point is returned.")
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
            break
        nit = k
        done = criterion != "max_iter" and converged(criterion, tol, f, f_new, g, g_new)
        f, g = f_new, g_new
        rows.append((f, float(g.norm()), step, oracle.nfev))
        if callback is not None:
            callback(k, x.view(shape), f)
        if done:
            success, message = True, f"Converged: {criterion} <= {tol:g}."
            break
    history = pd.DataFrame(rows, columns=["loss", "grad_norm", "step_size", "n_evals"])
    history.index.name = "iteration"
    return OptimizeResult(x.view(shape), f, g.view(shape), nit, oracle.nfev, success, message,
                          history)
