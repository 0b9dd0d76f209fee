"""pycvnn: feed-forward neural networks with a C++ core and a NumPy twin."""

__version__ = "0.1.0"

from ._backend import get_backend, set_backend, using_backend, set_num_threads, get_num_threads
from . import reference
from . import activations, losses
from ._neuron import neuron
from . import datasets, optim, schedules, walkthrough
from . import layers
from .layers import *  # noqa: F403  (Dense and one layer class per activation)
from .model import MLP, Sequential, load
from .training import EarlyStopping, History, TrainingDiverged
from .gradcheck import check_gradients

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
