"""Activations: <name>_forward(z) = f(z) and <name>_backward(z, dout) = dout * f'(z).

z and dout have any one shape; softmax works over the last axis. NaN in z gives NaN out, also
through the piecewise derivatives (relu'(NaN) dout = NaN).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._types import ArrayLike, FloatArray, NDArray
from ._common import array_out, as_float, check_scalar, like

# The twin's registry, entry for entry as pycvnn._core.ACTIVATIONS: (name, works per row, takes
# alpha, its backward needs z and not only a = f(z)). Each name has <name>_forward and
# <name>_backward below.
ACTIVATIONS = (
    ("sigmoid", False, False, False),
    ("tanh", False, False, False),
    ("relu", False, False, False),
    ("leaky_relu", False, True, False),
    ("softmax", True, False, False),
    ("gelu", False, False, True),
    ("softplus", False, False, False),
)


def _pair(z: ArrayLike, dout: ArrayLike) -> tuple[FloatArray, FloatArray]:
    z = as_float(z, "z")
    return z, like(dout, z, "dout", "z")


@array_out
def sigmoid_forward(z: ArrayLike) -> FloatArray:
    """1 / (1 + exp(-z)); any shape -> same shape."""
    z = as_float(z, "z")
    e = np.exp(-np.abs(z))  # in (0, 1], so exp never overflows, even for |z| = 1000
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@array_out
def sigmoid_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """dout * s (1 - s), s = sigmoid(z), as e / (1 + e)^2 with e = exp(-|z|) (1 - s would be
    all rounding error once s rounds to within a few ulp of 1)."""
    z, dout = _pair(z, dout)
    e = np.exp(-np.abs(z))
    dz: FloatArray = dout * (e / (1 + e) ** 2)
    return dz


@array_out
def tanh_forward(z: ArrayLike) -> FloatArray:
    """tanh(z); any shape -> same shape."""
    return np.tanh(as_float(z, "z"))


@array_out
def tanh_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """dout * (1 - tanh(z)^2), as 4 e / (1 + e)^2 with e = exp(-2|z|) (accurate where tanh
    rounds to about 1)."""
    z, dout = _pair(z, dout)
    e = np.exp(-2 * np.abs(z))
    dz: FloatArray = dout * (4 * e / (1 + e) ** 2)
    return dz


@array_out
def relu_forward(z: ArrayLike) -> FloatArray:
    """max(z, 0); any shape -> same shape."""
    return np.maximum(as_float(z, "z"), 0)


def keep_nan(z: FloatArray, v: ArrayLike) -> FloatArray:
    """v, but z where z is NaN: a piecewise derivative's select would otherwise drop it."""
    return np.where(np.isnan(z), z, v)


@array_out
def relu_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """dout where z > 0, else 0 (relu'(0) = 0); NaN where z is NaN."""
    z, dout = _pair(z, dout)
    return keep_nan(z, np.where(z > 0, dout, 0))


@array_out
def leaky_relu_forward(z: ArrayLike, alpha: float = 0.01) -> FloatArray:
    """z if z > 0 else alpha z; any shape -> same shape."""
    z = as_float(z, "z")
    alpha = check_scalar(alpha, "alpha", lambda x: x >= 0, "a number >= 0")
    return np.where(z > 0, z, alpha * z)


@array_out
def leaky_relu_backward(z: ArrayLike, dout: ArrayLike, alpha: float = 0.01) -> FloatArray:
    """dout * (1 if z > 0 else alpha)  (alpha at 0); NaN where z is NaN."""
    z, dout = _pair(z, dout)
    alpha = check_scalar(alpha, "alpha", lambda x: x >= 0, "a number >= 0")
    return keep_nan(z, np.where(z > 0, dout, alpha * dout))


@array_out
def softmax_forward(z: ArrayLike) -> FloatArray:
    """exp(z - max z) / sum exp(z - max z) over the last axis; (..., C) -> (..., C)."""
    z = as_float(z, "z")
    if z.ndim < 1:
        raise ValueError(f"z: expected at least 1 dimension for softmax, got shape {z.shape}")
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # largest term is exp(0) = 1: no overflow
    s: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return s


@array_out
def softmax_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """Vector-Jacobian product s * (dout - sum(dout * s)) over the last axis, s = softmax(z)."""
    z, dout = _pair(z, dout)
    s = softmax_forward(z)
    return softmax_vjp(s, dout)


def softmax_vjp(s: FloatArray, dout: FloatArray) -> FloatArray:
    """s (dout - sum(dout s) / sum(s)) over the last axis, dout shifted by its first finite
    entry first, as the core: a constant dout gives exactly 0 whatever the order of the sum."""
    d0 = dout[..., :1]
    d = dout - np.where(np.isfinite(d0), d0, 0)
    dz: FloatArray = s * (d - (d * s).sum(axis=-1, keepdims=True) / s.sum(axis=-1, keepdims=True))
    return dz


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


@array_out
def gelu_forward(z: ArrayLike) -> FloatArray:
    """z Phi(z) = z erfc(-z / sqrt 2) / 2 (the exact GELU; erfc, not 1 + erf, keeps the
    digits where Phi(z) is tiny); any shape -> same shape."""
    z = as_float(z, "z")
    two_cdf: NDArray[np.float64] = _erfc(-z.astype(np.float64) / math.sqrt(2))
    return (0.5 * z * two_cdf).astype(z.dtype)


@array_out
def gelu_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """dout * (Phi(z) + z phi(z)), phi the standard normal density."""
    z, dout = _pair(z, dout)
    z64 = z.astype(np.float64)
    grad: NDArray[np.float64] = 0.5 * _erfc(-z64 / math.sqrt(2)) + z64 * np.exp(
        -0.5 * z64 * z64
    ) / math.sqrt(2 * math.pi)
    return dout * grad.astype(z.dtype)


@array_out
def softplus_forward(z: ArrayLike) -> FloatArray:
    """log(1 + exp(z)) as max(z, 0) + log1p(exp(-|z|)): no overflow at any z."""
    z = as_float(z, "z")
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


@array_out
def softplus_backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
    """dout * sigmoid(z)."""
    z, dout = _pair(z, dout)
    return dout * sigmoid_forward(z)


# dout * f'(z) written in terms of a = f(z), as the core's *_backward_from_output: a layer keeps
# only a, except for an activation that needs_input. (a, dout, alpha) -> dz.
FROM_OUTPUT: dict[str, Callable[[FloatArray, FloatArray, float], FloatArray]] = {
    "sigmoid": lambda a, dout, alpha: dout * a * (1 - a),
    "tanh": lambda a, dout, alpha: dout * ((1 - a) * (1 + a)),  # 1 - a exact near 1
    # a > 0 exactly where z > 0 (alpha >= 0), and a is NaN where z is
    "relu": lambda a, dout, alpha: keep_nan(a, np.where(a > 0, dout, 0)),
    "leaky_relu": lambda a, dout, alpha: keep_nan(a, np.where(a > 0, dout, alpha * dout)),
    "softmax": lambda a, dout, alpha: softmax_vjp(a, dout),
    "softplus": lambda a, dout, alpha: dout * -np.expm1(-a),  # sigmoid(z) = 1 - exp(-a)
}
