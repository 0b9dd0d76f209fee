"""Activation functions f(z) and their backward passes dout * f'(z), on the current backend.

z may have any shape; softmax works over the last axis. `get(name)` looks one up.
"""

from dataclasses import dataclass
from typing import Callable

from . import _validate as v
from ._backend import backend


def _z(z):
    return v.floating(z, "z")


def _kernels(name, forward_doc, backward_doc, option=None, per_row=False):
    """The public f(z[, option]) and f_backward(z, dout[, option]) over the backend's
    <name>_forward / <name>_backward: arguments checked here, the math in the kernels."""

    def check(z, dout=None, opt=None):
        z = _z(z)
        if per_row and z.ndim < 1:
            raise ValueError(
                f"z: expected at least 1 dimension ({name} works over the last "
                f"axis), got shape {z.shape}"
            )
        args = (z,) if dout is None else (z, v.like(dout, z, "dout", "z"))
        return args + (() if option is None else (opt,))  # its range: the kernels check it

    if option is None:

        def forward(z):
            return getattr(backend(), f"{name}_forward")(*check(z))

        def backward(z, dout):
            return getattr(backend(), f"{name}_backward")(*check(z, dout))
    else:

        def forward(z, alpha=0.01):  # type: ignore[misc]
            return getattr(backend(), f"{name}_forward")(*check(z, opt=alpha))

        def backward(z, dout, alpha=0.01):  # type: ignore[misc]
            return getattr(backend(), f"{name}_backward")(*check(z, dout, alpha))

    for fn, fname, doc in (
        (forward, name, forward_doc),
        (backward, f"{name}_backward", backward_doc),
    ):
        fn.__name__ = fn.__qualname__ = fname
        fn.__doc__ = doc
    return forward, backward


@dataclass(frozen=True)
class Activation:
    """An activation by name: call it for f(z); .backward(z, dout) for dout * f'(z).

    options: its keyword options (leaky ReLU's alpha); init: the initialisation MLP gives the
    layers it follows; per_row: it works over each row (softmax), so it can only end a model."""

    name: str
    forward: Callable
    backward: Callable
    options: tuple = ()
    init: str = "xavier"
    per_row: bool = False

    def __call__(self, z, *args, **kwargs):
        return self.forward(z, *args, **kwargs)


def _register(name, forward_doc, backward_doc, option=None, init="xavier", per_row=False):
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


def names(per_row=None):
    """The registered activation names (per_row=False: the elementwise ones, which can sit
    between layers; True: those working per row)."""
    return tuple(n for n, a in REGISTRY.items() if per_row is None or a.per_row == per_row)


def get(name):
    """The Activation called `name` (one of names())."""
    return REGISTRY[v.name_in(name, "name", REGISTRY)]


__all__ = [f"{name}{part}" for name in REGISTRY for part in ("", "_backward")]
__all__ += ["Activation", "REGISTRY", "names", "get"]
