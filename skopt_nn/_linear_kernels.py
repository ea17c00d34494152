"""The numba kernels of :mod:`skopt_nn._compiled_epoch` (imported only where numba is)."""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._compiled_epoch import (  # noqa: F401
    _AHEAD,
    _MIN_SCALE,
    RULE_ADAGRAD,
    RULE_ADAM,
    RULE_MOMENTUM,
    RULE_RMSPROP,
    RULE_SGD,
)


def _jit(fn):
    return njit(cache=True, error_model="numpy", nogil=True)(fn)


def _jit_inline(fn):
    """A small per-row helper, inlined into the epoch loops."""
    return njit(cache=True, error_model="numpy", nogil=True, inline="always")(fn)


if njit is not None:
    @intrinsic
    def _prefetch(typingctx, arr, i):
        """Ask for the cache line of ``arr[i]`` (LLVM's prefetch: read, keep in cache)."""
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                           wraparound=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(arr, i), codegen
else:  # pragma: no cover
    def _prefetch(arr, i):
        pass


@_jit
def _prefetch_span(a, lo, hi):
    """Prefetch a[lo:hi] (a flat array), a cache line at a time."""
    step = max(1, 64 // a.itemsize)
    for q in range(lo, hi, step):
        _prefetch(a, q)
    if hi > lo:
        _prefetch(a, hi - 1)


@_jit
def _batch_bounds(bi, batch_size, n):
    """Batch ``bi``'s first position in the epoch's order, its size B, and 1/B."""
    start = bi * batch_size
    B = min(batch_size, n - start)
    return start, B, 1.0 / B


@_jit
def _prefetch_dense_row(flat, perm, j, d):
    """Prefetch row perm[j] of X (``flat``, d columns), if the epoch has a row j."""
    if j < perm.shape[0]:
        r = perm[j] * d
        _prefetch_span(flat, r, r + d)


@_jit
def _prefetch_csr_row(indptr, indices, data, perm, j):
    """Prefetch the nonzeros of CSR row perm[j], if the epoch has a row j."""
    if j < perm.shape[0]:
        lo, hi = indptr[perm[j]], indptr[perm[j] + 1]
        _prefetch_span(indices, lo, hi)
        _prefetch_span(data, lo, hi)


# --------------------------------------------------------------------------- losses
# f(z, y) of one sample over its K outputs; dZ[i] ← ∂f/∂z.  A regression loss is a
# function of each residual r = z − y, averaged over the outputs (as SquaredError); a
# margin loss is one of each margin m = y·z (y = ±1), summed over them.
# (The MLP kernels inline these: numba's cache of _mlp_kernels does not see an edit
# here; delete the package's __pycache__/*.nbi and *.nbc after changing one.)

#: the codes of :data:`LOSS_CODES` whose loss is a function of the margin y·z
_MARGIN_CODES = (2, 3, 8, 9, 10)


@_jit_inline
def _residual_terms(code, r, eps):
    """(f(r), f'(r)) of the regression loss ``code`` at the residual r = z − y."""
    if code == 0:  # squared error: ½ r²
        return 0.5 * (r * r), r
    if code == 1:  # absolute error: |r|
        return abs(r), (1.0 if r > 0 else (-1.0 if r < 0 else 0.0))
    if code == 5:  # Huber: ½ r² within ε, linear beyond
        if abs(r) <= eps:
            return 0.5 * r * r, r
        return eps * abs(r) - 0.5 * eps * eps, (eps if r > 0 else -eps)
    e = abs(r) - eps
    if not e > 0:
        return 0.0, 0.0
    if code == 6:  # ε-insensitive: max(0, |r| − ε)
        return e, (1.0 if r > 0 else -1.0)
    return e * e, (2.0 * e if r > 0 else -2.0 * e)  # squared ε-insensitive


@_jit_inline
def _margin_terms(code, m):
    """(f(m), f'(m)) of the margin loss ``code`` at the margin m = y·z."""
    if code == 2:  # hinge: max(0, 1 − m)
        q = 1.0 - m
        return (q, -1.0) if q > 0 else (0.0, 0.0)
    if code == 3:  # logistic: softplus(−m), as torch's (linear beyond 20)
        t = -m
        return (t if t > 20.0 else math.log1p(math.exp(t))), -(1.0 / (1.0 + math.exp(-t)))
    if code == 8:  # modified Huber: (1 − m)² on [−1, 1), −4m below
        if m >= 1.0:
            return 0.0, 0.0
        if m >= -1.0:
            return (1.0 - m) * (1.0 - m), -2.0 * (1.0 - m)
        return -4.0 * m, -4.0
    if code == 9:  # squared hinge: max(0, 1 − m)²
        q = 1.0 - m
        return (q * q, -2.0 * q) if q > 0 else (0.0, 0.0)
    return (-m, -1.0) if m <= 0 else (0.0, 0.0)  # perceptron: max(0, −m)


@_jit
def _softmax(z, Y, row, dZ, i, K, eps):
    m = z[0]
    for k in range(1, K):
        if z[k] > m:
            m = z[k]
    s = 0.0
    for k in range(K):
        s += math.exp(z[k] - m)
    lse = math.log(s)
    f = 0.0
    for k in range(K):
        log_p = (z[k] - m) - lse
        y = Y[row, k]
        f -= log_p * y
        dZ[i, k] = math.exp(log_p) - y
    return f


@_jit
def _poisson(z, Y, row, dZ, i, K, eps):
    f = 0.0
    for k in range(K):
        y = Y[row, k]
        mu = math.exp(z[k])
        f += mu - y * z[k] + (y * math.log(y) if y > 0 else 0.0) - y
        dZ[i, k] = mu - y
    return f


@_jit_inline
def _loss_terms(code, z, Y, row, dZ, i, K, eps):
    """The loss of code ``code`` (:data:`LOSS_CODES`) on sample ``row``; ∂f/∂z into
    ``dZ[i]``."""
    if code == 4:
        return _softmax(z, Y, row, dZ, i, K, eps)
    if code == 11:
        return _poisson(z, Y, row, dZ, i, K, eps)
    f = 0.0
    if code in _MARGIN_CODES:
        for k in range(K):
            y = Y[row, k]
            fk, dm = _margin_terms(code, y * z[k])
            f += fk
            dZ[i, k] = dm * y
        return f
    for k in range(K):
        fk, dr = _residual_terms(code, z[k] - Y[row, k], eps)
        f += fk
        dZ[i, k] = dr if K == 1 else dr / K
    return f / K


# --------------------------------------------------------------------------- pieces
@_jit_inline
def _step_size(kind, eta, power_t, mu, t0, k):
    """Schedule(k) of :mod:`skopt_nn.optim._schedules`."""
    if kind == 1:
        return eta / float(k) ** power_t
    if kind == 2:
        return 1.0 / (mu * (t0 + k - 1))
    return eta


@_jit
def _sqnorm(x, m):
    """Σ x[:m]² with four partial sums."""
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= m:
        s0 += x[j] * x[j]
        s1 += x[j + 1] * x[j + 1]
        s2 += x[j + 2] * x[j + 2]
        s3 += x[j + 3] * x[j + 3]
        j += 4
    while j < m:
        s0 += x[j] * x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _dense_dot(X, row, x, d):
    """X[row] · x[:d] with four partial sums."""
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= d:
        s0 += X[row, j] * x[j]
        s1 += X[row, j + 1] * x[j + 1]
        s2 += X[row, j + 2] * x[j + 2]
        s3 += X[row, j + 3] * x[j + 3]
        j += 4
    while j < d:
        s0 += X[row, j] * x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _sgd_row_step(X, row, x, d, alpha, c, lr):
    """x[:d] ← x − η (α x + c X[row]); returns ‖x[:d]‖² after the step."""
    q0 = q1 = q2 = q3 = 0.0
    j = 0
    while j + 4 <= d:
        x0 = x[j] - lr * (alpha * x[j] + X[row, j] * c)
        x1 = x[j + 1] - lr * (alpha * x[j + 1] + X[row, j + 1] * c)
        x2 = x[j + 2] - lr * (alpha * x[j + 2] + X[row, j + 2] * c)
        x3 = x[j + 3] - lr * (alpha * x[j + 3] + X[row, j + 3] * c)
        x[j], x[j + 1], x[j + 2], x[j + 3] = x0, x1, x2, x3
        q0 += x0 * x0
        q1 += x1 * x1
        q2 += x2 * x2
        q3 += x3 * x3
        j += 4
    while j < d:
        xj = x[j] - lr * (alpha * x[j] + X[row, j] * c)
        x[j] = xj
        q0 += xj * xj
        j += 1
    return (q0 + q1) + (q2 + q3)


@_jit
def _lerp(a, b, w):
    """torch.lerp's formula."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1.0 - w)


@_jit
def _update(rule, x, g, lr, hp, s1, s2, count):
    """One step of the update rule ``rule`` in place on ``x`` (see _update_rules.py)."""
    m = x.shape[0]
    if rule == 0:  # SGD
        for p in range(m):
            x[p] -= lr * g[p]
    elif rule == 1:  # momentum: Δ ← μΔ − ηg; x ← x + Δ (Nesterov: x + μΔ − ηg)
        mom, nesterov = hp[0], hp[1] != 0.0
        for p in range(m):
            delta = s1[p] * mom + (-lr) * g[p]
            s1[p] = delta
            if nesterov:
                x[p] = (x[p] + mom * delta) + (-lr) * g[p]
            else:
                x[p] += delta
    elif rule == 2:  # AdaGrad
        eps = hp[0]
        for p in range(m):
            acc = s1[p] + g[p] * g[p]
            s1[p] = acc
            x[p] += (-lr) * (g[p] / math.sqrt(acc + eps))
    elif rule == 3:  # RMSProp
        gamma, eps = hp[0], hp[1]
        if hp[2] != 0.0:
            for p in range(m):
                v = s1[p] * gamma + (1.0 - gamma) * g[p] * g[p]
                s1[p] = v
                x[p] += (-lr) * (g[p] / math.sqrt(v + eps))
        else:
            v = s1[0] * gamma + (1.0 - gamma) * _sqnorm(g, m)
            s1[0] = v
            root = math.sqrt(v + eps)
            for p in range(m):
                x[p] += (-lr) * (g[p] / root)
    else:  # Adam, v holding v + ε(1 − β₂ᵏ)
        b1, b2, eps = hp[0], hp[1], hp[2]
        rate = lr * math.sqrt(1.0 - b2 ** float(count)) / (1.0 - b1 ** float(count))
        if hp[3] != 0.0:
            for p in range(m):
                mp = _lerp(s1[p], g[p], 1.0 - b1)
                s1[p] = mp
                v = (s2[p] * b2 + (1.0 - b2) * g[p] * g[p]) + eps * (1.0 - b2)
                s2[p] = v
                x[p] += (-rate) * (mp / math.sqrt(v))
        else:
            v = (s2[0] * b2 + (1.0 - b2) * _sqnorm(g, m)) + eps * (1.0 - b2)
            s2[0] = v
            root = math.sqrt(v)
            for p in range(m):
                mp = _lerp(s1[p], g[p], 1.0 - b1)
                s1[p] = mp
                x[p] += (-rate) * (mp / root)


@_jit
def _truncate(rule, x, dK, lr, hp, s1, s2, count, u, q, lam):
    """The L1 penalty's cumulative truncation after a step (skopt_nn._penalty.CumulativeL1)
    with each coordinate's step (Optimizer.coordinate_steps); returns Σ|x[:dK]|."""
    scalar = lr
    if rule == 3 and hp[2] == 0.0:  # RMSProp with one v
        scalar = lr / math.sqrt(s1[0] + hp[1])
    bc2 = 1.0
    if rule == 4:
        bc2 = math.sqrt(1.0 - hp[1] ** float(max(count, 1)))
        if hp[3] == 0.0:
            scalar = lr * bc2 / math.sqrt(s2[0])
    l1 = 0.0
    for p in range(dK):
        st = scalar
        if rule == 2:
            st = lr / math.sqrt(s1[p] + hp[0])
        elif rule == 3 and hp[2] != 0.0:
            st = lr / math.sqrt(s1[p] + hp[1])
        elif rule == 4 and hp[3] != 0.0:
            st = lr * bc2 / math.sqrt(s2[p])
        u[p] += st * lam
        w = x[p]
        nw = w
        if w > 0:
            nw = max(0.0, w - (u[p] + q[p]))
        elif w < 0:
            nw = min(0.0, w + (u[p] - q[p]))
        x[p] = nw
        q[p] = (q[p] + nw) - w
        l1 += abs(nw)
    return l1


@_jit
def _average(avg_x, x, n, scale, dK):
    """Averager.update: x̄ ← x (n = 1) or lerp(x̄, x, 1/n); W = scale·x[:dK]."""
    m = x.shape[0]
    if n == 1:
        for p in range(dK):
            avg_x[p] = scale * x[p]
        for p in range(dK, m):
            avg_x[p] = x[p]
    else:
        w = 1.0 / n
        for p in range(dK):
            avg_x[p] = _lerp(avg_x[p], scale * x[p], w)
        for p in range(dK, m):
            avg_x[p] = _lerp(avg_x[p], x[p], w)


# --------------------------------------------------------------------------- epochs
# Each epoch visits the rows in ``perm``'s order, a batch at a time: forward (z, f and
# ∂f/∂z of each row), the batch's gradient, the update rule's step.

@_jit_inline
def _weigh(dZ, i, K, w):
    """dZ[i] ← w dZ[i]; returns the sample's weight w."""
    for k in range(K):
        dZ[i, k] *= w
    return w


@_jit_inline
def _intercept_gradient(g, dZ, B, K, dK, inv, fit_intercept):
    """g_b = Σᵢ dZ[i] / B (zero without an intercept)."""
    for k in range(K):
        if fit_intercept:
            s = 0.0
            for i in range(B):
                s += dZ[i, k]
            g[dK + k] = s * inv
        else:
            g[dK + k] = 0.0


@_jit_inline
def _dense_forward(X, row, x, d, K, dK, z):
    """z = X[row] W + b of K > 1 outputs (one output: :func:`_dense_dot`)."""
    for k in range(K):
        z[k] = 0.0
    for j in range(d):
        a = X[row, j]
        base = j * K
        for k in range(K):
            z[k] += a * x[base + k]
    for k in range(K):
        z[k] += x[dK + k]


@_jit_inline
def _dense_gradient(X, perm, start, B, dZ, g, d, K):
    """g[:dK] = Xᵀ dZ over the batch's rows."""
    for i in range(B):
        row = perm[start + i]
        if K == 1:
            c = dZ[i, 0]
            if i == 0:
                for j in range(d):
                    g[j] = X[row, j] * c
            else:
                for j in range(d):
                    g[j] += X[row, j] * c
            continue
        for j in range(d):
            a = X[row, j]
            base = j * K
            if i == 0:
                for k in range(K):
                    g[base + k] = a * dZ[i, k]
            else:
                for k in range(K):
                    g[base + k] += a * dZ[i, k]


@_jit_inline
def _sample_sgd_step(X, row, x, g, d, dK, c, alpha, lr, fit_intercept, last):
    """Per-sample SGD, gradient and step in one pass (the last gradient stays in g);
    returns ‖W‖² after the step."""
    if last:
        for j in range(d):
            g[j] = alpha * x[j] + X[row, j] * c
    sq = _sgd_row_step(X, row, x, d, alpha, c, lr)
    g[dK] = c if fit_intercept else 0.0
    x[dK] -= lr * g[dK]
    return sq


@_jit
def _dense_epoch(X, Y, sw, perm, x, g, batch_size, K, fit_intercept, alpha, loss_code,
                 loss_eps, rule, hp, s1, s2, count, sched, eta, power_t, mu, t0, k0,
                 avg_x, avg_start, avg_n, losses, l1_u, l1_q, lam):
    """An epoch on dense rows X (n, d); batch losses into ``losses``.  With ``lam`` > 0
    each step is followed by the L1 truncation (state ``l1_u``, ``l1_q``)."""
    n = perm.shape[0]
    d = X.shape[1]
    dK = d * K
    has_sw = sw.shape[0] > 0
    z = np.empty(K)
    dZ = np.empty((batch_size, K))
    sq = _sqnorm(x, dK) if alpha != 0.0 else 0.0
    l1 = 0.0
    if lam != 0.0:
        for p in range(dK):
            l1 += abs(x[p])
    n_batches = (n + batch_size - 1) // batch_size
    flat = X.reshape(-1)
    for i in range(_AHEAD):
        _prefetch_dense_row(flat, perm, i, d)
    for bi in range(n_batches):
        start, B, inv = _batch_bounds(bi, batch_size, n)
        fsum = 0.0
        for i in range(B):
            _prefetch_dense_row(flat, perm, start + i + _AHEAD, d)
            row = perm[start + i]
            if K == 1:
                z[0] = _dense_dot(X, row, x, d) + x[dK]
            else:
                _dense_forward(X, row, x, d, K, dK, z)
            f = _loss_terms(loss_code, z, Y, row, dZ, i, K, loss_eps)
            if has_sw:
                f *= _weigh(dZ, i, K, sw[row])
            fsum += f * inv
        losses[bi] = fsum + (0.5 * alpha) * sq if alpha != 0.0 else fsum
        if lam != 0.0:
            losses[bi] += lam * l1
        kk = k0 + bi + 1
        lr = _step_size(sched, eta, power_t, mu, t0, kk)
        sample = rule == 0 and B == 1 and K == 1  # per-sample SGD keeps no step count
        step_k = 0 if sample else count + bi + 1
        if sample:
            sq = _sample_sgd_step(X, perm[start], x, g, d, dK, dZ[0, 0], alpha, lr,
                                  fit_intercept, bi == n_batches - 1)
        else:  # g_W = α W + Xᵀ dZ / B, g_b = Σ dZ / B
            _dense_gradient(X, perm, start, B, dZ, g, d, K)
            for p in range(dK):
                g[p] = alpha * x[p] + inv * g[p]
            _intercept_gradient(g, dZ, B, K, dK, inv, fit_intercept)
            _update(rule, x, g, lr, hp, s1, s2, step_k)
        if lam != 0.0:
            l1 = _truncate(rule, x, dK, lr, hp, s1, s2, step_k, l1_u, l1_q, lam)
        if alpha != 0.0 and (lam != 0.0 or not sample):
            sq = _sqnorm(x, dK)
        if avg_x.shape[0] > 0 and kk >= avg_start:
            avg_n += 1
            _average(avg_x, x, avg_n, 1.0, dK)


@_jit_inline
def _sparse_forward(indptr, indices, data, row, x, scale, K, dK, z):
    """z = scale · X[row] W + b over the row's nonzeros."""
    lo, hi = indptr[row], indptr[row + 1]
    if K == 1:
        a0 = a1 = 0.0
        q = lo
        while q + 2 <= hi:
            a0 += data[q] * x[indices[q]]
            a1 += data[q + 1] * x[indices[q + 1]]
            q += 2
        if q < hi:
            a0 += data[q] * x[indices[q]]
        z[0] = scale * (a0 + a1) + x[dK]
    else:
        for k in range(K):
            z[k] = 0.0
        for q in range(lo, hi):
            a = data[q]
            base = indices[q] * K
            for k in range(K):
                z[k] += a * x[base + k]
        for k in range(K):
            z[k] = scale * z[k] + x[dK + k]


@_jit_inline
def _sparse_row_step(indptr, indices, data, row, x, c):
    """x[j] ← x[j] − c·a_j over the nonzeros a_j of X[row]; returns the change of ‖x‖²."""
    lo, hi = indptr[row], indptr[row + 1]
    d0 = d1 = 0.0
    q = lo
    while q + 2 <= hi:
        j = indices[q]
        old = x[j]
        new = old - data[q] * c
        x[j] = new
        d0 += (new - old) * (new + old)
        j = indices[q + 1]
        old = x[j]
        new = old - data[q + 1] * c
        x[j] = new
        d1 += (new - old) * (new + old)
        q += 2
    if q < hi:
        j = indices[q]
        old = x[j]
        new = old - data[q] * c
        x[j] = new
        d0 += (new - old) * (new + old)
    return d0 + d1


@_jit_inline
def _sparse_gradient(indptr, indices, data, perm, start, B, dZ, g, dK, K):
    """g[:dK] = Xᵀ dZ over the batch's CSR rows."""
    for p in range(dK):
        g[p] = 0.0
    for i in range(B):
        row = perm[start + i]
        for q in range(indptr[row], indptr[row + 1]):
            a = data[q]
            base = indices[q] * K
            for k in range(K):
                g[base + k] += a * dZ[i, k]


@_jit_inline
def _sparse_scaled_step(indptr, indices, data, perm, start, B, dZ, x, c, K, sq):
    """V ← V − c Xᵀ dZ over the batch's nonzeros; returns ‖V‖² (``sq`` before)."""
    if K == 1:  # two partial sums of ‖V‖²'s change: the loop is not one chain
        for i in range(B):
            row = perm[start + i]
            sq += _sparse_row_step(indptr, indices, data, row, x, c * dZ[i, 0])
        return sq
    for i in range(B):
        row = perm[start + i]
        for q in range(indptr[row], indptr[row + 1]):
            a = data[q] * c
            base = indices[q] * K
            for k in range(K):
                old = x[base + k]
                new = old - a * dZ[i, k]
                x[base + k] = new
                sq += new * new - old * old
    return sq


@_jit
def _sparse_epoch(indptr, indices, data, d, Y, sw, perm, x, g, batch_size, K,
                  fit_intercept, alpha, loss_code, loss_eps, rule, hp, s1, s2, count, sched,
                  eta, power_t, mu, t0, k0, avg_x, avg_start, avg_n, losses):
    """An epoch on CSR rows; with SGD the penalty's shrink is a scale (W = s·V)."""
    n = perm.shape[0]
    dK = d * K
    m = x.shape[0]
    has_sw = sw.shape[0] > 0
    scaled = rule == 0
    z = np.empty(K)
    dZ = np.empty((batch_size, K))
    s = 1.0  # W = s·x[:dK] during the epoch (1 but for SGD)
    sq = _sqnorm(x, dK) if alpha != 0.0 else 0.0  # ‖x[:dK]‖²
    n_batches = (n + batch_size - 1) // batch_size
    for bi in range(n_batches):
        start, B, inv = _batch_bounds(bi, batch_size, n)
        fsum = 0.0
        for i in range(B):
            _prefetch_csr_row(indptr, indices, data, perm, start + i + _AHEAD)
            row = perm[start + i]
            _sparse_forward(indptr, indices, data, row, x, s, K, dK, z)
            f = _loss_terms(loss_code, z, Y, row, dZ, i, K, loss_eps)
            if has_sw:
                f *= _weigh(dZ, i, K, sw[row])
            fsum += f * inv
        losses[bi] = fsum + (0.5 * alpha) * ((s * s) * sq) if alpha != 0.0 else fsum
        kk = k0 + bi + 1
        lr = _step_size(sched, eta, power_t, mu, t0, kk)
        if not scaled or bi == n_batches - 1:  # the whole gradient, into g
            _sparse_gradient(indptr, indices, data, perm, start, B, dZ, g, dK, K)
            for p in range(dK):
                g[p] = alpha * (s * x[p]) + inv * g[p]
        _intercept_gradient(g, dZ, B, K, dK, inv, fit_intercept)
        if not scaled:
            _update(rule, x, g, lr, hp, s1, s2, count + bi + 1)
            if alpha != 0.0:
                sq = _sqnorm(x, dK)
        else:  # W ← (1 − ηα) W − η Xᵀ dZ / B as s ← (1 − ηα) s, V ← V − η Xᵀ dZ / (B s)
            s_new = s * (1.0 - lr * alpha)
            if abs(s_new) < _MIN_SCALE:
                for p in range(dK):
                    x[p] *= s_new
                s = 1.0
                if alpha != 0.0:
                    sq = _sqnorm(x, dK)
            else:
                s = s_new
            sq = _sparse_scaled_step(indptr, indices, data, perm, start, B, dZ, x,
                                     lr * inv / s, K, sq)
            for p in range(dK, m):
                x[p] -= lr * g[p]
        if avg_x.shape[0] > 0 and kk >= avg_start:
            avg_n += 1
            _average(avg_x, x, avg_n, s, dK)
    if s != 1.0:
        for p in range(dK):
            x[p] *= s
