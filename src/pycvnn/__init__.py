"""pycvnn: feed-forward neural networks with a C++ core and a NumPy twin."""

__version__ = "0.1.0"

from ._backend import get_backend, set_backend, using_backend, set_num_threads, get_num_threads
from . import reference
from . import activations, losses
from ._neuron import neuron
from . import datasets, optim, schedules, walkthrough
from .layers import Dense, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
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
    "Dense",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Sequential",
    "MLP",
    "EarlyStopping",
    "History",
    "TrainingDiverged",
    "load",
    "check_gradients",
]
