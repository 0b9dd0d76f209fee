"""Metrics on class decisions: the confusion matrix."""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _validate as v
from ._types import ArrayLike, IntArray

# A (C, C) int64 table of this many classes is 128 MiB; a larger label is almost surely a
# mistake (a score or a pixel value passed as a class id), not a class count.
MAX_CLASSES = 4096


def _labels(x: ArrayLike, name: str) -> IntArray:
    """Class ids (N,) as int64: integers (or integral floats) >= 0."""
    a = v.numeric(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected class ids of shape (N,), got shape {a.shape}")
    if a.dtype.kind == "f":
        v._finite(a, name)
        frac = a[a != np.round(a)]
        if frac.size:
            raise ValueError(f"{name}: expected integer class ids, got the value {frac[0]}")
    if a.min() < 0:
        raise ValueError(f"{name}: expected class ids >= 0, got the value {a.min()}")
    if a.max() >= MAX_CLASSES:
        raise ValueError(f"{name}: expected class ids below {MAX_CLASSES}, got the value {a.max()}")
    return a.astype(np.int64)


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: Optional[int] = None
) -> IntArray:
    """(C, C) int64 counts: row i, column j counts the samples of true class i predicted as j
    (scikit-learn's layout). C is n_classes, else one more than the largest label given."""
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_pred: expected shape {t.shape} (one decision per label of y_true), got {p.shape}"
        )
    top = int(max(t.max(), p.max()))
    if n_classes is None:
        n_classes = top + 1
    n_classes = v.integer(n_classes, "n_classes", minimum=1)
    if n_classes > MAX_CLASSES:
        raise ValueError(f"n_classes: expected an int <= {MAX_CLASSES}, got {n_classes}")
    if top >= n_classes:
        raise ValueError(
            f"n_classes: expected more than the largest label ({top}), got {n_classes}"
        )
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)
