"""Helpers shared by the reference kernels: the dtype rule, shape checks and reductions.

These mirror the checks the compiled core makes on its arguments (wrong dtype kind, ndim,
shape, empty, unknown name). The richer value checks (NaN, label ranges) live in the
public layer, pycvnn._validate.
"""

from __future__ import annotations

import functools
from typing import (
    TYPE_CHECKING,
    Callable,
    Collection,
    Container,
    Iterable,
    SupportsFloat,
    TypeVar,
    cast,
)

import numpy as np

from .._types import Array, ArrayLike, DTypeLike, FloatArray, IntArray, NDArray

if TYPE_CHECKING:
    from typing import ParamSpec

    _P = ParamSpec("_P")

_S = TypeVar("_S", bound=np.generic)

REDUCTIONS = ("none", "mean", "sum")


def as_float(a: ArrayLike, name: str) -> FloatArray:
    """The dtype rule: float64 stays float64, any other real numeric array becomes float32."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    dtype = np.float64 if a.dtype == np.float64 else np.float32
    return np.asarray(a, dtype=dtype, order="C")


def like(b: ArrayLike, a: NDArray[_S], name: str, a_name: str) -> NDArray[_S]:
    """b cast to a's dtype; b must have a's shape exactly (no broadcasting)."""
    b = np.asarray(b)
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {b.dtype}")
    if b.shape != a.shape:
        raise ValueError(f"{name}: expected shape {a.shape} (as {a_name}), got {b.shape}")
    return np.asarray(b, dtype=a.dtype, order="C")


def check_ndim(a: Array, name: str, ndims: Container[int], expected: str) -> None:
    if a.ndim not in ndims:
        raise ValueError(f"{name}: expected {expected}, got shape {a.shape}")


def class_ids(target: ArrayLike, n: int, c: int, name: str = "target") -> IntArray:
    """Integer class ids (n,) in [0, c), as int64."""
    target = np.asarray(target)
    if target.dtype.kind not in "biuf":  # as the core: non-numeric is a type error
        raise TypeError(f"{name}: expected a numeric array, got dtype {target.dtype}")
    if target.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer class ids, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"{name}: expected class ids of shape ({n},), got {target.shape}")
    if target.min() < 0 or target.max() >= c:
        raise ValueError(
            f"{name}: expected class ids in [0, {c}), got [{target.min()}, {target.max()}]"
        )
    return target.astype(np.int64)


def as_name(value: object, name: str, choices: Iterable[str]) -> str:
    """value as a str, as the core converts its string arguments (bytes decode, else a TypeError)."""
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise TypeError(
            f"{name}: expected a string, one of {tuple(choices)}, got {type(value).__name__}"
        )
    return value


def check_name(value: object, name: str, choices: Collection[str]) -> str:
    """One of the names in choices; like the core's string arguments, bytes are decoded and
    anything else that is not a string is a TypeError."""
    value = as_name(value, name, choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_reduction(reduction: object) -> str:
    return check_name(reduction, "reduction", REDUCTIONS)


def reduce(per: Array, reduction: object) -> float | Array:
    """ "none": the array itself; "mean"/"sum": its mean/sum as a Python float."""
    reduction = check_reduction(reduction)
    if reduction == "none":
        return np.asarray(per)  # a 0-d input's result stays an array, as the core's
    return float(per.mean() if reduction == "mean" else per.sum())


def grad_scale(reduction: object, count: int) -> float:
    """Factor on the gradient of the sum: 1/count for "mean", else 1."""
    return 1.0 / count if check_reduction(reduction) == "mean" else 1.0


def as_number(value: object, name: str) -> float:
    """float(value) as the core converts its float arguments: a string, or anything float()
    rejects, is a TypeError."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        # Any object may come in: float() itself decides, and its TypeError is caught here.
        return float(cast(SupportsFloat, value))
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None


def as_flag(value: object, name: str) -> bool:
    """bool(value) as the core converts its bool arguments: None is False, only types with a
    __bool__ (numbers, NumPy scalars, one-element arrays) convert, anything else is a TypeError."""
    if value is None:
        return False
    try:
        if hasattr(type(value), "__bool__"):
            return bool(value)
    except (TypeError, ValueError):
        pass
    raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")


def check_scalar(value: object, name: str, ok: Callable[[float], bool], expected: str) -> float:
    """A finite float for which ok(value) holds, else ValueError naming it (a type float()
    rejects is a TypeError, as the core's)."""
    value = as_number(value, name)
    if not (np.isfinite(value) and ok(value)):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return value


def array_out(fn: Callable[_P, FloatArray]) -> Callable[_P, FloatArray]:
    """Results as arrays: NumPy turns 0-d arithmetic into scalars, the core returns 0-d arrays."""

    @functools.wraps(fn)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> FloatArray:
        result = fn(*args, **kwargs)
        return np.asarray(result) if isinstance(result, np.generic) else result

    return wrapped


def eps_for(dtype: DTypeLike) -> float:
    """Probability clip: 1e-7 in float32, 1e-12 in float64."""
    return 1e-12 if dtype == np.float64 else 1e-7
