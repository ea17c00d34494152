"""The random stream of one training call: batch orders and bootstrap rows.

:class:`Shuffler` reproduces scikit-learn's MLP shuffling (``_fit_stochastic`` of
``sklearn.neural_network``): each training call takes
``rs = check_random_state(random_state)`` afresh, the first call draws the initial
weights from ``rs`` and early stopping its validation split, and then every epoch
permutes the row order with ``shuffle(order, random_state=rs)``, starting from
the stored order at the start of the call.  ``sklearn.utils.shuffle`` draws
``indices = np.arange(n); rs.shuffle(indices)`` and returns ``order[indices]``;
``rs.permutation(n)`` draws the same numbers, so :meth:`Shuffler.permutation`
composes ``order = order[rs.permutation(n)]``.  The batches are consecutive
slices of that order (the last one shorter), so with the same ``random_state`` a
fit sees scikit-learn's batches one for one.

The linear models, which cannot follow scikit-learn's SGD stream (a generator of
its Cython code), use a shuffler that does not compose: each epoch's order is a
fresh permutation of the stored rows, from a stream of its own that continues over
``partial_fit`` and ``warm_start`` calls.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state


class Shuffler:
    """The batch orders and bootstrap rows of one training call, drawn from NumPy.

    Reproduces scikit-learn's MLP shuffling: :meth:`permutation` composes the
    epoch's order as scikit-learn's ``sample_idx = shuffle(sample_idx,
    random_state=rs)`` does, from the same random numbers.  Draws come from the
    ``random_state`` it wraps, which the caller may have drawn from before (the
    initial weights, the validation split), as scikit-learn's ``_fit`` does.

    Such a composing shuffler belongs to one training call: scikit-learn starts
    each call from the stored order and a fresh ``check_random_state``, so the
    next call makes its own, and it is neither pickled nor rolled back with the
    trainer (its stream may be the caller's ``RandomState`` or NumPy's global one).

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None, default=None
        Passed through :func:`sklearn.utils.check_random_state`: an int seeds a new
        ``RandomState``, an instance is used (and advanced) as is, None is NumPy's
        global one.
    compose : bool, default=True
        Compose the orders as scikit-learn's MLP does; False: each epoch's order is
        ``random_state.permutation(n)`` itself (no order is kept, so the shuffler
        may continue over calls: the linear models', on a stream of its own).

    Attributes
    ----------
    random_state : numpy.random.RandomState
        The stream every draw comes from.
    compose : bool
        Whether the orders compose.
    """

    __slots__ = ("random_state", "compose", "_order")

    def __init__(self, random_state: int | np.random.RandomState | None = None, *,
                 compose: bool = True):
        self.random_state = check_random_state(random_state)
        self.compose = bool(compose)
        #: the composed order of the epochs so far; None: the stored order
        self._order: np.ndarray | None = None

    def permutation(self, n: int) -> torch.Tensor:
        """The next epoch's order of ``n`` rows: the last order permuted by
        ``random_state.permutation(n)``.

        Parameters
        ----------
        n : int
            The number of rows (the same over one training call).

        Returns
        -------
        torch.Tensor
            The row indices, int64, on the CPU (sharing memory with the order kept
            here, which later draws replace rather than overwrite).
        """
        step = self.random_state.permutation(n)
        if not self.compose:
            return torch.from_numpy(step.astype(np.int64, copy=False))
        order = self._order
        order = step if order is None or len(order) != n else order[step]
        self._order = order.astype(np.int64, copy=False)
        return torch.from_numpy(self._order)

    def randint(self, n: int, size: int) -> torch.Tensor:
        """``size`` rows drawn uniformly from ``range(n)`` with replacement (a
        bootstrap batch).

        Parameters
        ----------
        n : int
            The number of rows to draw from.
        size : int
            The number of rows drawn.

        Returns
        -------
        torch.Tensor
            The row indices, int64, on the CPU.
        """
        rows = self.random_state.randint(n, size=size)
        return torch.from_numpy(rows.astype(np.int64, copy=False))

    def get_state(self) -> tuple:
        """The stream's state and the composed order, for :meth:`set_state`.

        Returns
        -------
        tuple
            ``(random_state.get_state(), order)``, order an int64 array or None
            (the stored order).
        """
        order = None if self._order is None else self._order.copy()
        return self.random_state.get_state(), order

    def set_state(self, state: tuple) -> None:
        """Put the stream and the order in ``state`` (from :meth:`get_state`).

        Parameters
        ----------
        state : tuple
            What :meth:`get_state` returned.
        """
        rs_state, order = state
        self.random_state.set_state(rs_state)
        self._order = None if order is None else np.array(order, dtype=np.int64)

    def key(self) -> bytes:
        """A key equal for two shufflers exactly when their next draws are equal (the
        same stream state and the same order), for sharing one draw between them.

        Returns
        -------
        bytes
        """
        name, keys, pos, has_gauss, cached = self.random_state.get_state()
        order = b"" if self._order is None else self._order.tobytes()
        head = np.array([pos, has_gauss], dtype=np.int64).tobytes() + \
            np.float64(cached).tobytes()
        return name.encode() + bytes([self.compose]) + keys.tobytes() + head + order

    def copy(self) -> Shuffler:
        """An independent shuffler in the same state (its own ``RandomState``).

        Returns
        -------
        Shuffler
        """
        return Shuffler.from_state(self.get_state(), compose=self.compose)

    @classmethod
    def from_state(cls, state: tuple, *, compose: bool = True) -> Shuffler:
        """A shuffler on a stream of its own in ``state`` (from :meth:`get_state`).

        Parameters
        ----------
        state : tuple
            What :meth:`get_state` returned.
        compose : bool, default=True
            As for the constructor.

        Returns
        -------
        Shuffler
        """
        shuffler = cls(np.random.RandomState(0), compose=compose)  # (state replaced)
        shuffler.set_state(state)
        return shuffler

    def __repr__(self) -> str:
        if not self.compose:
            return "Shuffler(compose=False)"
        order = "stored" if self._order is None else f"{len(self._order)} rows permuted"
        return f"Shuffler(order: {order})"
