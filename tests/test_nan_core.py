"""NaN and Inf propagate through every core kernel as through its NumPy twin's formula, so a
diverging computation always shows: relu(NaN) = NaN, a loss with a NaN prediction is NaN,
and fit at an absurd learning rate either raises TrainingDiverged or reports a true loss."""

import itertools
import warnings

import numpy as np
import pytest
from nethelpers import ACTIVATION_NAMES

import pycvnn
from pycvnn import _core, optim
from pycvnn import reference as R

DTYPES = [np.float32, np.float64]
rng = np.random.default_rng(7)


def u(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape)


N, C = 5, 4
IDS = np.array([0, 3, 1, 2, 3])
PROBS = u(N, C, lo=0.05, hi=0.95)
SIGNS = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
X3, W3, B3 = u(N, 3), u(C, 3), u(C)
A_RELU = np.maximum(u(N, C), 0)
A_RELU[0, 0] = 1.0  # a unit that is on: a NaN dout there must come through

# name -> (kernel, args, positions of the float arrays a special value goes into)
CASES = {
    "sigmoid_forward": ("sigmoid_forward", (u(N, C),), [0]),
    "sigmoid_backward": ("sigmoid_backward", (u(N, C), u(N, C)), [0, 1]),
    "tanh_forward": ("tanh_forward", (u(N, C),), [0]),
    "tanh_backward": ("tanh_backward", (u(N, C), u(N, C)), [0, 1]),
    "relu_forward": ("relu_forward", (u(N, C),), [0]),
    "relu_backward": ("relu_backward", (u(N, C), u(N, C)), [0, 1]),
    "leaky_relu_forward": ("leaky_relu_forward", (u(N, C),), [0]),
    "leaky_relu_backward": ("leaky_relu_backward", (u(N, C), u(N, C)), [0, 1]),
    "softmax_forward": ("softmax_forward", (u(N, C),), [0]),
    "softmax_backward": ("softmax_backward", (u(N, C), u(N, C)), [0, 1]),
    "l1_forward": ("l1_forward", (u(N, C), u(N, C), "none"), [0, 1]),
    "l1_backward": ("l1_backward", (u(N, C), u(N, C)), [0, 1]),
    "l2_forward": ("l2_forward", (u(N, C), u(N, C), "none"), [0, 1]),
    "l2_backward": ("l2_backward", (u(N, C), u(N, C)), [0, 1]),
    "huber_forward": ("huber_forward", (u(N, C), u(N, C), 0.5, "none"), [0, 1]),
    "huber_backward": ("huber_backward", (u(N, C), u(N, C), 0.5), [0, 1]),
    "ce_forward_ids": ("cross_entropy_forward", (u(N, C), IDS, True, "none"), [0]),
    "ce_backward_ids": ("cross_entropy_backward", (u(N, C), IDS), [0]),
    "ce_forward_soft": ("cross_entropy_forward", (u(N, C), PROBS, True, "none"), [0, 1]),
    "ce_backward_soft": ("cross_entropy_backward", (u(N, C), PROBS), [0, 1]),
    "ce_forward_probs_ids": ("cross_entropy_forward", (PROBS, IDS, False, "none"), [0]),
    "ce_backward_probs_ids": ("cross_entropy_backward", (PROBS, IDS, False), [0]),
    "ce_forward_probs_soft": ("cross_entropy_forward", (PROBS, PROBS[::-1], False, "none"), [0, 1]),
    "ce_backward_probs_soft": ("cross_entropy_backward", (PROBS, PROBS[::-1], False), [0, 1]),
    "bce_forward": ("binary_cross_entropy_forward", (u(N), PROBS[:, 0], True, "none"), [0]),
    "bce_backward": ("binary_cross_entropy_backward", (u(N), PROBS[:, 0]), [0]),
    "bce_forward_probs": (
        "binary_cross_entropy_forward",
        (PROBS[:, 1], PROBS[:, 0], False, "none"),
        [0],
    ),
    "bce_backward_probs": ("binary_cross_entropy_backward", (PROBS[:, 1], PROBS[:, 0], False), [0]),
    "hinge_forward": ("hinge_forward", (u(N), SIGNS, "none"), [0]),
    "hinge_backward": ("hinge_backward", (u(N), SIGNS), [0]),
    "hinge_forward_mc": ("hinge_forward", (u(N, C), IDS, "none"), [0]),
    "hinge_backward_mc": ("hinge_backward", (u(N, C), IDS), [0]),
    "squared_hinge_forward": ("squared_hinge_forward", (u(N), SIGNS, "none"), [0]),
    "squared_hinge_backward": ("squared_hinge_backward", (u(N), SIGNS), [0]),
    "squared_hinge_forward_mc": ("squared_hinge_forward", (u(N, C), IDS, "none"), [0]),
    "squared_hinge_backward_mc": ("squared_hinge_backward", (u(N, C), IDS), [0]),
    "dice_forward": ("dice_forward", (PROBS, PROBS[::-1], 1e-6, "none"), [0, 1]),
    "dice_backward": ("dice_backward", (PROBS, PROBS[::-1]), [0, 1]),
    "dense_forward_relu": ("dense_forward", (X3, W3, B3, "relu"), [0, 1, 2]),
    "dense_forward_leaky": ("dense_forward", (X3, W3, B3, "leaky_relu"), [0, 1, 2]),
    "dense_forward_softmax": ("dense_forward", (X3, W3, B3, "softmax"), [0, 1, 2]),
    "dense_backward_relu": ("dense_backward", (u(N, C), X3, W3, A_RELU, "relu"), [0, 1, 2, 3]),
    "dense_backward_leaky": (
        "dense_backward",
        (u(N, C), X3, W3, u(N, C), "leaky_relu"),
        [0, 1, 2, 3],
    ),
    "matmul": ("matmul", (u(N, 3), u(3, C)), [0, 1]),
    "gd_update": ("gd_update", (u(40), u(40), 0.1), [0, 1]),
    "momentum_update": ("momentum_update", (u(40), u(40), u(40), 0.1), [0, 1, 2]),
    "rmsprop_update": ("rmsprop_update", (u(40), u(40), u(40, lo=0), 0.1), [0, 1, 2]),
    "adam_update": (
        "adam_update",
        (u(40), u(40), u(40), u(40, lo=0), 0.1, 0.9, 0.999, 1e-8, 3),
        [0, 1, 2, 3],
    ),
    "adamw_update": (
        "adamw_update",
        (u(40), u(40), u(40), u(40, lo=0), 0.1, 0.9, 0.999, 1e-8, 3, 0.1),
        [0, 1, 2, 3],
    ),
    "add_weight_decay": ("add_weight_decay", (u(40), u(40), 0.1), [0, 1]),
    "global_norm": ("global_norm", (u(40),), [0]),
    "clip_by_global_norm": ("clip_by_global_norm", (u(40), 0.5), [0]),
}


def poisoned(args, pos, value, where, dtype):
    """Copies of args in dtype (float arrays only), with `value` at flat index `where` of args[pos]."""
    out = [
        np.array(a, dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args
    ]
    out[pos] = out[pos].copy()
    out[pos].flat[where % out[pos].size] = value
    return out


def outputs(module, kernel, args):
    """The result and every array argument after the call (the in-place kernels' results)."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's invalid-value warnings
        result = getattr(module, kernel)(*args)
    parts = list(result) if isinstance(result, tuple) else [] if result is None else [result]
    return [
        np.asarray(p, np.float64) for p in parts + [a for a in args if isinstance(a, np.ndarray)]
    ]


SPECIAL = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("special", list(SPECIAL))
@pytest.mark.parametrize("case", list(CASES))
def test_special_values_give_what_the_reference_gives(case, special, dtype):
    # NaN where the twin has NaN, the same infinities, the same finite values elsewhere; an
    # index in the AVX-512 body (1) and one in the scalar tail (38) for the optimizers.
    kernel, args, positions = CASES[case]
    for pos, where in itertools.product(positions, (1, 38)):
        call = poisoned(args, pos, SPECIAL[special], where, dtype)
        got, want = outputs(_core, kernel, call), outputs(R, kernel, call)
        for k, (g, w) in enumerate(zip(got, want)):
            where_msg = f"{kernel} with {special} in argument {pos}, output {k}"
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=where_msg)
            np.testing.assert_allclose(
                g,
                w,
                rtol=1e-4 if dtype == np.float32 else 1e-10,
                atol=1e-6,
                equal_nan=True,
                err_msg=where_msg,
            )


# Kernel cases where a NaN in the first argument must reach the output (the first output, or
# the in-place buffer), checked on both backends so the twin cannot drift back to dropping it.
MUST_BE_NAN = [c for c in CASES if CASES[c][0] not in ("add_weight_decay",)]


@pytest.mark.parametrize("backend", [_core, R], ids=["cpp", "numpy"])
@pytest.mark.parametrize("case", MUST_BE_NAN)
def test_nan_in_the_first_array_reaches_the_output(case, backend):
    kernel, args, _ = CASES[case]
    call = poisoned(args, 0, np.nan, 0, np.float32)  # row 0's label is class 0
    got = outputs(backend, kernel, call)[0]
    assert np.isnan(got).any(), f"{kernel}: a NaN input gave {got}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_named_cases(dtype):
    nan = dtype(np.nan)
    z = np.array([nan, -1, 0, 2], dtype)
    assert np.isnan(_core.relu_forward(z)[0]) and list(_core.relu_forward(z)[1:]) == [0, 0, 2]
    dz = _core.relu_backward(z, np.ones(4, dtype))
    assert np.isnan(dz[0]) and list(dz[1:]) == [0, 0, 1]  # relu'(0) = 0 still
    dz = _core.leaky_relu_backward(z, np.ones(4, dtype), alpha=0.1)
    assert np.isnan(dz[0]) and np.allclose(dz[1:], [0.1, 0.1, 1])
    s = _core.softmax_forward(np.array([[1, nan, 2], [1, 2, 3]], dtype))
    assert np.isnan(s[0]).all() and np.isfinite(s[1]).all()
    pred = np.array([[0.2, 0.8], [nan, 0.5]], dtype)
    assert np.isnan(_core.dice_forward(pred, np.ones((2, 2), dtype)))
    assert np.isnan(_core.dice_backward(pred, np.ones((2, 2), dtype))[1]).all()
    for loss in ("l1", "huber", "l2"):
        assert np.isnan(getattr(_core, f"{loss}_forward")(pred, np.zeros((2, 2), dtype)))
        assert np.isnan(getattr(_core, f"{loss}_backward")(pred, np.zeros((2, 2), dtype))[1, 0])
    assert np.isnan(_core.hinge_forward(np.array([nan, 1], dtype), np.array([1, -1], dtype)))
    assert np.isnan(_core.hinge_backward(np.array([nan, 1], dtype), np.array([1, -1], dtype))[0])
    assert np.isnan(_core.cross_entropy_forward(np.array([[0, nan, 1]], dtype), np.array([0])))
    g = np.array([1, nan, 2], dtype)
    assert np.isnan(_core.global_norm(g)) and np.isnan(_core.clip_by_global_norm(g, 1.0))
    # A -inf logit is a zero probability: the loss of the other class is finite, in both.
    z = np.array([[0, -np.inf, 1]], dtype)
    for m in (_core, R):
        assert m.cross_entropy_forward(z, np.array([0])) == pytest.approx(np.log1p(np.e))


def test_float32_adam_handles_infinite_and_negative_second_moments():
    # The AVX-512 body estimates 1/sqrt on a clamped copy: +Inf must still give 0 (m finite)
    # or NaN (m infinite), a negative v NaN, exactly as sqrt and division do.
    n = 48
    for g_at, v_at in ((np.inf, 0.0), (3e19, 0.0), (0.5, -1.0), (0.5, np.inf)):
        want = None
        for m in (_core, R):
            p, g, m1, v = (
                np.ones(n, np.float32),
                np.ones(n, np.float32),
                np.zeros(n, np.float32),
                np.zeros(n, np.float32),
            )
            g[[3, 40]], v[[3, 40]] = g_at, v_at
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                m.adam_update(p, g, m1, v, 0.1, 0.9, 0.999, 1e-8, 1)
            if want is None:
                want = p
            else:
                np.testing.assert_array_equal(np.isnan(p), np.isnan(want))
                np.testing.assert_allclose(p, want, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_gates_and_l1_sign_at_every_length_and_lane(dtype):
    # The AVX-512 gates run whole vectors and then a masked tail: every length up to 2.5
    # vectors, each special value in turn in every lane of z and of dout, against the twin.
    info = np.finfo(dtype)
    special = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, info.tiny, -info.tiny, info.max, -info.max], dtype
    )
    for n in range(1, 41):
        z, dout = u(n).astype(dtype), u(n).astype(dtype)
        z[::2] = np.resize(np.roll(special, n), z[::2].size)
        dout[1::3] = np.resize(special[::-1], dout[1::3].size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for got, want in (
                (_core.relu_backward(z, dout), R.relu_backward(z, dout)),
                (
                    _core.leaky_relu_backward(z, dout, alpha=0.1),
                    R.leaky_relu_backward(z, dout, alpha=0.1),
                ),
            ):
                np.testing.assert_array_equal(got, want, err_msg=f"n={n}")
            got, want = _core.l1_backward(z, dout), R.l1_backward(z, dout)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"n={n}")
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=f"n={n}")


@pytest.mark.parametrize("backend", [_core, R], ids=["cpp", "numpy"])
@pytest.mark.parametrize("act", [a for a in ["none", *ACTIVATION_NAMES] if a != "softmax"])
@pytest.mark.parametrize("loss", ["cross_entropy", "hinge", "l2", "dice"])
def test_train_epoch_on_nan_input_reports_nan(backend, act, loss):
    net = backend.Network([("dense", 4, 8, act, 0.01), ("dense", 8, 3, "none", 0.0)])
    p = np.random.default_rng(0).standard_normal(net.n_params).astype(np.float32)
    before = p.copy()
    g, s1, s2 = (np.zeros_like(p) for _ in range(3))
    x = np.full((10, 4), np.nan, np.float32)
    y = (
        np.arange(10) % 3
        if loss in ("cross_entropy", "hinge")
        else np.full((10, 3), 0.5, np.float32)
    )
    losses = net.train_epoch(
        p,
        g,
        s1,
        s2,
        x,
        y,
        np.arange(10),
        4,
        0.1,
        0,
        backend.LossSpec(loss),
        backend.UpdateRule("adam"),
    )
    assert len(losses) == 1 and np.isnan(losses[0])
    np.testing.assert_array_equal(p, before)  # the non-finite batch's update is not applied


# ---- fit at absurd learning rates ------------------------------------------------------------

OPTIMIZERS = {
    "gd": optim.GD,
    "momentum": optim.Momentum,
    "rmsprop": optim.RMSProp,
    "adam": optim.Adam,
}
LOSSES = {
    "cross_entropy": None,
    "l2": None,
    "l1": None,
    "huber": None,
    "hinge": None,
    "dice": "softmax",
}


@pytest.fixture(scope="module")
def digits():
    X, y = pycvnn.datasets.digits()
    return X, y, np.eye(10, dtype=np.float32)[y]


@pytest.mark.parametrize("lr", [1e3, 1e6])
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_huge_lr_diverges_or_reports_the_true_loss(digits, opt, loss, lr):
    # No silently swallowed NaN: either the divergence is raised (the last finite weights
    # restored), or every epoch's loss and every final weight is finite and the core's loss on
    # the final weights is the NumPy twin's. (The last epoch's loss is the mean over its batches
    # while the weights still move, so it equals the final weights' loss only once they stall.)
    X, y, onehot = digits
    target = y if loss in ("cross_entropy", "hinge") else onehot
    model = pycvnn.MLP([64, 32, 10], output=LOSSES[loss], seed=0)
    try:
        history = model.fit(
            X,
            target,
            loss=loss,
            optimizer=OPTIMIZERS[opt](lr=lr),
            epochs=5,
            batch_size=64,
            seed=0,
            verbose=False,
        )
    except pycvnn.TrainingDiverged:
        assert all(np.isfinite(w).all() for w in model.get_weights())
        return
    assert np.all(np.isfinite(history["loss"]))
    assert all(np.isfinite(w).all() for w in model.get_weights())
    core_loss = model.evaluate(X, target, loss=loss)["loss"]
    with pycvnn.using_backend("numpy"):
        reference_loss = model.evaluate(X, target, loss=loss)["loss"]
    assert np.isfinite(core_loss) and core_loss == pytest.approx(reference_loss, rel=1e-4)
