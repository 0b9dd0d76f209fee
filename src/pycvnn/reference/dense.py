"""The dense layer: a = f(x w^T + b), and its backward pass from the forward's output a.

x (N, in), w (out, in), b (out,), a and dout (N, out).
"""

import numpy as np

from ._common import as_float, as_name, as_number, check_name, check_ndim, check_scalar
from .activations import (keep_nan, leaky_relu_forward, relu_forward, sigmoid_forward,
                          softmax_forward, softmax_vjp, tanh_forward)
from .gemm import matmul

ACTIVATIONS = ("none", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")


def check_activation(activation, alpha):
    """alpha finite, and >= 0 for leaky_relu (then a > 0 exactly where z > 0, which backward
    reads off a); the other activations ignore it."""
    activation = check_name(activation, "activation", ACTIVATIONS)
    check_scalar(alpha, "alpha", lambda x: True, "a finite number")
    if activation == "leaky_relu":
        return check_scalar(alpha, "alpha", lambda x: x >= 0, "a number >= 0")
    return float(alpha)


def convert_arguments(activation, alpha):
    """The core converts its string and float arguments before any check, so their type
    errors come first."""
    as_name(activation, "activation", ACTIVATIONS)
    as_number(alpha, "alpha")


def _check_shapes(x, w, b):
    check_ndim(x, "x", (2,), "shape (N, in)")
    check_ndim(w, "w", (2,), "shape (out, in)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w: expected shape (out, {x.shape[1]}) to match x's features, got {w.shape}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"b: expected shape ({w.shape[0]},) to match w, got {b.shape}")


def dense_forward(x, w, b, activation="none", alpha=0.01):
    """a = f(x w^T + b): (N, in), (out, in), (out,) -> (N, out)."""
    convert_arguments(activation, alpha)  # then the core's order: two faults, the same one reported
    x = as_float(x, "x")
    w = as_float(w, "w").astype(x.dtype)
    _check_shapes(x, w, None)
    b = as_float(b, "b").astype(x.dtype)
    _check_shapes(x, w, b)
    alpha = check_activation(activation, alpha)
    z = matmul(x, w, trans_b=True) + b
    if activation == "none":
        return z
    if activation == "leaky_relu":
        return leaky_relu_forward(z, alpha)
    f = {"sigmoid": sigmoid_forward, "tanh": tanh_forward, "relu": relu_forward,
         "softmax": softmax_forward}[activation]
    return f(z)


def _dz(dout, a, activation, alpha):
    """d loss / d z from d loss / d a, with f' written in terms of a = f(z)."""
    if activation == "none":
        return dout
    if activation == "sigmoid":
        return dout * a * (1 - a)
    if activation == "tanh":
        return dout * ((1 - a) * (1 + a))  # 1 - a exact near 1, as the core
    if activation == "relu":  # a > 0 exactly when z > 0, and a is NaN where z is
        return keep_nan(a, np.where(a > 0, dout, 0))
    if activation == "leaky_relu":  # likewise with alpha >= 0
        return keep_nan(a, np.where(a > 0, dout, alpha * dout))
    return softmax_vjp(a, dout)


def dense_backward(dout, x, w, a, activation="none", alpha=0.01):
    """(dx (N, in), dw (out, in), db (out,)): dz = dout * f'; dx = dz w, dw = dz^T x, db = sum_n dz."""
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
    dz = _dz(dout, a, activation, alpha)
    return matmul(dz, w), matmul(dz, x, trans_a=True), dz.sum(axis=0)
