"""The numba kernels of :mod:`skopt_nn._compiled_mlp` (imported only where numba is)."""

import math

import numba
import numpy as np


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn)


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
def _softplus(t):
    if t > 20.0:
        return t
    if t < -20.0:
        return math.exp(t)
    return math.log1p(math.exp(t))


@_jit
def _output(Z, Y, loss, f, delta):
    """f per row and δ = ∂f/∂z (Eq. 11) of the output Z."""
    m, K = Z.shape
    for i in range(m):
        s = 0.0
        if loss == 0:  # ½ mean_k (z − y)², δ = (z − y)/K
            for j in range(K):
                r = Z[i, j] - Y[i, j]
                s += r * r
                delta[i, j] = r if K == 1 else r / K
            f[i] = 0.5 * s / K
        elif loss == 1:  # Σ_k softplus(−y z), δ = −y σ(−y z)
            for j in range(K):
                t = -Y[i, j] * Z[i, j]
                s += _softplus(t)
                delta[i, j] = -Y[i, j] / (1.0 + math.exp(-t))
            f[i] = s
        elif loss == 2:  # logsumexp(z) − yᵀz, δ = softmax(z) − y
            zmax = Z[i, 0]
            for j in range(1, K):
                zmax = max(zmax, Z[i, j])
            for j in range(K):
                s += math.exp(Z[i, j] - zmax)
            lse = zmax + math.log(s)
            yz = 0.0
            for j in range(K):
                yz += Y[i, j] * Z[i, j]
                delta[i, j] = math.exp(Z[i, j] - lse) - Y[i, j]
            f[i] = lse - yz
        elif loss == 3:  # Σ_k max(0, 1 − y z)
            for j in range(K):
                margin = 1.0 - Y[i, j] * Z[i, j]
                if margin > 0:
                    s += margin
                    delta[i, j] = -Y[i, j]
                else:
                    delta[i, j] = 0.0
            f[i] = s
        else:  # Poisson: Σ_k exp(z) − y z + y log y − y
            for j in range(K):
                mu = math.exp(Z[i, j])
                y = Y[i, j]
                s += mu - y * Z[i, j] + (y * math.log(y) if y > 0 else 0.0) - y
                delta[i, j] = mu - y
            f[i] = s


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


@_jit
def mlp_epoch(X, Y, sw, perm, b, x, g, layers, act, loss, alpha, weight_scale, code, hyper,
           s1, s2, count, steps, k, losses):
    """One epoch of mini-batch steps in place on x, g and the rule's state s1, s2;
    writes each batch's F into ``losses``; returns the step count k and Adam's count."""
    n, d = X.shape
    K = Y.shape[1]
    L = layers.shape[0]
    width = 0
    for layer in range(L):
        width = max(width, layers[layer, 4])
    dt = X.dtype
    Yb = np.empty((b, K), dt)
    wb = np.empty(b, dt)
    # A[l]: the activations of layer l (A[0] the inputs), as (b, width) scratch
    A = np.empty((L + 1, b, max(width, d)), dt)
    D = np.empty((2, b, max(width, d)), dt)
    WT = np.empty(max(width, d) * max(width, d), dt)
    f = np.empty(b, dt)
    weighted = sw.shape[0] > 0
    for j in range(losses.shape[0]):
        start = j * b
        m = min(b, n - start)
        for i in range(m):
            r = perm[start + i]
            for c in range(d):
                A[0, i, c] = X[r, c]
            for c in range(K):
                Yb[i, c] = Y[r, c]
            wb[i] = sw[r] if weighted else 1.0
        # forward (Eq. 9)
        for layer in range(L):
            w0, b0, fan_in, fan_out = layers[layer, 0], layers[layer, 1], layers[layer, 3], \
                layers[layer, 4]
            Ain, Aout = A[layer], A[layer + 1]
            for i in range(m):
                for c in range(fan_out):
                    Aout[i, c] = x[b0 + c]
                for p in range(fan_in):
                    a = Ain[i, p]
                    row = w0 + p * fan_out
                    for c in range(fan_out):
                        Aout[i, c] += a * x[row + c]
            if layer < L - 1:
                _activate(Aout[:m, :fan_out], act)
        Z = A[L, :m, :K]
        delta = D[0, :m, :K]
        _output(Z, Yb[:m], loss, f[:m], delta)
        # F = mean_i s_i f_i + ½ c ‖W‖², c = α / S (scikit-learn's batch scaling)
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
            for layer in range(L):
                for p in range(layers[layer, 0], layers[layer, 1]):
                    sq += x[p] * x[p]
            F += 0.5 * c_pen * sq
        losses[j] = F
        # backward (Eq. 10-13)
        cur = 0
        for layer in range(L - 1, -1, -1):
            w0, b0, fan_in, fan_out = layers[layer, 0], layers[layer, 1], layers[layer, 3], \
                layers[layer, 4]
            dl = D[cur, :m, :fan_out]
            Ain = A[layer]
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
        k += 1
        count = _update(x, g, _step_size(k, steps), code, hyper, s1, s2, count)
    return k, count
