"""Activation functions f(z) and their backward passes dout * f'(z), on the current backend.

z may have any shape; softmax works over the last axis. `get(name)` looks one up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Tuple, overload

from . import _validate as v
from ._backend import backend
from ._types import Array, ArrayLike, FloatArray


class Forward(Protocol):
    """f(z), z of any shape."""

    def __call__(self, z: ArrayLike) -> FloatArray: ...


class Backward(Protocol):
    """dout * f'(z), dout of z's shape."""

    def __call__(self, z: ArrayLike, dout: ArrayLike) -> FloatArray: ...


class ForwardAlpha(Protocol):
    """f(z) of an activation with a slope option (leaky ReLU)."""

    def __call__(self, z: ArrayLike, alpha: float = 0.01) -> FloatArray: ...


class BackwardAlpha(Protocol):
    """dout * f'(z) of an activation with a slope option (leaky ReLU)."""

    def __call__(self, z: ArrayLike, dout: ArrayLike, alpha: float = 0.01) -> FloatArray: ...


def _z(z: ArrayLike) -> FloatArray:
    return v.floating(z, "z")


def _kernels(
    name: str,
    forward_doc: str,
    backward_doc: str,
    option: Optional[str] = None,
    per_row: bool = False,
) -> Tuple[Callable[..., FloatArray], Callable[..., FloatArray]]:
    """The public f(z[, option]) and f_backward(z, dout[, option]) over the backend's
    <name>_forward / <name>_backward: arguments checked here, the math in the kernels."""

    def check(
        z: ArrayLike, dout: Optional[ArrayLike] = None, opt: Optional[float] = None
    ) -> Tuple[Any, ...]:
        z = _z(z)
        if per_row and z.ndim < 1:
            raise ValueError(
                f"z: expected at least 1 dimension ({name} works over the last "
                f"axis), got shape {z.shape}"
            )
        args: Tuple[Array, ...] = (z,) if dout is None else (z, v.like(dout, z, "dout", "z"))
        return args + (() if option is None else (opt,))  # its range: the kernels check it

    def kernel(part: str, *args: Any) -> FloatArray:
        out: FloatArray = getattr(backend(), f"{name}_{part}")(*args)
        return out

    def forward(z: ArrayLike) -> FloatArray:
        return kernel("forward", *check(z))

    def backward(z: ArrayLike, dout: ArrayLike) -> FloatArray:
        return kernel("backward", *check(z, dout))

    def forward_alpha(z: ArrayLike, alpha: float = 0.01) -> FloatArray:
        return kernel("forward", *check(z, opt=alpha))

    def backward_alpha(z: ArrayLike, dout: ArrayLike, alpha: float = 0.01) -> FloatArray:
        return kernel("backward", *check(z, dout, alpha))

    pair: Tuple[Callable[..., FloatArray], Callable[..., FloatArray]] = (
        (forward, backward) if option is None else (forward_alpha, backward_alpha)
    )
    for fn, fname, doc in (
        (pair[0], name, forward_doc),
        (pair[1], f"{name}_backward", backward_doc),
    ):
        fn.__name__ = fn.__qualname__ = fname
        fn.__doc__ = doc
    return pair


@dataclass(frozen=True)
class Activation:
    """An activation by name: call it for f(z); .backward(z, dout) for dout * f'(z).

    options: its keyword options (leaky ReLU's alpha); init: the initialisation MLP gives the
    layers it follows; per_row: it works over each row (softmax), so it can only end a model."""

    name: str
    forward: Callable[..., FloatArray]
    backward: Callable[..., FloatArray]
    options: Tuple[str, ...] = ()
    init: str = "xavier"
    per_row: bool = False

    def __call__(self, z: ArrayLike, *args: Any, **kwargs: Any) -> FloatArray:
        return self.forward(z, *args, **kwargs)


@overload
def _register(
    name: str,
    forward_doc: str,
    backward_doc: str,
    option: None = None,
    init: str = "xavier",
    per_row: bool = False,
) -> Tuple[Forward, Backward]: ...
@overload
def _register(
    name: str,
    forward_doc: str,
    backward_doc: str,
    option: str,
    init: str = "xavier",
    per_row: bool = False,
) -> Tuple[ForwardAlpha, BackwardAlpha]: ...
def _register(
    name: str,
    forward_doc: str,
    backward_doc: str,
    option: Optional[str] = None,
    init: str = "xavier",
    per_row: bool = False,
) -> Tuple[Callable[..., FloatArray], Callable[..., FloatArray]]:
    forward, backward = _kernels(name, forward_doc, backward_doc, option, per_row)
    REGISTRY[name] = Activation(name, forward, backward, (option,) if option else (), init, per_row)
    return forward, backward


# The one list of activations: layers, the CLI's choices, model files and the checks derive
# from it. Each needs <name>_forward / <name>_backward in pycvnn._core and pycvnn.reference.
REGISTRY: dict[str, Activation] = {}
sigmoid, sigmoid_backward = _register(
    "sigmoid", "1 / (1 + exp(-z)), elementwise.", "dout * sigmoid(z) (1 - sigmoid(z))."
)
tanh, tanh_backward = _register("tanh", "tanh(z), elementwise.", "dout * (1 - tanh(z)^2).")
relu, relu_backward = _register(
    "relu", "max(z, 0), elementwise.", "dout * [z > 0] (relu'(0) = 0).", init="he"
)
leaky_relu, leaky_relu_backward = _register(
    "leaky_relu",
    "z if z > 0 else alpha z, elementwise (alpha >= 0).",
    "dout * (1 if z > 0 else alpha) (alpha at 0).",
    option="alpha",
    init="he",
)
softmax, softmax_backward = _register(
    "softmax",
    "exp(z - max z) / sum exp(z - max z) over the last axis.",
    "s * (dout - sum(dout * s)) over the last axis, s = softmax(z).",
    per_row=True,
)

gelu, gelu_backward = _register(
    "gelu",
    "z Phi(z), Phi the standard normal CDF (the exact GELU, PyTorch's default).",
    "dout * (Phi(z) + z phi(z)).",
)
softplus, softplus_backward = _register(
    "softplus", "log(1 + exp(z)), elementwise, computed without overflow.", "dout * sigmoid(z)."
)


def names(per_row: Optional[bool] = None) -> Tuple[str, ...]:
    """The registered activation names (per_row=False: the elementwise ones, which can sit
    between layers; True: those working per row)."""
    return tuple(n for n, a in REGISTRY.items() if per_row is None or a.per_row == per_row)


def get(name: str) -> Activation:
    """The Activation called `name` (one of names())."""
    return REGISTRY[v.name_in(name, "name", REGISTRY)]


__all__ = [f"{name}{part}" for name in REGISTRY for part in ("", "_backward")]
__all__ += ["Activation", "REGISTRY", "names", "get"]
