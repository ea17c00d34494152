"""Many models of one architecture trained as one computation (see :func:`fit_many`)."""

from ._fit import fit_many

__all__ = ["fit_many"]
