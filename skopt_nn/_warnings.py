"""Warnings that point at the user's line, however deep the library call sits."""

from __future__ import annotations

import os
import sys
import warnings

import joblib
import sklearn

#: the packages whose frames stand between the user's call and a warning: this one,
#: scikit-learn (fit wrappers, Pipeline, the searches) and joblib (their loops)
_LIBRARY_DIRS = tuple(os.path.dirname(m.__file__) + os.sep
                      for m in (sys.modules[__package__], sklearn, joblib))


def user_stacklevel() -> int:
    """The ``stacklevel`` that a ``warnings.warn`` in the caller's frame needs to point
    at the innermost frame outside the library packages (the outermost frame where
    all are library frames, as in a worker process)."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's line (see :func:`user_stacklevel`)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
