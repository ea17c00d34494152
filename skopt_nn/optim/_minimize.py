"""``minimize``: the lecture's methods on any differentiable function of a tensor."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning

from ._base import Optimizer, SearchMethod
from ._criteria import CRITERIA, converged, diverged
from ._registry import get_optimizer
from ._schedules import SCHEDULES, Schedule, local_lipschitz


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
        return float(out[0] if self.jac else out)

    def value_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.nfev += 1
        if self.jac:
            f, g = self.fun(x)
            return float(f), torch.as_tensor(g, dtype=x.dtype, device=x.device).detach().clone()
        xr = x.detach().clone().requires_grad_(True)
        f = self.fun(xr)
        (g,) = torch.autograd.grad(f, xr)
        return float(f.detach()), g.detach()


def minimize(
    fun: Callable[[torch.Tensor], torch.Tensor],
    x0,
    optimizer: str | Optimizer = "gd",
    *,
    learning_rate_init: float | str = "auto",
    learning_rate: str = "constant",
    power_t: float = 0.5,
    max_iter: int = 1000,
    tol: float = 1e-6,
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
    tol : float, default=1e-6
        ε of the convergence criterion.
    criterion : {'gradient_norm', 'cost_change', 'gradient_change', 'max_iter'}
        The lecture's convergence criteria.
    jac : bool, default=False
        Whether ``fun`` returns its gradient too.
    callback : callable, optional
        ``callback(k, x, f)`` after each iteration.

    Returns
    -------
    OptimizeResult
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not one of {CRITERIA}.")
    if learning_rate not in SCHEDULES:
        raise ValueError(f"learning_rate={learning_rate!r} is not one of {SCHEDULES}.")
    if not (isinstance(max_iter, int) and max_iter >= 0):
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}.")
    opt = get_optimizer(optimizer)
    opt._validate_params()
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
    if learning_rate_init == "auto":
        lr = opt.auto_learning_rate
        if lr is None:
            lr = 1.0 / local_lipschitz(oracle, x, g)
    elif isinstance(learning_rate_init, (int, float)) and not isinstance(learning_rate_init, bool) \
            and learning_rate_init > 0:
        lr = float(learning_rate_init)
    else:
        raise ValueError(
            f"learning_rate_init must be a positive float or 'auto', got {learning_rate_init!r}.")
    schedule = Schedule(learning_rate, lr, power_t)
    state = opt.init_state(x)
    rows = [(f, float(g.norm()), 0.0, oracle.nfev)]
    success, message = False, f"Maximum number of iterations ({max_iter}) reached."
    nit = 0
    for k in range(1, max_iter + 1):
        x_prev = x.clone()
        if isinstance(opt, SearchMethod):
            res = opt.iterate(x, f, g, schedule(k), state, oracle)
            step = res.step_size
            if step == 0.0:
                success = criterion != "max_iter" and converged(criterion, tol, f, f, g, g)
                message = ("The line search found no decrease: precision lost "
                           f"({criterion} {'met' if success else 'not met'}).")
                break
            f_new, g_new = (res.fun, res.grad) if res.grad is not None else oracle.value_grad(x)
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
        done = converged(criterion, tol, f, f_new, g, g_new)
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
