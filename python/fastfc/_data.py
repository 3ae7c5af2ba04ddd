"""The caller's arrays to the engine's data set.

Features go to the engine as they are (float32/float64/integer/bool numpy arrays, C or Fortran
order, 2-D tables or 3-D images): the engine copies them once into its own buffers. Anything else
array-like (lists, pandas DataFrames) is turned into a numpy array first. Labels of any integer,
bool or string type are numbered as ``np.unique`` orders them (scikit-learn's ``classes_``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from . import _native


def as_features(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array the engine reads (no copy for numpy arrays of numbers)."""
    if isinstance(x, np.ndarray):
        a = x
    elif hasattr(x, "to_numpy"):  # pandas
        a = x.to_numpy()
    else:
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name}: not an array of numbers ({e})") from None
    if a.dtype.kind not in "fiub":
        if a.dtype == object:
            try:
                a = a.astype(np.float32)
            except (ValueError, TypeError):
                raise ValueError(
                    f"{name}: an array of dtype object that is not all numbers; "
                    "expected numbers (encode categorical columns first)") from None
        else:
            raise ValueError(f"{name}: an array of dtype {a.dtype}; expected numbers")
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.ndim == 1:
        raise ValueError(
            f"{name}: a 1-D array of shape {a.shape}; expected 2-D (rows, features): "
            "reshape(-1, 1) for one feature, reshape(1, -1) for one row")
    return a


def as_labels(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D numpy array of labels."""
    a = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a.ravel()
    if a.ndim != 1:
        raise ValueError(f"{name}: labels of shape {a.shape}; expected one label per row (1-D)")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"{name}: row {int(np.argmax(bad))}: {a[bad][0]}; expected a class label, not NaN/inf")
        if not np.all(a == np.round(a)):
            raise ValueError(
                f"{name}: continuous values (such as {a[a != np.round(a)][0]}); fastfc trains "
                "classifiers and needs class labels (integers or strings)")
    if a.dtype == object:
        if any(v is None or (isinstance(v, float) and v != v) for v in a):
            raise ValueError(f"{name}: a missing label (None or NaN)")
        a = a.astype(str)
    return a


def encode(y: np.ndarray, classes: Optional[np.ndarray], name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(classes, codes): classes as ``np.unique`` orders them, codes as uint32 class ids; with
    ``classes`` given, labels outside them are refused."""
    if classes is None:
        if y.dtype.kind in "iu" and len(y):
            # Integer labels of a modest range: a lookup table instead of np.unique's sort
            # (for 1,000,000 labels: two 8 MB temporaries and 4 MB of codes here, against
            # about 30 MB there).
            lo, hi = int(y.min()), int(y.max())
            if hi - lo < 1 << 20 and -(1 << 62) < lo and hi < 1 << 62:
                # In int64: y - lo in the labels' own dtype can overflow (int8 -100..100).
                off = y.astype(np.int64) - lo
                present = np.zeros(hi - lo + 1, dtype=bool)
                present[off] = True
                lut = np.cumsum(present, dtype=np.uint32) - 1
                classes = (np.flatnonzero(present) + lo).astype(y.dtype)
                return classes, lut[off]
        classes, codes = np.unique(y, return_inverse=True)
        return classes, codes.astype(np.uint32).ravel()
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    bad = classes[idx] != y
    if np.any(bad):
        first = int(np.argmax(bad))
        raise ValueError(
            f"{name}: row {first}: label {y[first]!r} is not among the training labels "
            f"{list(classes)[:10]}{'…' if len(classes) > 10 else ''}")
    return classes, idx.astype(np.uint32)


def class_names(classes: np.ndarray) -> list:
    return [str(c.item() if hasattr(c, "item") else c) for c in classes]


def labels_from_names(names) -> np.ndarray:
    """Class labels back from stored names: ints, floats or bools when they all read as such
    (the engine orders classes the same way), else strings."""
    for conv in (int, float):
        try:
            return np.array([conv(n) for n in names])
        except ValueError:
            pass
    if set(names) <= {"True", "False"}:
        return np.array([n == "True" for n in names])
    return np.array(names)


def make(x, y, *, validation_data=None, validation_split=None, scale=None, image_size=None,
         seed=42, what="numpy arrays"):
    """(engine data set, classes array) for the caller's arrays."""
    xa = as_features(x, "x")
    ya = as_labels(y, "y")
    if len(ya) != xa.shape[0]:
        raise ValueError(f"y: {len(ya)} labels for the {xa.shape[0]} rows of x; expected one label per row")
    classes, codes = encode(ya, None, "y")
    xv = yv = None
    if validation_data is not None:
        if validation_split is not None:
            raise ValueError("validation_split: give either validation_data or validation_split, not both")
        try:
            xv_, yv_ = validation_data
        except (TypeError, ValueError):
            raise ValueError("validation_data: expected a pair (x_val, y_val)") from None
        xv = as_features(xv_, "validation_data[0]")
        yva = as_labels(yv_, "validation_data[1]")
        if len(yva) != xv.shape[0]:
            raise ValueError(
                f"validation_data[1]: {len(yva)} labels for the {xv.shape[0]} rows of validation_data[0]")
        _, yv = encode(yva, classes, "validation_data[1]")
    shape = "x".join(str(s) for s in xa.shape)
    desc = f"{what} (x {shape} {xa.dtype}{', validation_data given' if xv is not None else ''})"
    data = _native.dataset(
        xa, codes, class_names(classes), desc, x_val=xv, y_val=yv,
        validation_split=validation_split, scale=scale, image_size=image_size, seed=int(seed))
    return data, classes
