"""Shared helpers for the training-half tests (test_model, test_training, test_torch_parity,
test_io_cli). Not collected by pytest (the name does not start with test_)."""

import numpy as np
import pytest

import pycvnn
from pycvnn import _core

# The compiled twin of reference.Network / LossSpec / UpdateRule; until it is bound, model
# code on the cpp backend raises AttributeError, so cpp parameters are skipped (they start
# running by themselves once pycvnn._core has them).
CORE_NET = all(hasattr(_core, name) for name in ("Network", "LossSpec", "UpdateRule"))
NO_CORE_NET = (
    "pycvnn._core has no Network/LossSpec/UpdateRule yet (the compiled training "
    "core is being bound); the cpp backend of the model code cannot run"
)
needs_core_net = pytest.mark.skipif(not CORE_NET, reason=NO_CORE_NET)

# The registered activations (pycvnn._core.ACTIVATIONS: name, per_row, has_alpha, needs_input):
# tests over "every activation" take them from here, so a new one is tested by itself.
ACTIVATION_NAMES = [entry[0] for entry in _core.ACTIVATIONS]


def activation_kwargs(name, alpha):
    """{"alpha": alpha} for an activation that takes it, else {}."""
    return {"alpha": alpha} if dict((e[0], e[2]) for e in _core.ACTIVATIONS)[name] else {}


BACKENDS = ["numpy", pytest.param("cpp", marks=needs_core_net)]
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def close(got, want, dtype, rtol=None):
    """The backends' tolerance: rtol 1e-4 / 1e-10 plus an atol of 1e-6 / 1e-12 times the largest reference
    magnitude (C++ may flush denormals)."""
    dtype = np.dtype(dtype).type
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    atol = (1e-6 if dtype == np.float32 else 1e-12) * scale
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64),
        want,
        rtol=RTOL[dtype] if rtol is None else rtol,
        atol=atol,
    )


def close_list(got, want, dtype, rtol=None):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.shape(g) == np.shape(w), f"item {i}: shape {np.shape(g)} != {np.shape(w)}"
        close(g, w, dtype, rtol)


def backend_fixture(request):
    with pycvnn.using_backend(request.param):
        yield request.param


class Recorder:
    """A callback that records the calls it gets and the weights at each epoch end."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.calls, self.logs, self.weights = [], [], []

    def on_train_begin(self, model):
        self.model = model
        self.calls.append("begin")

    def on_epoch_end(self, epoch, logs):
        self.calls.append(epoch)
        self.logs.append(dict(logs))
        self.weights.append(self.model.get_weights())
        return self.stop_at is not None and epoch >= self.stop_at

    def on_train_end(self, model):
        self.calls.append("end")


def batches(order, batch_size):
    """The index arrays of one epoch's batches, the last partial one included."""
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
