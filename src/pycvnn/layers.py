"""Layers: Dense (z = W a + b, W of shape (out, in)) and the activation layers.

A layer holds no arrays of its own until a model places it: the model owns one flat
parameter arena, and Dense.W / Dense.b are views into it (see pycvnn.model).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _validate as v
from ._types import FloatArray
from .activations import REGISTRY, names

ACTIVATIONS = names()
INITS = ("he", "xavier", "normal", "zeros")


def initial_weights(init: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> FloatArray:
    """W (fan_out, fan_in) in float64, drawn from rng. he: N(0, 2/fan_in);
    xavier: U(±sqrt(6/(fan_in + fan_out))); normal: N(0, 0.01^2); zeros."""
    shape = (fan_out, fan_in)
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if init == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if init == "normal":
        return rng.normal(0.0, 0.01, shape)
    return np.zeros(shape)


class Layer:
    """Base class; `activation` is the kernel name for activation layers, None otherwise."""

    activation: Optional[str] = None
    alpha = 0.01

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Fully connected: z = a W^T + b for a batch of rows a (N, in); W (out, in), b (out,)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: Optional[str] = None,
        init: str = "he",
    ) -> None:
        self.in_features = v.integer(in_features, "in_features", minimum=1, exc=ValueError)
        self.out_features = v.integer(out_features, "out_features", minimum=1, exc=ValueError)
        if activation is not None:
            v.name_in(activation, "activation", ACTIVATIONS)
        v.name_in(init, "init", INITS)
        self.dense_activation, self.init = activation, init
        # Views, set by the model.
        self.W: Optional[FloatArray] = None
        self.b: Optional[FloatArray] = None
        self.dW: Optional[FloatArray] = None
        self.db: Optional[FloatArray] = None

    def __repr__(self) -> str:
        act = f", activation={self.dense_activation!r}" if self.dense_activation else ""
        return f"Dense({self.in_features}, {self.out_features}{act})"


class LeakyReLU(Layer):
    """z if z > 0 else alpha z (alpha >= 0)."""

    activation = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = v.number(alpha, "alpha", minimum=0)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.alpha})"


# One layer class per registered activation without options (pycvnn.activations.REGISTRY),
# each documented by its activation's forward function.
class Sigmoid(Layer):
    __doc__ = REGISTRY["sigmoid"].forward.__doc__
    activation = "sigmoid"


class Tanh(Layer):
    __doc__ = REGISTRY["tanh"].forward.__doc__
    activation = "tanh"


class ReLU(Layer):
    __doc__ = REGISTRY["relu"].forward.__doc__
    activation = "relu"


class Softmax(Layer):
    __doc__ = REGISTRY["softmax"].forward.__doc__
    activation = "softmax"


class GELU(Layer):
    __doc__ = REGISTRY["gelu"].forward.__doc__
    activation = "gelu"


class Softplus(Layer):
    __doc__ = REGISTRY["softplus"].forward.__doc__
    activation = "softplus"


ACTIVATION_LAYERS = {cls.activation: cls for cls in Layer.__subclasses__() if cls.activation}
# Written out, so that a type checker sees the names `from pycvnn.layers import *` brings.
__all__ = ["Layer", "Dense", "LeakyReLU", "Sigmoid", "Tanh", "ReLU", "Softmax", "GELU", "Softplus"]
