"""What a step of :class:`skopt_nn._mlp_objective.MLPObjective` multiplies: the
views of x and g, the buffers and the layouts of one batch size, made once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


class Forward(NamedTuple):
    """A hidden layer after the first: ``A_out = σ([A_{l-1}, 1] [W_l; b_l])``."""

    Ab_in: torch.Tensor  # [A_{l-1}, 1]
    Wb: torch.Tensor  # [W_l; b_l], a view of x
    A_out: torch.Tensor  # A_l, a view of its buffer [A_l, 1]


class Backward(NamedTuple):
    """A layer l ≥ 2, from the output down: its gradient block and δ_{l-1}."""

    gWb: torch.Tensor  # where [A_{l-1}, 1]ᵀ δ_l is written: g's block, or a column-major temp
    dst: torch.Tensor | None  # g's block when gWb is the temp (it is copied or added there)
    AbT: torch.Tensor  # [A_{l-1}, 1]ᵀ
    WT: torch.Tensor  # W_lᵀ
    A_in: torch.Tensor  # A_{l-1} (σ' is read off it)
    D: torch.Tensor  # the buffer of δ_{l-1}


@dataclass(slots=True, eq=False)
class Plan:
    """What a step on one batch size multiplies, for the current x (and g)."""

    W0: torch.Tensor  # W_1
    b0: torch.Tensor  # b_1
    A1: torch.Tensor | None  # A_1 (None: no hidden layer, the first product is Z)
    hidden: tuple[Forward, ...]
    out_Ab: torch.Tensor | None  # [A_{L-1}, 1]
    out_Wb: torch.Tensor  # [W_L; b_L]
    U: torch.Tensor  # Z (n·K numbers) then xs, in one buffer
    Z: torch.Tensor  # the output, (n, K), row- or column-major
    ZT: torch.Tensor  # Zᵀ (K, n), contiguous where Z is column-major
    Vt: torch.Tensor | None  # the inlined softmax's −s ⊙ Yᵀ / n, (K, n)
    Zflat: torch.Tensor  # Z's numbers as a vector
    xs: torch.Tensor  # √(c/2) x ⊙ mask, c = α / (weight_scale · n)
    mask: torch.Tensor  # 1 on the weights, 0 on the intercepts
    mask_s: torch.Tensor  # √(c/2) · mask
    pen_beta: float  # √(2c): √(2c) · √(c/2) W = c W
    P0: torch.Tensor  # √(c/2) W_1, the block of xs
    t: float  # √(1 / 2nK): the inlined squared error's t(Z − Y)
    alpha_t: float  # 1 / (nKt): ∂F/∂Z = alpha_t · t(Z − Y)
    row_t: torch.Tensor  # (1, n) of alpha_t: ∇b_1 = row_t δ_1
    inv_n: float
    row_n: torch.Tensor  # (1, n) of 1/n
    vec_n: torch.Tensor  # (n,) of 1/n: F = u · vec_n
    cached: bool  # the buffers are kept (the plan may be)
    # the layers' products on δ, from the output down, as (layer, Backward without g)
    # in the part without g; with g's views in the full plan
    backward: tuple = ()
    gW0: torch.Tensor | None = None  # ∇W_1 (g's view, or a column-major temp)
    gW0_dst: torch.Tensor | None = None  # g's ∇W_1 where gW0 is the temp
    gb0: torch.Tensor | None = None  # ∇b_1, a (1, h_1) row of g
    gW0_t: bool = False  # ∇W_1 goes through a column-major temp
