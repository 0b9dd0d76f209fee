"""pycvnn: feed-forward neural networks with a C++ core and a NumPy twin."""

__version__ = "0.1.0"

from ._backend import get_backend, set_backend, using_backend, set_num_threads, get_num_threads
from . import reference
from . import activations, losses
from ._neuron import neuron

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
]
