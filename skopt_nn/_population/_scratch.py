"""Result buffers that a population's loop reuses from step to step."""

from __future__ import annotations

import torch


class Scratch:
    """Reusable result buffers, one per named slot, kept while their shape holds.

    A step of a population allocates the same tensors every time (each layer's
    output and δ, the gradient blocks, the batch's rows); allocated afresh, each
    can be new memory whose pages the system maps and zeroes on first touch.  On
    the project's 2-core VM, the S2 search's batched steps took 75-90 thousand
    page faults and 2.4-2.5 s without these buffers, 1.3-1.5 thousand and
    2.0-2.2 s with them.  A slot is reallocated only when its shape, dtype or
    device changes (members leave, another batch size).
    """

    def __init__(self):
        self._slots: dict = {}

    def get(self, slot, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """The buffer of ``slot``: ``shape``, with ``like``'s dtype and device."""
        buf = self._slots.get(slot)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or \
                buf.device != like.device:
            buf = self._slots[slot] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def clear(self) -> None:
        self._slots.clear()
