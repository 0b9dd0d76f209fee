"""Activation functions f(z) and their backward passes dout * f'(z), on the current backend.

z may have any shape; softmax works over the last axis. `get(name)` looks one up.
"""

from dataclasses import dataclass
from typing import Callable

from . import _validate as v
from ._backend import backend


def _z(z):
    return v.floating(z, "z")


def _z_dout(z, dout):
    z = _z(z)
    return z, v.like(dout, z, "dout", "z")


def _alpha(alpha):
    return v.number(alpha, "alpha", minimum=0.0)


def sigmoid(z):
    """1 / (1 + exp(-z)), elementwise."""
    z = _z(z)  # validate before looking up the kernel
    return backend().sigmoid_forward(z)


def sigmoid_backward(z, dout):
    """dout * sigmoid(z) (1 - sigmoid(z))."""
    z, dout = _z_dout(z, dout)
    return backend().sigmoid_backward(z, dout)


def tanh(z):
    """tanh(z), elementwise."""
    z = _z(z)
    return backend().tanh_forward(z)


def tanh_backward(z, dout):
    """dout * (1 - tanh(z)^2)."""
    z, dout = _z_dout(z, dout)
    return backend().tanh_backward(z, dout)


def relu(z):
    """max(z, 0), elementwise."""
    z = _z(z)
    return backend().relu_forward(z)


def relu_backward(z, dout):
    """dout * [z > 0] (relu'(0) = 0)."""
    z, dout = _z_dout(z, dout)
    return backend().relu_backward(z, dout)


def leaky_relu(z, alpha=0.01):
    """z if z > 0 else alpha z, elementwise (alpha >= 0)."""
    alpha = _alpha(alpha)
    z = _z(z)
    return backend().leaky_relu_forward(z, alpha)


def leaky_relu_backward(z, dout, alpha=0.01):
    """dout * (1 if z > 0 else alpha) (alpha at 0)."""
    alpha = _alpha(alpha)
    z, dout = _z_dout(z, dout)
    return backend().leaky_relu_backward(z, dout, alpha)


def _at_least_1d(z):
    if z.ndim < 1:
        raise ValueError(f"z: expected at least 1 dimension (softmax works over the last axis), got shape {z.shape}")
    return z


def softmax(z):
    """exp(z - max z) / sum exp(z - max z) over the last axis."""
    z = _at_least_1d(_z(z))
    return backend().softmax_forward(z)


def softmax_backward(z, dout):
    """s * (dout - sum(dout * s)) over the last axis, s = softmax(z)."""
    z, dout = _z_dout(z, dout)
    z = _at_least_1d(z)
    return backend().softmax_backward(z, dout)


@dataclass(frozen=True)
class Activation:
    """An activation by name: call it for f(z); .backward(z, dout) for dout * f'(z)."""

    name: str
    forward: Callable
    backward: Callable

    def __call__(self, z, *args, **kwargs):
        return self.forward(z, *args, **kwargs)


_ALL = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_backward),
    "tanh": Activation("tanh", tanh, tanh_backward),
    "relu": Activation("relu", relu, relu_backward),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_backward),
    "softmax": Activation("softmax", softmax, softmax_backward),
}


def get(name):
    """The Activation called `name` ("sigmoid", "tanh", "relu", "leaky_relu", "softmax")."""
    return _ALL[v.name_in(name, "name", _ALL)]


__all__ = ["sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "relu", "relu_backward",
           "leaky_relu", "leaky_relu_backward", "softmax", "softmax_backward", "Activation", "get"]
