"""Tensors inside nested training state: moved, cloned, or turned into NumPy for pickling.

The training state nests tensors in dataclasses (the optimizers' typed states),
dicts, lists and tuples.  :func:`map_tensors` rebuilds such a structure with a
function applied to every tensor; the rest of this module are its uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch


def map_tensors(obj, fn: Callable, leaf: type = torch.Tensor):
    """A copy of ``obj`` with ``fn`` applied to every ``leaf`` (a tensor by default)."""
    if isinstance(obj, leaf):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: map_tensors(getattr(obj, f.name), fn, leaf)
                   for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn, leaf) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(map_tensors(v, fn, leaf) for v in obj)
    return obj


def to_numpy(obj):
    """Every tensor in ``obj`` as a NumPy array on the host (for pickling)."""
    return map_tensors(obj, lambda t: t.detach().cpu().numpy())


def from_numpy(obj):
    """The inverse of :func:`to_numpy`: every NumPy array in ``obj`` as a CPU tensor."""
    return map_tensors(obj, lambda a: torch.from_numpy(np.array(a)), leaf=np.ndarray)


def clone(obj):
    """``obj`` with every tensor cloned where it lives (a snapshot on the device)."""
    return map_tensors(obj, torch.Tensor.clone)


def move(obj, device: torch.device, dtype: torch.dtype | None = None):
    """Every tensor in ``obj`` on ``device`` (and floating ones as ``dtype``)."""

    def fn(t):
        if dtype is not None and t.is_floating_point():
            return t.to(device, dtype)
        return t.to(device)

    return map_tensors(obj, fn)
