"""Reference tests for the update rules of ``skopt_nn.optim``.

Every update rule is checked against an independent NumPy float64 transcription of
its equation in the lecture (docs/references.rst; Eq. 4, 8, 16/26, 32-39),
on a fixed sequence of random gradients and with a constant as well as a decaying
step (``invscaling``, η_k = η₀/√k, Eq. 17), and against ``torch.optim`` wherever
the two are the same mathematics.  The scikit-learn conventions of the optimizer
objects (``get_params``/``set_params``/``clone``, ``_validate_params``) are checked
at the end.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skopt_nn.optim import (
    LBFGS,
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    ArmijoLineSearch,
    GradientDescent,
    HalvingLineSearch,
    Momentum,
    Optimizer,
    RMSProp,
    SteepestDescent,
    WolfeLineSearch,
    get_optimizer,
    minimize,
)

N_STEPS = 20
DIM = 6
RTOL = 1e-10
ATOL = 1e-13
LR0 = 0.1

SCHEDULES = {
    "constant": lambda k: LR0,
    "invscaling": lambda k: LR0 / k**0.5,  # Eq. 17, k = 1, 2, ...
}


def _steps(schedule: str, n: int = N_STEPS) -> list[float]:
    return [SCHEDULES[schedule](k) for k in range(1, n + 1)]


def _gradients(seed: int, bounded: bool = False) -> np.ndarray:
    """N_STEPS random gradients; ``bounded``: |g_j| in [0.5, 2] (safe with eps=0)."""
    rng = np.random.default_rng(seed)
    if bounded:
        sign = rng.choice([-1.0, 1.0], size=(N_STEPS, DIM))
        return sign * rng.uniform(0.5, 2.0, size=(N_STEPS, DIM))
    return rng.normal(size=(N_STEPS, DIM))


def _x0(seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).normal(size=DIM)


# --------------------------------------------------------------------------- #
# Independent NumPy transcriptions of the lecture's equations.                #
# ``grad(k, x)`` returns g at step k (1-based) and point x; ``lrs[k-1]`` = η_k. #
# Each returns the iterates x^(1), ..., x^(n) as an (n, d) array.             #
# --------------------------------------------------------------------------- #


def ref_gd(x0, grad, lrs):
    """Eq. 4 (full batch) = Eq. 16/26 (the gradient being a (mini-)batch mean)."""
    x, out = x0.copy(), []
    for k, lr in enumerate(lrs, start=1):
        x = x - lr * grad(k, x)
        out.append(x)
    return np.array(out)


def ref_momentum(x0, grad, lrs, momentum, nesterov):
    """Eq. 8: Δx_k = α Δx_{k-1} - η_k g_k, x_{k+1} = x_k + Δx_k, Δx_0 = 0.

    Nesterov (not in the lecture; scikit-learn's ``nesterovs_momentum``, which the
    docstring cites): the applied step is α Δx_k - η_k g_k.
    """
    x, delta, out = x0.copy(), np.zeros_like(x0), []
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        delta = momentum * delta - lr * g
        x = x + (momentum * delta - lr * g if nesterov else delta)
        out.append(x)
    return np.array(out)


def ref_adagrad(x0, grad, lrs, epsilon):
    """Eq. 33-34: G_jj = sqrt(ε + Σ_τ g_j²), ε inside the root."""
    x, sum_sq, out = x0.copy(), np.zeros_like(x0), []
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        sum_sq = sum_sq + g**2
        x = x - lr / np.sqrt(epsilon + sum_sq) * g
        out.append(x)
    return np.array(out)


def ref_rmsprop(x0, grad, lrs, gamma, epsilon, elementwise):
    """Eq. 35-36; ``elementwise=False`` is the lecture's scalar v with ‖g‖²."""
    x, out = x0.copy(), []
    v = np.zeros_like(x0) if elementwise else 0.0
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        v = gamma * v + (1 - gamma) * (g * g if elementwise else float(g @ g))
        x = x - lr / np.sqrt(epsilon + v) * g
        out.append(x)
    return np.array(out)


def ref_adam(x0, grad, lrs, beta_1, beta_2, epsilon, elementwise):
    """Eq. 37-39 with bias corrections 1 - γ^k, k = 1, 2, ..."""
    x, m, out = x0.copy(), np.zeros_like(x0), []
    v = np.zeros_like(x0) if elementwise else 0.0
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * (g * g if elementwise else float(g @ g))
        m_hat = m / (1 - beta_1**k)
        v_hat = v / (1 - beta_2**k)
        x = x - lr / np.sqrt(epsilon + v_hat) * m_hat
        out.append(x)
    return np.array(out)


# (id, optimizer class, its hyperparameters, reference, the reference's arguments)
# The reference's arguments are spelled out in full (defaults included), so a
# changed default in the library is caught too.
_ADAM = {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 0.3}
_ADAM_DEFAULT = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-16}
CASES = [
    ("gd", GradientDescent, {}, ref_gd, {}),
    ("sgd", SGD, {}, ref_gd, {}),
    ("sgd-with-replacement", SGD, {"sampling": "with_replacement"}, ref_gd, {}),
    # α = 0 must reduce Eq. 8 to Eq. 4
    ("momentum-0", Momentum, {"momentum": 0.0}, ref_gd, {}),
    ("momentum-default", Momentum, {}, ref_momentum, {"momentum": 0.9, "nesterov": False}),
    ("momentum-0.5", Momentum, {"momentum": 0.5}, ref_momentum,
     {"momentum": 0.5, "nesterov": False}),
    ("nesterov-0.9", Momentum, {"momentum": 0.9, "nesterov": True}, ref_momentum,
     {"momentum": 0.9, "nesterov": True}),
    ("nesterov-0.5", Momentum, {"momentum": 0.5, "nesterov": True}, ref_momentum,
     {"momentum": 0.5, "nesterov": True}),
    ("adagrad-eps0", AdaGrad, {"epsilon": 0.0}, ref_adagrad, {"epsilon": 0.0}),
    # a large ε so that "inside the root" differs visibly from "outside"
    ("adagrad-eps0.3", AdaGrad, {"epsilon": 0.3}, ref_adagrad, {"epsilon": 0.3}),
    ("adagrad-default", AdaGrad, {}, ref_adagrad, {"epsilon": 1e-10}),
    ("rmsprop-elementwise", RMSProp, {"gamma": 0.8, "epsilon": 0.3}, ref_rmsprop,
     {"gamma": 0.8, "epsilon": 0.3, "elementwise": True}),
    ("rmsprop-scalar", RMSProp, {"gamma": 0.8, "epsilon": 0.3, "elementwise": False},
     ref_rmsprop, {"gamma": 0.8, "epsilon": 0.3, "elementwise": False}),
    ("rmsprop-default", RMSProp, {}, ref_rmsprop,
     {"gamma": 0.9, "epsilon": 1e-10, "elementwise": True}),
    ("rmsprop-scalar-default", RMSProp, {"elementwise": False}, ref_rmsprop,
     {"gamma": 0.9, "epsilon": 1e-10, "elementwise": False}),
    ("adam-elementwise", Adam, _ADAM, ref_adam, {**_ADAM, "elementwise": True}),
    ("adam-scalar", Adam, {**_ADAM, "elementwise": False}, ref_adam,
     {**_ADAM, "elementwise": False}),
    ("adam-default", Adam, {}, ref_adam, {**_ADAM_DEFAULT, "elementwise": True}),
    ("adam-scalar-default", Adam, {"elementwise": False}, ref_adam,
     {**_ADAM_DEFAULT, "elementwise": False}),
]


def run_library(opt, x0, grads, lrs):
    """Drive ``opt.update`` on a flat float64 tensor; return the iterates."""
    x = torch.tensor(x0, dtype=torch.float64)
    ptr = x.data_ptr()
    state = opt.init_state(x)
    out = []
    for g, lr in zip(grads, lrs):
        assert opt.update(x, torch.tensor(g, dtype=torch.float64), lr, state) is None
        out.append(x.numpy().copy())
    assert x.data_ptr() == ptr, "update must work in place"
    assert x.dtype == torch.float64
    # the step counter is the caller's; Adam's bias corrections keep their own
    assert getattr(state, "count", len(grads)) == len(grads)
    return np.array(out)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize(
    "cls, hyper, ref, ref_kw", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_update_rule_matches_lecture_equation(cls, hyper, ref, ref_kw, schedule):
    for seed in range(2):
        grads, x0, lrs = _gradients(seed), _x0(seed), _steps(schedule)
        got = run_library(cls(**hyper), x0, grads, lrs)
        want = ref(x0, lambda k, x: grads[k - 1], lrs, **ref_kw)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# The references above are only worth something if they can tell the right
# equation from a plausible wrong one: each "wrong" variant below must differ
# from the library by far more than the tolerance of the test above.


def _wrong_adagrad_eps_outside(x0, grad, lrs, epsilon):
    x, s, out = x0.copy(), np.zeros_like(x0), []
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        s = s + g**2
        x = x - lr / (np.sqrt(s) + epsilon) * g
        out.append(x)
    return np.array(out)


def _wrong_adam_bias_k_plus_1(x0, grad, lrs, beta_1, beta_2, epsilon, elementwise):
    x, m, v, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), []
    for k, lr in enumerate(lrs, start=1):
        g = grad(k, x)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        x = x - lr / np.sqrt(epsilon + v / (1 - beta_2 ** (k + 1))) * m / (1 - beta_1 ** (k + 1))
        out.append(x)
    return np.array(out)


def _wrong_momentum_torch_form(x0, grad, lrs, momentum, nesterov):
    x, buf, out = x0.copy(), np.zeros_like(x0), []
    for k, lr in enumerate(lrs, start=1):
        buf = momentum * buf + grad(k, x)
        x = x - lr * buf
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize(
    "cls, hyper, wrong, schedule",
    [
        (AdaGrad, {"epsilon": 0.3}, _wrong_adagrad_eps_outside, "constant"),
        (Adam, {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 0.0, "elementwise": True},
         _wrong_adam_bias_k_plus_1, "constant"),
        (Adam, {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 0.3, "elementwise": True},
         lambda x0, grad, lrs, **kw: ref_adam(x0, grad, lrs, **{**kw, "elementwise": False}),
         "constant"),
        (Momentum, {"momentum": 0.9, "nesterov": False}, _wrong_momentum_torch_form,
         "invscaling"),
        (Momentum, {"momentum": 0.9, "nesterov": True},
         lambda x0, grad, lrs, **kw: ref_momentum(x0, grad, lrs, kw["momentum"], False),
         "constant"),
    ],
    ids=["adagrad-eps-outside-root", "adam-bias-correction-off-by-one",
         "adam-scalar-vs-elementwise", "momentum-torch-form-under-schedule",
         "nesterov-vs-plain"],
)
def test_references_distinguish_plausible_mistakes(cls, hyper, wrong, schedule):
    grads, x0, lrs = _gradients(0), _x0(0), _steps(schedule)
    got = run_library(cls(**hyper), x0, grads, lrs)
    bad = wrong(x0, lambda k, x: grads[k - 1], lrs, **hyper)
    assert np.max(np.abs(got - bad)) > 1e3 * (RTOL * np.max(np.abs(got)) + ATOL)


@pytest.mark.parametrize("power_t", [0.5, 0.25])
@pytest.mark.parametrize(
    "cls, hyper, ref, ref_kw", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_minimize_loop_matches_lecture_with_invscaling(cls, hyper, ref, ref_kw, power_t):
    """The whole loop of ``minimize``: gradient at the new iterate, η_k = η₀/k^power_t."""
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    A = Q @ np.diag(np.linspace(1.0, 4.0, DIM)) @ Q.T
    b = rng.normal(size=DIM)
    x0 = rng.normal(size=DIM)
    At, bt = torch.from_numpy(A), torch.from_numpy(b)

    def fun(x):
        return 0.5 * x @ At @ x - bt @ x + 3.0

    lr0, n = 0.05, 15
    lrs = [lr0 / k**power_t for k in range(1, n + 1)]
    seen = []
    res = minimize(fun, x0.copy(), cls(**hyper), learning_rate_init=lr0,
                   learning_rate="invscaling", power_t=power_t, max_iter=n,
                   criterion="max_iter", callback=lambda k, x, f: seen.append(x.numpy().copy()))
    want = ref(x0, lambda k, x: A @ x - b, lrs, **ref_kw)
    assert res.nit == n
    np.testing.assert_allclose(np.array(seen), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.x.numpy(), want[-1], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.history["step_size"].to_numpy()[1:], lrs, rtol=1e-14)


# --------------------------------------------------------------------------- #
# Against torch.optim, where the mathematics coincide.                        #
# --------------------------------------------------------------------------- #


def run_torch(make, x0, grads, lrs):
    p = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = make([p], lrs[0])
    out = []
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


# Nesterov: torch keeps b_k = μ b_{k-1} + g_k and steps p -= η (g_k + μ b_k).
# With a constant η, induction on Eq. 8 gives Δx_k = -η b_k (Δx_0 = 0 = -η b_0),
# so the library's applied step μ Δx_k - η g_k = -η (g_k + μ b_k): the same
# update.  With a varying η_k that identity (like the one for plain momentum)
# breaks, so momentum is compared at constant η only.
TORCH_CASES = [
    ("gd", GradientDescent(), lambda p, lr: torch.optim.SGD(p, lr=lr), True),
    ("sgd", SGD(), lambda p, lr: torch.optim.SGD(p, lr=lr), True),
    ("momentum", Momentum(momentum=0.9),
     lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), False),
    ("nesterov", Momentum(momentum=0.9, nesterov=True),
     lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True), False),
    ("nesterov-0.5", Momentum(momentum=0.5, nesterov=True),
     lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.5, nesterov=True), False),
    ("adagrad", AdaGrad(epsilon=0.0),
     lambda p, lr: torch.optim.Adagrad(p, lr=lr, lr_decay=0.0, eps=0.0,
                                       initial_accumulator_value=0.0), True),
    ("rmsprop", RMSProp(gamma=0.8, epsilon=0.0),
     lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.8, eps=0.0), True),
    ("adam", Adam(beta_1=0.8, beta_2=0.95, epsilon=0.0),
     lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.8, 0.95), eps=0.0), True),
    ("adam-default-betas", Adam(epsilon=0.0),
     lambda p, lr: torch.optim.Adam(p, lr=lr, eps=0.0), True),
]


@pytest.mark.parametrize(
    "opt, make, schedule",
    [(opt, make, sched) for _, opt, make, with_schedule in TORCH_CASES
     for sched in SCHEDULES if with_schedule or sched == "constant"],
    ids=[f"{name}-{sched}" for name, _, _, with_schedule in TORCH_CASES
         for sched in SCHEDULES if with_schedule or sched == "constant"],
)
def test_update_rule_matches_torch_optim(opt, make, schedule):
    grads, x0, lrs = _gradients(3, bounded=True), _x0(3), _steps(schedule)
    got = run_library(clone(opt), x0, grads, lrs)
    want = run_torch(make, x0, grads, lrs)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_under_schedule_keeps_past_steps_at_their_size(nesterov):
    """Documented: with a schedule the lecture's Eq. 8 is not torch's form."""
    grads, x0, lrs = _gradients(3, bounded=True), _x0(3), _steps("invscaling")
    got = run_library(Momentum(momentum=0.9, nesterov=nesterov), x0, grads, lrs)
    torch_form = run_torch(
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=nesterov), x0, grads, lrs)
    assert np.max(np.abs(got - torch_form)) > 1e-3
    want = ref_momentum(x0, lambda k, x: grads[k - 1], lrs, 0.9, nesterov)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_update_rules_keep_float32():
    """A float32 parameter vector stays float32 and close to the float64 result."""
    grads, x0, lrs = _gradients(4), _x0(4), _steps("invscaling")
    for cls, hyper, *_ in [c[1:] for c in CASES]:
        opt = cls(**hyper)
        x = torch.tensor(x0, dtype=torch.float32)
        state = opt.init_state(x)
        for g, lr in zip(grads, lrs):
            opt.update(x, torch.tensor(g, dtype=torch.float32), lr, state)
        assert x.dtype == torch.float32
        want = run_library(cls(**hyper), x0, grads, lrs)[-1]
        np.testing.assert_allclose(x.numpy(), want, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- #
# scikit-learn conventions.                                                   #
# --------------------------------------------------------------------------- #

NON_DEFAULT = {
    "gd": {},
    "line_search": {},
    "steepest_descent": {},
    "armijo": {"c1": 0.2, "shrink": 0.3},
    "wolfe": {"c1": 1e-3, "c2": 0.5},
    "momentum": {"momentum": 0.5, "nesterov": True},
    "sgd": {"sampling": "with_replacement"},
    "adagrad": {"epsilon": 1e-3},
    "rmsprop": {"gamma": 0.5, "epsilon": 1e-3, "elementwise": False},
    "adam": {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "elementwise": False},
    "lbfgs": {"memory": 3, "c1": 1e-3, "c2": 0.5},
}


def test_registry_covers_every_optimizer():
    assert set(OPTIMIZERS) == set(NON_DEFAULT)
    for name, cls in OPTIMIZERS.items():
        assert cls.name == name
        assert issubclass(cls, Optimizer)
        opt = get_optimizer(name)
        assert type(opt) is cls


def test_get_optimizer():
    assert isinstance(get_optimizer("adam"), Adam)
    assert get_optimizer("adam").get_params() == Adam().get_params()
    obj = Momentum(momentum=0.3)
    assert get_optimizer(obj) is obj
    with pytest.raises(ValueError, match="optimizer"):
        get_optimizer("newton")
    with pytest.raises(ValueError, match="optimizer"):
        get_optimizer(Adam)  # a class, not an instance


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_get_set_params_clone_round_trip(name):
    cls = OPTIMIZERS[name]
    kw = NON_DEFAULT[name]
    defaults = cls().get_params()
    # every hyperparameter is declared for validation
    assert set(cls._parameter_constraints) == set(defaults)
    opt = cls(**kw)
    assert opt.get_params() == {**defaults, **kw}
    opt._validate_params()
    cls()._validate_params()

    twin = clone(opt)
    assert type(twin) is cls and twin is not opt
    assert twin.get_params() == opt.get_params()

    other = cls()
    assert other.set_params(**kw) is other
    assert other.get_params() == opt.get_params()
    assert repr(other) == repr(opt)


def test_clone_gives_independent_state():
    """State lives apart from the object: two clones step identically."""
    grads, x0, lrs = _gradients(5), _x0(5), _steps("constant")
    opt = Adam(beta_1=0.7)
    a = run_library(opt, x0, grads, lrs)
    b = run_library(clone(opt), x0, grads, lrs)
    c = run_library(opt, x0, grads, lrs)  # reusing the object starts afresh
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "opt, param",
    [
        (Momentum(momentum=1.5), "momentum"),
        (Momentum(momentum=-0.1), "momentum"),
        (Momentum(momentum=1.0), "momentum"),
        (Momentum(nesterov="yes"), "nesterov"),
        (SGD(sampling="bootstrap"), "sampling"),
        (AdaGrad(epsilon=-1e-3), "epsilon"),
        (RMSProp(gamma=1.0), "gamma"),
        (RMSProp(gamma=-0.5), "gamma"),
        (RMSProp(epsilon=-1.0), "epsilon"),
        (RMSProp(elementwise="no"), "elementwise"),
        (Adam(beta_1=-0.1), "beta_1"),
        (Adam(beta_1=1.0), "beta_1"),
        (Adam(beta_2=1.2), "beta_2"),
        (Adam(epsilon=-1e-8), "epsilon"),
        (Adam(elementwise=None), "elementwise"),
        (ArmijoLineSearch(c1=0.0), "c1"),
        (ArmijoLineSearch(shrink=1.0), "shrink"),
        (WolfeLineSearch(c2=1.0), "c2"),
        (WolfeLineSearch(c1=-1.0), "c1"),
        (LBFGS(memory=0), "memory"),
        (LBFGS(memory=2.5), "memory"),
        (LBFGS(c2=0.0), "c2"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_invalid_hyperparameters_raise(opt, param):
    with pytest.raises(ValueError, match=rf"'{param}'"):
        opt._validate_params()


@pytest.mark.parametrize("cls", [WolfeLineSearch, LBFGS])
def test_wolfe_constants_must_satisfy_c1_below_c2(cls):
    """A strong Wolfe step is only guaranteed to exist for 0 < c1 < c2 < 1.

    WolfeLineSearch's docstring states "c1 < c2 < 1"; LBFGS runs the same search;
    scipy.optimize.line_search raises ValueError for c1 >= c2.
    """
    cls(c1=1e-4, c2=0.9)._validate_params()
    with pytest.raises(ValueError, match=r"c1|c2"):
        cls(c1=0.5, c2=0.1)._validate_params()


def test_classes_without_hyperparameters():
    for cls in (GradientDescent, HalvingLineSearch, SteepestDescent):
        assert cls().get_params() == {}
        assert type(clone(cls())) is cls


@pytest.mark.parametrize("hyper", [_ADAM, _ADAM_DEFAULT], ids=["adam", "adam-default"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
def test_adam_fused_and_explicit_paths_match_lecture_equation(hyper, fused):
    """Adam's update runs torch's fused kernel where it can; the explicit form (used
    on other devices) is the same Eq. 37-39."""
    available = hasattr(torch, "_fused_adam_")
    if fused and not available:
        pytest.skip("this torch has no fused Adam")
    opt = Adam(**hyper)
    for seed in range(2):
        grads, x0, lrs = _gradients(seed), _x0(seed), _steps("invscaling")
        x = torch.tensor(x0, dtype=torch.float64)
        state = opt.init_state(x)
        assert (state.step is not None) == available  # fused on the CPU where it exists
        if not fused:
            state.step = None
        got = []
        for g, lr in zip(grads, lrs, strict=True):
            opt.update(x, torch.tensor(g, dtype=torch.float64), lr, state)
            got.append(x.numpy().copy())
        want = ref_adam(x0, lambda k, x: grads[k - 1], lrs, **hyper, elementwise=True)
        np.testing.assert_allclose(np.array(got), want, rtol=RTOL, atol=ATOL)
