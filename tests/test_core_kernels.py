"""The C++ core on its own: hand-computed values, stability, finite differences, layouts,
optimizer steps against numpy written here, every binding's bad-input errors, and the
headers compiling standalone. (tests/test_cross_backend.py compares it to the reference.)"""

import functools
import math
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from kernelhelpers import optimizer_cases
from nethelpers import ACTIVATION_NAMES, activation_kwargs

from pycvnn import _core, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}
CPP = pathlib.Path(__file__).resolve().parents[1] / "src" / "cpp"


def rng(seed=0):
    return np.random.default_rng(seed)


def close(got, want, dtype, **kw):
    assert isinstance(got, np.ndarray) and got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, np.asarray(want), **{**TOL[dtype], **kw})


# ---- activations: hand values, stability, accuracy of the vectorised exp/tanh ----------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_1_2_3(dtype):
    out = _core.softmax_forward(np.array([1, 2, 3], dtype))
    close(out, [0.09003057317038046, 0.24472847105479764, 0.6652409557748218], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_at_plus_minus_1000(dtype):
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype)
    with np.errstate(all="raise"):
        s = _core.sigmoid_forward(z)
        t = _core.tanh_forward(z)
        sm = _core.softmax_forward(
            np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], dtype)
        )
        ds = _core.sigmoid_backward(z, np.ones_like(z))
    for a in (s, t, sm, ds):
        assert np.all(np.isfinite(a))
    close(s[[0, 2, 4]], [0.0, 0.5, 1.0], dtype)
    close(t, [-1, -1, 0, 1, 1], dtype)
    close(sm, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], dtype)
    close(ds[[0, 2, 4]], [0.0, 0.25, 0.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_based_activations_match_numpy_over_a_wide_range(dtype):
    # The core uses its own vectorisable exp/tanh (src/cpp/vmath.hpp): check them densely,
    # across the polynomial/exp switch of tanh at |z| = 0.625 and tiny |z|.
    z = np.concatenate(
        [np.linspace(-60, 60, 20001), np.linspace(-1, 1, 2001), [1e-30, -1e-8, 0.625]]
    )
    z = z.astype(dtype)
    zd = z.astype(np.float64)
    rtol = 3e-7 if dtype == np.float32 else 1e-15
    sig = np.where(zd >= 0, 1 / (1 + np.exp(-zd)), np.exp(zd) / (1 + np.exp(zd)))
    keep = sig > 1e-30  # below that the float core returns 0 or a flushed denormal
    np.testing.assert_allclose(_core.sigmoid_forward(z)[keep], sig[keep], rtol=rtol, atol=0)
    np.testing.assert_allclose(_core.tanh_forward(z), np.tanh(zd), rtol=rtol, atol=1e-45)
    rows = z[: 20001 - 1].reshape(-1, 80)
    e = np.exp(rows.astype(np.float64) - rows.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        _core.softmax_forward(rows), e / e.sum(axis=1, keepdims=True), rtol=4 * rtol, atol=1e-30
    )


def test_activation_derivatives_at_zero():
    z = np.array([0.0, -1.0, 2.0])
    d = np.array([3.0, 3.0, 3.0])
    np.testing.assert_array_equal(_core.relu_backward(z, d), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(_core.leaky_relu_backward(z, d, alpha=0.25), [0.75, 0.75, 3.0])
    np.testing.assert_array_equal(_core.leaky_relu_forward(z, alpha=0.25), [0.0, -0.25, 2.0])
    np.testing.assert_array_equal(_core.relu_forward(z), [0.0, 0.0, 2.0])


# ---- finite differences (float64, derivatives taken through the core's own forward) --------


def numgrad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def away_from_zero(a, gap=0.05):
    return np.where(np.abs(a) < gap, gap * np.sign(a + 1e-12), a)


@pytest.mark.parametrize("act,kw", [(a, activation_kwargs(a, 0.2)) for a in ACTIVATION_NAMES])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (7, 13), (2, 3, 4)])
def test_activation_backward_matches_finite_differences(act, kw, shape):
    r = rng(1)
    z = away_from_zero(r.standard_normal(shape) * 2)
    dout = r.standard_normal(shape)
    fwd = getattr(_core, f"{act}_forward")
    num = numgrad(lambda v: float(np.sum(dout * fwd(v, **kw))), z)
    got = getattr(_core, f"{act}_backward")(z, dout, **kw)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


def loss_cases():
    r = rng(2)
    logits = r.standard_normal((7, 5)) * 2
    probs = np.exp(0.3 * logits) / np.exp(0.3 * logits).sum(1, keepdims=True)  # FD needs h << p
    ids = r.integers(0, 5, 7)
    soft = r.dirichlet(np.ones(5), 7)
    bx = r.standard_normal(9) * 3
    bt = r.uniform(0, 1, 9)
    ypm = r.choice([-1.0, 1.0], 9)
    return [
        ("l1", away_from_zero(r.standard_normal((7, 13))), r.standard_normal((7, 13)) * 0, {}),
        ("l2", r.standard_normal((7, 13)), r.standard_normal((7, 13)), {}),
        ("huber", r.standard_normal((7, 13)) * 2, r.standard_normal((7, 13)), {"delta": 0.7}),
        ("cross_entropy", logits, ids, {}),
        ("cross_entropy", logits, soft, {}),
        ("cross_entropy", logits, soft * 2.5, {}),  # unnormalised soft target: p sum(t) - t
        ("cross_entropy", probs, ids, {"from_logits": False}),
        ("cross_entropy", probs, soft, {"from_logits": False}),
        ("binary_cross_entropy", bx, bt, {}),
        ("binary_cross_entropy", bx.reshape(9, 1), bt.reshape(9, 1), {}),
        ("binary_cross_entropy", r.uniform(0.05, 0.95, 9), bt, {"from_logits": False}),
        ("hinge", bx, ypm, {}),
        ("hinge", logits, ids, {}),
        ("squared_hinge", bx, ypm, {}),
        ("squared_hinge", logits, ids, {}),
        (
            "dice",
            r.uniform(0, 1, (3, 4, 5)),
            (r.uniform(0, 1, (3, 4, 5)) > 0.5) * 1.0,
            {"smooth": 1e-6},
        ),
        ("dice", r.uniform(0, 1, (2, 7)), (r.uniform(0, 1, (2, 7)) > 0.5) * 1.0, {"smooth": 1.0}),
    ]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", range(len(loss_cases())))
def test_loss_backward_matches_finite_differences(case, reduction):
    name, pred, target, kw = loss_cases()[case]
    fwd = getattr(_core, f"{name}_forward")

    def value(p):
        v = fwd(p, target, reduction=reduction, **kw)
        return float(np.sum(v))  # "none": the gradient is that of the sum

    got = getattr(_core, f"{name}_backward")(pred, target, reduction=reduction, **kw)
    assert got.shape == pred.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, numgrad(value, pred), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("act", ["none", *ACTIVATION_NAMES])
@pytest.mark.parametrize("n,fin,fout", [(1, 1, 1), (1, 4, 3), (7, 13, 5)])
def test_dense_backward_matches_finite_differences(act, n, fin, fout):
    r = rng(3)
    x = r.standard_normal((n, fin))
    w = r.standard_normal((fout, fin)) / np.sqrt(fin)
    b = r.standard_normal(fout) * 0.5
    dout = r.standard_normal((n, fout))
    kw = {"activation": act, "alpha": 0.2}
    a = _core.dense_forward(x, w, b, **kw)
    dx, dw, db = _core.dense_backward(dout, x, w, a, z=x @ w.T + b, **kw)

    def loss(x_, w_, b_):
        return float(np.sum(dout * _core.dense_forward(x_, w_, b_, **kw)))

    np.testing.assert_allclose(dx, numgrad(lambda v: loss(v, w, b), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, numgrad(lambda v: loss(x, v, b), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numgrad(lambda v: loss(x, w, v), b), rtol=1e-6, atol=1e-8)


# ---- losses by hand ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_both_branches(dtype):
    pred, target = np.array([0.5, -3.0, 1.0], dtype), np.zeros(3, dtype)
    close(_core.huber_forward(pred, target, delta=1.0, reduction="none"), [0.125, 2.5, 0.5], dtype)
    assert _core.huber_forward(pred, target, reduction="sum") == pytest.approx(3.125)
    close(_core.huber_backward(pred, target, reduction="sum"), [0.5, -1.0, 1.0], dtype)
    close(_core.huber_backward(pred, target, reduction="mean"), [0.5 / 3, -1 / 3, 1 / 3], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_l2_by_hand(dtype):
    p, t = np.array([[1.0, 2.0], [3.0, 3.0]], dtype), np.array([[0.0, 4.0], [3.0, 1.0]], dtype)
    assert _core.l1_forward(p, t) == pytest.approx(5 / 4)
    assert _core.l2_forward(p, t, reduction="sum") == pytest.approx(9)
    close(_core.l1_backward(p, t, reduction="sum"), [[1, -1], [0, 1]], dtype)  # 0 at the kink
    close(_core.l2_backward(p, t), [[0.5, -1], [0, 1]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_by_hand_and_at_1000(dtype):
    z = np.array([[1.0, 2.0, 3.0]], dtype)
    assert _core.cross_entropy_forward(z, [2]) == pytest.approx(0.40760596444438, rel=1e-6)
    # class ids and the equivalent one-hot probability target agree, value and gradient
    onehot = np.array([[0, 0, 1]], dtype)
    assert _core.cross_entropy_forward(z, onehot) == pytest.approx(
        _core.cross_entropy_forward(z, [2])
    )
    close(_core.cross_entropy_backward(z, [2]), _core.softmax_forward(z) - onehot, dtype)
    close(_core.cross_entropy_backward(z, onehot), _core.softmax_forward(z) - onehot, dtype)
    big = np.array([[1000.0, -1000.0], [0.0, 1000.0]], dtype)
    with np.errstate(all="raise"):
        v = _core.cross_entropy_forward(big, [1, 1], reduction="none")
        g = _core.cross_entropy_backward(big, [1, 1], reduction="sum")
    close(v, [2000.0, 0.0], dtype)
    close(g, [[1, -1], [0, 0]], dtype)
    p = np.array([[0.2, 0.8], [0.0, 1.0]], dtype)
    eps = 1e-7 if dtype == np.float32 else 1e-12
    v = _core.cross_entropy_forward(p, [1, 0], from_logits=False, reduction="none")
    close(v, [-np.log(0.8), -np.log(eps)], dtype, rtol=1e-6)
    close(
        _core.cross_entropy_backward(p, [1, 0], from_logits=False, reduction="sum"),
        [[0, -1 / 0.8], [0, 0]],
        dtype,
        rtol=1e-6,
    )  # 0 where p was clipped


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_by_hand_and_at_1000(dtype):
    x = np.array([0.0, 1000.0, -1000.0, 1000.0], dtype)
    t = np.array([1.0, 0.0, 1.0, 1.0], dtype)
    with np.errstate(all="raise"):
        v = _core.binary_cross_entropy_forward(x, t, reduction="none")
        g = _core.binary_cross_entropy_backward(x, t, reduction="sum")
    close(v, [np.log(2), 1000, 1000, 0], dtype)
    close(g, [-0.5, 1, -1, 0], dtype)
    p = np.array([0.25, 0.0, 1.0], dtype)
    t = np.array([1.0, 1.0, 0.0], dtype)
    eps = 1e-7 if dtype == np.float32 else 1e-12
    v = _core.binary_cross_entropy_forward(p, t, from_logits=False, reduction="none")
    assert np.all(np.isfinite(v))
    close(v[:1], [-np.log(0.25)], dtype)
    hi = np.array(1 - eps, dtype)  # the upper clip, 1 - eps rounded to the dtype
    np.testing.assert_allclose(v[1:], [-np.log(np.array(eps, dtype)), -np.log1p(-hi)], rtol=1e-5)
    close(
        _core.binary_cross_entropy_backward(p, t, from_logits=False, reduction="sum"),
        [(0.25 - 1) / (0.25 * 0.75), 0, 0],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge_multiclass_by_hand(dtype):
    s = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]], dtype)
    y = np.array([0, 0], np.int32)  # any integer dtype
    # sample 0: j=1: 1 - 1 + 2 = 2; j=2: 1 - 1 + 0.5 = 0.5. sample 1: margins -2, -2 -> 0.
    close(_core.hinge_forward(s, y, reduction="none"), [2.5, 0.0], dtype)
    close(_core.squared_hinge_forward(s, y, reduction="none"), [4.25, 0.0], dtype)
    close(_core.hinge_backward(s, y, reduction="sum"), [[-2, 1, 1], [0, 0, 0]], dtype)
    close(_core.squared_hinge_backward(s, y, reduction="sum"), [[-5, 4, 1], [0, 0, 0]], dtype)
    assert _core.hinge_forward(s, y) == pytest.approx(1.25)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge_binary_by_hand_and_kink(dtype):
    s = np.array([0.5, -2.0, 1.0, 3.0], dtype)
    y = np.array([1, 1, 1, -1], dtype)
    close(_core.hinge_forward(s, y, reduction="none"), [0.5, 3.0, 0.0, 4.0], dtype)
    close(_core.squared_hinge_forward(s, y, reduction="none"), [0.25, 9.0, 0.0, 16.0], dtype)
    # margin exactly 0 at s = 1, y = 1: subgradient 0
    close(_core.hinge_backward(s, y, reduction="sum"), [-1, -1, 0, 1], dtype)
    close(_core.squared_hinge_backward(s, y, reduction="sum"), [-1, -6, 0, 8], dtype)
    close(
        _core.hinge_backward(s.reshape(4, 1), y.reshape(4, 1), reduction="sum"),
        [[-1], [-1], [0], [1]],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_dice_of_two_small_masks(dtype):
    p = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], dtype)
    g = np.array([[[1, 0], [1, 0]], [[0, 0], [0, 0]]], dtype)
    # sample 0: 1 - (2*1 + s) / (2 + 2 + s) ~ 0.5; sample 1 (both empty): 1 - s/s = 0
    v = _core.dice_forward(p, g, smooth=1e-6, reduction="none")
    close(v, [1 - (2 + 1e-6) / (4 + 1e-6), 0.0], dtype)
    # smooth = 0 and an all-zero sample: defined as loss 0, gradient 0 (no NaN)
    v0 = _core.dice_forward(p, g, smooth=0.0, reduction="none")
    g0 = _core.dice_backward(p, g, smooth=0.0, reduction="sum")
    close(v0, [0.5, 0.0], dtype)
    # d/dp_k = ((2I + s) - 2 g_k U) / U^2 with I = 1, U = 4
    close(g0, [[[(2 - 8) / 16, 2 / 16], [(2 - 8) / 16, 2 / 16]], [[0, 0], [0, 0]]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_are_consistent_and_floats(dtype):
    r = rng(4)
    p, t = r.standard_normal((7, 13)).astype(dtype), r.standard_normal((7, 13)).astype(dtype)
    none = _core.l2_forward(p, t, reduction="none")
    total = _core.l2_forward(p, t, reduction="sum")
    mean = _core.l2_forward(p, t, reduction="mean")
    assert type(total) is float and type(mean) is float
    assert total == pytest.approx(float(np.sum(none, dtype=np.float64)), rel=1e-6)
    assert mean == pytest.approx(total / p.size, rel=1e-12)
    ids = r.integers(0, 13, 7)
    per = _core.cross_entropy_forward(p, ids, reduction="none")
    assert per.shape == (7,) and per.dtype == dtype
    assert _core.cross_entropy_forward(p, ids) == pytest.approx(
        float(per.astype(np.float64).mean()), rel=1e-6
    )


def test_loss_sums_accumulate_in_double():
    # 2^24 + many ones is where a float32 running sum stops moving.
    n = 1 << 21
    pred = np.full(n, 1.0, np.float32)
    assert _core.l1_forward(pred, np.zeros_like(pred), reduction="sum") == float(n)
    assert _core.global_norm(np.full(n, 3.0, np.float32)) == pytest.approx(
        3.0 * np.sqrt(n), rel=1e-12
    )


# ---- dense ---------------------------------------------------------------------------------

ACT_NUMPY = {
    "none": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
    "softmax": lambda z: (
        np.exp(z - z.max(1, keepdims=True))
        / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    ),
    "gelu": lambda z: 0.5 * z * np.vectorize(math.erfc)(-z / math.sqrt(2)),
    "softplus": lambda z: np.logaddexp(z, 0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["none", *ACTIVATION_NAMES])
# (24, 100, 10): a few rows into <= 16 outputs with k >= 64 go to OpenBLAS (gemm.cpp), the
# bias written first and the activation a pass after
@pytest.mark.parametrize("n,fin,fout", [(1, 3, 2), (7, 13, 5), (33, 64, 17), (24, 100, 10)])
def test_dense_forward_matches_numpy(act, n, fin, fout, dtype):
    r = rng(5)
    x = r.standard_normal((n, fin)).astype(dtype)
    w = r.standard_normal((fout, fin)).astype(dtype) / np.sqrt(fin).astype(dtype)
    b = r.standard_normal(fout).astype(dtype)
    want = ACT_NUMPY[act](x.astype(np.float64) @ w.astype(np.float64).T + b)
    close(
        _core.dense_forward(x, w, b, activation=act, alpha=0.2),
        want,
        dtype,
        rtol=1e-5 if dtype == np.float32 else 1e-12,
        atol=1e-5 if dtype == np.float32 else 1e-12,
    )


# ---- dtypes and layouts ---------------------------------------------------------------------


def test_dtype_rule():
    z = np.array([[1, -2, 3]], np.int64)
    assert _core.sigmoid_forward(z).dtype == np.float32
    assert _core.relu_forward(np.array([True, False])).dtype == np.float32
    assert _core.tanh_forward(np.array([0.5], np.float16)).dtype == np.float32
    assert _core.sigmoid_forward(z.astype(np.float64)).dtype == np.float64
    # the second array follows the first's dtype
    assert _core.l2_backward(np.ones(3, np.float32), np.ones(3, np.float64)).dtype == np.float32
    assert _core.l2_backward(np.ones(3, np.float64), np.ones(3, np.int8)).dtype == np.float64
    assert _core.relu_forward([1.0, -1.0]).tolist() == [1.0, 0.0]  # array-likes are accepted
    assert _core.softmax_forward(np.array(3.0).reshape(1)).tolist() == [1.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_fortran_inputs_are_copied(dtype):
    r = rng(6)
    big = r.standard_normal((14, 26)).astype(dtype)
    strided = big[::2, ::2]  # (7, 13), non-contiguous
    fortran = np.asfortranarray(strided)
    c = np.ascontiguousarray(strided)
    ids = np.arange(7) % 13
    for f, args in [
        (_core.softmax_forward, lambda z: (z,)),
        (_core.tanh_backward, lambda z: (z, z.T.copy().T)),
        (_core.l1_forward, lambda z: (z, z[::-1], "none")),
        (_core.cross_entropy_backward, lambda z: (z, ids)),
        (_core.hinge_forward, lambda z: (z, ids, "none")),
        (_core.dice_forward, lambda z: (np.abs(z), np.abs(z[::-1]), 1e-6, "none")),
        (_core.matmul, lambda z: (z, z, False, True)),
    ]:
        want = f(*args(c))
        for z in (strided, fortran):
            np.testing.assert_array_equal(f(*args(z)), want)
    w = big[:10:2, 1::2]  # (5, 13) non-contiguous weights
    b = big[0, :5]
    want = _core.dense_forward(c, np.ascontiguousarray(w), np.ascontiguousarray(b), "tanh")
    np.testing.assert_array_equal(
        _core.dense_forward(fortran, np.asfortranarray(w), b, "tanh"), want
    )


# ---- optimizers: against a numpy step written here ------------------------------------------


def numpy_step(name, p, g, state, t, kw):
    p, g, state = p.copy(), g.copy(), [s.copy() for s in state]
    if name == "gd":
        p -= kw["lr"] * g
    elif name == "momentum":
        v = state[0]
        v[:] = kw["beta"] * v + ((1 - kw["beta"]) if kw["form"] == "ema" else 1) * g
        p -= kw["lr"] * ((g + kw["beta"] * v) if kw["nesterov"] else v)
    elif name == "rmsprop":
        s = state[0]
        s[:] = kw["rho"] * s + (1 - kw["rho"]) * g * g
        p -= kw["lr"] * g / (np.sqrt(s) + kw["eps"])
    else:
        m, v = state
        if name == "adamw":
            p -= kw["lr"] * kw["weight_decay"] * p
        m[:] = kw["beta1"] * m + (1 - kw["beta1"]) * g
        v[:] = kw["beta2"] * v + (1 - kw["beta2"]) * g * g
        mh, vh = m / (1 - kw["beta1"] ** t), v / (1 - kw["beta2"] ** t)
        p -= kw["lr"] * mh / (np.sqrt(vh) + kw["eps"])
    return p, state


OPTS = optimizer_cases(0.8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 7, 1001])
@pytest.mark.parametrize("name,nstate,kw", OPTS)
def test_optimizer_steps_match_numpy(name, nstate, kw, size, dtype):
    r = rng(7)
    p = r.standard_normal(size)
    state = [np.zeros(size) for _ in range(nstate)]
    p_c = p.astype(dtype)
    state_c = [s.astype(dtype) for s in state]
    for t in range(1, 5):
        g = r.standard_normal(size)
        extra = {"t": t} if name.startswith("adam") else {}
        out = getattr(_core, f"{name}_update")(p_c, g.astype(dtype), *state_c, **kw, **extra)
        assert out is None
        p, state = numpy_step(name, p, g, state, t, kw)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p_c, p, **tol)
    for sc, s in zip(state_c, state):
        np.testing.assert_allclose(sc, s, **tol)


def test_optimizer_works_on_a_2d_buffer():
    p = np.ones((3, 4))
    _core.gd_update(p, np.full((3, 4), 2.0), lr=0.5)
    np.testing.assert_array_equal(p, np.zeros((3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_decay_norm_and_clip(dtype):
    g = np.array([3.0, 4.0], dtype)
    assert _core.global_norm(g) == pytest.approx(5.0)
    assert _core.clip_by_global_norm(g, 10.0) == pytest.approx(5.0)
    close(g, [3, 4], dtype)  # untouched below max_norm
    assert _core.clip_by_global_norm(g, 1.0) == pytest.approx(5.0)
    close(g, [0.6, 0.8], dtype)
    p = np.array([1.0, -2.0], dtype)
    _core.add_weight_decay(g, p, 0.5)
    close(g, [1.1, -0.2], dtype)
    close(p, [1, -2], dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda p, g: _core.gd_update(p, g, 0.1),
        lambda p, g: _core.momentum_update(p, g, np.zeros_like(g), 0.1),
        lambda p, g: _core.rmsprop_update(p, g, np.zeros_like(g), 0.1),
        lambda p, g: _core.adam_update(
            p, g, np.zeros_like(g), np.zeros_like(g), 0.1, 0.9, 0.99, 1e-8, 1
        ),
        lambda p, g: _core.adamw_update(
            p, g, np.zeros_like(g), np.zeros_like(g), 0.1, 0.9, 0.99, 1e-8, 1, 0.1
        ),
        lambda p, g: _core.add_weight_decay(p, g, 0.1),
    ],
)
def test_inplace_kernels_reject_what_they_cannot_update(call):
    g32 = np.ones(6, np.float32)
    cases = [
        (TypeError, "param|grad", lambda: call(np.ones(6, np.int64), np.ones(6, np.int64))),
        (TypeError, "dtype", lambda: call(np.ones(6, np.float32), np.ones(6, np.float64))),
        (TypeError, "numpy.ndarray", lambda: call([1.0] * 6, g32)),
        (ValueError, "C-contiguous", lambda: call(np.ones(12, np.float32)[::2], g32)),
        (
            ValueError,
            "C-contiguous",
            lambda: call(np.asfortranarray(np.ones((2, 3), np.float32)), g32.reshape(2, 3)),
        ),
        (ValueError, "elements", lambda: call(np.ones(6, np.float32), np.ones(5, np.float32))),
        (ValueError, "non-empty", lambda: call(np.ones(0, np.float32), np.ones(0, np.float32))),
        (ValueError, "sharing no memory", lambda: (lambda a: call(a, a))(np.ones(6, np.float32))),
    ]
    ro = np.ones(6, np.float32)
    ro.flags.writeable = False
    cases.append((ValueError, "writeable", lambda: call(ro, g32)))
    for exc, match, fn in cases:
        with pytest.raises(exc, match=match):
            fn()


def test_inplace_kernel_never_updates_a_copy():
    p = np.ones(4, np.float32)
    with pytest.raises(TypeError):
        _core.gd_update(p, np.ones(4, np.float64), 0.1)
    np.testing.assert_array_equal(p, np.ones(4))  # nothing happened on failure
    with pytest.raises(ValueError, match="grad"):
        _core.clip_by_global_norm(np.ones(8)[::2], 1.0)


# ---- bad input: every binding ----------------------------------------------------------------

S = np.array(["a", "b"])  # non-numeric
X2 = np.ones((2, 3))
IDS = np.array([0, 2])
W = np.ones((4, 3))
B = np.ones(4)
A = np.ones((2, 4))
P1 = np.ones(3)

TYPE_ERRORS = {
    "matmul": lambda: _core.matmul(S, X2),
    "l1_forward": lambda: _core.l1_forward(S, S),
    "l1_backward": lambda: _core.l1_backward(P1, np.array(["a", "b", "c"])),
    "l2_forward": lambda: _core.l2_forward(S, S),
    "l2_backward": lambda: _core.l2_backward(S, S),
    "huber_forward": lambda: _core.huber_forward(S, S),
    "huber_backward": lambda: _core.huber_backward(S, S),
    "cross_entropy_forward": lambda: _core.cross_entropy_forward(np.full((2, 3), "a"), IDS),
    "cross_entropy_backward": lambda: _core.cross_entropy_backward(X2, np.array(["a", "b"])),
    "binary_cross_entropy_forward": lambda: _core.binary_cross_entropy_forward(S, S),
    "binary_cross_entropy_backward": lambda: _core.binary_cross_entropy_backward(S, S),
    "hinge_forward": lambda: _core.hinge_forward(S, S),
    "hinge_backward": lambda: _core.hinge_backward(S, S),
    "squared_hinge_forward": lambda: _core.squared_hinge_forward(S, S),
    "squared_hinge_backward": lambda: _core.squared_hinge_backward(S, S),
    "dice_forward": lambda: _core.dice_forward(S, S),
    "dice_backward": lambda: _core.dice_backward(S, S),
    "dense_forward": lambda: _core.dense_forward(X2, np.full((4, 3), "w"), B),
    "dense_backward": lambda: _core.dense_backward(A, X2, W, np.full((2, 4), "a")),
    "gd_update": lambda: _core.gd_update(np.ones(3, np.int32), np.ones(3, np.int32), 0.1),
    "momentum_update": lambda: _core.momentum_update(P1, P1.astype(np.float32), P1.copy(), 0.1),
    "rmsprop_update": lambda: _core.rmsprop_update(P1.copy(), P1, np.ones(3, np.float16), 0.1),
    "adam_update": lambda: _core.adam_update(S, S, S, S, 0.1, 0.9, 0.99, 1e-8, 1),
    "adamw_update": lambda: _core.adamw_update(
        P1.copy(), P1, P1.copy(), "v", 0.1, 0.9, 0.99, 1e-8, 1, 0.1
    ),
    "add_weight_decay": lambda: _core.add_weight_decay(np.ones(3, np.complex128), P1, 0.1),
    "global_norm": lambda: _core.global_norm(S),
    "clip_by_global_norm": lambda: _core.clip_by_global_norm(S, 1.0),
}

# Every registered activation's kernels, by parametrization from the registry: a non-numeric z
# or dout is a TypeError; an empty z, a dout of another shape, a non-finite alpha ValueErrors.
for _name, _per_row, _has_alpha, _ in _core.ACTIVATIONS:
    _f, _b = getattr(_core, f"{_name}_forward"), getattr(_core, f"{_name}_backward")
    TYPE_ERRORS[f"{_name}_forward"] = functools.partial(_f, S)
    TYPE_ERRORS[f"{_name}_backward"] = functools.partial(_b, X2, np.full((2, 3), "x"))

VALUE_ERRORS = {  # name -> [(argument named in the message, call)]
    "matmul": [("a", lambda: _core.matmul(P1, X2)), ("b", lambda: _core.matmul(X2, X2))],
    "l1_forward": [
        ("target", lambda: _core.l1_forward(X2, P1)),
        ("reduction", lambda: _core.l1_forward(X2, X2, reduction="avg")),
    ],
    "l1_backward": [("reduction", lambda: _core.l1_backward(X2, X2, reduction="Mean"))],
    "l2_forward": [("target", lambda: _core.l2_forward(P1, X2))],
    "l2_backward": [("pred", lambda: _core.l2_backward([], []))],
    "huber_forward": [("delta", lambda: _core.huber_forward(X2, X2, delta=0.0))],
    "huber_backward": [("delta", lambda: _core.huber_backward(X2, X2, delta=-1.0))],
    "cross_entropy_forward": [
        ("pred", lambda: _core.cross_entropy_forward(P1, IDS)),
        ("target", lambda: _core.cross_entropy_forward(X2, np.array([0, 3]))),
        ("target", lambda: _core.cross_entropy_forward(X2, np.array([-1, 0]))),
        ("target", lambda: _core.cross_entropy_forward(X2, np.array([0.0, 1.0]))),
        ("target", lambda: _core.cross_entropy_forward(X2, np.array([0, 1, 2]))),
        ("target", lambda: _core.cross_entropy_forward(X2, np.ones((2, 4)))),
        ("reduction", lambda: _core.cross_entropy_forward(X2, IDS, reduction="max")),
    ],
    "cross_entropy_backward": [
        ("target", lambda: _core.cross_entropy_backward(X2, np.ones((3, 3))))
    ],
    "binary_cross_entropy_forward": [
        ("pred", lambda: _core.binary_cross_entropy_forward(X2, X2)),
        ("target", lambda: _core.binary_cross_entropy_forward(P1, np.array([0.0, 1.5, 1.0]))),
        ("target", lambda: _core.binary_cross_entropy_forward(P1, np.ones((3, 1)))),
    ],
    "binary_cross_entropy_backward": [
        ("target", lambda: _core.binary_cross_entropy_backward(P1, np.array([0.0, np.nan, 1.0])))
    ],
    "hinge_forward": [
        ("target", lambda: _core.hinge_forward(P1, np.array([1.0, 0.0, -1.0]))),
        ("target", lambda: _core.hinge_forward(X2, np.array([0, 5]))),
        ("pred", lambda: _core.hinge_forward(np.ones((2, 3, 4)), IDS)),
    ],
    "hinge_backward": [("target", lambda: _core.hinge_backward(X2, X2))],
    "squared_hinge_forward": [
        ("target", lambda: _core.squared_hinge_forward(P1, np.array([2.0, 1, 1])))
    ],
    "squared_hinge_backward": [
        ("reduction", lambda: _core.squared_hinge_backward(P1, P1, reduction=""))
    ],
    "dice_forward": [
        ("smooth", lambda: _core.dice_forward(X2, X2, smooth=-1.0)),
        ("target", lambda: _core.dice_forward(X2, np.ones((2, 4)))),
    ],
    "dice_backward": [("pred", lambda: _core.dice_backward(np.array(0.5), np.array(0.5)))],
    "dense_forward": [
        ("x", lambda: _core.dense_forward(np.ones((2, 5)), W, B)),
        ("b", lambda: _core.dense_forward(X2, W, np.ones(3))),
        ("activation", lambda: _core.dense_forward(X2, W, B, activation="swish")),
        ("alpha", lambda: _core.dense_forward(X2, W, B, activation="leaky_relu", alpha=-0.1)),
        ("x", lambda: _core.dense_forward(np.ones((0, 3)), W, B)),
        ("w", lambda: _core.dense_forward(X2, np.ones(3), B)),
    ],
    "dense_backward": [
        ("dout", lambda: _core.dense_backward(np.ones((2, 3)), X2, W, A)),
        ("dout", lambda: _core.dense_backward(np.ones((3, 4)), X2, W, A)),
        ("a", lambda: _core.dense_backward(A, X2, W, np.ones((2, 5)))),
        ("activation", lambda: _core.dense_backward(A, X2, W, A, activation="Relu")),
    ],
    "gd_update": [("lr", lambda: _core.gd_update(P1.copy(), P1, -0.1))],
    "momentum_update": [
        ("form", lambda: _core.momentum_update(P1.copy(), P1, P1.copy(), 0.1, form="nag")),
        (
            "nesterov",
            lambda: _core.momentum_update(P1.copy(), P1, P1.copy(), 0.1, form="ema", nesterov=True),
        ),
        ("beta", lambda: _core.momentum_update(P1.copy(), P1, P1.copy(), 0.1, beta=1.0)),
        ("velocity", lambda: _core.momentum_update(P1.copy(), P1, np.ones(4), 0.1)),
    ],
    "rmsprop_update": [
        ("rho", lambda: _core.rmsprop_update(P1.copy(), P1, P1.copy(), 0.1, rho=-0.5)),
        ("eps", lambda: _core.rmsprop_update(P1.copy(), P1, P1.copy(), 0.1, eps=0.0)),
    ],
    "adam_update": [
        (
            "t",
            lambda: _core.adam_update(P1.copy(), P1, P1.copy(), P1.copy(), 0.1, 0.9, 0.99, 1e-8, 0),
        ),
        (
            "beta2",
            lambda: _core.adam_update(P1.copy(), P1, P1.copy(), P1.copy(), 0.1, 0.9, 1.5, 1e-8, 1),
        ),
        (
            "lr",
            lambda: _core.adam_update(
                P1.copy(), P1, P1.copy(), P1.copy(), float("nan"), 0.9, 0.99, 1e-8, 1
            ),
        ),
    ],
    "adamw_update": [
        (
            "weight_decay",
            lambda: _core.adamw_update(
                P1.copy(), P1, P1.copy(), P1.copy(), 0.1, 0.9, 0.99, 1e-8, 1, -0.1
            ),
        )
    ],
    "add_weight_decay": [
        ("param", lambda: _core.add_weight_decay(P1.copy(), np.ones(2), 0.1)),
        ("weight_decay", lambda: _core.add_weight_decay(P1.copy(), P1, -1.0)),
    ],
    "global_norm": [("grad", lambda: _core.global_norm(np.ones(0)))],
    "clip_by_global_norm": [("max_norm", lambda: _core.clip_by_global_norm(P1.copy(), 0.0))],
}


def public_core_functions():
    """The kernel functions (the training classes have their own tests in test_core_network.py)."""
    return sorted(
        n
        for n in dir(_core)
        if not n.startswith("_")
        and callable(getattr(_core, n))
        and not isinstance(getattr(_core, n), type)
    )


for _name, _per_row, _has_alpha, _ in _core.ACTIVATIONS:
    _f, _b = getattr(_core, f"{_name}_forward"), getattr(_core, f"{_name}_backward")
    VALUE_ERRORS[f"{_name}_forward"] = [("z", functools.partial(_f, np.ones((2, 0))))]
    VALUE_ERRORS[f"{_name}_backward"] = [("dout", functools.partial(_b, X2, P1))]
    if _per_row:
        VALUE_ERRORS[f"{_name}_forward"].append(("z", functools.partial(_f, np.array(1.0))))
    if _has_alpha:
        VALUE_ERRORS[f"{_name}_forward"].append(("alpha", functools.partial(_f, P1, alpha=np.nan)))
        VALUE_ERRORS[f"{_name}_backward"].append(
            ("alpha", functools.partial(_b, P1, P1, alpha=np.inf))
        )


def test_every_binding_has_bad_input_cases():
    assert set(TYPE_ERRORS) == set(public_core_functions())
    assert set(VALUE_ERRORS) == set(public_core_functions())


@pytest.mark.parametrize("name", sorted(TYPE_ERRORS))
def test_non_numeric_input_is_a_type_error(name):
    with pytest.raises(TypeError):
        TYPE_ERRORS[name]()


@pytest.mark.parametrize("name", sorted(VALUE_ERRORS))
def test_bad_values_are_value_errors_naming_the_argument(name):
    for arg, call in VALUE_ERRORS[name]:
        with pytest.raises(ValueError) as info:
            call()
        msg = str(info.value)
        assert msg.startswith(f"{arg}: expected "), (name, msg)
        assert ", got " in msg, (name, msg)


# ---- the C++ side itself ---------------------------------------------------------------------


def test_kernels_restore_the_callers_floating_point_mode():
    # FlushDenormals sets FTZ/DAZ only inside a kernel; Python code must still see denormals.
    _core.softmax_forward(np.array([[0.0, -100.0]], np.float32))
    _core.adam_update(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), 0.1, 0.9, 0.99, 1e-8, 1)
    tiny = np.float64(5e-324)
    assert tiny * 1.0 > 0
    assert np.array([1e-310]).sum() > 0
    out = _core.sigmoid_forward(np.array([-100.0, -200.0], np.float32))
    assert np.all(np.isfinite(out)) and np.all(out < 1e-37)


# The kernel headers; bind.hpp, the bindings' shared header, is the one that needs Python.
HEADERS = sorted(p.name for p in CPP.glob("*.hpp") if p.name != "bind.hpp")


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize("header", HEADERS)
def test_header_compiles_on_its_own(header):
    # No pybind11 include path: a header that needs Python does not compile here.
    def run(cmd, **kw):
        return subprocess.run(cmd, cwd=CPP, capture_output=True, text=True, **kw)

    r = run(["g++", "-std=c++17", "-fsyntax-only", f"-I{CPP}", header])
    assert r.returncode == 0, r.stderr
    # Included alone in a translation unit, warning-free with the project's flags.
    r = run(
        [
            "g++",
            "-std=c++17",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fopenmp-simd",
            f"-I{CPP}",
            "-x",
            "c++",
            "-",
        ],
        input=f'#include "{header}"\n',
    )
    assert r.returncode == 0, r.stderr
    assert "pybind11" not in (CPP / header).read_text()


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_binding_header_compiles_on_its_own():
    import sysconfig

    import pybind11

    includes = [f"-I{CPP}", f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]
    # -fvisibility=hidden as pybind11_add_module compiles the module (pybind11's own types are hidden).
    flags = ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-fopenmp-simd"]
    flags.append("-fvisibility=hidden")
    r = subprocess.run(
        ["g++", *flags, *includes, "-x", "c++", "-"],
        cwd=CPP,
        capture_output=True,
        text=True,
        input='#include "bind.hpp"\n',
    )
    assert r.returncode == 0, r.stderr


def test_kernels_run_concurrently_from_threads():
    # The bindings release the GIL around each kernel: threads must neither deadlock nor mix
    # up results.
    from concurrent.futures import ThreadPoolExecutor

    r = rng(8)
    xs = [r.standard_normal((64, 200)) for _ in range(8)]
    w = r.standard_normal((50, 200))
    b = r.standard_normal(50)
    want = [_core.dense_forward(x, w, b, "softmax") for x in xs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: _core.dense_forward(x, w, b, "softmax"), xs * 4))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, want[i % len(xs)])


@pytest.mark.parametrize("rule", ["adam", "adamw"])
@pytest.mark.parametrize("scale", [1e-20, 1e-3, 1.0, 1e3, 1e15])
def test_float32_adam_fast_path_matches_reference(rule, scale):
    # float32 Adam on AVX-512 replaces sqrt and division by refined rsqrt14/rcp14 estimates:
    # 37 = two 16-wide vectors and a scalar tail; zero gradients (v = 0) and huge ones.
    rng = np.random.default_rng(7)
    g = (scale * rng.standard_normal(37)).astype(np.float32)
    g[[0, 5, 20, 36]] = 0.0
    p0 = rng.standard_normal(37).astype(np.float32)
    extra = (0.01,) if rule == "adamw" else ()
    out = {}
    for name, mod in (("cpp", _core), ("ref", reference)):
        p, m, v = p0.copy(), np.zeros(37, np.float32), np.zeros(37, np.float32)
        for t in range(1, 4):
            getattr(mod, rule + "_update")(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, t, *extra)
        out[name] = (p, m, v)
    for got, want in zip(out["cpp"], out["ref"]):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-30)
    step = out["cpp"][0] - p0
    assert np.all(np.isfinite(step))
    if scale >= 1e-3:  # below that the step (~lr g / eps) is under float32's resolution of p
        assert np.abs(step[g != 0]).min() > 0


@pytest.mark.parametrize("backend", [_core, reference], ids=["cpp", "numpy"])
def test_dense_backward_of_an_activation_needing_z_requires_it(backend):
    needy = [name for name, _, _, needs_input in _core.ACTIVATIONS if needs_input]
    assert needy, "the registry has an activation whose backward needs z (gelu)"
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)
    a = backend.dense_forward(x, w, b, needy[0])
    with pytest.raises(ValueError, match="z: expected the forward's x w"):
        backend.dense_backward(np.ones((2, 4)), x, w, a, needy[0])
    with pytest.raises(ValueError, match="z"):
        backend.dense_backward(np.ones((2, 4)), x, w, a, needy[0], z=np.ones((2, 5)))
