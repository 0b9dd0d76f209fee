from __future__ import annotations

import numpy as np

from .._types import ArrayLike, FloatArray


def _float(a: ArrayLike, name: str) -> FloatArray:
    """float64 stays, other real numbers become float32; anything else is a TypeError (as the core)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return a if a.dtype == np.float64 else a.astype(np.float32)


def matmul(a: ArrayLike, b: ArrayLike, trans_a: bool = False, trans_b: bool = False) -> FloatArray:
    """op(a) @ op(b); float64 if a is float64, else float32."""
    a = _float(a, "a")
    b = _float(b, "b").astype(a.dtype, copy=False)
    return np.ascontiguousarray((a.T if trans_a else a) @ (b.T if trans_b else b))
