"""The C++ core against its NumPy twin, function by function, to the backends' tolerance.

Each case builds inputs once, runs pycvnn._core.<name> and pycvnn.reference.<name> on copies,
and compares every output: rtol 1e-4 (float32) / 1e-10 (float64), with an atol of 1e-6 / 1e-12
times the largest reference magnitude (C++ may flush denormals, so never below finfo.tiny).
"""

import functools
import os
import zlib

import numpy as np
import pytest
from kernelhelpers import optimizer_cases, walk_results
from nethelpers import ACTIVATION_NAMES, activation_kwargs

from pycvnn import _core, reference

LOG = os.environ.get("PYCVNN_ERROR_LOG")  # optional: record every comparison's error
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}
# (rows, cols, magnitude): batch size 1, odd shapes, a wide row, large magnitudes.
SHAPES = [(1, 5, 1.0), (7, 13, 1.0), (3, 300, 1.0), (6, 4, 1e3)]
REDUCTIONS = ["none", "mean", "sum"]
ACTIVATIONS = ["none", *ACTIVATION_NAMES]


def assert_same(got, want, dtype, where=""):
    walk_results(got, want, where, functools.partial(_same_values, dtype=dtype))


def _same_values(got, want, where, dtype):
    """One float or array of assert_same, its type, dtype and shape already checked."""
    scale = float(np.max(np.abs(want))) if np.size(want) else 0.0
    if LOG:  # for the closing report: the largest error relative to the reference's magnitude
        diff = np.atleast_1d(np.abs(np.asarray(got, np.float64) - want))
        diff[diff <= np.finfo(dtype).tiny] = 0  # flushed denormals
        err = float(np.max(diff)) / max(scale, 1e-300)
        with open(LOG, "a") as f:
            f.write(f"{where.split()[0].split('[')[0]} {np.dtype(dtype).name} {err:.3e}\n")
    # Denormals (below finfo.tiny) may be flushed to zero by the C++ path.
    atol = max(ATOL[dtype] * scale, float(np.finfo(dtype).tiny))
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=atol, err_msg=where)


def run_both(name, args, kwargs, dtype):
    """Call both backends on private copies; return (cpp result, ref result, cpp args, ref args)."""
    a_cpp = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    a_ref = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    got = getattr(_core, name)(*a_cpp, **kwargs)
    want = getattr(reference, name)(*a_ref, **kwargs)
    assert_same(got, want, dtype, name)
    return a_cpp, a_ref


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def over_loss_grid(test):
    """Parametrize a loss test over every reduction, shape and dtype."""
    for name, values in (("reduction", REDUCTIONS), ("n,c,mag", SHAPES), ("dtype", DTYPES)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c,mag", SHAPES)
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_activations(act, n, c, mag, dtype):
    rng = rng_for(act, n, c)
    z = (rng.standard_normal((n, c)) * mag).astype(dtype)
    z[0, 0] = 0.0  # the derivative at 0 is part of the contract
    dout = rng.standard_normal((n, c)).astype(dtype)
    kw = activation_kwargs(act, 0.05)
    run_both(f"{act}_forward", [z], kw, dtype)
    run_both(f"{act}_backward", [z, dout], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["sigmoid", "relu", "softmax"])
def test_activations_nd(act, dtype):
    rng = rng_for(act)
    z = rng.standard_normal((2, 3, 5)).astype(dtype)
    run_both(f"{act}_forward", [z], {}, dtype)
    run_both(f"{act}_backward", [z, rng.standard_normal(z.shape).astype(dtype)], {}, dtype)


@over_loss_grid
@pytest.mark.parametrize("loss,opts", [("l1", {}), ("l2", {}), ("huber", {"delta": 0.7})])
def test_elementwise_losses(loss, opts, reduction, n, c, mag, dtype):
    rng = rng_for(loss, n, c)
    pred = (rng.standard_normal((n, c)) * mag).astype(dtype)
    target = (rng.standard_normal((n, c)) * mag).astype(dtype)
    kw = dict(opts, reduction=reduction)
    run_both(f"{loss}_forward", [pred, target], kw, dtype)
    run_both(f"{loss}_backward", [pred, target], kw, dtype)


def class_targets(rng, n, c, kind, dtype):
    if kind == "ids":
        return rng.integers(0, c, size=n)
    return rng.dirichlet(np.ones(c), size=n).astype(dtype)


@over_loss_grid
@pytest.mark.parametrize("kind", ["ids", "probs"])
@pytest.mark.parametrize("from_logits", [True, False])
def test_cross_entropy(from_logits, kind, reduction, n, c, mag, dtype):
    rng = rng_for("ce", n, c, kind)
    logits = (rng.standard_normal((n, c)) * mag).astype(dtype)
    pred = logits if from_logits else reference.softmax_forward(logits)
    target = class_targets(rng, n, c, kind, dtype)
    kw = {"from_logits": from_logits, "reduction": reduction}
    run_both("cross_entropy_forward", [pred, target], kw, dtype)
    run_both("cross_entropy_backward", [pred, target], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (9,), (9, 1)])
@pytest.mark.parametrize("mag", [1.0, 1e3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_binary_cross_entropy(from_logits, reduction, shape, mag, dtype):
    rng = rng_for("bce", shape, mag)
    x = (rng.standard_normal(shape) * mag).astype(dtype)
    pred = x if from_logits else rng.uniform(0.01, 0.99, shape).astype(dtype)
    target = rng.uniform(0, 1, shape).astype(dtype)
    kw = {"from_logits": from_logits, "reduction": reduction}
    run_both("binary_cross_entropy_forward", [pred, target], kw, dtype)
    run_both("binary_cross_entropy_backward", [pred, target], kw, dtype)


@over_loss_grid
@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("binary", [True, False])
def test_hinge(binary, loss, reduction, n, c, mag, dtype):
    rng = rng_for(loss, n, c, binary)
    if binary:
        scores = (rng.standard_normal(n) * mag).astype(dtype)
        target = rng.choice([-1.0, 1.0], size=n).astype(dtype)
    else:
        scores = (rng.standard_normal((n, c)) * mag).astype(dtype)
        target = rng.integers(0, c, size=n)
    kw = {"reduction": reduction}
    run_both(f"{loss}_forward", [scores, target], kw, dtype)
    run_both(f"{loss}_backward", [scores, target], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 4), (3, 5, 7), (2, 1, 16, 16)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smooth", [1e-6, 1.0])
def test_dice(smooth, reduction, shape, dtype):
    rng = rng_for("dice", shape)
    pred = rng.uniform(0, 1, shape).astype(dtype)
    target = (rng.uniform(0, 1, shape) > 0.5).astype(dtype)
    kw = {"smooth": smooth, "reduction": reduction}
    run_both("dice_forward", [pred, target], kw, dtype)
    run_both("dice_backward", [pred, target], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
# the last two pass 2^18 multiply-adds: OpenBLAS with the bias written first, and a skinny
# shape (out <= 16) on the small kernels with the bias in their epilogue
@pytest.mark.parametrize(
    "n,fin,fout", [(1, 3, 2), (7, 13, 5), (64, 100, 33), (40, 300, 50), (200, 120, 12)]
)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_dense(act, n, fin, fout, dtype):
    rng = rng_for("dense", n, fin, act)
    x = rng.standard_normal((n, fin)).astype(dtype)
    w = (rng.standard_normal((fout, fin)) / np.sqrt(fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype)
    kw = {"activation": act, "alpha": 0.1}
    run_both("dense_forward", [x, w, b], kw, dtype)
    a = reference.dense_forward(x, w, b, **kw)
    dout = rng.standard_normal((n, fout)).astype(dtype)
    z = reference.dense_forward(x, w, b)  # the pre-activation, which gelu's backward needs
    run_both("dense_backward", [dout, x, w, a], {**kw, "z": z}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_matmul(ta, tb, dtype):
    rng = rng_for("mm", ta, tb)
    a = rng.standard_normal((13, 7) if ta else (7, 13)).astype(dtype)
    b = rng.standard_normal((5, 13) if tb else (13, 5)).astype(dtype)
    run_both("matmul", [a, b], {"trans_a": ta, "trans_b": tb}, dtype)


# Optimizers: three steps with the same gradients on both backends; parameters and state agree.
OPTIMIZERS = [(f"{rule}_update", nstate, kw) for rule, nstate, kw in optimizer_cases(0.9)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 17, 1000])
@pytest.mark.parametrize("name,nstate,kw", OPTIMIZERS)
def test_optimizers(name, nstate, kw, size, dtype):
    rng = rng_for(name, size)
    state = {
        b: [rng.standard_normal(size).astype(dtype)]
        + [np.zeros(size, dtype) for _ in range(nstate)]
        for b in ("cpp", "ref")
    }
    state["ref"] = [s.copy() for s in state["cpp"]]
    for t in range(1, 4):
        g = rng.standard_normal(size).astype(dtype)
        extra = {"t": t} if name.startswith("adam") else {}
        getattr(_core, name)(state["cpp"][0], g, *state["cpp"][1:], **kw, **extra)
        getattr(reference, name)(state["ref"][0], g, *state["ref"][1:], **kw, **extra)
        for i, (c, r) in enumerate(zip(state["cpp"], state["ref"])):
            assert_same(c, r, dtype, f"{name} step {t} buffer {i}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_norm_and_clip(max_norm, dtype):
    rng = rng_for("clip", max_norm)
    g = rng.standard_normal(1001).astype(dtype)
    p = rng.standard_normal(1001).astype(dtype)
    run_both("global_norm", [g], {}, dtype)
    g_cpp, g_ref = run_both("clip_by_global_norm", [g, max_norm], {}, dtype)
    assert_same(g_cpp[0], g_ref[0], dtype, "clipped grad")
    g_cpp, g_ref = run_both("add_weight_decay", [g, p, 0.01], {}, dtype)
    assert_same(g_cpp[0], g_ref[0], dtype, "decayed grad")
