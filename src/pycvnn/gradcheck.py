"""check_gradients: backprop against central finite differences, in float64."""

from __future__ import annotations

import copy
from typing import Union

import numpy as np

from . import _validate as v
from ._types import ArrayLike
from .losses import Loss
from .model import Sequential
from .training import _plan, prepare_targets


def check_gradients(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    loss: Union[str, Loss] = "cross_entropy",
    h: float = 1e-6,
) -> float:
    """Largest relative error max |a - n| / max(|a|, |n|, 1e-8) over all parameters, between
    backprop (a) and central differences (n) of the mean training loss, on a float64 copy."""
    if not isinstance(model, Sequential):
        raise TypeError(
            f"model: expected a pycvnn model (Sequential or MLP), got {type(model).__name__}"
        )
    h = v.number(h, "h", 0, strict=True)
    m = Sequential(copy.deepcopy(model.layers), dtype="float64")
    m._params[...] = model.params
    X = m._input(X)
    net, spec, name = _plan(m, loss)[:3]
    targets, _ = prepare_targets(y, name, X.shape[0], m.out_features, m.dtype)

    def value() -> float:
        return spec.value(net.forward(m._params, X), targets)

    pred = net.forward(m._params, X)
    net.backward(m._params, m._grads, spec.grad(pred, targets))
    analytic = m._grads.copy()
    numeric = np.empty_like(analytic)
    p = m._params
    for i in range(p.size):
        saved = p[i]
        p[i] = saved + h
        plus = value()
        p[i] = saved - h
        minus = value()
        p[i] = saved
        numeric[i] = (plus - minus) / (2 * h)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-8)
    return float(np.max(np.abs(analytic - numeric) / scale))
