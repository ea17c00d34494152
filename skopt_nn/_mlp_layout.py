"""The memory layout of the MLP's matrix products, chosen per shape by timing.

How fast the BLAS runs a product depends on the layout of its operands and result:
with MKL on this project's 2-core AMD EPYC, a 256×257 by 257×10 product takes ~120
µs into a row-major result and ~30 µs into a column-major one, while square
products run at the same speed either way.  :func:`prefer_transposed` times the
two once per machine and shape (see :mod:`skopt_nn._mlp_objective`); the choice is
kept by :mod:`skopt_nn._layout_store`, so that later runs make the same one.
"""

from __future__ import annotations

import math
import time

import torch

from . import _layout_store

#: products of at least this many multiply-adds (on the CPU) have their layout timed
_TIME_MACS = 1 << 16
#: the column-major layout is kept where it takes at most this share of the row-major time
_LAYOUT_MARGIN = 0.8


def _matrix(rows: int, cols: int, transposed: bool, dtype: torch.dtype) -> torch.Tensor:
    """A (rows, cols) CPU matrix, row-major or (``transposed``) column-major."""
    shape = (cols, rows) if transposed else (rows, cols)
    M = torch.full(shape, 0.5, dtype=dtype)
    return M.T if transposed else M


def best_time(fn, reps: int = 5) -> float:
    fn()
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def prefer_transposed(m: int, k: int, n: int, a_t: bool, b_t: bool, copy: bool,
                       x: torch.Tensor) -> bool:
    """Whether ``C = A B`` (``m×k`` by ``k×n``) runs clearly faster into a column-major C.

    ``a_t``/``b_t``: A and B are stored column-major; ``copy``: the column-major
    result must then be copied into a row-major one (a gradient block of g).
    Timed once per machine, shape and thread count on the CPU (the choice is
    stored: :func:`skopt_nn._layout_store.choice`), for products of at least
    ``_TIME_MACS`` multiply-adds; otherwise (and on other devices) ``False``.
    """
    if x.device.type != "cpu" or m * k * n < _TIME_MACS:
        return False

    def timed() -> bool:
        A, B = _matrix(m, k, a_t, x.dtype), _matrix(k, n, b_t, x.dtype)
        C, Ct = _matrix(m, n, False, x.dtype), _matrix(m, n, True, x.dtype)

        def transposed():
            Ct.addmm_(A, B, beta=0.0)
            if copy:
                C.copy_(Ct)

        with torch.inference_mode():
            row = best_time(lambda: C.addmm_(A, B, beta=0.0))
            col = best_time(transposed)
            row = min(row, best_time(lambda: C.addmm_(A, B, beta=0.0)))
        return col <= _LAYOUT_MARGIN * row

    return bool(_layout_store.choice(("mm", m, k, n, a_t, b_t, copy, str(x.dtype),
                                      torch.get_num_threads()), timed))
