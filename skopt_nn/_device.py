"""Device and dtype resolution shared by every estimator."""

from __future__ import annotations

import threading

import numpy as np
import torch

_SMALL_PROBLEM = 2_000_000  # rows x features below which one CPU thread is fastest


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``'auto'`` picks CUDA, then MPS, then the CPU.  An explicit device that is not
    available raises a ``ValueError`` naming the parameter.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return dev


def torch_dtype(np_dtype: np.dtype, device: torch.device) -> torch.dtype:
    """float32 input stays float32, anything else computes in float64.

    MPS has no float64, so it always computes in float32.
    """
    if np.dtype(np_dtype) == np.float32 or device.type == "mps":
        return torch.float32
    return torch.float64


class cpu_training:
    """Context manager for training on the CPU.

    * One intra-op thread for small problems: on small matrices the thread pool's
      synchronisation costs more than it saves (on a loaded 2-core machine the
      default pool ran many times slower).
    * Denormal floats flushed to zero: late in training Adam's moments and decayed
      weights reach denormal magnitudes, where CPU arithmetic is many times slower
      (a measured step went from ~160 to ~200 µs); flushing changes values below
      1e-38 (float32) only.  torch cannot report the previous setting, so it is
      restored to torch's default (off).
    """

    #: how many calls are inside a one-thread / a CPU context, over all threads (fits run
    #: in joblib's threads share torch's settings: the first to enter sets them, the
    #: last to leave restores them)
    _lock = threading.Lock()
    _single = 0
    _cpu = 0
    _previous_threads: int | None = None

    def __init__(self, device: torch.device, size: int):
        self.cpu = device.type == "cpu"
        self.single = self.cpu and size < _SMALL_PROBLEM

    def __enter__(self):
        cls = cpu_training
        with cls._lock:
            if self.single:
                if cls._single == 0:
                    cls._previous_threads = torch.get_num_threads()
                    if cls._previous_threads != 1:
                        torch.set_num_threads(1)
                cls._single += 1
            if self.cpu:
                if cls._cpu == 0:
                    torch.set_flush_denormal(True)
                cls._cpu += 1
        return self

    def __exit__(self, *exc):
        cls = cpu_training
        with cls._lock:
            if self.single:
                cls._single -= 1
                if cls._single == 0 and cls._previous_threads not in (None, 1):
                    torch.set_num_threads(cls._previous_threads)
            if self.cpu:
                cls._cpu -= 1
                if cls._cpu == 0:
                    torch.set_flush_denormal(False)
        return False
