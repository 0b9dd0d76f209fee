"""Layers and models: shapes, initialisers,
weights in and out, forward/backward against a hand-written NumPy backprop, predictions, the
fused softmax/sigmoid output, check_gradients on every activation x loss, and bad input.
Numerics run on both backends (cpp skipped until pycvnn._core binds the training core)."""

import math

import numpy as np
import pytest
from nethelpers import ACTIVATION_NAMES, BACKENDS, DTYPES, backend_fixture, close, close_list

import pycvnn
from pycvnn import losses as L
from pycvnn import reference as R

ACTIVATIONS = ACTIVATION_NAMES

backend = pytest.fixture(params=BACKENDS)(backend_fixture)


def np_act(name, z, alpha=0.01):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "gelu":
        return 0.5 * z * np.vectorize(math.erfc)(-z / math.sqrt(2))
    if name == "softplus":
        return np.logaddexp(z, 0)
    assert name in (None, "none"), f"no NumPy formula here for {name!r}"
    return z


def hand_forward(weights, X, acts):
    """Forward in float64 through Dense layers [W, b] with the given activations."""
    a = np.asarray(X, np.float64)
    for (W, b), act in zip(zip(weights[::2], weights[1::2]), acts):
        a = np_act(act, a @ np.asarray(W, np.float64).T + np.asarray(b, np.float64))
    return a


# ---- public names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Dense",
        "Sigmoid",
        "Tanh",
        "ReLU",
        "LeakyReLU",
        "Softmax",
        "Sequential",
        "MLP",
        "load",
        "check_gradients",
        "EarlyStopping",
        "TrainingDiverged",
        "History",
        "optim",
        "schedules",
        "datasets",
        "walkthrough",
    ],
)
def test_design_names_are_exported_from_the_package(name):
    # The public names: pycvnn.Dense, pycvnn.MLP, pycvnn.load, pycvnn.EarlyStopping, ...
    assert hasattr(pycvnn, name), f"pycvnn.{name} is missing"


def test_training_diverged_is_a_runtime_error():
    assert issubclass(pycvnn.TrainingDiverged, RuntimeError)


# ---- Dense shapes and init ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_W_is_out_by_in_and_b_is_out(dtype):
    d1, d2 = pycvnn.Dense(4, 7, "relu"), pycvnn.Dense(7, 3)
    m = pycvnn.Sequential([d1, d2], seed=0, dtype=np.dtype(dtype).name)
    assert d1.W.shape == (7, 4) and d1.b.shape == (7,)
    assert d2.W.shape == (3, 7) and d2.b.shape == (3,)
    assert [w.shape for w in m.get_weights()] == [(7, 4), (7,), (3, 7), (3,)]
    assert all(w.dtype == dtype for w in m.get_weights())
    assert m.n_params == 7 * 4 + 7 + 3 * 7 + 3


FAN_IN, FAN_OUT = 800, 200  # asymmetric, so fan_in vs fan_out mix-ups show


def big_layer(init, dtype=np.float64, seed=0):
    m = pycvnn.Sequential(
        [pycvnn.Dense(FAN_IN, FAN_OUT, init=init)], seed=seed, dtype=np.dtype(dtype).name
    )
    W, b = m.get_weights()
    return W.astype(np.float64), b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init,std", [("he", np.sqrt(2 / FAN_IN)), ("normal", 0.01)])
def test_normal_inits_have_the_design_std(init, std, dtype):
    W, b = big_layer(init, dtype)
    n = W.size
    assert abs(W.std() / std - 1) < 0.01, (W.std(), std)
    assert abs(W.mean()) < 5 * std / np.sqrt(n)
    # A normal, not a uniform: about 31.7% of the mass lies beyond one std.
    assert abs(np.mean(np.abs(W) > std) - 0.3173) < 0.01
    assert np.all(b == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_xavier_is_uniform_within_the_glorot_bound(dtype):
    W, b = big_layer("xavier", dtype)
    bound = np.sqrt(6 / (FAN_IN + FAN_OUT))
    assert np.abs(W).max() <= bound * (1 + 1e-6)
    assert np.abs(W).max() > 0.999 * bound
    assert abs(W.std() / (bound / np.sqrt(3)) - 1) < 0.01
    assert abs(W.mean()) < 5 * bound / np.sqrt(3 * W.size)
    assert np.all(b == 0)


def test_zeros_init():
    W, b = big_layer("zeros")
    assert np.all(W == 0) and np.all(b == 0)


def test_same_seed_same_weights_on_both_backends_different_seed_differs():
    # Init runs in NumPy from the model's own default_rng(seed), whatever the backend.
    def build(backend, seed):
        with pycvnn.using_backend(backend):
            return pycvnn.MLP([6, 9, 4], seed=seed).get_weights()

    a, b, c = build("numpy", 7), build("cpp", 7), build("numpy", 8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    for x, y in zip(a, build("numpy", 7)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "activation,init",
    [
        ("relu", "he"),
        ("leaky_relu", "he"),
        ("tanh", "xavier"),
        ("sigmoid", "xavier"),
        ("softmax", "xavier"),
    ],
)
def test_mlp_uses_he_for_relu_family_and_xavier_otherwise(activation, init):
    sizes = [FAN_IN, FAN_OUT, 300]
    m = pycvnn.MLP(sizes, activation=activation, seed=1, dtype="float64")
    for W, (fin, fout) in zip(m.get_weights()[::2], zip(sizes[:-1], sizes[1:])):
        if init == "he":
            assert abs(W.std() / np.sqrt(2 / fin) - 1) < 0.02
        else:
            bound = np.sqrt(6 / (fin + fout))
            assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
            assert abs(W.std() / (bound / np.sqrt(3)) - 1) < 0.02


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("output", [None, "softmax", "sigmoid"])
def test_mlp_applies_activation_between_and_output_after(backend, activation, output):
    m = pycvnn.MLP([3, 5, 4, 2], activation=activation, output=output, seed=2, dtype="float64")
    X = np.random.default_rng(0).normal(size=(6, 3))
    want = hand_forward(m.get_weights(), X, [activation, activation, output])
    close(m.forward(X), want, np.float64)


# ---- weights in and out -------------------------------------------------------------------------


def test_get_weights_order_and_copies():
    d1, d2 = pycvnn.Dense(3, 4), pycvnn.Dense(4, 2)
    m = pycvnn.Sequential([d1, d2, pycvnn.Softmax()], seed=0)
    W1, b1, W2, b2 = m.get_weights()
    np.testing.assert_array_equal(W1, d1.W)
    np.testing.assert_array_equal(b1, d1.b)
    np.testing.assert_array_equal(W2, d2.W)
    np.testing.assert_array_equal(b2, d2.b)
    before = d1.W.copy()
    W1 += 100.0
    b1[:] = 5
    np.testing.assert_array_equal(d1.W, before)
    assert np.all(m.get_weights()[1] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_set_weights_copies_and_converts(dtype):
    m = pycvnn.MLP([3, 4, 2], seed=0, dtype=np.dtype(dtype).name)
    rng = np.random.default_rng(1)
    new = [rng.normal(size=w.shape) for w in m.get_weights()]  # float64 in
    m.set_weights(new)
    got = m.get_weights()
    for g, n in zip(got, new):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, n.astype(dtype))
    new[0][...] = 99.0  # the model holds its own copy
    assert not np.any(m.get_weights()[0] == 99.0)
    m.set_weights([np.ones((4, 3), int), np.zeros(4, int), np.ones((2, 4)), np.zeros(2)])
    assert np.all(m.get_weights()[0] == 1)


def test_set_weights_bad_input_names_the_argument():
    m = pycvnn.MLP([3, 4, 2], seed=0)
    good = m.get_weights()
    with pytest.raises(ValueError, match=r"weights.*4.*3"):
        m.set_weights(good[:3])
    with pytest.raises(ValueError, match=r"weights"):
        m.set_weights(good + [np.zeros(2)])
    with pytest.raises(ValueError, match=r"weights\[0\].*\(4, 3\).*\(3, 4\)"):
        m.set_weights([good[0].T] + good[1:])
    with pytest.raises(ValueError, match=r"weights\[3\]"):
        m.set_weights(good[:3] + [np.zeros((2, 1))])
    with pytest.raises(TypeError, match=r"weights\[1\]"):
        m.set_weights([good[0], np.array(["a"] * 4)] + good[2:])
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        m.set_weights(good[:2] + [np.full((2, 4), np.nan)] + good[3:])
    for g, w in zip(m.get_weights(), good):  # a failed set changes nothing
        np.testing.assert_array_equal(g, w)


# ---- forward / backward -------------------------------------------------------------------------


def two_layer(dtype, seed=0):
    return pycvnn.Sequential(
        [pycvnn.Dense(4, 5, "tanh"), pycvnn.Dense(5, 3), pycvnn.Sigmoid()],
        seed=seed,
        dtype=np.dtype(dtype).name,
    )


def hand_backprop(weights, X, dout):
    """The 2-layer net tanh -> sigmoid, by hand: (dW1, db1, dW2, db2), dX."""
    W1, b1, W2, b2 = (np.asarray(w, np.float64) for w in weights)
    X, dout = np.asarray(X, np.float64), np.asarray(dout, np.float64)
    a1 = np.tanh(X @ W1.T + b1)
    s = 1 / (1 + np.exp(-(a1 @ W2.T + b2)))
    dz2 = dout * s * (1 - s)
    dW2, db2 = dz2.T @ a1, dz2.sum(axis=0)
    dz1 = (dz2 @ W2) * (1 - a1**2)
    dW1, db1 = dz1.T @ X, dz1.sum(axis=0)
    return [dW1, db1, dW2, db2], dz1 @ W1


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_match_hand_written_backprop(backend, dtype):
    m = two_layer(dtype)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 4)).astype(dtype)
    dout = rng.normal(size=(8, 3)).astype(dtype)
    out = m.forward(X)
    assert out.shape == (8, 3) and out.dtype == dtype
    close(out, hand_forward(m.get_weights(), X, ["tanh", "sigmoid"]), dtype)
    dX = m.backward(dout)
    assert dX.shape == (8, 4) and dX.dtype == dtype
    want, want_dX = hand_backprop(m.get_weights(), X, dout)
    grads = m.gradients()
    assert [g.shape for g in grads] == [w.shape for w in m.get_weights()]
    assert all(g.dtype == dtype for g in grads)
    close_list(grads, want, dtype)
    close(dX, want_dX, dtype)


def test_backward_overwrites_and_gradients_are_copies(backend):
    m = two_layer(np.float64)
    rng = np.random.default_rng(4)
    X, dout = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    m.forward(X)
    m.backward(dout)
    g1 = m.gradients()
    g1[0][...] = 123.0
    m.forward(X)
    m.backward(dout)  # a second backward overwrites, never accumulates
    g2 = m.gradients()
    want, _ = hand_backprop(m.get_weights(), X, dout)
    close_list(g2, want, np.float64)


def test_deep_model_shapes(backend):
    layers = [
        pycvnn.Dense(6, 8),
        pycvnn.ReLU(),
        pycvnn.Dense(8, 7, "tanh"),
        pycvnn.Dense(7, 5),
        pycvnn.LeakyReLU(0.1),
        pycvnn.Dense(5, 3),
        pycvnn.Softmax(),
    ]
    m = pycvnn.Sequential(layers, seed=0)
    X = np.random.default_rng(0).random((9, 6))
    out = m.forward(X)
    assert out.shape == (9, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    dX = m.backward(np.ones_like(out))
    assert dX.shape == (9, 6)
    assert [g.shape for g in m.gradients()] == [
        (8, 6),
        (8,),
        (7, 8),
        (7,),
        (5, 7),
        (5,),
        (3, 5),
        (3,),
    ]


def test_backward_before_forward_is_an_error(backend):
    m = two_layer(np.float32)
    with pytest.raises(ValueError, match="forward"):
        m.backward(np.zeros((2, 3), np.float32))


def test_backward_bad_dout(backend):
    m = two_layer(np.float64)
    m.forward(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"dout.*\(4, 3\)"):
        m.backward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"dout.*\(4, 3\)"):
        m.backward(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="dout"):
        m.backward(np.full((4, 3), "x"))
    with pytest.raises(ValueError, match="dout"):
        m.backward(np.full((4, 3), np.inf))


@pytest.mark.parametrize("between", ["predict", "predict_classes", "evaluate"])
def test_other_calls_between_forward_and_backward_do_not_change_gradients(backend, between):
    # backward differentiates *the forward pass*; a predict or evaluate on other data in
    # between must not silently replace what it differentiates.
    m = two_layer(np.float64)
    rng = np.random.default_rng(5)
    X, X_other, dout = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    m.forward(X)
    if between == "evaluate":
        m.evaluate(X_other, rng.random((6, 3)), loss="l2")
    else:
        getattr(m, between)(X_other)
    dX = m.backward(dout)
    want, want_dX = hand_backprop(m.get_weights(), X, dout)
    close_list(m.gradients(), want, np.float64)
    close(dX, want_dX, np.float64)


def test_forward_accepts_lists_ints_and_fortran_order(backend):
    m = pycvnn.MLP([3, 4, 2], seed=0, dtype="float64")
    X = np.arange(12, dtype=np.int64).reshape(4, 3)
    want = m.forward(X.astype(np.float64))
    close(m.forward(X), want, np.float64)
    close(m.forward(X.tolist()), want, np.float64)
    close(m.forward(np.asfortranarray(X.astype(np.float64))), want, np.float64)
    close(
        m.forward(np.arange(24.0).reshape(4, 6)[:, ::2]),
        m.forward(np.arange(24.0).reshape(4, 6)[:, ::2].copy()),
        np.float64,
    )


@pytest.mark.parametrize("method", ["forward", "predict", "predict_classes"])
@pytest.mark.parametrize(
    "X,exc,pattern",
    [
        (np.zeros(3), ValueError, r"X.*\(N, 3\)"),
        (np.zeros((2, 4)), ValueError, r"X.*\(N, 3\).*\(2, 4\)"),
        (np.zeros((2, 3, 1)), ValueError, r"X"),
        (np.zeros((0, 3)), ValueError, r"X.*empty"),
        (np.array([[1.0, np.nan, 0.0]]), ValueError, r"X.*finite"),
        (np.array([[1.0, np.inf, 0.0]]), ValueError, r"X.*finite"),
        (np.array([["a", "b", "c"]]), TypeError, r"X"),
        (np.array([[1 + 1j, 0, 0]]), TypeError, r"X"),
    ],
)
def test_forward_bad_input(backend, method, X, exc, pattern):
    m = pycvnn.MLP([3, 4, 2], seed=0)
    with pytest.raises(exc, match=pattern):
        getattr(m, method)(X)


# ---- predictions --------------------------------------------------------------------------------


def test_predict_is_the_last_layer_output_and_classes_the_argmax(backend):
    m = pycvnn.MLP([4, 6, 3], output="softmax", seed=0, dtype="float64")
    X = np.random.default_rng(0).normal(size=(20, 4)) * 3
    p = m.predict(X)
    close(p, hand_forward(m.get_weights(), X, ["relu", "softmax"]), np.float64)
    np.testing.assert_array_equal(m.predict_classes(X), p.argmax(axis=1))
    assert len(set(m.predict_classes(X).tolist())) > 1  # a meaningful check, not all one class


@pytest.mark.parametrize("tail", [[pycvnn.Sigmoid()], []])
def test_predict_classes_one_output_is_a_zero_one_decision(backend, tail):
    m = pycvnn.Sequential([pycvnn.Dense(2, 1)] + tail, seed=0, dtype="float64")
    m.set_weights([np.array([[1.0, -1.0]]), np.array([0.0])])
    X = np.array([[2.0, 1.0], [1.0, 2.0], [0.5, 0.0], [0.0, 3.0]])  # z = 1, -1, 0.5, -3
    p = m.predict(X)
    assert p.shape == (4, 1)
    if tail:
        close(p[:, 0], 1 / (1 + np.exp(-np.array([1, -1, 0.5, -3.0]))), np.float64)
    else:
        close(p[:, 0], [1, -1, 0.5, -3], np.float64)
    classes = m.predict_classes(X)
    np.testing.assert_array_equal(classes, [1, 0, 1, 0])
    assert classes.shape == (4,)


# ---- fused softmax / sigmoid output ---------------------------------------------------------------


def test_softmax_output_with_cross_entropy_uses_the_fused_gradient(backend):
    # One batch-GD step on Dense -> Softmax with cross_entropy: the recorded loss is the CE of
    # the logits (not of softmax(softmax(z))), and the step is W -= lr (p - onehot)^T X / N.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), rng.integers(0, 3, 12)
    m = pycvnn.Sequential([pycvnn.Dense(4, 3), pycvnn.Softmax()], seed=1, dtype="float64")
    W, b = m.get_weights()
    z = X @ W.T + b
    ce_logits = L.cross_entropy(z, y)
    ce_twice = L.cross_entropy(np_act("softmax", z), y)
    assert abs(ce_logits - ce_twice) > 1e-3
    assert m.evaluate(X, y, loss="cross_entropy")["loss"] == pytest.approx(ce_logits, rel=1e-12)
    h = m.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=pycvnn.optim.GD(lr=0.5),
        epochs=1,
        batch_size=None,
        verbose=False,
    )
    assert h["loss"][0] == pytest.approx(ce_logits, rel=1e-12)
    dz = (np_act("softmax", z) - np.eye(3)[y]) / len(X)
    close_list(m.get_weights(), [W - 0.5 * dz.T @ X, b - 0.5 * dz.sum(axis=0)], np.float64)
    # predict still returns probabilities
    np.testing.assert_allclose(m.predict(X).sum(axis=1), 1, rtol=1e-12)


@pytest.mark.parametrize("separate", [True, False])
def test_sigmoid_output_with_binary_cross_entropy_uses_the_fused_gradient(backend, separate):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    layers = [pycvnn.Dense(3, 1), pycvnn.Sigmoid()] if separate else [pycvnn.Dense(3, 1, "sigmoid")]
    m = pycvnn.Sequential(layers, seed=2, dtype="float64")
    W, b = m.get_weights()
    z = (X @ W.T + b)[:, 0]
    bce = L.binary_cross_entropy(z, y.astype(float))
    h = m.fit(
        X, y, loss="binary_cross_entropy", optimizer="gd", epochs=1, batch_size=None, verbose=False
    )
    assert h["loss"][0] == pytest.approx(bce, rel=1e-12)
    dz = (np_act("sigmoid", z) - y) / len(X)
    close_list(
        m.get_weights(), [W - 0.01 * dz[None, :] @ X, b - 0.01 * dz.sum(keepdims=True)], np.float64
    )


def test_softmax_output_with_another_loss_keeps_the_softmax(backend):
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(7, 4)), rng.random((7, 3))
    m = pycvnn.Sequential([pycvnn.Dense(4, 3), pycvnn.Softmax()], seed=1, dtype="float64")
    p = hand_forward(m.get_weights(), X, ["softmax"])
    assert m.evaluate(X, Y, loss="l2")["loss"] == pytest.approx(L.l2(p, Y), rel=1e-12)


# ---- check_gradients ----------------------------------------------------------------------------

N, F = 6, 3


def gradcheck_case(loss, act, rng):
    """(layers, y, loss) with hidden activation `act`, inputs away from kinks."""
    hidden = [pycvnn.Dense(F, 5, act)]
    if loss == "cross_entropy":
        return hidden + [pycvnn.Dense(5, 3)], rng.integers(0, 3, N), loss
    if loss == "cross_entropy+softmax":
        return (
            hidden + [pycvnn.Dense(5, 3), pycvnn.Softmax()],
            rng.integers(0, 3, N),
            "cross_entropy",
        )
    if loss == "cross_entropy(probabilities)":
        return hidden + [pycvnn.Dense(5, 3)], rng.dirichlet(np.ones(3), N), "cross_entropy"
    if loss == "binary_cross_entropy":
        return hidden + [pycvnn.Dense(5, 1), pycvnn.Sigmoid()], rng.integers(0, 2, N), loss
    if loss == "l1":  # targets far from the outputs: no |r| = 0 kink nearby
        return hidden + [pycvnn.Dense(5, 2)], 4 + rng.random((N, 2)), loss
    if loss == "l2":
        return hidden + [pycvnn.Dense(5, 2)], rng.normal(size=(N, 2)), loss
    if loss == "huber":  # both regions: |r| ~ 0.3 (quadratic) and ~ 5 (linear), away from delta
        y = rng.normal(size=(N, 2)) * 0.1
        y[::2] += 5
        return hidden + [pycvnn.Dense(5, 2)], y, L.Huber(delta=1.0)
    if loss in ("hinge", "squared_hinge"):
        return hidden + [pycvnn.Dense(5, 3)], rng.integers(0, 3, N), loss
    if loss in ("hinge(binary)", "squared_hinge(binary)"):
        return hidden + [pycvnn.Dense(5, 1)], rng.choice([-1, 1], N), loss.split("(")[0]
    if loss == "dice":
        return hidden + [pycvnn.Dense(5, 4), pycvnn.Sigmoid()], rng.random((N, 4)), loss
    raise AssertionError(loss)


GRADCHECK_LOSSES = [
    "cross_entropy",
    "cross_entropy+softmax",
    "cross_entropy(probabilities)",
    "binary_cross_entropy",
    "l1",
    "l2",
    "huber",
    "hinge",
    "squared_hinge",
    "hinge(binary)",
    "squared_hinge(binary)",
    "dice",
]


@pytest.mark.parametrize("loss", GRADCHECK_LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_check_gradients_every_activation_and_loss(backend, act, loss):
    # The metric's floor (max(|a|, |n|, 1e-8)) turns an exact-zero gradient (e.g. hinge terms
    # cancelling) into ~1e-2 from one ulp of loss noise (~1e-10 at h = 1e-6); this data seed
    # gives no exact cancellations, so every combination is measured meaningfully.
    rng = np.random.default_rng(24)
    X = rng.normal(size=(N, F))
    layers, y, loss_arg = gradcheck_case(loss, act, rng)
    m = pycvnn.Sequential(layers, seed=3)
    before = m.get_weights()
    err = pycvnn.check_gradients(m, X, y, loss_arg)
    assert isinstance(err, float)
    assert err < 1e-5, f"{act} / {loss}: relative error {err:.2e}"
    for a, b in zip(m.get_weights(), before):  # works on a copy
        np.testing.assert_array_equal(a, b)


def test_check_gradients_catches_a_wrong_gradient(monkeypatch):
    with pycvnn.using_backend("numpy"):
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
        m = pycvnn.MLP([3, 4, 2], activation="tanh", seed=0)
        assert pycvnn.check_gradients(m, X, y, "l2") < 1e-6
        grad = R.network.LossSpec.grad
        monkeypatch.setattr(R.network.LossSpec, "grad", lambda self, p, t: 1.01 * grad(self, p, t))
        assert pycvnn.check_gradients(m, X, y, "l2") > 1e-3


# ---- constructor bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: pycvnn.Dense(0, 3), ValueError, "in_features"),
        (lambda: pycvnn.Dense(3, 2.5), ValueError, "out_features"),
        (lambda: pycvnn.Dense(3, True), ValueError, "out_features"),
        (lambda: pycvnn.Dense(3, 2, activation="swish"), ValueError, "activation.*swish"),
        (lambda: pycvnn.Dense(3, 2, init="lecun"), ValueError, "init.*lecun"),
        (lambda: pycvnn.LeakyReLU(-0.1), ValueError, "alpha"),
        (lambda: pycvnn.Sequential([]), ValueError, "layers"),
        (
            lambda: pycvnn.Sequential([pycvnn.ReLU(), pycvnn.Dense(2, 2)]),
            ValueError,
            r"layers\[0\]",
        ),
        (
            lambda: pycvnn.Sequential([pycvnn.Dense(3, 4), pycvnn.Dense(5, 2)]),
            ValueError,
            r"layers\[1\].*in_features=4",
        ),
        (lambda: pycvnn.Sequential(["dense"]), ValueError, "layers"),
        (lambda: pycvnn.Sequential([pycvnn.Dense(3, 4)], dtype="int32"), ValueError, "dtype"),
        (lambda: pycvnn.Sequential([pycvnn.Dense(3, 4)], dtype="float16"), ValueError, "dtype"),
        (lambda: pycvnn.MLP([3]), ValueError, "sizes"),
        (lambda: pycvnn.MLP([3, 2], activation="swish"), ValueError, "activation"),
        (lambda: pycvnn.MLP([3, 2], output="swish"), ValueError, "output"),
    ],
)
def test_constructor_bad_input(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_two_models_built_from_the_same_layer_objects_keep_their_own_weights(backend):
    layers = [pycvnn.Dense(3, 4, "tanh"), pycvnn.Dense(4, 2)]
    a = pycvnn.Sequential(layers, seed=0, dtype="float64")
    b = pycvnn.Sequential(layers, seed=1, dtype="float64")
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])
    close(a.predict(X), hand_forward(a.get_weights(), X, ["tanh", None]), np.float64)
    close(b.predict(X), hand_forward(b.get_weights(), X, ["tanh", None]), np.float64)
    wb = b.get_weights()
    a.set_weights([np.zeros_like(w) for w in a.get_weights()])
    assert np.all(a.predict(X) == 0)
    for x, y in zip(b.get_weights(), wb):
        np.testing.assert_array_equal(x, y)
    a.forward(X)
    a.backward(np.ones((5, 2)))
    np.testing.assert_array_equal(a.gradients()[3], [5.0, 5.0])  # db2 = sum of dout
    assert np.all(b.gradients()[3] == 0)


@pytest.mark.parametrize("seed,exc", [("abc", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_bad_seed_names_the_argument(seed, exc):
    with pytest.raises(exc, match="seed"):
        pycvnn.MLP([2, 2], seed=seed)
    with pytest.raises(exc, match="seed"):
        pycvnn.MLP([2, 2]).fit(np.ones((3, 2)), [0, 1, 1], seed=seed, verbose=False)


def test_models_accept_numpy_dtypes():
    m = pycvnn.MLP([2, 3], dtype=np.float64)
    assert m.get_weights()[0].dtype == np.float64
    assert pycvnn.MLP([2, 3]).get_weights()[0].dtype == np.float32  # float32 default


def test_arena_and_optimizer_state_start_on_cache_lines():
    # The core's AVX-512 loads and stores never split two cache lines on the arena.
    for dtype in (np.float32, np.float64):
        model = pycvnn.MLP([7, 5, 3], seed=0, dtype=dtype)
        opt = pycvnn.optim.Adam(1e-3)
        for arr in (model._params, model._grads, *opt.state(model)):
            assert arr.ctypes.data % 64 == 0 and arr.dtype == dtype and arr.flags.writeable
            assert arr.flags.c_contiguous and arr.size == model.n_params
        assert not model._grads.any() and model._params.any()


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_model_is_whole_and_independent(how):
    """Its W/b are views into its own arena (an element-wise copy of the views would leave
    them pointing nowhere the model trains), with fresh workspaces and locks."""
    import copy
    import pickle

    X, y = pycvnn.datasets.digits()
    model = pycvnn.MLP([64, 16, 10], output="softmax", seed=0)
    model.fit(X[:200], y[:200], epochs=1, verbose=False)
    twin = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    assert np.array_equal(twin.predict(X), model.predict(X))
    assert all(
        np.shares_memory(d.W, twin._params)
        for d in twin.layers
        if hasattr(d, "W") and d.W is not None
    )
    twin.fit(X[:200], y[:200], epochs=1, verbose=False)
    assert not np.array_equal(twin.predict(X), model.predict(X))
    assert twin.evaluate(X, y)["loss"] != model.evaluate(X, y)["loss"]


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_params_and_grads_are_read_only_views_of_the_arena(backend):
    with pycvnn.using_backend(backend):
        model = pycvnn.MLP([3, 4, 2], seed=0)
        x = np.random.default_rng(0).standard_normal((5, 3))
        model.forward(x)
        model.backward(np.ones((5, 2)))
        for view, arena in ((model.params, model._params), (model.grads, model._grads)):
            assert view.shape == (model.n_params,) and not view.flags.writeable
            with pytest.raises(ValueError):
                view[0] = 1.0
            np.testing.assert_array_equal(view, arena)
            assert np.shares_memory(view, arena)
        assert np.any(model.grads != 0)
        before = model.params.copy()
        model.fit(x, np.array([0, 1, 0, 1, 1]), epochs=1, verbose=False)
        assert not np.array_equal(model.params, before)  # the view follows the arena
