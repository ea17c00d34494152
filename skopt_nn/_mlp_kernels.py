"""The numba kernels of :mod:`skopt_nn._compiled_mlp` (imported only where numba is)."""

import math

import numba
import numpy as np

from ._linear_kernels import _loss_terms


def _jit(fn):
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


def _jit_inline(fn):
    """A phase of an epoch, inlined into it."""
    return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn)


def _jit_fast(fn):
    """For the models-innermost kernels: FMA contraction lets the loops over models
    vectorise (each model's sums keep their order)."""
    return numba.njit(cache=True, nogil=True, error_model="numpy",
                      fastmath={"contract", "arcp", "nsz"})(fn)


def _jit_fast_inline(fn):
    """A phase of the population's epoch, inlined into it."""
    return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always",
                      fastmath={"contract", "arcp", "nsz"})(fn)


@_jit
def _layer(layers, layer):
    """Where layer ``layer``'s W and b start in the flat vector, and its fan-in and out."""
    return layers[layer, 0], layers[layer, 1], layers[layer, 3], layers[layer, 4]


@_jit
def _activate(Z, act):
    if act == 1:
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                if Z[i, j] < 0:
                    Z[i, j] = 0.0
    elif act == 2:
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                Z[i, j] = math.tanh(Z[i, j])
    elif act == 3:
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                Z[i, j] = 1.0 / (1.0 + math.exp(-Z[i, j]))


@_jit
def _times_derivative(D, A, act):
    """D ⊙ σ'(Z) written with the activation A = σ(Z), as the torch path does."""
    for i in range(D.shape[0]):
        for j in range(D.shape[1]):
            a = A[i, j]
            if act == 1:
                if a <= 0:
                    D[i, j] = 0.0
            elif act == 2:
                D[i, j] *= 1.0 - a * a
            elif act == 3:
                D[i, j] *= a * (1.0 - a)


@_jit
def _step_size(k, steps):
    kind = steps[0]
    if kind == 1:
        return steps[1] / k ** steps[2]
    if kind == 2:
        return 1.0 / (steps[3] * (steps[4] + k - 1))
    return steps[1]


@_jit
def _update(x, g, lr, code, hyper, s1, s2, count):
    """The update rules of :mod:`skopt_nn.optim._update_rules`, element by element."""
    P = x.shape[0]
    if code == 0:  # Eq. 16
        for p in range(P):
            x[p] -= lr * g[p]
    elif code == 1:  # Eq. 8
        mom, nesterov = hyper[0], hyper[1]
        for p in range(P):
            s1[p] = mom * s1[p] - lr * g[p]
            if nesterov != 0:
                x[p] += mom * s1[p] - lr * g[p]
            else:
                x[p] += s1[p]
    elif code == 2:  # Eq. 32-34
        eps = hyper[0]
        for p in range(P):
            s1[p] += g[p] * g[p]
            x[p] -= lr * g[p] / math.sqrt(s1[p] + eps)
    elif code == 3:  # Eq. 35-36
        gamma, eps = hyper[0], hyper[1]
        for p in range(P):
            s1[p] = gamma * s1[p] + (1 - gamma) * g[p] * g[p]
            x[p] -= lr * g[p] / math.sqrt(s1[p] + eps)
    else:  # Eq. 37-39, v holding v + ε(1 − β₂ᵏ)
        count += 1
        b1, b2, eps = hyper[0], hyper[1], hyper[2]
        rate = lr * math.sqrt(1 - b2**count) / (1 - b1**count)
        for p in range(P):
            s1[p] += (1 - b1) * (g[p] - s1[p])
            s2[p] = b2 * s2[p] + (1 - b2) * g[p] * g[p] + eps * (1 - b2)
            x[p] -= rate * s1[p] / math.sqrt(s2[p])
    return count


@_jit_inline
def _gather_rows(X, Y, sw, perm, start, m, A0, Yb, wb):
    """The batch's rows of X into A0, of Y into Yb and their weights into wb."""
    weighted = sw.shape[0] > 0
    for i in range(m):
        r = perm[start + i]
        for c in range(X.shape[1]):
            A0[i, c] = X[r, c]
        for c in range(Y.shape[1]):
            Yb[i, c] = Y[r, c]
        wb[i] = sw[r] if weighted else 1.0


@_jit_inline
def _forward(x, layers, A, m, act):
    """A[l + 1] = σ(A[l] W_l + b_l), the output's σ the identity (Eq. 9)."""
    L = layers.shape[0]
    for layer in range(L):
        w0, b0, fan_in, fan_out = _layer(layers, layer)
        Ain, Aout = A[layer], A[layer + 1]
        for i in range(m):
            Aout[i, :fan_out] = x[b0:b0 + fan_out]
            for p in range(fan_in):
                a = Ain[i, p]
                row = w0 + p * fan_out
                for c in range(fan_out):
                    Aout[i, c] += a * x[row + c]
        if layer < L - 1:
            _activate(Aout[:m, :fan_out], act)


@_jit_inline
def _batch_loss(x, layers, Z, delta, Yb, wb, f, m, loss, eps, alpha, weight_scale,
                weighted):
    """F = mean_i s_i f_i + ½ c ‖W‖² with c = α / S (scikit-learn's batch scaling), and
    δ = s_i ∂f_i/∂z (Eq. 11, the linear models' loss kernels); returns (F, c)."""
    K = Z.shape[1]
    for i in range(m):
        f[i] = _loss_terms(loss, Z[i], Yb, i, delta, i, K, eps)
    total, wsum = 0.0, 0.0
    for i in range(m):
        total += wb[i] * f[i]
        wsum += wb[i]
        if weighted:
            for c in range(K):
                delta[i, c] *= wb[i]
    F = total / m
    c_pen = 0.0
    if alpha != 0.0:
        c_pen = alpha / (weight_scale * (wsum if weighted else m))
        sq = 0.0
        for layer in range(layers.shape[0]):
            for p in range(layers[layer, 0], layers[layer, 1]):
                sq += x[p] * x[p]
        F += 0.5 * c_pen * sq
    return F, c_pen


@_jit_inline
def _layer_gradient(x, g, w0, b0, fan_in, fan_out, Ain, dl, m, c_pen):
    """g_W = Aᵀ δ / m + c W and g_b = Σ δ / m of one layer (Eq. 12-13)."""
    for p in range(fan_in * fan_out):
        g[w0 + p] = 0.0
    for c in range(fan_out):
        g[b0 + c] = 0.0
    for i in range(m):
        for p in range(fan_in):
            a = Ain[i, p]
            row = w0 + p * fan_out
            for c in range(fan_out):
                g[row + c] += a * dl[i, c]
        for c in range(fan_out):
            g[b0 + c] += dl[i, c]
    for p in range(w0, b0):
        g[p] = g[p] / m + c_pen * x[p]
    for c in range(fan_out):
        g[b0 + c] /= m


@_jit_inline
def _backward(x, g, layers, A, D, WT, m, c_pen, act):
    """The gradient g of every layer from δ in D[0], last layer first (Eq. 10-13)."""
    cur = 0
    for layer in range(layers.shape[0] - 1, -1, -1):
        w0, b0, fan_in, fan_out = _layer(layers, layer)
        dl = D[cur, :m, :fan_out]
        Ain = A[layer]
        _layer_gradient(x, g, w0, b0, fan_in, fan_out, Ain, dl, m, c_pen)
        if layer > 0:  # δ_{l-1} = (δ_l W_lᵀ) ⊙ σ'(Z_{l-1})
            for p in range(fan_in):
                for c in range(fan_out):
                    WT[c * fan_in + p] = x[w0 + p * fan_out + c]
            nxt = D[1 - cur, :m, :fan_in]
            for i in range(m):
                for p in range(fan_in):
                    nxt[i, p] = 0.0
                for c in range(fan_out):
                    dv = dl[i, c]
                    row = c * fan_in
                    for p in range(fan_in):
                        nxt[i, p] += dv * WT[row + p]
            _times_derivative(nxt, Ain[:m, :fan_in], act)
            cur = 1 - cur


@_jit
def mlp_epoch(X, Y, sw, perm, b, x, g, layers, act, loss, eps, alpha, weight_scale, code,
              hyper, s1, s2, count, steps, k, losses):
    """One epoch of mini-batch steps in place on x, g and the rule's state s1, s2;
    writes each batch's F into ``losses``; returns the step count k and Adam's count."""
    n, d = X.shape
    K = Y.shape[1]
    L = layers.shape[0]
    width = max(d, layers[:, 4].max())
    dt = X.dtype
    Yb = np.empty((b, K), dt)
    wb = np.empty(b, dt)
    # A[l]: the activations of layer l (A[0] the inputs), as (b, width) scratch
    A = np.empty((L + 1, b, width), dt)
    D = np.empty((2, b, width), dt)
    WT = np.empty(width * width, dt)
    f = np.empty(b, dt)
    weighted = sw.shape[0] > 0
    for j in range(losses.shape[0]):
        start = j * b
        m = min(b, n - start)
        _gather_rows(X, Y, sw, perm, start, m, A[0], Yb, wb)
        _forward(x, layers, A, m, act)
        losses[j], c_pen = _batch_loss(x, layers, A[L, :m, :K], D[0, :m, :K], Yb, wb, f, m,
                                       loss, eps, alpha, weight_scale, weighted)
        _backward(x, g, layers, A, D, WT, m, c_pen, act)
        k += 1
        count = _update(x, g, _step_size(k, steps), code, hyper, s1, s2, count)
    return k, count


# -- many models of one architecture, the models on the innermost axis ----------------
@_jit_fast
def _activate_models(A, m, w, act):
    """σ in place on A[:m, :w] (models on the last axis)."""
    for i in range(m):
        for c in range(w):
            row = A[i, c]
            if act == 1:
                for q in range(row.shape[0]):
                    row[q] = max(row[q], 0.0)
            elif act == 2:
                for q in range(row.shape[0]):
                    row[q] = math.tanh(row[q])
            elif act == 3:
                for q in range(row.shape[0]):
                    row[q] = 1.0 / (1.0 + math.exp(-row[q]))


@_jit_fast
def _times_derivative_models(D, A, m, w, act):
    """D ⊙ σ'(Z) on [:m, :w], σ' read off A = σ(Z)."""
    for i in range(m):
        for c in range(w):
            d, a = D[i, c], A[i, c]
            if act == 1:
                for q in range(d.shape[0]):
                    if a[q] <= 0:
                        d[q] = 0.0
            elif act == 2:
                for q in range(d.shape[0]):
                    d[q] *= 1.0 - a[q] * a[q]
            elif act == 3:
                for q in range(d.shape[0]):
                    d[q] *= a[q] * (1.0 - a[q])


@_jit_fast_inline
def _gather_models(X, R, Y, sw, start, mb, A0, Yb, wb):
    """Each model's batch rows of X into A0 (b, d, M), of Y into Yb, weights into wb."""
    weighted = sw.shape[1] > 0
    for i in range(mb):
        for q in range(R.shape[0]):
            r = R[q, start + i]
            for c in range(X.shape[1]):
                A0[i, c, q] = X[r, c]
            for c in range(Y.shape[1]):
                Yb[i, c, q] = Y[r, c]
            wb[i, q] = sw[q, start + i] if weighted else 1.0


@_jit_fast_inline
def _forward_models(XT, layers, A, mb, act):
    """A[l + 1] = σ(A[l] W_l + b_l) of every model (Eq. 9)."""
    L = layers.shape[0]
    for layer in range(L):
        w0, b0, fan_in, fan_out = _layer(layers, layer)
        Ain, Aout = A[layer], A[layer + 1]
        for i in range(mb):
            for c in range(fan_out):
                Aout[i, c, :] = XT[b0 + c]
            for p in range(fan_in):
                a = Ain[i, p]
                row = w0 + p * fan_out
                for c in range(fan_out):
                    out, w = Aout[i, c], XT[row + c]
                    for q in range(a.shape[0]):
                        out[q] += a[q] * w[q]
        if layer < L - 1:
            _activate_models(Aout, mb, fan_out, act)


@_jit_fast_inline
def _output_terms_models(Z, delta, Yb, wb, f, z, mbs, mb, loss, eps):
    """f and δ = ∂f/∂z (Eq. 11) of model q's rows, the linear models' loss kernels on
    its column; its padding rows get neither (nor weight)."""
    K = Yb.shape[1]
    for q in range(Z.shape[2]):
        Yq, dq = Yb[:, :, q], delta[:, :, q]
        for i in range(mbs[q]):
            for c in range(K):
                z[c] = Z[i, c, q]
            f[i, q] = _loss_terms(loss, z, Yq, i, dq, i, K, eps)
        for i in range(mbs[q], mb):
            f[i, q] = 0.0
            wb[i, q] = 0.0
            for c in range(K):
                dq[i, c] = 0.0


@_jit_fast_inline
def _batch_loss_models(XT, layers, delta, K, wb, f, mbs, mbf, mb, alphas, ws, per_batch,
                       weighted, cpen, F):
    """F = mean_i s_i f_i + ½ c ‖W‖² per model into ``F``, c into ``cpen``; δ ← s_i δ."""
    M = XT.shape[1]
    for q in range(M):
        total, wsum = 0.0, 0.0
        for i in range(mbs[q]):
            total += wb[i, q] * f[i, q]
            wsum += wb[i, q]
        F[q] = total / mbf[q]
        if per_batch:
            cpen[q] = alphas[q] / (ws[q] * (wsum if weighted else mbs[q]))
        else:
            cpen[q] = alphas[q]
    if weighted:
        for i in range(mb):
            for c in range(K):
                for q in range(M):
                    delta[i, c, q] *= wb[i, q]
    for layer in range(layers.shape[0]):
        for p in range(layers[layer, 0], layers[layer, 1]):
            for q in range(M):
                F[q] += 0.5 * cpen[q] * XT[p, q] * XT[p, q]


@_jit_fast_inline
def _layer_gradient_models(XT, GT, w0, b0, end, fan_in, fan_out, Ain, dl, mb, mbf, cpen,
                           fit_intercept):
    """g_W = Aᵀ δ / m + c W and g_b = Σ δ / m of one layer, every model (Eq. 12-13)."""
    M = XT.shape[1]
    for p in range(w0, end):
        for q in range(M):
            GT[p, q] = 0.0
    for i in range(mb):
        for p in range(fan_in):
            a = Ain[i, p]
            row = w0 + p * fan_out
            for c in range(fan_out):
                gw, dv = GT[row + c], dl[i, c]
                for q in range(M):
                    gw[q] += a[q] * dv[q]
        if fit_intercept:
            for c in range(fan_out):
                gb, dv = GT[b0 + c], dl[i, c]
                for q in range(M):
                    gb[q] += dv[q]
    for p in range(w0, b0):
        for q in range(M):
            GT[p, q] = GT[p, q] / mbf[q] + cpen[q] * XT[p, q]
    for c in range(fan_out):
        for q in range(M):
            GT[b0 + c, q] /= mbf[q]


@_jit_fast_inline
def _backward_models(XT, GT, layers, A, D, mb, mbf, cpen, fit_intercept, act):
    """Every model's gradient from δ in D[0], last layer first (Eq. 10-13)."""
    M = XT.shape[1]
    cur = 0
    for layer in range(layers.shape[0] - 1, -1, -1):
        w0, b0, fan_in, fan_out = _layer(layers, layer)
        dl, Ain = D[cur], A[layer]
        _layer_gradient_models(XT, GT, w0, b0, layers[layer, 2], fan_in, fan_out, Ain, dl,
                               mb, mbf, cpen, fit_intercept)
        if layer > 0:  # δ_{l-1} = (δ_l W_lᵀ) ⊙ σ'(Z_{l-1})
            nxt = D[1 - cur]
            for i in range(mb):
                for p in range(fan_in):
                    out = nxt[i, p]
                    out[:] = 0.0
                    row = w0 + p * fan_out
                    for c in range(fan_out):
                        dv, w = dl[i, c], XT[row + c]
                        for q in range(M):
                            out[q] += dv[q] * w[q]
            _times_derivative_models(nxt, Ain, mb, fan_in, act)
            cur = 1 - cur


@_jit_fast
def population_epoch(X, R, ns, Y, sw, b, XT, GT, layers, act, loss, eps, alphas, per_batch, ws,
                     fit_intercept, code, hyper, S1, S2, count, sched, k, losses):
    """One epoch of mini-batch steps of M models at once, each on its own rows.

    ``XT``, ``GT``, ``S1``, ``S2`` are the parameters, gradients and rule states as
    (P, M), model q in column q, so that every inner loop runs over the models
    (contiguous: it vectorises).  ``R`` (M, n) are each model's rows of ``X`` and of
    its targets ``Y`` (rows of X, K) in the epoch's order, of which model q has
    ``ns[q]`` (the rest padding, in its last batch), ``sw`` (M, n) its weights in
    that order; ``alphas``, ``ws``, ``hyper`` (4, M) and ``sched`` (5, M) the per-model
    penalty, weight scale, rule hyperparameters and schedule.  Writes each batch's F
    into ``losses`` (n_batches, M); returns the step count and Adam's count.
    """
    M, n = R.shape
    K = Y.shape[1]
    L = layers.shape[0]
    width = max(X.shape[1], layers[:, 4].max())
    dt = XT.dtype
    A = np.empty((L + 1, b, width, M), dt)
    D = np.empty((2, b, width, M), dt)
    f = np.empty((b, M), dt)
    wb = np.ones((b, M), dt)
    Yb = np.empty((b, K, M), dt)
    cpen = np.empty(M, dt)
    z = np.empty(K)
    lr = np.empty(M, dt)
    F = np.empty(M, dt)
    mbs = np.empty(M, np.int64)  # each model's rows in the batch (the rest padding)
    mbf = np.empty(M, dt)  # the same, as divisors
    weighted = sw.shape[1] > 0
    for j in range(losses.shape[0]):
        start = j * b
        mb = min(b, n - start)
        for q in range(M):
            mbs[q] = min(b, ns[q] - start)
            mbf[q] = mbs[q]
        _gather_models(X, R, Y, sw, start, mb, A[0], Yb, wb)
        _forward_models(XT, layers, A, mb, act)
        _output_terms_models(A[L], D[0], Yb, wb, f, z, mbs, mb, loss, eps)
        _batch_loss_models(XT, layers, D[0], K, wb, f, mbs, mbf, mb, alphas, ws, per_batch,
                           weighted, cpen, F)
        losses[j] = F
        _backward_models(XT, GT, layers, A, D, mb, mbf, cpen, fit_intercept, act)
        k += 1
        for q in range(M):
            lr[q] = _step_size(k, sched[:, q])
        count = _update_models(XT, GT, lr, code, hyper, S1, S2, count)
    return k, count


@_jit_fast
def _update_models(XT, GT, lr, code, hyper, S1, S2, count):
    """The population's update rules (:mod:`skopt_nn._population._rules`), per model."""
    P, M = XT.shape
    if code == 4:
        count += 1
    rate = np.empty(M)
    if code == 4:
        for q in range(M):
            rate[q] = lr[q] * math.sqrt(1 - hyper[1, q] ** count) / (1 - hyper[0, q] ** count)
    mom, nest, h0, h1, h2 = hyper[0], hyper[1], hyper[0], hyper[1], hyper[2]
    for p in range(P):
        x, g = XT[p], GT[p]
        if code == 0:  # Eq. 4, 16
            for q in range(M):
                x[q] -= lr[q] * g[q]
        elif code == 1:  # Eq. 8
            s1 = S1[p]
            for q in range(M):
                s1[q] = mom[q] * s1[q] - lr[q] * g[q]
                x[q] += (mom[q] * s1[q] - lr[q] * g[q]) if nest[q] != 0 else s1[q]
        elif code == 2:  # Eq. 32-34
            s1 = S1[p]
            for q in range(M):
                s1[q] += g[q] * g[q]
                x[q] -= lr[q] * g[q] / math.sqrt(s1[q] + h0[q])
        elif code == 3:  # Eq. 35-36
            s1 = S1[p]
            for q in range(M):
                s1[q] = h0[q] * s1[q] + (1 - h0[q]) * g[q] * g[q]
                x[q] -= lr[q] * g[q] / math.sqrt(s1[q] + h1[q])
        else:  # Eq. 37-39, v holding v + ε(1 − β₂ᵏ)
            s1, s2 = S1[p], S2[p]
            for q in range(M):
                s1[q] += (1 - h0[q]) * (g[q] - s1[q])
                s2[q] = h1[q] * s2[q] + (1 - h1[q]) * g[q] * g[q] + h2[q] * (1 - h1[q])
                x[q] -= rate[q] * s1[q] / math.sqrt(s2[q])
    return count
