"""The lecture's single neuron f(w·x + b), computed as a one-output dense layer.

(A private module name so that `pycvnn.neuron` stays the function, not a module.)
"""

from __future__ import annotations

from typing import Union

import numpy as np

from . import _validate as v
from ._backend import backend
from ._types import ArrayLike, FloatArray
from .activations import names

NEURON_ACTIVATIONS = (*names(per_row=False), "none")


def neuron(
    x: ArrayLike, w: ArrayLike, b: ArrayLike, activation: str = "sigmoid"
) -> Union[float, FloatArray]:
    """f(w·x + b): x (F,) -> float, x (N, F) -> (N,); w (F,), b a number."""
    activation = v.name_in(activation, "activation", NEURON_ACTIVATIONS)
    x = v.floating(x, "x")
    v.ndim(x, "x", (1, 2), "shape (F,) or (N, F)")
    rows = x.reshape(-1, x.shape[-1])  # (N, F)
    w = v.like(w, rows[0], "w", "one sample of x")
    b = v.numeric(b, "b")
    if b.shape not in ((), (1,)):
        raise ValueError(f"b: expected a single number, got shape {b.shape}")
    b = v.like(b.reshape(1), rows[0, :1], "b", "one bias")
    a = np.asarray(backend().dense_forward(rows, w.reshape(1, -1), b, activation)).reshape(-1)
    return float(a[0]) if x.ndim == 1 else a
