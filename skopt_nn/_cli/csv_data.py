"""``--csv`` data: read, checked (one clear error each) and preprocessed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target

from . import InputError

#: fewest rows with a target that ``--csv`` splits into training and test data
MIN_ROWS = 10


#: fewest training rows with which ``--csv`` holds out 10% for early stopping
EARLY_STOPPING_ROWS = 100


def read_csv(path: str) -> pd.DataFrame:
    """The CSV file at ``path`` with at least one row.

    Raises
    ------
    InputError
        If the file is missing, unreadable, empty or has no rows.
    """
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"--csv {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--csv {path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(f"--csv {path}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"--csv {path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"--csv {path}: not a readable CSV file ({first})") from None
    if frame.empty:
        raise InputError(f"--csv {path}: the file has a header but no data rows")
    return frame


def split_target(frame: pd.DataFrame, target: str, path: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target: rows without a target dropped, empty columns dropped.

    Raises
    ------
    InputError
        If ``target`` is not a column, has no values, too few, or leaves no features.
    """
    if target not in frame.columns:
        raise InputError(f"--target {target!r} is not a column of {path} "
                         f"(columns: {list(frame.columns)})")
    missing = int(frame[target].isna().sum())
    if missing == len(frame):
        raise InputError(f"--target {target!r}: all {missing} values are missing")
    if missing:
        print(f"note: dropped {missing} rows whose target {target!r} is missing")
    frame = frame.dropna(subset=[target])
    if len(frame) < MIN_ROWS:
        raise InputError(f"--target {target!r}: {len(frame)} rows have a target; at least "
                         f"{MIN_ROWS} are needed to split them into training and test data")
    y = frame.pop(target)
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty:
        print(f"note: dropped the columns {empty}: they have no values")
        frame = frame.drop(columns=empty)
    if frame.shape[1] == 0:
        raise InputError(f"--csv {path}: no feature columns besides the target {target!r}")
    return frame, y


def is_classification(y: pd.Series, target: str) -> bool:
    """Whether ``y`` holds class labels (else a regression target).

    Text, boolean and integer targets with few distinct values are labels; float
    targets, and integer ones where most rows have their own value, are numbers.

    Raises
    ------
    InputError
        For free text (most rows have their own label), one class only, or a
        class with a single row (it cannot be in both the training and the test split).
    """
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if numeric and type_of_target(y.to_numpy()) not in ("binary", "multiclass"):
        return False
    counts = y.value_counts()
    if pd.api.types.is_float_dtype(y) and len(counts) > 2:
        return False
    if len(counts) > len(y) / 2:
        if numeric:
            return False
        raise InputError(f"--target {target!r} looks like free text ({len(counts)} distinct "
                         f"values in {len(y)} rows): a classification target needs labels "
                         "that repeat, and a regression target needs numbers")
    if len(counts) < 2:
        raise InputError(f"--target {target!r} has a single value ({counts.index[0]!r}): "
                         "nothing to learn")
    if counts.min() < 2:
        raise InputError(f"--target {target!r}: the class {counts.idxmin()!r} has one row; "
                         "each class needs two or more to be in both the training and the "
                         "test data")
    return True


def check_features(X: pd.DataFrame, path: str) -> None:
    """Refuse infinite values; say which numeric columns have values to impute."""
    numeric = X.select_dtypes("number")
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    if infinite:
        raise InputError(f"--csv {path}: the columns {infinite} contain infinite values")
    gaps = numeric.isna().sum()
    gaps = gaps[gaps > 0]
    if len(gaps):
        listing = ", ".join(f"{c!r} ({n})" for c, n in gaps.items())
        print(f"note: missing values in the numeric columns {listing} are imputed with the "
              "column's median in the training data")


def split_rows(X, y, classification: bool, random_state):
    """Training and test rows (stratified for classification), as train_test_split.

    Raises
    ------
    InputError
        If the classes cannot all be in both splits.
    """
    try:
        return train_test_split(X, y, random_state=random_state,
                                stratify=y if classification else None)
    except ValueError as exc:
        raise InputError(f"--target: cannot split {len(y)} rows into training and test data "
                         f"with every class in both ({exc})") from None


def can_stop_early(y_tr: pd.Series, classification: bool) -> bool:
    """Whether the training rows allow a validation split for early stopping.

    It holds out 10% of them, which must be at least ten rows and, for
    classification, hold every class.
    """
    if len(y_tr) < EARLY_STOPPING_ROWS:
        return False
    if classification:
        counts = y_tr.value_counts()
        return counts.min() >= 2 and len(y_tr) // 10 >= len(counts)
    return True


def preprocessor():
    """Numeric columns: median imputation and scaling; the others: one-hot encoding
    (missing values and unseen categories included)."""
    numeric = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                            StandardScaler())
    return make_column_transformer(
        (numeric, make_column_selector(dtype_include="number")),
        (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude="number")),
    )
