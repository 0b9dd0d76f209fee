"""The NumPy twin of pycvnn._core: same names, argument order and return values.

Written to be read: each function is the formula, vectorised. The C++ path is tested
against it, and it is tested against central finite differences.
"""

from . import activations as _activations
from .dense import dense_backward, dense_forward
from .gemm import matmul
from .losses import (
    binary_cross_entropy_backward,
    binary_cross_entropy_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    dice_backward,
    dice_forward,
    hinge_backward,
    hinge_forward,
    huber_backward,
    huber_forward,
    l1_backward,
    l1_forward,
    l2_backward,
    l2_forward,
    squared_hinge_backward,
    squared_hinge_forward,
)
from .optimizers import (
    adam_update,
    adamw_update,
    add_weight_decay,
    clip_by_global_norm,
    gd_update,
    global_norm,
    momentum_update,
    rmsprop_update,
)

__all__ = [
    "matmul",
    "l1_forward",
    "l1_backward",
    "l2_forward",
    "l2_backward",
    "huber_forward",
    "huber_backward",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "binary_cross_entropy_forward",
    "binary_cross_entropy_backward",
    "hinge_forward",
    "hinge_backward",
    "squared_hinge_forward",
    "squared_hinge_backward",
    "dice_forward",
    "dice_backward",
    "dense_forward",
    "dense_backward",
    "gd_update",
    "momentum_update",
    "rmsprop_update",
    "adam_update",
    "adamw_update",
    "add_weight_decay",
    "global_norm",
    "clip_by_global_norm",
]

# <name>_forward / <name>_backward of every registered activation.
for _name, *_ in _activations.ACTIVATIONS:
    for _kernel in (f"{_name}_forward", f"{_name}_backward"):
        globals()[_kernel] = getattr(_activations, _kernel)
        __all__.append(_kernel)

from .network import (  # noqa: E402  (the training core's twin)
    LOSSES,
    RULES,
    LossSpec,
    Network,
    ThreadSession,
    UpdateRule,
)

__all__ += ["Network", "LossSpec", "UpdateRule", "ThreadSession", "LOSSES", "RULES"]
