"""Models and optimizers pickle, deep-copy and round-trip through joblib at any time (fresh,
after a predict, after a fit, between fits), the optimizer's state included: a copied
(model, optimizer) pair continues a fit exactly as the original does."""

import copy
import io
import pickle

import numpy as np
import pytest
from nethelpers import BACKENDS

import pycvnn
from pycvnn import optim

X, Y = pycvnn.datasets.digits()
X, Y = X[:300], Y[:300]


def _joblib(obj):
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


COPIES = {
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
    "deepcopy": copy.deepcopy,
    "joblib": _joblib,
}
OPTIMIZERS = {
    "gd": lambda: optim.GD(lr=0.1, clip_norm=1.0),
    "momentum": lambda: optim.Momentum(lr=0.05, form="heavy_ball", nesterov=True),
    "rmsprop": lambda: optim.RMSProp(lr=1e-3, weight_decay=1e-4),
    "adam": lambda: optim.Adam(lr=1e-3),
    "adamw": lambda: optim.AdamW(lr=1e-3),
}


@pytest.fixture(params=BACKENDS)
def backend(request):
    with pycvnn.using_backend(request.param):
        yield request.param


def _fit(model, opt, seed):
    return model.fit(X, Y, optimizer=opt, epochs=1, batch_size=64, verbose=False, seed=seed)


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_copied_pair_continues_the_fit_exactly(backend, how, name):
    model, opt = pycvnn.MLP([64, 16, 10], output="softmax", seed=0), OPTIMIZERS[name]()
    _fit(model, opt, 1)
    model.predict(X[:5])
    model2, opt2 = COPIES[how]((model, opt))
    assert opt2.t == opt.t > 0 and repr(opt2) == repr(opt)
    for a, b in zip(opt._state, opt2._state):
        np.testing.assert_array_equal(a, b)
        assert b.ctypes.data % 64 == 0 or b.size == 0
    _fit(model, opt, 2)
    _fit(model2, opt2, 2)
    np.testing.assert_array_equal(model2.params, model.params)
    assert opt2.t == opt.t


@pytest.mark.parametrize("how", sorted(COPIES))
def test_fresh_and_predicted_models_copy(how):
    model = pycvnn.MLP([64, 8, 10], seed=0, dtype="float64")
    assert repr(COPIES[how](model)) == repr(model)
    out = model.forward(X[:7])
    model.backward(np.ones_like(out))  # a forward kept for backward does not stop a copy
    copied = COPIES[how](model)
    np.testing.assert_array_equal(copied.predict(X[:7]), out)
    assert copied.dtype == np.float64 and copied.last_loss == model.last_loss


def test_a_copy_is_independent_of_the_original():
    model = pycvnn.MLP([64, 8, 10], seed=0)
    copied = copy.deepcopy(model)
    _fit(copied, "adam", 0)
    assert not np.array_equal(copied.params, model.params)
    np.testing.assert_array_equal(model.params, pycvnn.MLP([64, 8, 10], seed=0).params)


def test_an_optimizer_on_a_new_model_starts_afresh():
    model, opt = pycvnn.MLP([64, 8, 10], seed=0), optim.Adam(lr=1e-3)
    _fit(model, opt, 0)
    opt2 = pickle.loads(pickle.dumps(opt))
    other = pycvnn.MLP([64, 8, 10], seed=0)
    _fit(other, opt2, 0)
    assert opt2.t == opt.t  # restarted from 0, took the same number of steps
    np.testing.assert_array_equal(other.params, model.params)


def test_history_pickles():
    model = pycvnn.MLP([64, 8, 10], seed=0)
    h = model.fit(X, Y, epochs=2, verbose=False, log_every="batch")
    h2 = pickle.loads(pickle.dumps(h))
    assert h2["loss"] == h["loss"] and h2.batches["loss"] == h.batches["loss"]
