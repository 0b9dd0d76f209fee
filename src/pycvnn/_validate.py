"""Input checks for the public functions, written once.

Each error names the argument, what was expected and what was received. Checked arrays
come back C-contiguous in the dtype the kernels take.
"""

from __future__ import annotations

import numbers
from typing import Container, Iterable, Optional, TypeVar

import numpy as np

from ._types import Array, ArrayLike, FloatArray, IntArray

A = TypeVar("A", bound=Array)

REDUCTIONS = ("none", "mean", "sum")


def numeric(x: ArrayLike, name: str) -> Array:
    """x as an ndarray of a real numeric (or bool) dtype, else TypeError."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as err:  # e.g. ragged nested lists
        raise ValueError(
            f"{name}: expected a rectangular array of numbers, got {type(x).__name__} ({err})"
        ) from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    return a


def _finite(a: A, name: str) -> A:
    # A float64 sum is finite exactly when every value is (bar overflow of huge float64
    # values, which falls through to the exact check): no array-sized temporary for big X.
    if a.dtype.kind == "f" and not np.isfinite(a.sum(dtype=np.float64)):
        bad = ~np.isfinite(a)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: expected finite values, got {a[where]} at index {where}")
    return a


def floating(x: ArrayLike, name: str) -> FloatArray:
    """The dtype rule: float32/float64 kept, other numeric (int, bool, float16) -> float32."""
    a = numeric(x, name)
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float32
    return _finite(np.asarray(a, dtype=dtype, order="C"), name)


def like(x: ArrayLike, ref: Array, name: str, ref_name: str) -> Array:
    """x cast to ref's dtype, with exactly ref's shape (no broadcasting)."""
    a = numeric(x, name)
    if a.shape != ref.shape:
        raise ValueError(
            f"{name}: expected shape {ref.shape} (the shape of {ref_name}), got {a.shape}"
        )
    return _finite(np.asarray(a, dtype=ref.dtype, order="C"), name)


def ndim(a: Array, name: str, allowed: Container[int], expected: str) -> None:
    if a.ndim not in allowed:
        raise ValueError(f"{name}: expected {expected}, got shape {a.shape}")


def in_range(a: Array, name: str, lo: float, hi: float, what: str) -> None:
    """All values in [lo, hi]."""
    if a.min() < lo or a.max() > hi:
        raise ValueError(
            f"{name}: expected {what} in [{lo}, {hi}], got values in [{a.min()}, {a.max()}]"
        )


def binary_shape(a: Array, name: str) -> None:
    if not (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
        raise ValueError(f"{name}: expected binary scores of shape (N,) or (N, 1), got {a.shape}")


def class_ids(x: ArrayLike, name: str, n: int, c: int) -> IntArray:
    """Class ids (n,) in [0, c) as int64; floats are accepted only if every value is integral."""
    a = numeric(x, name)
    if a.shape != (n,):
        raise ValueError(
            f"{name}: expected class ids of shape ({n},) (one per row of pred), got {a.shape}"
        )
    if a.dtype.kind == "f":
        _finite(a, name)
        frac = a[a != np.round(a)]
        if frac.size:
            raise ValueError(
                f"{name}: expected integer class ids, got the non-integral value {frac[0]}"
            )
    if a.min() < 0 or a.max() >= c:
        raise ValueError(
            f"{name}: expected class ids in [0, {c}) for pred with {c} columns, "
            f"got values in [{a.min()}, {a.max()}]"
        )
    return np.asarray(a, dtype=np.int64, order="C")


def reduction(value: object) -> str:
    if not isinstance(value, str) or value not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {value!r}")
    return value


def flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def number(
    value: object, name: str, minimum: Optional[float] = None, strict: bool = False
) -> float:
    """A finite real number (not a bool), optionally > or >= minimum, as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int past float's range
        raise ValueError(
            f"{name}: expected a finite number, got an int of {len(str(value))} digits"
        ) from None
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(
            f"{name}: expected a number {'>' if strict else '>='} {minimum}, got {value!r}"
        )
    return value


def integer(
    value: object, name: str, minimum: Optional[int] = None, exc: type[Exception] = TypeError
) -> int:
    """An int (Python or NumPy, not a bool) >= minimum, as a Python int; `exc` is raised for a
    non-integer (some callers keep the ValueError they have always raised there)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        bound = "" if minimum is None else f" >= {minimum}"
        raise exc(f"{name}: expected an int{bound}, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def name_in(value: object, name: str, known: Iterable[str]) -> str:
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"{name}: expected one of {sorted(known)}, got {value!r}")
    return value
