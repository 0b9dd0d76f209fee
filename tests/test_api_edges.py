"""Edges of the public API: a learning rate of 0 is legal everywhere (and a schedule may decay
or underflow to it), NumPy scalars pass wherever Python numbers do, and zero, negative, None,
str and NaN values of every option give a ValueError or TypeError naming the argument."""

import math

import numpy as np
import pytest
from nethelpers import BACKENDS, Recorder, backend_fixture

import pycvnn
from pycvnn import activations as A
from pycvnn import losses as L
from pycvnn import optim, walkthrough
from pycvnn import schedules as S

backend = pytest.fixture(params=BACKENDS)(backend_fixture)

NAN, INF = float("nan"), float("inf")


def class_data(n=12, f=3, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, f)), rng.integers(0, c, n)


X, Y = class_data()


def model(dtype="float32"):
    return pycvnn.MLP([3, 5, 3], seed=0, dtype=dtype)


def fit(m, **kwargs):
    args = {"epochs": 2, "batch_size": 4, "seed": 0, "verbose": False}
    args.update(kwargs)
    return m.fit(X, Y, **args)


class NoHooks:
    pass


# ---- bad values: each error is raised before any work and names the argument ----------------

BAD = [
    # model.predict's chunk size
    ("predict rows=0", lambda: model().predict(X, rows=0), ValueError, "rows"),
    ("predict rows<0", lambda: model().predict(X, rows=-2), ValueError, "rows"),
    ("predict rows float", lambda: model().predict(X, rows=1.5), TypeError, "rows"),
    ("predict rows None", lambda: model().predict(X, rows=None), TypeError, "rows"),
    ("predict rows str", lambda: model().predict(X, rows="8"), TypeError, "rows"),
    # check_gradients' step and model
    ("gradcheck h=0", lambda: pycvnn.check_gradients(model(), X, Y, h=0), ValueError, "h"),
    ("gradcheck h<0", lambda: pycvnn.check_gradients(model(), X, Y, h=-1e-6), ValueError, "h"),
    ("gradcheck h nan", lambda: pycvnn.check_gradients(model(), X, Y, h=NAN), ValueError, "h"),
    ("gradcheck h str", lambda: pycvnn.check_gradients(model(), X, Y, h="1e-6"), TypeError, "h"),
    ("gradcheck h None", lambda: pycvnn.check_gradients(model(), X, Y, h=None), TypeError, "h"),
    ("gradcheck model", lambda: pycvnn.check_gradients("net", X, Y), TypeError, "model"),
    # layers
    ("LeakyReLU str", lambda: pycvnn.LeakyReLU("a"), TypeError, "alpha"),
    ("LeakyReLU None", lambda: pycvnn.LeakyReLU(None), TypeError, "alpha"),
    ("LeakyReLU nan", lambda: pycvnn.LeakyReLU(NAN), ValueError, "alpha"),
    ("LeakyReLU inf", lambda: pycvnn.LeakyReLU(INF), ValueError, "alpha"),
    ("LeakyReLU bool", lambda: pycvnn.LeakyReLU(True), TypeError, "alpha"),
    (
        "Dense activation list",
        lambda: pycvnn.Dense(3, 2, activation=["relu"]),
        ValueError,
        "activation",
    ),
    ("Dense init None", lambda: pycvnn.Dense(3, 2, init=None), ValueError, "init"),
    ("Dense in None", lambda: pycvnn.Dense(None, 2), ValueError, "in_features"),
    # models
    ("MLP dtype None", lambda: pycvnn.MLP([3, 2], dtype=None), ValueError, "dtype"),
    (
        "Sequential dtype None",
        lambda: pycvnn.Sequential([pycvnn.Dense(3, 2)], dtype=None),
        ValueError,
        "dtype",
    ),
    ("MLP dtype str", lambda: pycvnn.MLP([3, 2], dtype="double precision"), ValueError, "dtype"),
    ("MLP size 0", lambda: pycvnn.MLP([3, 0, 2]), ValueError, r"sizes\[1\]"),
    ("MLP size float", lambda: pycvnn.MLP([3, 2.5]), ValueError, r"sizes\[1\]"),
    ("MLP size None", lambda: pycvnn.MLP([None, 2]), ValueError, r"sizes\[0\]"),
    ("MLP size -1", lambda: pycvnn.MLP([3, -1]), ValueError, r"sizes\[1\]"),
    (
        "MLP activation list",
        lambda: pycvnn.MLP([3, 2], activation=["relu"]),
        ValueError,
        "activation",
    ),
    ("MLP activation None", lambda: pycvnn.MLP([3, 2], activation=None), ValueError, "activation"),
    ("MLP output list", lambda: pycvnn.MLP([3, 2], output=["softmax"]), ValueError, "output"),
    ("set_weights None", lambda: model().set_weights(None), TypeError, "weights"),
    ("set_weights number", lambda: model().set_weights(3), TypeError, "weights"),
    # EarlyStopping
    (
        "EarlyStopping monitor None",
        lambda: pycvnn.EarlyStopping(monitor=None),
        TypeError,
        "monitor",
    ),
    ("EarlyStopping monitor int", lambda: pycvnn.EarlyStopping(monitor=3), TypeError, "monitor"),
    (
        "EarlyStopping monitor empty",
        lambda: pycvnn.EarlyStopping(monitor=""),
        ValueError,
        "monitor",
    ),
    (
        "EarlyStopping patience float",
        lambda: pycvnn.EarlyStopping(patience=1.5),
        ValueError,
        "patience",
    ),
    (
        "EarlyStopping patience None",
        lambda: pycvnn.EarlyStopping(patience=None),
        ValueError,
        "patience",
    ),
    ("EarlyStopping patience<0", lambda: pycvnn.EarlyStopping(patience=-1), ValueError, "patience"),
    (
        "EarlyStopping min_delta<0",
        lambda: pycvnn.EarlyStopping(min_delta=-0.1),
        ValueError,
        "min_delta",
    ),
    (
        "EarlyStopping min_delta nan",
        lambda: pycvnn.EarlyStopping(min_delta=NAN),
        ValueError,
        "min_delta",
    ),
    (
        "EarlyStopping min_delta str",
        lambda: pycvnn.EarlyStopping(min_delta="0"),
        TypeError,
        "min_delta",
    ),
    (
        "EarlyStopping restore_best",
        lambda: pycvnn.EarlyStopping(restore_best="yes"),
        TypeError,
        "restore_best",
    ),
    # fit's callbacks
    ("fit callbacks str", lambda: fit(model(), callbacks="stop"), TypeError, "callbacks"),
    ("fit callbacks int", lambda: fit(model(), callbacks=3), TypeError, "callbacks"),
    (
        "fit callbacks no hooks",
        lambda: fit(model(), callbacks=[NoHooks()]),
        TypeError,
        r"callbacks\[0\]",
    ),
    (
        "fit callbacks None item",
        lambda: fit(model(), callbacks=[Recorder(), None]),
        TypeError,
        r"callbacks\[1\]",
    ),
    # losses and optimizers by name
    ("losses.get unknown option", lambda: L.get("l1", foo=1), TypeError, "foo"),
    ("losses.get second unknown", lambda: L.get("huber", delta=2.0, bar=1), TypeError, "bar"),
    ("losses.get object + options", lambda: L.get(L.L1(), reduction="sum"), ValueError, "options"),
    ("L1 unknown option", lambda: L.L1(foo=1), TypeError, "foo"),
    ("Huber delta None", lambda: L.Huber(delta=None), TypeError, "delta"),
    ("Dice smooth nan", lambda: L.Dice(smooth=NAN), ValueError, "smooth"),
    ("optim.get object + options", lambda: optim.get(optim.GD(), lr=1.0), ValueError, "options"),
    ("optim.get unknown option", lambda: optim.get("adam", foo=1), TypeError, "foo"),
    # optimizer learning rates and hyperparameters
    ("GD lr<0", lambda: optim.GD(lr=-0.1), ValueError, "lr"),
    ("GD lr nan", lambda: optim.GD(lr=NAN), ValueError, "lr"),
    ("GD lr inf", lambda: optim.GD(lr=INF), ValueError, "lr"),
    ("GD lr None", lambda: optim.GD(lr=None), TypeError, "lr"),
    ("GD lr str", lambda: optim.GD(lr="0.1"), TypeError, "lr"),
    ("Adam lr<0", lambda: optim.Adam(lr=-1e-3), ValueError, "lr"),
    ("Adam eps None", lambda: optim.Adam(eps=None), TypeError, "eps"),
    ("Adam beta1 nan", lambda: optim.Adam(beta1=NAN), ValueError, "beta1"),
    ("Momentum beta str", lambda: optim.Momentum(beta="0.9"), TypeError, "beta"),
    ("RMSProp rho None", lambda: optim.RMSProp(rho=None), TypeError, "rho"),
    ("GD clip_norm nan", lambda: optim.GD(clip_norm=NAN), ValueError, "clip_norm"),
    ("GD weight_decay None", lambda: optim.GD(weight_decay=None), TypeError, "weight_decay"),
    # threads and backends
    ("set_num_threads 0", lambda: pycvnn.set_num_threads(0), ValueError, "n"),
    ("set_num_threads<0", lambda: pycvnn.set_num_threads(-2), ValueError, "n"),
    ("set_num_threads float", lambda: pycvnn.set_num_threads(2.0), ValueError, "n"),
    ("set_num_threads None", lambda: pycvnn.set_num_threads(None), ValueError, "n"),
    ("set_num_threads str", lambda: pycvnn.set_num_threads("2"), ValueError, "n"),
    ("set_num_threads bool", lambda: pycvnn.set_num_threads(True), ValueError, "n"),
    ("set_num_threads huge", lambda: pycvnn.set_num_threads(2**40), ValueError, "n"),
    ("set_num_threads 1025", lambda: pycvnn.set_num_threads(1025), ValueError, "n"),
    ("set_backend list", lambda: pycvnn.set_backend(["cpp"]), ValueError, "backend"),
    ("set_backend None", lambda: pycvnn.set_backend(None), ValueError, "backend"),
    # schedules
    ("Constant lr<0", lambda: S.Constant(-0.1), ValueError, "lr"),
    ("Constant lr None", lambda: S.Constant(None), TypeError, "lr"),
    ("Constant lr str", lambda: S.Constant("0.1"), TypeError, "lr"),
    ("Constant lr inf", lambda: S.Constant(INF), ValueError, "lr"),
    ("StepDecay step_size None", lambda: S.StepDecay(0.1, None), ValueError, "step_size"),
    ("StepDecay gamma 0", lambda: S.StepDecay(0.1, 1, gamma=0), ValueError, "gamma"),
    ("StepDecay gamma nan", lambda: S.StepDecay(0.1, 1, gamma=NAN), ValueError, "gamma"),
    ("ExponentialDecay gamma None", lambda: S.ExponentialDecay(0.1, None), TypeError, "gamma"),
    ("ExponentialDecay overflow", lambda: S.ExponentialDecay(1.0, 10.0)(400), ValueError, "gamma"),
    (
        "CosineAnnealing eta_min None",
        lambda: S.CosineAnnealing(0.1, 5, eta_min=None),
        TypeError,
        "eta_min",
    ),
    (
        "CosineAnnealing eta_min<0",
        lambda: S.CosineAnnealing(0.1, 5, eta_min=-0.1),
        ValueError,
        "eta_min",
    ),
    (
        "CosineAnnealing eta_min nan",
        lambda: S.CosineAnnealing(0.1, 5, eta_min=NAN),
        ValueError,
        "eta_min",
    ),
    ("CosineAnnealing t_max float", lambda: S.CosineAnnealing(0.1, 2.5), ValueError, "t_max"),
    ("Warmup epochs None", lambda: S.Warmup(0.1, None), ValueError, "epochs"),
    (
        "ReduceOnPlateau factor None",
        lambda: S.ReduceOnPlateau(0.1, factor=None),
        TypeError,
        "factor",
    ),
    (
        "ReduceOnPlateau factor nan",
        lambda: S.ReduceOnPlateau(0.1, factor=NAN),
        ValueError,
        "factor",
    ),
    (
        "ReduceOnPlateau threshold str",
        lambda: S.ReduceOnPlateau(0.1, threshold="0"),
        TypeError,
        "threshold",
    ),
    (
        "ReduceOnPlateau min_lr None",
        lambda: S.ReduceOnPlateau(0.1, min_lr=None),
        TypeError,
        "min_lr",
    ),
    (
        "ReduceOnPlateau min_lr > lr",
        lambda: S.ReduceOnPlateau(0.1, min_lr=1.0),
        ValueError,
        "min_lr",
    ),
    (
        "ReduceOnPlateau patience float",
        lambda: S.ReduceOnPlateau(0.1, patience=1.5),
        ValueError,
        "patience",
    ),
    ("ReduceOnPlateau step None", lambda: S.ReduceOnPlateau(0.1).step(None), TypeError, "metric"),
    ("ReduceOnPlateau step nan", lambda: S.ReduceOnPlateau(0.1).step(NAN), ValueError, "metric"),
    ("schedule epoch float", lambda: S.Constant(0.1)(1.5), ValueError, "epoch"),
    ("schedule epoch None", lambda: S.StepDecay(0.1, 2)(None), ValueError, "epoch"),
    # the lecture walkthrough
    (
        "walkthrough lr<0",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], -0.1),
        ValueError,
        "lr",
    ),
    (
        "walkthrough lr nan",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], NAN),
        ValueError,
        "lr",
    ),
    (
        "walkthrough lr str",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], "0.1"),
        TypeError,
        "lr",
    ),
    (
        "walkthrough w0 None",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], 0.1, w0=None),
        TypeError,
        "w0",
    ),
    (
        "walkthrough b0 inf",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], 0.1, b0=INF),
        ValueError,
        "b0",
    ),
    (
        "walkthrough iterations float",
        lambda: walkthrough.linear_regression([1, 2], [2, 4], 0.1, iterations=2.5),
        ValueError,
        "iterations",
    ),
]


@pytest.mark.parametrize(
    "make,exc,pattern", [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_value_names_the_argument(make, exc, pattern):
    threads = pycvnn.get_num_threads()
    try:
        with pytest.raises(exc, match=pattern):
            make()
    finally:
        assert pycvnn.get_num_threads() == threads  # a rejected value changed nothing
        assert pycvnn.get_backend() == "cpp"


def test_a_rejected_callbacks_list_trains_nothing():
    m = model()
    w = m.get_weights()
    with pytest.raises(TypeError, match="callbacks"):
        fit(m, callbacks=[NoHooks()])
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)


# ---- None as "no callbacks" -----------------------------------------------------------------


def test_fit_callbacks_none_is_no_callbacks(backend):
    a, b = model(), model()
    ha, hb = fit(a, callbacks=None), fit(b, callbacks=())
    assert ha["loss"] == hb["loss"]
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


# ---- NumPy scalars pass wherever Python numbers do -------------------------------------------


def test_set_num_threads_takes_a_numpy_int():
    before = pycvnn.get_num_threads()
    try:
        pycvnn.set_num_threads(np.int64(1))
        assert pycvnn.get_num_threads() == 1
        pycvnn.set_num_threads(np.int32(2))
        assert pycvnn.get_num_threads() == 2
    finally:
        pycvnn.set_num_threads(before)


SCHEDULE_PAIRS = [
    (lambda: S.Constant(0.25), lambda: S.Constant(np.float32(0.25))),
    (
        lambda: S.StepDecay(0.5, 2, 0.5),
        lambda: S.StepDecay(np.float32(0.5), np.int64(2), np.float32(0.5)),
    ),
    (
        lambda: S.ExponentialDecay(0.5, 0.5),
        lambda: S.ExponentialDecay(np.float64(0.5), np.float32(0.5)),
    ),
    (
        lambda: S.CosineAnnealing(1.0, 4, 0.25),
        lambda: S.CosineAnnealing(np.float32(1), np.int64(4), np.float32(0.25)),
    ),
    (lambda: S.Warmup(1.0, 2), lambda: S.Warmup(np.float32(1.0), np.uint8(2))),
    (
        lambda: S.ReduceOnPlateau(0.5, 0.5, 1, 0.01, 0.0),
        lambda: S.ReduceOnPlateau(
            np.float32(0.5), np.float32(0.5), np.int64(1), np.float64(0.01), np.float32(0.0)
        ),
    ),
]


@pytest.mark.parametrize(
    "python,numpy",
    SCHEDULE_PAIRS,
    ids=[
        "Constant",
        "StepDecay",
        "ExponentialDecay",
        "CosineAnnealing",
        "Warmup",
        "ReduceOnPlateau",
    ],
)
def test_schedules_take_numpy_scalars(python, numpy):
    a, b = python(), numpy()
    for e in range(6):
        got = b(np.int64(e))
        assert type(got) is float and got == a(e)  # a Python float for History's lr column
    if hasattr(a, "step"):
        for metric in (1.0, 1.0, 1.0, 0.5):
            assert b.step(np.float32(metric)) == a.step(metric)


def test_other_options_take_numpy_scalars(backend):
    assert pycvnn.EarlyStopping(patience=np.int64(3)).patience == 3
    assert pycvnn.EarlyStopping(min_delta=np.float32(0.5)).min_delta == 0.5
    assert pycvnn.LeakyReLU(np.float32(0.25)).alpha == 0.25
    assert pycvnn.Dense(np.int64(3), np.int32(2)).out_features == 2
    assert optim.Adam(lr=np.float32(0.5), beta1=np.float32(0.5)).lr == 0.5
    assert optim.Momentum(lr=np.int64(1), beta=np.float16(0.5)).beta == 0.5
    m = pycvnn.MLP(np.array([3, 5, 3]), seed=np.int64(0))
    ref = model()
    np.testing.assert_array_equal(m.predict(X, rows=np.int64(5)), ref.predict(X))
    h_np = m.fit(X, Y, epochs=np.int64(2), batch_size=np.int64(4), seed=np.int64(0), verbose=False)
    assert h_np["loss"] == fit(ref)["loss"]
    assert pycvnn.check_gradients(model("float64"), X, Y, h=np.float64(1e-6)) < 1e-4
    z = np.linspace(-1, 1, 5)
    np.testing.assert_array_equal(
        A.leaky_relu(z, alpha=np.float32(0.25)), A.leaky_relu(z, alpha=0.25)
    )
    assert L.huber(z, -z, delta=np.int64(1)) == L.huber(z, -z, delta=1.0)
    rows = walkthrough.linear_regression(
        [1, 2, 3],
        [2, 4, 6],
        np.float32(0.5),
        w0=np.int64(0),
        b0=np.float64(0),
        iterations=np.int64(3),
    )
    assert rows == walkthrough.linear_regression(
        [1, 2, 3], [2, 4, 6], float(np.float32(0.5)), iterations=3
    )


# ---- a learning rate of 0 -------------------------------------------------------------------

OPTIMIZERS = {
    "gd": lambda lr: optim.GD(lr=lr),
    "gd-decay-clip": lambda lr: optim.GD(lr=lr, weight_decay=0.1, clip_norm=0.5),
    "momentum": lambda lr: optim.Momentum(lr=lr),
    "heavy_ball-nesterov": lambda lr: optim.Momentum(lr=lr, form="heavy_ball", nesterov=True),
    "rmsprop": lambda lr: optim.RMSProp(lr=lr, weight_decay=0.1),
    "adam": lambda lr: optim.Adam(lr=lr),
    "adamw": lambda lr: optim.AdamW(lr=lr, weight_decay=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lr_zero_trains_without_changing_the_weights(backend, name, dtype):
    m = model(dtype)
    w = m.get_weights()
    opt = OPTIMIZERS[name](0)
    assert opt.lr == 0.0
    h = fit(m, optimizer=opt, epochs=3)
    assert len(h) == 3 and h["lr"] == [0.0, 0.0, 0.0]
    assert h["loss"][-1] == pytest.approx(h["loss"][0], rel=1e-6)  # the same weights, the same loss
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)
    m.forward(X)  # opt.step on the model's own gradients: no change either
    m.backward(np.ones((len(X), 3)))
    opt.step(m)
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)


def test_lr_can_be_set_to_zero():
    opt = optim.Adam()
    opt.lr = 0
    assert opt.lr == 0.0
    opt.lr = np.float32(0.0)
    assert opt.lr == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: S.Constant(0),
        lambda: S.StepDecay(0.0, 1),
        lambda: S.ExponentialDecay(0, 0.5),
        lambda: S.ExponentialDecay(0, 10.0),
        lambda: S.CosineAnnealing(0, 3),
        lambda: S.Warmup(0, 2),
        lambda: S.Warmup(0, 2, then=S.CosineAnnealing(0, 3)),
        lambda: S.ReduceOnPlateau(0),
    ],
)
def test_schedules_take_lr_zero(make):
    s = make()
    assert [s(e) for e in (0, 1, 5, 400)] == [0.0] * 4


# Schedules that reach 0 mid-run: by underflow (ExponentialDecay, StepDecay) or by design
# (a cosine that ends at eta_min = 0 after a warm-up).
REACHING_ZERO = {
    "exponential-underflow": (lambda: S.ExponentialDecay(1e-3, 0.01), 200),
    "step-underflow": (lambda: S.StepDecay(1e-3, 1, 1e-200), 6),
    "warmup-cosine-to-0": (
        lambda: S.Warmup(1e-3, 2, then=S.CosineAnnealing(1e-3, 3, eta_min=0.0)),
        8,
    ),
}


@pytest.mark.parametrize("name", REACHING_ZERO)
@pytest.mark.parametrize("opt", ["adam", "gd"])
def test_fit_runs_to_the_end_when_the_schedule_reaches_zero(backend, name, opt):
    make, epochs = REACHING_ZERO[name]
    m, rec = model(), Recorder()
    h = m.fit(
        X,
        Y,
        optimizer=opt,
        schedule=make(),
        epochs=epochs,
        batch_size=4,
        seed=0,
        callbacks=[rec],
        verbose=False,
    )
    assert len(h) == epochs and h["epoch"][-1] == epochs - 1
    lrs = h["lr"]
    assert lrs[0] > 0 and lrs[-1] == 0.0
    assert all(math.isfinite(lr) and lr >= 0 for lr in lrs)
    first_zero = lrs.index(0.0)
    assert 0 < first_zero < epochs - 1
    # From the first epoch with lr 0 on, the weights stay as they were.
    before = rec.weights[first_zero - 1]
    for e in range(first_zero, epochs):
        for a, b in zip(rec.weights[e], before):
            np.testing.assert_array_equal(a, b)
    # Before it, training moved them.
    assert any(not np.array_equal(a, b) for a, b in zip(rec.weights[0], model().get_weights()))
