"""The dense layer: a = f(x w^T + b), and its backward pass from the forward's output a.

x (N, in), w (out, in), b (out,), a and dout (N, out).
"""

from __future__ import annotations

from typing import Callable

from .._types import ArrayLike, FloatArray
from . import activations as A
from ._common import as_float, as_name, as_number, check_name, check_ndim, check_scalar
from .gemm import matmul

ACTIVATIONS = ("none", *(name for name, *_ in A.ACTIVATIONS))
NEEDS_INPUT = {name for name, _, _, needs_input in A.ACTIVATIONS if needs_input}


def check_activation(activation: object, alpha: object) -> float:
    """alpha finite, and >= 0 for leaky_relu (then a > 0 exactly where z > 0, which backward
    reads off a); the other activations ignore it."""
    activation = check_name(activation, "activation", ACTIVATIONS)
    finite = check_scalar(alpha, "alpha", lambda x: True, "a finite number")
    if activation == "leaky_relu":
        return check_scalar(alpha, "alpha", lambda x: x >= 0, "a number >= 0")
    return finite


def convert_arguments(activation: object, alpha: object) -> None:
    """The core converts its string and float arguments before any check, so their type
    errors come first."""
    as_name(activation, "activation", ACTIVATIONS)
    as_number(alpha, "alpha")


def _check_shapes(x: FloatArray, w: FloatArray, b: FloatArray | None) -> None:
    check_ndim(x, "x", (2,), "shape (N, in)")
    check_ndim(w, "w", (2,), "shape (out, in)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w: expected shape (out, {x.shape[1]}) to match x's features, got {w.shape}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"b: expected shape ({w.shape[0]},) to match w, got {b.shape}")


def dense_forward(
    x: ArrayLike, w: ArrayLike, b: ArrayLike, activation: str = "none", alpha: float = 0.01
) -> FloatArray:
    """a = f(x w^T + b): (N, in), (out, in), (out,) -> (N, out)."""
    convert_arguments(activation, alpha)  # then the core's order: two faults, the same one reported
    x = as_float(x, "x")
    w = as_float(w, "w").astype(x.dtype)
    _check_shapes(x, w, None)
    b = as_float(b, "b").astype(x.dtype)
    _check_shapes(x, w, b)
    alpha = check_activation(activation, alpha)
    z = matmul(x, w, trans_b=True) + b
    return activation_forward(activation, z, alpha)


def activation_forward(activation: str, z: FloatArray, alpha: float) -> FloatArray:
    """f(z) for the activation by name ("none": z itself)."""
    if activation == "none":
        return z
    if activation == "leaky_relu":
        return A.leaky_relu_forward(z, alpha)
    forward: Callable[[FloatArray], FloatArray] = getattr(A, f"{activation}_forward")
    return forward(z)


def _dz(
    dout: FloatArray, a: FloatArray, activation: str, alpha: float, z: FloatArray | None
) -> FloatArray:
    """d loss / d z from d loss / d a: from a = f(z) where f' is a function of a (as the core
    does), else from z."""
    if activation == "none":
        return dout
    if activation in NEEDS_INPUT:
        assert z is not None  # dense_backward refuses a missing z for these activations
        backward: Callable[[FloatArray, FloatArray], FloatArray]
        backward = getattr(A, f"{activation}_backward")
        return backward(z, dout)
    return A.FROM_OUTPUT[activation](a, dout, alpha)


def dense_backward(
    dout: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    a: ArrayLike,
    activation: str = "none",
    alpha: float = 0.01,
    z: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dx (N, in), dw (out, in), db (out,)): dz = dout * f'; dx = dz w, dw = dz^T x, db = sum_n dz.
    z, the forward's x w^T + b, is needed where f' is not a function of a (gelu)."""
    convert_arguments(activation, alpha)  # then checks in the core's order, as dense_forward
    dout = as_float(dout, "dout")
    x, w = (as_float(v, name).astype(dout.dtype) for v, name in ((x, "x"), (w, "w")))
    _check_shapes(x, w, None)
    a = as_float(a, "a").astype(dout.dtype)
    check_ndim(dout, "dout", (2,), "shape (N, out)")
    check_ndim(a, "a", (2,), "shape (N, out)")
    expected = (x.shape[0], w.shape[0])
    if dout.shape != expected:
        raise ValueError(f"dout: expected shape {expected} (N, out), got {dout.shape}")
    if a.shape != dout.shape:
        raise ValueError(f"a: expected shape {dout.shape} (as dout), got {a.shape}")
    alpha = check_activation(activation, alpha)
    if activation in NEEDS_INPUT and z is None:
        raise ValueError(
            f"z: expected the forward's x w^T + b (activation '{activation}' has a "
            "derivative that a alone does not give), got None"
        )
    if z is not None:
        z = as_float(z, "z").astype(dout.dtype)
        if z.shape != dout.shape:
            raise ValueError(f"z: expected shape {dout.shape} (as dout), got {z.shape}")
    dz = _dz(dout, a, activation, alpha, z)
    return matmul(dz, w), matmul(dz, x, trans_a=True), dz.sum(axis=0)
