"""Property tests: every pycvnn._core function against its NumPy twin pycvnn.reference.

Hypothesis draws shapes (odd sizes, batch 1, size-1 axes), float32/float64, magnitudes from
tiny to 1e6, exact kinks, NaN and Inf, class ids, options and optimizer hyperparameters
(lr 0 included), and random small networks. The backends must agree to rtol 1e-4 (float32) /
1e-10 (float64) with an atol of 1e-6 / 1e-12 times the largest reference magnitude, with NaN
in the same places and the same exception type for bad input. Where a result cancels, the
magnitude is that of the terms it cancels from (softmax's VJP, a network's backward), and a
training epoch's atol is at least 4x the change an ulp's nudge of its inputs makes.

Profiles: PYCVNN_FUZZ=ci (the default, 25 examples a test) or PYCVNN_FUZZ=long (10,000 a test
scaled by LONG_SHARES: >= 100,000 in all); PYCVNN_FUZZ_EXAMPLES overrides the 25 / 10,000. The
number of examples run is printed in the terminal summary and, with PYCVNN_FUZZ_COUNTS=path,
written there as JSON.
"""

import collections
import functools
import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernelhelpers import walk_results
from nethelpers import ACTIVATION_NAMES, activation_kwargs

from pycvnn import _core
from pycvnn import reference as R
from pycvnn.reference.network import LOSSES, RULES

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's NaN/Inf warnings

# ---- profiles and the example counter ---------------------------------------------------

_COMMON = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile("pycvnn-fuzz-ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("pycvnn-fuzz-long", max_examples=10_000, **_COMMON)
PROFILE = "pycvnn-fuzz-" + os.environ.get("PYCVNN_FUZZ", "ci")
_EXAMPLES = os.environ.get("PYCVNN_FUZZ_EXAMPLES")
_BASE = settings(
    settings.get_profile(PROFILE), **({"max_examples": int(_EXAMPLES)} if _EXAMPLES else {})
)


def _fuzz(test_name):
    """The profile's settings, with the long profile's examples shared out by LONG_SHARES, and
    each example that runs to its end (assume() rejects none of it) counted under the test's
    name."""
    share = LONG_SHARES[test_name] if PROFILE.endswith("long") else 1.0

    def decorate(test):  # test: the @given test; its inner test runs once per example
        assert test.__name__ == test_name, test.__name__
        inner = test.hypothesis.inner_test

        @functools.wraps(inner)
        def counted(*args, **kwargs):
            result = inner(*args, **kwargs)  # an example assume() rejects is not counted
            COUNTS[test.__name__] += 1
            if COUNTS[test.__name__] % 2000 == 0:  # a long run's progress, if it is stopped
                _write_counts()
            return result

        test.hypothesis.inner_test = counted
        return settings(_BASE, max_examples=max(1, int(_BASE.max_examples * share)))(test)

    return decorate


# The long profile's 10,000 examples a test, scaled by what an example costs (drawing its
# arrays element by element is most of it): down for matmul, dense and sgd's larger arrays and
# for the networks, up for the cheap kernels. Bad input runs out of new cases at about 2,550.
# About 104,000 examples in all.
LONG_SHARES = {
    "test_activations": 1.0,
    "test_elementwise_losses": 1.0,
    "test_cross_entropy": 0.8,
    "test_binary_cross_entropy": 1.6,
    "test_hinge": 1.6,
    "test_dice": 1.3,
    "test_dense": 0.2,
    "test_matmul": 0.1,
    "test_sgd_family": 0.3,
    "test_adam": 0.6,
    "test_norms_and_decay": 1.4,
    "test_bad_input_raises_the_same_exception": 1.0,
    "test_network_forward_backward": 0.1,
    "test_network_train_epoch": 0.1,
}


COUNTS = collections.Counter()


class _CountReport:
    """Adds the examples run to pytest's terminal summary (and to PYCVNN_FUZZ_COUNTS)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not COUNTS:
            return
        terminalreporter.write_line(
            f"fuzz examples run ({PROFILE}): {sum(COUNTS.values())} "
            f"in {len(COUNTS)} tests: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        )
        _write_counts()


def _write_counts():
    path = os.environ.get("PYCVNN_FUZZ_COUNTS")
    if path:
        with open(path, "w") as f:
            json.dump(
                {"profile": PROFILE, "total": sum(COUNTS.values()), "per_test": COUNTS},
                f,
                indent=1,
                sort_keys=True,
            )


@pytest.fixture(autouse=True, scope="module")
def _count_report(request):
    plugins = request.config.pluginmanager
    if not plugins.has_plugin("pycvnn-fuzz-counts"):
        plugins.register(_CountReport(), "pycvnn-fuzz-counts")
    yield


# ---- comparison ---------------------------------------------------------------------------

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}


def _copy(args):
    return [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]


def _call(fn, args, kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return fn(*args, **kwargs), None
        except (ValueError, TypeError) as e:
            return None, e


def assert_agree(got, want, dtype, where, kappa=0.0, terms=0.0, noise=0.0):
    """got (core) against want (reference): type, dtype, shape, NaN and Inf places, values.
    kappa > 0 widens rtol by kappa ulps (see network_kappa); kernels compare with 0. terms > 0
    is the magnitude of the terms a result cancels from (softmax's VJP): atol scales with the
    larger of it and the result's own magnitude. noise is an atol measured on the example
    (see epoch_noise)."""
    walk_results(
        got,
        want,
        where,
        functools.partial(_agree_values, dtype=dtype, kappa=kappa, terms=terms, noise=noise),
        sequences=(tuple, list),
    )


def _agree_values(got, want, where, dtype, kappa, terms, noise):
    """One float or array of assert_agree, its type, dtype and shape already checked."""
    g, w = np.atleast_1d(np.asarray(got, np.float64)), np.atleast_1d(np.asarray(want, np.float64))
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{where}: NaN places")
    inf = np.isinf(w)
    np.testing.assert_array_equal(np.isinf(g), inf, err_msg=f"{where}: Inf places")
    np.testing.assert_array_equal(g[inf], w[inf], err_msg=f"{where}: Inf signs")
    finite = np.isfinite(w)
    if not finite.any():
        return
    scale = max(float(np.max(np.abs(w[finite]))), terms)
    # C++ flushes denormals, also in intermediates a later product scales back up (a saturated
    # sigmoid's a (1 - a) ~ 1e-308 times weights of 1e3): results below tiny / eps (1e-292,
    # float32 1e-31) count as zero.
    info = np.finfo(dtype)
    atol = max(ATOL[dtype] * scale, float(info.tiny / info.eps), noise)
    # a result that cancelled completely still has to be within a factor of 2
    rtol = RTOL[dtype] + min(kappa * float(np.finfo(dtype).eps), 1.0)
    np.testing.assert_allclose(g[finite], w[finite], rtol=rtol, atol=atol, err_msg=where)


def compare(name, args, kwargs=None, dtype=np.float64, inplace=(), kappa=0.0, terms=0.0):
    """Run _core.name and reference.name on copies of args; both raise the same exception type
    or both return results that agree, and so do the in-place buffers (indices `inplace`)."""
    kwargs = kwargs or {}
    a_core, a_ref = _copy(args), _copy(args)
    got, err_core = _call(getattr(_core, name), a_core, kwargs)
    want, err_ref = _call(getattr(R, name), a_ref, kwargs)
    assert type(err_core) is type(err_ref), (
        f"{name}: core raised {err_core!r}, reference raised {err_ref!r}"
    )
    if err_core is not None:
        return None
    assert_agree(got, want, dtype, name, kappa, terms)
    for i in inplace:
        assert_agree(a_core[i], a_ref[i], dtype, f"{name} buffer {i}")
    return want


# ---- strategies ---------------------------------------------------------------------------

DTYPES = st.sampled_from([np.float32, np.float64])
REDUCTION = st.sampled_from(["none", "mean", "sum"])
SPECIALS = [np.nan, np.inf, -np.inf]


@functools.lru_cache(maxsize=None)  # one strategy per set of arguments, validated once
def values(dtype, lo=-1e6, hi=1e6, specials=True, nice=(0.0, -0.0, 1.0, -1.0, 0.5, 2.0), tiny=True):
    """Element values: mostly ordinary, some large (up to 1e6), tiny (normal numbers only: the
    core flushes denormals), exact small numbers (kinks, ties) and, if specials, NaN / +-Inf.
    Chains of products (dense layers, networks) take tiny=False: there a tiny product is a
    denormal the core flushes to 0, and 0 * Inf is NaN where the twin has tiny * Inf = Inf."""
    width = 32 if dtype == np.float32 else 64
    tiny_lo, small = (
        (1e-18, 1e-12) if dtype == np.float32 else (1e-150, 1e-100)
    )  # squares stay normal
    tiny_lo, small = float(dtype(tiny_lo)), float(dtype(small))
    parts = [
        st.floats(max(lo, -10), min(hi, 10), width=width, allow_subnormal=False),
        st.floats(lo, hi, width=width, allow_subnormal=False),
        st.sampled_from([x for x in nice if lo <= x <= hi] or [lo]),
    ]
    if tiny:
        parts.append(
            st.floats(tiny_lo, small, width=width)
            if lo >= 0
            else st.floats(tiny_lo, small, width=width) | st.floats(-small, -tiny_lo, width=width)
        )
    else:  # nor the smallest normal numbers the bounded draws like to pick
        return st.one_of(*parts).filter(lambda x: not 0 < abs(x) < small)
    if specials:
        parts.append(st.sampled_from(SPECIALS))
    return st.one_of(*parts).filter(lambda x: x != x or lo <= x <= hi or np.isinf(x))


def arrays(dtype, shape, **kw):
    return hnp.arrays(dtype, shape, elements=values(dtype, **kw))


SIDE = st.one_of(st.integers(1, 5), st.sampled_from([1, 7, 16, 17, 33]))
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6) | st.tuples(
    st.integers(1, 70)
)


@st.composite
def pairs(draw, shape=ANY_SHAPE, specials=True, **kw):
    dtype = draw(DTYPES)
    shp = draw(shape)
    a = draw(arrays(dtype, shp, specials=specials, **kw))
    if draw(st.booleans()):  # the second array partly equal to the first: ties, kinks
        b = np.where(
            draw(hnp.arrays(bool, shp)), a, draw(arrays(dtype, shp, specials=specials, **kw))
        )
    else:
        b = draw(arrays(dtype, shp, specials=specials, **kw))
    return dtype, a, np.asarray(b, dtype)


# ---- activations ----------------------------------------------------------------------------


@_fuzz("test_activations")
@given(
    pairs(),
    st.sampled_from(ACTIVATION_NAMES),
    st.sampled_from([0.0, 0.01, 0.2, 1.0]) | st.floats(-3, 3),
)
def test_activations(p, act, alpha):
    dtype, z, dout = p
    kw = activation_kwargs(act, alpha)
    s = compare(f"{act}_forward", [z], kw, dtype)
    kappa = softmax_kappa(s) if act == "softmax" and s is not None else 0.0
    compare(f"{act}_backward", [z, dout], kw, dtype, kappa=kappa, terms=vjp_terms(act, s, dout))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_vjp_of_a_constant_is_exactly_zero(dtype):
    # Softmax is shift-invariant: a constant dout (1/3, whose products with s round) into it
    # has a VJP of exactly 0 in both backends, in any order of summation; rounding noise there
    # is what RMSProp and Adam turn into steps of ~lr.
    z = np.random.default_rng(1).normal(size=(5, 33)).astype(dtype)
    dout = np.full(z.shape, 1 / 3, dtype)
    w = np.ones((33, 33), dtype)
    for backend in (_core, R):
        assert not np.any(backend.softmax_backward(z, dout)), backend.__name__
        dx, dw, db = backend.dense_backward(dout, z, w, R.softmax_forward(z), "softmax", 0.0)
        assert not (np.any(dx) or np.any(dw) or np.any(db)), backend.__name__


def vjp_terms(act, s, dout):
    """Softmax's VJP s (d - sum(d s) / sum(s)), d = dout - dout_0 (its first entry), cancels
    terms of size |s| (|dout| + |dout_0|)."""
    if act != "softmax" or s is None:
        return 0.0
    d = np.abs(np.asarray(dout, np.float64))
    prod = np.abs(np.asarray(s, np.float64)) * (d + d[..., :1])
    prod = prod[np.isfinite(prod)]
    return float(prod.max()) if prod.size else 0.0


def softmax_kappa(s):
    """Ulps the softmax VJP s (dout - sum(dout s)) may differ by: in a row whose largest
    probability is near 1 the bracket cancels to about (1 - s_max) |dout|, so the backends'
    1-ulp differences in s (each exp within an ulp, not the same one) grow by 1 / (1 - s_max)."""
    s = np.asarray(s, np.float64).reshape(-1, np.shape(s)[-1]) if np.ndim(s) else np.zeros((1, 1))
    top = np.max(np.where(np.isfinite(s), s, 0), axis=1)
    return 8 * float(np.max(1 / np.maximum(1 - top, 1e-300)))


# ---- elementwise losses -----------------------------------------------------------------------


@_fuzz("test_elementwise_losses")
@given(
    pairs(),
    st.sampled_from(["l1", "l2", "huber"]),
    REDUCTION,
    st.sampled_from([1.0, 0.5, 2.0]) | st.floats(1e-3, 1e3),
    st.booleans(),
)
def test_elementwise_losses(p, loss, reduction, delta, at_kink):
    dtype, pred, target = p
    kw = {"reduction": reduction}
    if loss == "huber":
        kw["delta"] = delta
        if at_kink:  # |r| = delta exactly where pred - delta is exact
            target = np.where(np.abs(pred) < 8, pred - dtype(delta), target).astype(dtype)
    compare(f"{loss}_forward", [pred, target], kw, dtype)
    compare(f"{loss}_backward", [pred, target], kw, dtype)


# ---- classification losses ----------------------------------------------------------------


@st.composite
def class_batch(draw, min_c=1):
    dtype = draw(DTYPES)
    n, c = draw(SIDE), draw(st.integers(min_c, 12))
    return dtype, n, c


@_fuzz("test_cross_entropy")
@given(class_batch(), st.data(), st.booleans(), st.booleans(), REDUCTION)
def test_cross_entropy(batch, data, soft, from_logits, reduction):
    dtype, n, c = batch
    if from_logits:
        pred = data.draw(arrays(dtype, (n, c)))
    else:
        pred = data.draw(arrays(dtype, (n, c), lo=0.0, hi=1.0, nice=(0.0, 1.0, 0.5, 1e-7, 1e-12)))
    if soft:
        target = data.draw(arrays(dtype, (n, c), lo=0.0, hi=1.0, nice=(0.0, 1.0, 0.5)))
    else:
        target = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    kw = {"from_logits": from_logits, "reduction": reduction}
    assume(ce_in_bounds(pred, target, from_logits, dtype))
    forward_terms, backward_terms = ce_terms(pred, target, from_logits, reduction)
    compare("cross_entropy_forward", [pred, target], kw, dtype, terms=forward_terms)
    compare("cross_entropy_backward", [pred, target], kw, dtype, terms=backward_terms)


def _target_rows(target, c):
    """Cross-entropy targets as |rows| (N, C) in float64: one-hot for class ids."""
    if target.dtype.kind == "i":
        return np.eye(c)[target]
    return np.abs(np.asarray(target, np.float64))


def ce_in_bounds(pred, target, from_logits, dtype):
    """Outside the promise: an infinite soft target in a row whose softmax has a denormal
    entry. The core flushes that entry to 0, and 0 * inf is NaN where NumPy's denormal * inf
    is inf: both are non-finite, but not the same one."""
    if not from_logits or target.dtype.kind == "i":
        return True
    with np.errstate(all="ignore"):
        p = R.softmax_forward(np.asarray(pred, np.float64))
        tiny = (p > 0) & (p < np.finfo(dtype).tiny)
    return not np.any(np.isinf(target).any(axis=1) & tiny.any(axis=1))


def ce_terms(pred, target, from_logits, reduction):
    """The magnitudes of the terms cross-entropy's (forward, backward) cancel from; none (0)
    from probabilities.

    From logits a sample's loss lse(z) sum(t) - sum(t z) cancels terms of size
    (max |z| + log C) sum(t) + sum |t z| (a confident right answer: lse and z_y both near
    max z, the loss their small difference, each side's rounding of lse in it). The gradient
    softmax(pred) sum(t) - t cancels terms of size p sum(t) + t (p near 1, t = 1: the
    backends' 1-ulp differences in p over 1 - p)."""
    if not from_logits:
        return 0.0, 0.0
    n, c = pred.shape
    with np.errstate(all="ignore"):
        logits = np.asarray(pred, np.float64)
        z = np.abs(logits)
        t = _target_rows(target, c)
        rows = (z.max(axis=1) + np.log(c)) * t.sum(axis=1) + (t * z).sum(axis=1)
        grad_terms = R.softmax_forward(logits) * t.sum(axis=1, keepdims=True) + t
    rows = rows[np.isfinite(rows)]
    forward = (
        float({"none": rows.max(), "mean": rows.mean(), "sum": rows.sum()}[reduction])
        if rows.size
        else 0.0
    )
    return forward, _finite_max(grad_terms) / (n if reduction == "mean" else 1)


@_fuzz("test_binary_cross_entropy")
@given(class_batch(), st.data(), st.booleans(), st.booleans(), REDUCTION)
def test_binary_cross_entropy(batch, data, column, from_logits, reduction):
    dtype, n, _ = batch
    shape = (n, 1) if column else (n,)
    if from_logits:
        pred = data.draw(arrays(dtype, shape))
    else:
        pred = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, nice=(0.0, 1.0, 0.5, 1e-7, 1 - 1e-7)))
    target = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, specials=False, nice=(0.0, 1.0, 0.5)))
    kw = {"from_logits": from_logits, "reduction": reduction}
    compare("binary_cross_entropy_forward", [pred, target], kw, dtype)
    compare("binary_cross_entropy_backward", [pred, target], kw, dtype)


@_fuzz("test_hinge")
@given(
    class_batch(min_c=2),
    st.data(),
    st.sampled_from(["binary", "column", "multiclass"]),
    st.sampled_from(["hinge", "squared_hinge"]),
    REDUCTION,
)
def test_hinge(batch, data, kind, loss, reduction):
    dtype, n, c = batch
    if kind == "multiclass":
        pred = data.draw(arrays(dtype, (n, c)))
        target = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    else:
        shape = (n,) if kind == "binary" else (n, 1)
        pred = data.draw(arrays(dtype, shape))
        target = data.draw(hnp.arrays(dtype, shape, elements=st.sampled_from([-1.0, 1.0])))
        if data.draw(st.booleans()):  # margins of exactly zero: y s = 1
            pred = np.where(data.draw(hnp.arrays(bool, shape)), target, pred).astype(dtype)
    compare(f"{loss}_forward", [pred, target], {"reduction": reduction}, dtype)
    compare(f"{loss}_backward", [pred, target], {"reduction": reduction}, dtype)


@_fuzz("test_dice")
@given(
    pairs(
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
        lo=0.0,
        hi=1.0,
        nice=(0.0, 1.0, 0.5),
    ),
    st.sampled_from([0.0, 1e-6, 1.0]) | st.floats(1e-30, 10),
    REDUCTION,
)
def test_dice(p, smooth, reduction):
    dtype, pred, target = p
    assume(dice_in_bounds(pred, target, smooth, dtype))
    kw = {"smooth": smooth, "reduction": reduction}
    compare("dice_forward", [pred, target], kw, dtype)
    compare("dice_backward", [pred, target], kw, dtype)


def dice_in_bounds(pred, target, smooth, dtype):
    """The core flushes products p g below the smallest normal to 0 (NumPy keeps them): in a
    sample whose denominator sum(p) + sum(g) + smooth is below the square root of the smallest
    normal they are not negligible in the gradient's (2 sum(p g) + smooth) / den^2, and such a
    sample is outside what the core promises."""
    tiny = np.finfo(dtype).tiny
    n = pred.shape[0]
    with np.errstate(all="ignore"):
        prod = (pred * target).reshape(n, -1)  # in pred's dtype, as the core
        den = (pred + target).reshape(n, -1).sum(axis=1, dtype=np.float64) + float(dtype(smooth))
    flushed = ((prod != 0) & (np.abs(prod) < tiny)).any(axis=1)
    return not np.any(flushed & (den < np.sqrt(tiny)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dice_tiny_denominator(dtype):
    # den^2 below the smallest normal (it used to flush to 0, a NaN gradient): d/dp_0 of
    # 1 - 2 p_0 g_0 / (p_0 + g_0) at p = 0 is -2, whatever the size of g_0.
    g0 = 1e-20 if dtype == np.float32 else 1e-155
    pred, target = np.zeros((1, 2), dtype), np.array([[g0, 0.0]], dtype)
    for backend in (_core, R):
        np.testing.assert_allclose(
            backend.dice_backward(pred, target, 0.0, "mean"),
            [[-2.0, 0.0]],
            rtol=1e-6,
            err_msg=backend.__name__,
        )
    compare("dice_backward", [pred, target], {"smooth": 0.0, "reduction": "mean"}, dtype)


# ---- dense layer and matmul ---------------------------------------------------------------

ACTIVATIONS = ["none", *ACTIVATION_NAMES]


@_fuzz("test_dense")
@given(
    DTYPES,
    SIDE,
    st.integers(1, 20),
    st.integers(1, 20),
    st.sampled_from(ACTIVATIONS),
    st.sampled_from([0.0, 0.01, 0.3]),
    st.data(),
)
def test_dense(dtype, n, fin, fout, act, alpha, data):
    mag = data.draw(st.sampled_from([1.0, 1e3]))
    x = data.draw(arrays(dtype, (n, fin), lo=-mag, hi=mag, tiny=False))
    w = data.draw(arrays(dtype, (fout, fin), lo=-mag, hi=mag, tiny=False))
    b = data.draw(arrays(dtype, (fout,), lo=-mag, hi=mag, tiny=False))
    a = compare("dense_forward", [x, w, b, act, alpha], {}, dtype)
    if a is None:
        return
    a = np.asarray(a, dtype)
    dout = data.draw(arrays(dtype, (n, fout), lo=-mag, hi=mag, tiny=False))
    compare("dense_backward", [dout, x, w, a, act, alpha], {}, dtype, terms=vjp_terms(act, a, dout))


@_fuzz("test_matmul")
@given(
    DTYPES,
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 40),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_matmul(dtype, m, n, k, ta, tb, data):
    a = data.draw(arrays(dtype, (k, m) if ta else (m, k), lo=-1e3, hi=1e3))
    b = data.draw(arrays(dtype, (n, k) if tb else (k, n), lo=-1e3, hi=1e3))
    compare("matmul", [a, b, ta, tb], {}, dtype)


# ---- optimizers ---------------------------------------------------------------------------

# Scalars are 0 or normal numbers in float32 too: the core flushes denormals (a beta of
# 1e-45 is 0 there, and 0 * Inf is NaN where the twin has Inf).
LR = st.sampled_from([0.0, 1e-3, 0.1, 1.0]) | st.floats(1e-30, 10)
RATE = st.sampled_from([0.0, 0.9, 0.999]) | st.floats(1e-30, 0.9999)


@st.composite
def buffers(draw, count, positive=()):
    dtype = draw(DTYPES)
    n = draw(st.integers(1, 70))
    out = []
    for i in range(count):
        lo = 0.0 if i in positive else -1e6
        out.append(draw(arrays(dtype, (n,), lo=lo)))
    return dtype, out


@_fuzz("test_sgd_family")
@given(
    buffers(3, positive=(2,)),
    LR,
    RATE,
    st.sampled_from(["ema", "heavy_ball"]),
    st.booleans(),
    st.sampled_from(["gd", "momentum", "rmsprop"]),
    st.sampled_from([1e-8, 1e-3, 1.0]),
)
def test_sgd_family(bufs, lr, beta, form, nesterov, rule, eps):
    dtype, (param, grad, state) = bufs
    if rule == "gd":
        compare("gd_update", [param, grad, lr], {}, dtype, inplace=(0, 1))
    elif rule == "momentum":
        compare(
            "momentum_update",
            [param, grad, state, lr, beta, form, nesterov],
            {},
            dtype,
            inplace=(0, 1, 2),
        )
    else:
        compare("rmsprop_update", [param, grad, state, lr, beta, eps], {}, dtype, inplace=(0, 1, 2))


@_fuzz("test_adam")
@given(
    buffers(4, positive=(3,)),
    LR,
    RATE,
    RATE,
    st.sampled_from([1e-8, 1e-3, 1.0]),
    st.sampled_from([1, 2, 10, 10**6]) | st.integers(1, 10**4),
    st.sampled_from([0.0, 0.01, 0.5]),
    st.booleans(),
)
def test_adam(bufs, lr, beta1, beta2, eps, t, wd, decoupled):
    dtype, (param, grad, m, v) = bufs
    if decoupled:
        compare(
            "adamw_update",
            [param, grad, m, v, lr, beta1, beta2, eps, t, wd],
            {},
            dtype,
            inplace=(0, 1, 2, 3),
        )
    else:
        compare(
            "adam_update",
            [param, grad, m, v, lr, beta1, beta2, eps, t],
            {},
            dtype,
            inplace=(0, 1, 2, 3),
        )


@_fuzz("test_norms_and_decay")
@given(
    buffers(2),
    st.sampled_from([0.0, 1e-4, 0.5]) | st.floats(1e-30, 10),
    st.sampled_from([1e-3, 1.0, 1e6]) | st.floats(1e-6, 1e6),
)
def test_norms_and_decay(bufs, wd, max_norm):
    dtype, (grad, param) = bufs
    compare("add_weight_decay", [grad, param, wd], {}, dtype, inplace=(0, 1))
    compare("global_norm", [grad], {}, dtype)
    compare("clip_by_global_norm", [grad, max_norm], {}, dtype, inplace=(0,))


# ---- bad input: the same exception type from both ---------------------------------------------

F2 = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
BAD_VALUES = [
    np.ones((2, 0)),
    np.ones((3, 2)),
    np.ones(6),
    np.array(1.0),
    np.array(["a"]),
    np.ones((2, 3), np.complex64),
    np.array([0, 1]),
    np.array([-1, 5]),
    "x",
    None,
    np.array([[np.nan] * 3] * 2),
    np.ones((2, 3), bool),
]
BAD_SCALARS = [-1.0, 0.0, 1.0, 1.5, float("nan"), float("inf"), "mean", "avg", -0.5, 2]
ADAM_HYPER = (0.1, 0.9, 0.999, 1e-8, 1)  # lr, beta1, beta2, eps, t


def _flat(k):
    """k fresh flat copies of F2: an optimizer's params and grads."""
    return [F2.ravel().copy() for _ in range(k)]


def _zeros(k):
    """k fresh zeroed optimizer state buffers of F2's size."""
    return [np.zeros(6, np.float32) for _ in range(k)]


@_fuzz("test_bad_input_raises_the_same_exception")
@given(st.sampled_from(sorted(n for n in R.__all__ if n[0].islower())), st.data())
def test_bad_input_raises_the_same_exception(name, data):
    # A valid call with one argument replaced by something odd; either both accept it (and
    # agree) or both raise the same type.
    valid = {
        "matmul": [F2, F2.T],
        "global_norm": [F2],
        "dense_forward": [F2, F2, np.ones(2, np.float32), "relu", 0.01],
        "dense_backward": [F2[:, :2], F2, F2[::-1].copy(), F2[:, :2], "tanh", 0.01],
        "gd_update": [*_flat(2), 0.1],
        "momentum_update": [*_flat(2), *_zeros(1), 0.1, 0.9, "ema", False],
        "rmsprop_update": [*_flat(2), *_zeros(1), 0.1, 0.9, 1e-8],
        "adam_update": [*_flat(2), *_zeros(2), *ADAM_HYPER],
        "adamw_update": [*_flat(2), *_zeros(2), *ADAM_HYPER, 0.01],
        "add_weight_decay": [*_flat(2), 0.1],
        "clip_by_global_norm": [*_flat(1), 1.0],
    }
    if name in valid:
        args = valid[name]
    elif name.startswith(("hinge", "squared_hinge")):
        args = [F2[:, 0].copy(), np.array([1.0, -1.0], np.float32), "mean"]
    elif name.startswith(("cross_entropy", "binary_cross")):
        args = (
            [F2, np.array([0, 2])]
            if name.startswith("cross")
            else [F2[:, 0].copy(), F2[:, 1].copy()]
        )
    elif name.endswith(("_forward", "_backward")) and name.split("_")[0] in (
        "l1",
        "l2",
        "huber",
        "dice",
    ):
        args = [F2, F2[::-1].copy()]
    else:  # activations
        args = [F2] if name.endswith("forward") else [F2, F2]
    args = list(args)
    if name.startswith("dense") and data.draw(
        st.booleans()
    ):  # a second fault: both report the same first
        args[1 if name.endswith("forward") else 2] = F2[:, :2].copy()  # w of the wrong width
    i = data.draw(st.integers(0, len(args) - 1))
    args[i] = data.draw(st.sampled_from(BAD_VALUES + BAD_SCALARS))
    inplace = tuple(j for j, a in enumerate(args) if isinstance(a, np.ndarray))
    compare(
        name,
        args,
        {},
        np.float32,
        inplace=inplace if name.endswith(("update", "decay", "norm")) else (),
    )


# ---- the training core: Network, LossSpec, UpdateRule -----------------------------------


@st.composite
def networks(draw):
    """A random small ops list: dense layers (any activation) and lone activation ops."""
    width = draw(st.integers(1, 6))
    ops, first = [], width
    for _ in range(draw(st.integers(1, 4))):
        act = draw(st.sampled_from(ACTIVATIONS))
        alpha = draw(st.sampled_from([0.0, 0.01, 0.3])) if act == "leaky_relu" else 0.0
        if draw(st.integers(0, 3)) or not ops:
            out = draw(st.integers(1, 6))
            ops.append(("dense", width, out, act, alpha))
            width = out
        else:
            ops.append(("act", width, width, act, alpha))
    return ops, first, width


def _targets(draw, loss, n, out, dtype):
    """Targets the loss accepts for an output of width out, or None if it has none."""
    if loss in ("cross_entropy", "hinge", "squared_hinge") and out > 1:
        return draw(hnp.arrays(np.int64, n, elements=st.integers(0, out - 1)))
    if loss == "cross_entropy":
        return None
    if loss in ("hinge", "squared_hinge"):
        return draw(hnp.arrays(dtype, (n, 1), elements=st.sampled_from([-1.0, 1.0])))
    if loss == "binary_cross_entropy":
        return (
            None
            if out != 1
            else draw(arrays(dtype, (n, 1), lo=0.0, hi=1.0, specials=False, tiny=False))
        )
    lo = 0.0 if loss == "dice" else -10.0
    return draw(
        arrays(
            dtype, (n, out), lo=lo, hi=1.0 if loss == "dice" else 10.0, specials=False, tiny=False
        )
    )


def network_kappa(ref_net):
    """How many ulps a network's backward may differ by, from its reference forward.

    Backward reads f' off each layer's stored output a: 1 - a^2 (tanh) and a (1 - a) (sigmoid)
    lose digits as a saturates, so a 1-ulp difference between the backends' forward values
    (each tanh/exp within an ulp or two of exact, not the same ulp) grows by 2|a| / (1 - a^2)
    resp. |1 - 2a| / (1 - a); 8 ulps of forward difference per such factor, summed over layers.
    """
    kappa = 0.0
    for (_, _, _, act, _), (*_, a) in zip(ref_net.ops, ref_net._local.cache):
        a = np.abs(np.asarray(a, np.float64))
        a = a[np.isfinite(a)]
        if act == "tanh" and a.size:
            kappa += 8 * float(np.max(2 * a / np.maximum(1 - a**2, 1e-300)))
        if act == "sigmoid" and a.size:
            kappa += 8 * float(np.max(np.abs(1 - 2 * a) / np.maximum(1 - a, 1e-300)))
    return kappa


def _abs_vjp(act, a, m, alpha):
    """The magnitudes of the terms in f's vector-Jacobian product at output a, from those of
    dout (m): softmax's s (d - sum(d s) / sum(s)) cancels terms of size s |d| (see vjp_terms)."""
    if act == "softmax":
        m = m + m[:, :1]
        return a * (m + (m * a).sum(axis=1, keepdims=True) / a.sum(axis=1, keepdims=True))
    if act == "sigmoid":
        return m * a * (1 - a)
    if act == "tanh":
        return m * (1 - a**2)
    if act in ("relu", "leaky_relu"):
        return m * np.where(a > 0, 1.0, alpha)
    if act == "gelu":
        return m * 1.13  # |gelu'| <= 1.129
    if act == "softplus":
        return m * -np.expm1(-a)
    return m


def network_terms(ref_net, params, dout):
    """The magnitudes of the terms backward cancels, for dx and for the gradients: backward
    run on |dout|, |w|, |x| and the terms' magnitudes (from ref_net's last forward). A result
    that cancels to much less than these carries the rounding of the terms, not of itself."""
    m = np.abs(np.asarray(dout, np.float64))
    grads = [0.0]
    for i in reversed(range(len(ref_net.ops))):
        kind, _, _, act, alpha = ref_net.ops[i]
        cache = ref_net._local.cache[i]  # (x, z, a)
        x, a = (np.abs(np.asarray(v, np.float64)) for v in (cache[0], cache[-1]))
        m = _abs_vjp(act, a, m, alpha)
        if kind == "dense":
            w, _ = ref_net._views(np.abs(np.asarray(params, np.float64)), i)
            grads += [_finite_max(m.T @ x), _finite_max(m.sum(axis=0))]
            m = m @ w
    return _finite_max(m), max(grads)


def _finite_max(v):
    """The largest finite entry (NaN and Inf places are compared as such), 0 if none."""
    v = v[np.isfinite(v)]
    return float(np.max(v)) if v.size else 0.0


@_fuzz("test_network_forward_backward")
@given(networks(), DTYPES, st.integers(1, 9), st.data())
def test_network_forward_backward(net, dtype, n, data):
    ops, fin, fout = net
    nets = [_core.Network(ops), R.Network(ops)]
    size = nets[0].n_params
    assert size == nets[1].n_params and nets[0].n_decay == nets[1].n_decay
    params = data.draw(arrays(dtype, (size,), lo=-2.0, hi=2.0, specials=False, tiny=False))
    x = data.draw(
        arrays(dtype, (n, fin), lo=-3.0, hi=3.0, specials=data.draw(st.booleans()), tiny=False)
    )
    outs = [net.forward(params.copy(), x.copy()) for net in nets]
    assert_agree(np.array(outs[0]), np.array(outs[1]), dtype, f"forward {ops}")
    kappa = network_kappa(nets[1])
    dout = data.draw(arrays(dtype, (n, fout), lo=-3.0, hi=3.0, specials=False, tiny=False))
    grads = [np.full(size, 7.0, dtype) for _ in nets]
    dxs = [net.backward(params.copy(), g, dout.copy()) for net, g in zip(nets, grads)]
    terms_dx, terms_grads = network_terms(nets[1], params, dout)
    assert_agree(np.array(dxs[0]), np.array(dxs[1]), dtype, f"backward dx {ops}", kappa, terms_dx)
    assert_agree(grads[0], grads[1], dtype, f"backward grads {ops}", kappa, terms_grads)


def _nudged(a, rng):
    """a with each entry moved by about an ulp (a zero by an ulp of the largest entry)."""
    scale = np.where(a != 0, np.abs(a), np.max(np.abs(a), initial=0) or 1)
    return (a + np.finfo(a.dtype).eps * scale * rng.choice([-1.0, 1.0], a.shape)).astype(a.dtype)


def epoch_noise(run, params, x, want):
    """How far each output of run(params, x) moves when params and x move by an ulp (the
    largest change over two nudges), or None if a nudge changes how many batches ran. An
    epoch can amplify rounding far beyond its kernels' (RMSProp and Adam turn a gradient that
    is rounding noise around 0 into a step of ~lr with the noise's sign; softmax's VJP near a
    uniform output cancels), and two backends' roundings differ by as much as a nudge's."""
    rng = np.random.default_rng(0)
    noise = np.zeros(len(want))
    for _ in range(2):
        got = run(_nudged(params, rng), _nudged(x, rng))
        if got[0].shape != want[0].shape:
            return None
        for k, (g, w) in enumerate(zip(got, want)):
            with np.errstate(all="ignore"):
                noise[k] = max(noise[k], _finite_max(np.abs(np.asarray(g, np.float64) - w)))
    return noise


@_fuzz("test_network_train_epoch")
@given(
    networks(),
    DTYPES,
    st.integers(1, 12),
    st.integers(1, 5),
    st.sampled_from([name for name, _ in LOSSES]),
    st.sampled_from([name for name, _ in RULES]),
    st.data(),
)
def test_network_train_epoch(net, dtype, n, batch, loss, rule, data):
    ops, fin, fout = net
    y = _targets(data.draw, loss, n, fout, dtype)
    assume(y is not None)
    nets = [_core.Network(ops), R.Network(ops)]
    size = nets[0].n_params
    params = data.draw(arrays(dtype, (size,), lo=-1.0, hi=1.0, specials=False, tiny=False))
    x = data.draw(arrays(dtype, (n, fin), lo=-2.0, hi=2.0, specials=False, tiny=False))
    order = np.asarray(data.draw(st.permutations(range(n))), np.int64)
    lr = data.draw(st.sampled_from([0.0, 1e-3, 0.05]))
    opts = {
        "weight_decay": data.draw(st.sampled_from([0.0, 0.01])),
        "clip_norm": data.draw(st.sampled_from([0.0, 0.5, 10.0])),
    }
    if rule == "momentum":
        opts["form"] = data.draw(st.sampled_from(["ema", "heavy_ball"]))
        opts["nesterov"] = opts["form"] == "heavy_ball" and data.draw(st.booleans())
    spec_opts = {
        "delta": data.draw(st.sampled_from([0.5, 1.0])),
        "smooth": 1e-6,
        "from_logits": data.draw(st.booleans()) if loss.endswith("cross_entropy") else True,
    }
    t0 = data.draw(st.integers(0, 5))
    nets[1].forward(params, x)  # the conditioning of this batch's backward, at the start
    kappa = network_kappa(nets[1])

    def epoch(mod, net, params, x):
        p = params.copy()
        g, s1, s2 = (np.zeros(size, dtype) for _ in range(3))
        losses = net.train_epoch(
            p,
            g,
            s1,
            s2,
            x.copy(),
            y.copy(),
            order.copy(),
            batch,
            lr,
            t0,
            mod.LossSpec(loss, **spec_opts),
            mod.UpdateRule(rule, **opts),
        )
        return np.asarray(losses), p, s1, s2

    results = [epoch(_core, nets[0], params, x), epoch(R, nets[1], params, x)]
    noise = epoch_noise(lambda p, x: epoch(R, R.Network(ops), p, x), params, x, results[1])
    assume(noise is not None)
    where = f"train_epoch {ops} {loss} {rule} {opts}"
    for k, (got, want) in enumerate(zip(*results)):
        assert_agree(got, want, dtype, f"{where} output {k}", kappa, noise=4 * noise[k])
