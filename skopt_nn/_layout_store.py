"""The timed choices of the matrix products' layouts, kept on disk per machine.

:mod:`skopt_nn._mlp_layout` and :mod:`skopt_nn._population._network` time the
forms of a product once and keep the faster.  A choice made by timing can come
out differently in another run (a near tie, a busy machine), and the forms round
differently, so two runs of one fit with a fixed ``random_state`` could end with
different weights (seen: a 5-epoch search on W3's data gave a best score of
0.7789 in one run and 0.7805 in another).  The first choice made on a machine is
therefore written to a small JSON file that every later process reads: a machine
times each product once, and fits repeat bit for bit from run to run (as FFTW
keeps its "wisdom").

The file is ``layouts-<machine>.json`` in ``$SKOPT_NN_CACHE_DIR``, else in
``$XDG_CACHE_HOME/skopt_nn``, else in ``~/.cache/skopt_nn``; ``<machine>`` is a
digest of the CPU (model, family, AVX-512), torch's and NumPy's versions.  With
``SKOPT_NN_CACHE_DIR`` set to an empty string, or a directory that cannot be
written, the choices are kept per process (as before the file existed).
Deleting the file makes the next process time its products again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import tempfile
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

#: the choices of this process, per store file (None: no file)
_TABLES: dict[str | None, dict[str, object]] = {}
_LOCK = threading.Lock()


@functools.cache
def _machine() -> str:
    """A digest of what the speed of a product's forms depends on: the CPU (model,
    family, AVX-512), the machine type and torch's and NumPy's versions."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                elif key == "flags":
                    fields["avx512"] = str("avx512f" in value.split())
                    break
    cpu = "/".join(fields.values()) or platform.processor()
    import numpy
    import torch

    machine = "|".join((cpu, platform.machine(), torch.__version__, numpy.__version__))
    return hashlib.sha1(machine.encode()).hexdigest()[:16]


def store_path() -> str | None:
    """The file of this machine's choices, or None where they are kept per process."""
    directory = os.environ.get("SKOPT_NN_CACHE_DIR")
    if directory is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        directory = os.path.join(base, "skopt_nn")
    if not directory:
        return None
    return os.path.join(directory, f"layouts-{_machine()}.json")


def _read(path: str) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: timed again and rewritten
    return table if isinstance(table, dict) else {}


@contextlib.contextmanager
def _locked(path: str):
    """Other processes' updates of ``path`` wait (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: str, name: str, value: T) -> T:
    """Add ``name: value`` to the file, unless another process stored ``name`` first
    (its value is returned then); ``value`` where the file cannot be written."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with _locked(path):
            table = _read(path)
            if name in table:
                return table[name]  # type: ignore[return-value]
            table[name] = value
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(table, f, indent=0, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError:
        pass
    return value


def choice(key: Hashable, decide: Callable[[], T]) -> T:
    """This machine's stored choice for ``key``; where there is none, ``decide()``
    (a timing) is called once and its result stored.

    ``key`` is written as its ``repr``: it must name everything the choice
    depends on (shapes, layouts, dtype, threads)."""
    path = store_path()
    name = repr(key)
    with _LOCK:
        table = _TABLES.get(path)
        if table is None:
            table = _TABLES[path] = {} if path is None else _read(path)
        if name in table:
            return table[name]  # type: ignore[return-value]
    value = decide()
    if path is not None:
        value = _write(path, name, value)
    with _LOCK:
        return table.setdefault(name, value)  # type: ignore[return-value]
