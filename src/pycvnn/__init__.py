"""pycvnn: feed-forward neural networks with a C++ core and a NumPy twin."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from . import (
    activations,
    datasets,
    layers,
    losses,
    metrics,
    optim,
    reference,
    schedules,
    walkthrough,
)
from ._backend import get_backend, get_num_threads, set_backend, set_num_threads, using_backend
from ._neuron import neuron
from .gradcheck import check_gradients
from .layers import *  # noqa: F403  (Dense and one layer class per activation)
from .model import MLP, Sequential, load
from .training import EarlyStopping, History, TrainingDiverged

__all__ = [
    "__version__",
    "get_backend",
    "set_backend",
    "using_backend",
    "set_num_threads",
    "get_num_threads",
    "reference",
    "activations",
    "losses",
    "metrics",
    "neuron",
    "datasets",
    "optim",
    "schedules",
    "walkthrough",
    "Sequential",
    "MLP",
    "EarlyStopping",
    "History",
    "TrainingDiverged",
    "load",
    "check_gradients",
]
__all__ += [name for name in layers.__all__ if name != "Layer"]

if TYPE_CHECKING:
    from types import ModuleType

    from . import export as export  # imported on first use at run time, below


def __getattr__(name: str) -> ModuleType:
    # pycvnn.export needs onnx, an optional extra: it is imported on first use, not with pycvnn.
    if name == "export":
        import importlib

        return importlib.import_module(".export", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
