"""What a model and the code that trains, saves or steps it share: the ops a model's layers
become, the parameter arena's allocation, the training ops for a loss, class decisions.

A leaf module (it imports no model, training, optimizer or file code), so that those can all
use it without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Type, cast

import numpy as np

from ._backend import backend
from ._types import Array, DTypeLike, FloatArray, IntArray
from .layers import Dense, Layer

if TYPE_CHECKING:
    from ._core import Network


class TrainingDiverged(RuntimeError):
    """A loss (or, in optim.minimize, a gradient) became NaN or Inf; fit restores the weights
    held at the start of that epoch."""


class Op(NamedTuple):
    """One step of a network: a dense layer with its activation ("dense") or an activation
    alone ("act"), mapping `fin` features to `fout`; `alpha` is leaky ReLU's slope."""

    kind: str
    fin: int
    fout: int
    activation: str
    alpha: float


DTYPES: Dict[Optional[str], Type[np.floating[Any]]] = {"float32": np.float32, "float64": np.float64}
# A model ending in this activation, trained with this loss, takes the loss on the logits.
FUSED_OUTPUT: Dict[str, str] = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


def model_dtype(dtype: DTypeLike) -> Type[np.floating[Any]]:
    try:  # np.dtype(None) is float64: None must not pass as a choice
        name = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def arena_zeros(n: int, dtype: DTypeLike) -> Array:
    """n zeros starting on a 64-byte boundary (a cache line, one AVX-512 vector): the core's
    vector loads and stores over the arena then never split two lines."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + n * dtype.itemsize].view(dtype)


def read_only(a: Array) -> Array:
    """A view of `a` that refuses writes (a model's arena, shown without handing it out)."""
    view: Array = a.view()
    view.flags.writeable = False
    return view


def rng_for(seed: Optional[int]) -> np.random.Generator:
    """np.random.default_rng(seed), with the error naming `seed`."""
    if seed is not None and (
        isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))
    ):
        raise TypeError(f"seed: expected None or a non-negative int, got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed: expected None or a non-negative int, got {seed!r}")
    return np.random.default_rng(seed)


def ops_of(layers: Sequence[Layer]) -> List[Op]:
    """Layers -> [Op], each Dense fused with the activation layer right after it (when it has
    none of its own)."""
    ops: List[Op] = []
    i, width = 0, None
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Dense):
            if width is not None and layer.in_features != width:
                raise ValueError(
                    f"layers[{i}]: expected in_features={width} (the previous "
                    f"layer's output), got {layer.in_features}"
                )
            act, alpha = layer.dense_activation or "none", 0.01
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if act == "none" and nxt is not None and nxt.activation is not None:
                act, alpha, i = nxt.activation, nxt.alpha, i + 1
            width = layer.out_features
            ops.append(Op("dense", layer.in_features, width, act, alpha))
        else:
            if width is None:
                raise ValueError(
                    f"layers[{i}]: expected a Dense first layer (it fixes the "
                    f"input size), got {layer!r}"
                )
            # Every layer but Dense is an activation layer, which names its activation.
            ops.append(Op("act", width, width, cast(str, layer.activation), layer.alpha))
        i += 1
    return ops


def strip_output(ops: List[Op], loss_name: str) -> Tuple[List[Op], bool]:
    """The training ops for this loss: a final softmax (cross-entropy) or sigmoid (binary
    cross-entropy) is dropped so the loss takes logits with the fused gradient.
    Returns (ops, fused)."""
    if FUSED_OUTPUT.get(loss_name) != ops[-1].activation:
        return ops, False
    last = [] if ops[-1].kind == "act" else [ops[-1]._replace(activation="none")]
    ops = ops[:-1] + last
    if not ops:
        raise ValueError(
            f"layers: a model of a lone {FUSED_OUTPUT[loss_name]} has nothing to train"
        )
    return ops, True


def forward_in_chunks(net: Network, params: Array, X: Array, rows: int) -> FloatArray:
    """net.forward over X, `rows` at a time, so the network's workspace never grows past
    that many rows (fit passes its batch size)."""
    if X.shape[0] <= rows:
        return net.forward(params, X, keep=False)
    with backend().ThreadSession():  # one thread count for every chunk
        return np.concatenate(
            [net.forward(params, X[i : i + rows], keep=False) for i in range(0, X.shape[0], rows)]
        )


def decisions(out: Array, last_activation: str, fused: bool = False) -> IntArray:
    """Class decisions from a model's output: argmax per row, or for one output the 0/1
    decision at 0.5 after a sigmoid applied (not fused into the loss), else at 0."""
    if out.shape[1] > 1:
        ids: IntArray = out.argmax(axis=1)
        return ids
    threshold = 0.5 if (last_activation == "sigmoid" and not fused) else 0.0
    return (out[:, 0] > threshold).astype(np.int64)
