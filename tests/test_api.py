"""The public functional API (pycvnn.activations, pycvnn.losses, pycvnn.neuron) on each backend:
values against the reference, the dtype rules, reductions, loss objects, backend switching,
and every bad input (exception type and the argument named in the message)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from nethelpers import ACTIVATION_NAMES, activation_kwargs

import pycvnn
from pycvnn import _core
from pycvnn import activations as A
from pycvnn import losses as L
from pycvnn import reference as R

BACKENDS = ["numpy", "cpp"]
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
REDUCTIONS = ["none", "mean", "sum"]
KERNEL = {"mse": "l2"}  # public name -> kernel family, where they differ


def needs(backend, *kernels):
    """Skip on the cpp backend while pycvnn._core lacks one of the kernels."""
    missing = [k for k in kernels if backend == "cpp" and not hasattr(_core, k)]
    if missing:
        pytest.skip(f"pycvnn._core has no {', '.join(missing)} yet (compiled kernel not written)")


@pytest.fixture(params=BACKENDS)
def backend(request):
    with pycvnn.using_backend(request.param):
        yield request.param


def close(got, want, dtype):
    """The backends' tolerance: rtol 1e-4 / 1e-10 plus an atol scaled by the largest reference magnitude."""
    scale = float(np.max(np.abs(want))) if np.size(want) else 0.0
    atol = (1e-6 if dtype == np.float32 else 1e-12) * scale
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=atol)


# ---- activations -----------------------------------------------------------------------------

ACTIVATIONS = [(name, activation_kwargs(name, 0.2)) for name in ACTIVATION_NAMES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activation_values_match_reference(backend, name, kw, dtype):
    needs(backend, f"{name}_forward", f"{name}_backward")
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((5, 7)) * 3).astype(dtype)
    z[0, 0] = 0.0
    dout = rng.standard_normal((5, 7)).astype(dtype)
    out = getattr(A, name)(z, **kw)
    assert out.dtype == dtype and out.shape == z.shape
    close(out, getattr(R, f"{name}_forward")(z, **kw), dtype)
    grad = getattr(A, f"{name}_backward")(z, dout, **kw)
    assert grad.dtype == dtype and grad.shape == z.shape
    close(grad, getattr(R, f"{name}_backward")(z, dout, **kw), dtype)


@pytest.mark.parametrize("in_dtype", [np.int64, np.int32, np.bool_, np.float16])
@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activation_other_numeric_becomes_float32(backend, name, kw, in_dtype):
    needs(backend, f"{name}_forward", f"{name}_backward")
    z = np.array([[0, 1, 2], [1, 0, 1]]).astype(in_dtype)
    assert getattr(A, name)(z, **kw).dtype == np.float32
    assert getattr(A, f"{name}_backward")(z, np.ones(z.shape, np.float64), **kw).dtype == np.float32


def test_activation_plain_lists_and_derivatives_at_zero(backend):
    needs(backend, "relu_backward", "leaky_relu_backward", "softmax_forward")
    np.testing.assert_array_equal(A.relu_backward([0.0, 1.0], [1.0, 1.0]), [0.0, 1.0])
    np.testing.assert_allclose(
        A.leaky_relu_backward([0.0, -1.0], [1.0, 1.0], alpha=0.3), [0.3, 0.3]
    )
    np.testing.assert_allclose(
        A.softmax([1, 2, 3]), [0.09003057, 0.24472847, 0.66524096], rtol=1e-6
    )


def test_activation_fortran_and_strided_inputs(backend):
    needs(backend, "softmax_forward", "tanh_backward")
    z = np.asfortranarray(np.random.default_rng(1).standard_normal((4, 6)))
    close(A.softmax(z), R.softmax_forward(np.ascontiguousarray(z)), np.float64)
    close(
        A.tanh_backward(z[:, ::2], z[:, 1::2]),
        R.tanh_backward(np.ascontiguousarray(z[:, ::2]), np.ascontiguousarray(z[:, 1::2])),
        np.float64,
    )


def test_activation_get(backend):
    needs(backend, "relu_forward", "relu_backward")
    relu = A.get("relu")
    assert relu.name == "relu"
    np.testing.assert_array_equal(relu([-1.0, 2.0]), A.relu([-1.0, 2.0]))
    np.testing.assert_array_equal(relu.backward([-1.0, 2.0], [3.0, 3.0]), [0.0, 3.0])
    assert {n: A.get(n).forward for n, _ in ACTIVATIONS} == {
        n: getattr(A, n) for n, _ in ACTIVATIONS
    }
    with pytest.raises(ValueError, match=r"name: expected one of .*'relu'.*got 'swish'"):
        A.get("swish")


# ---- losses ----------------------------------------------------------------------------------


def elementwise(rng):
    return rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))


def ce_ids(rng, logits=True):
    z = rng.standard_normal((5, 4)) * 2
    return (z if logits else R.softmax_forward(z)), rng.integers(0, 4, size=5)


def ce_probs(rng, logits=True):
    z = rng.standard_normal((5, 4)) * 2
    return (z if logits else R.softmax_forward(z)), rng.dirichlet(np.ones(4), size=5)


def bce(shape, logits):
    def make(rng):
        pred = rng.standard_normal(shape) * 2 if logits else rng.uniform(0.01, 0.99, shape)
        return pred, rng.uniform(0, 1, shape)

    return make


def hinge_binary(shape):
    return lambda rng: (rng.standard_normal(shape) * 2, rng.choice([-1.0, 1.0], size=shape))


def hinge_multi(rng):
    return rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, size=6)


def dice_masks(rng):
    return rng.uniform(0, 1, (3, 2, 4)), (rng.uniform(size=(3, 2, 4)) > 0.5).astype(float)


# (public name, options, make(rng) -> float64 pred and target)
LOSSES = [
    ("l1", {}, elementwise),
    ("l2", {}, elementwise),
    ("mse", {}, elementwise),
    ("huber", {"delta": 0.5}, elementwise),
    ("cross_entropy", {"from_logits": True}, ce_ids),
    ("cross_entropy", {"from_logits": True}, ce_probs),
    ("cross_entropy", {"from_logits": False}, lambda rng: ce_ids(rng, logits=False)),
    ("cross_entropy", {"from_logits": False}, lambda rng: ce_probs(rng, logits=False)),
    ("binary_cross_entropy", {"from_logits": True}, bce((6,), True)),
    ("binary_cross_entropy", {"from_logits": True}, bce((6, 1), True)),
    ("binary_cross_entropy", {"from_logits": False}, bce((6,), False)),
    ("hinge", {}, hinge_binary((6,))),
    ("hinge", {}, hinge_binary((6, 1))),
    ("hinge", {}, hinge_multi),
    ("squared_hinge", {}, hinge_binary((6,))),
    ("squared_hinge", {}, hinge_multi),
    ("dice", {"smooth": 1e-6}, dice_masks),
    ("dice", {"smooth": 1.0}, dice_masks),
]
LOSS_IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(LOSSES)]
PER_SAMPLE = {"cross_entropy", "binary_cross_entropy", "hinge", "squared_hinge", "dice"}


def loss_inputs(make, dtype, seed=0):
    pred, target = make(np.random.default_rng(seed))
    return pred.astype(dtype), (target.astype(dtype) if target.dtype.kind == "f" else target)


def kernels(name):
    k = KERNEL.get(name, name)
    return f"{k}_forward", f"{k}_backward"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,opts,make", LOSSES, ids=LOSS_IDS)
def test_loss_values_match_reference(backend, name, opts, make, reduction, dtype):
    fwd, bwd = kernels(name)
    needs(backend, fwd, bwd)
    pred, target = loss_inputs(make, dtype)
    value = getattr(L, name)(pred, target, **opts, reduction=reduction)
    want = getattr(R, fwd)(pred, target, **opts, reduction=reduction)
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == dtype and value.shape == want.shape
    else:
        assert type(value) is float
    close(value, want, dtype)
    grad = getattr(L, f"{name}_grad")(pred, target, **opts, reduction=reduction)
    assert grad.dtype == dtype and grad.shape == pred.shape
    close(grad, getattr(R, bwd)(pred, target, **opts, reduction=reduction), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,opts,make", LOSSES, ids=LOSS_IDS)
def test_loss_reductions_relate(backend, name, opts, make, dtype):
    needs(backend, *kernels(name))
    pred, target = loss_inputs(make, dtype, seed=1)
    f, g = getattr(L, name), getattr(L, f"{name}_grad")
    none = f(pred, target, **opts, reduction="none")
    count = pred.shape[0] if name in PER_SAMPLE else pred.size
    assert none.shape == ((pred.shape[0],) if name in PER_SAMPLE else pred.shape)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    assert f(pred, target, **opts) == pytest.approx(
        float(none.mean()), rel=rel, abs=1e-7
    )  # mean by default
    assert f(pred, target, **opts, reduction="sum") == pytest.approx(
        float(none.sum()), rel=rel, abs=1e-6
    )
    g_sum = g(pred, target, **opts, reduction="sum")
    np.testing.assert_allclose(g(pred, target, **opts, reduction="none"), g_sum, rtol=RTOL[dtype])
    np.testing.assert_allclose(g(pred, target, **opts), g_sum / count, rtol=RTOL[dtype], atol=1e-12)


@pytest.mark.parametrize("in_dtype", [np.int64, np.int32, np.bool_, np.float16])
@pytest.mark.parametrize("name,opts,make", LOSSES, ids=LOSS_IDS)
def test_loss_other_numeric_pred_becomes_float32(backend, name, opts, make, in_dtype):
    needs(backend, *kernels(name))
    pred, target = loss_inputs(make, np.float64)
    if name in ("dice",) or not opts.get("from_logits", True):
        pred = (pred > 0.5).astype(in_dtype)  # probabilities: 0/1 values stay valid
    else:
        pred = np.round(pred).astype(in_dtype)
    grad = getattr(L, f"{name}_grad")(pred, target, **opts, reduction="none")
    assert grad.dtype == np.float32 and grad.shape == pred.shape
    assert getattr(L, name)(pred, target, **opts, reduction="none").dtype == np.float32


@pytest.mark.parametrize(
    "pred_dtype,target_dtype",
    [(np.float32, np.float64), (np.float64, np.float32), (np.float32, np.int64)],
)
def test_target_is_cast_to_pred_dtype(backend, pred_dtype, target_dtype):
    needs(backend, "l2_backward", "cross_entropy_backward")
    pred = np.arange(6).reshape(2, 3).astype(pred_dtype)
    assert L.l2_grad(pred, np.ones((2, 3), target_dtype)).dtype == pred_dtype
    onehot = np.eye(3, dtype=target_dtype)[[0, 2]]
    assert L.cross_entropy_grad(pred, onehot).dtype == pred_dtype


def test_float_class_ids_that_are_integral_are_accepted(backend):
    needs(backend, "cross_entropy_forward", "hinge_forward")
    z = np.random.default_rng(2).standard_normal((3, 4))
    assert L.cross_entropy(z, np.array([0.0, 3.0, 1.0])) == L.cross_entropy(z, np.array([0, 3, 1]))
    assert L.hinge(z, np.array([2.0, 0.0, 1.0])) == L.hinge(z, np.array([2, 0, 1]))


def test_hinge_maps_zero_one_targets(backend):
    needs(backend, "hinge_forward", "squared_hinge_backward")
    s = np.array([0.5, -2.0, 0.3, 1.5])
    t01 = np.array([1, 0, 0, 1])
    assert L.hinge(s, t01) == L.hinge(s, 2.0 * t01 - 1)
    assert L.hinge(s, t01) == pytest.approx((0.5 + 0 + 1.3 + 0) / 4)
    np.testing.assert_array_equal(
        L.squared_hinge_grad(s, t01), L.squared_hinge_grad(s, 2.0 * t01 - 1)
    )


def test_loss_values_by_hand(backend):
    needs(
        backend,
        "huber_forward",
        "dice_forward",
        "cross_entropy_forward",
        "binary_cross_entropy_forward",
    )
    assert L.huber([0.5, -3.0], [0.0, 0.0], reduction="sum") == pytest.approx(0.125 + 2.5)
    assert L.dice([[1.0, 1.0, 0.0, 0.0]], [[1, 0, 1, 0]], smooth=0.0) == pytest.approx(0.5)
    assert L.cross_entropy(np.zeros((2, 5)), [1, 4]) == pytest.approx(np.log(5), rel=1e-6)
    assert L.binary_cross_entropy([0.8], [1.0], from_logits=False) == pytest.approx(
        -np.log(0.8), rel=1e-6
    )
    assert L.cross_entropy([[1000.0, 0.0]], [1]) == pytest.approx(1000.0)


def test_dice_all_zero_sample_with_no_smoothing_is_zero(backend):
    needs(backend, "dice_forward", "dice_backward")
    pred, mask = np.array([[0.0, 0.0], [0.5, 0.5]]), np.array([[0.0, 0.0], [1.0, 0.0]])
    # sample 0 is 0/0: loss 0, gradient 0; sample 1: 1 - 2*0.5 / (1 + 1) = 0.5
    np.testing.assert_allclose(L.dice(pred, mask, smooth=0.0, reduction="none"), [0.0, 0.5])
    grad = L.dice_grad(pred, mask, smooth=0.0, reduction="sum")
    np.testing.assert_array_equal(grad[0], [0.0, 0.0])
    assert np.all(np.isfinite(grad))


def test_loss_fortran_and_strided_inputs(backend):
    needs(backend, "l1_forward", "cross_entropy_backward")
    z = np.asfortranarray(np.random.default_rng(3).standard_normal((5, 8)))
    assert L.l1(z[:, ::2], z[:, 1::2]) == pytest.approx(
        float(np.mean(np.abs(z[:, ::2] - z[:, 1::2])))
    )
    ids = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])[::2]
    close(
        L.cross_entropy_grad(z, ids),
        R.cross_entropy_backward(np.ascontiguousarray(z), ids),
        np.float64,
    )


# ---- loss objects and get ----------------------------------------------------------------------

CLASSES = [
    (L.L1, "l1", {}),
    (L.L2, "l2", {}),
    (L.Huber, "huber", {"delta": 2.0}),
    (L.CrossEntropy, "cross_entropy", {"from_logits": False}),
    (L.BinaryCrossEntropy, "binary_cross_entropy", {"from_logits": True}),
    (L.Hinge, "hinge", {}),
    (L.SquaredHinge, "squared_hinge", {}),
    (L.Dice, "dice", {"smooth": 0.5}),
]
CLASS_INPUTS = {
    "l1": elementwise,
    "l2": elementwise,
    "huber": elementwise,
    "cross_entropy": lambda rng: ce_ids(rng, logits=False),
    "binary_cross_entropy": bce((5,), True),
    "hinge": hinge_multi,
    "squared_hinge": hinge_binary((5,)),
    "dice": dice_masks,
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cls,name,opts", CLASSES, ids=[c[1] for c in CLASSES])
def test_loss_classes_and_get(backend, cls, name, opts, reduction):
    needs(backend, *kernels(name))
    pred, target = loss_inputs(CLASS_INPUTS[name], np.float64)
    loss = cls(**opts, reduction=reduction)
    assert loss.name == name and name in repr(loss).lower().replace(
        "binarycrossentropy", "binary_cross_entropy"
    ).replace("crossentropy", "cross_entropy").replace("squaredhinge", "squared_hinge")
    f, g = getattr(L, name), getattr(L, f"{name}_grad")
    np.testing.assert_array_equal(loss(pred, target), f(pred, target, **opts, reduction=reduction))
    np.testing.assert_array_equal(
        loss.grad(pred, target), g(pred, target, **opts, reduction=reduction)
    )
    got = L.get(name, **opts, reduction=reduction)
    assert type(got) is cls and got.name == name
    np.testing.assert_array_equal(got(pred, target), loss(pred, target))
    assert L.get(loss) is loss


def test_loss_get_aliases_and_defaults():
    assert L.MSE is L.L2 and type(L.get("mse")) is L.L2
    assert L.get("huber").options == {"delta": 1.0} and L.get("huber", delta=3.0).options == {
        "delta": 3.0
    }
    assert L.get("cross_entropy").reduction == "mean"
    assert L.mse is L.l2 and L.mse_grad is L.l2_grad


def test_loss_get_unknown_name_lists_known_names():
    with pytest.raises(
        ValueError, match=r"name: expected one of \[.*'cross_entropy'.*'huber'.*\], got 'bogus'"
    ):
        L.get("bogus")
    with pytest.raises(ValueError, match="name"):
        L.get(None)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: L.Huber(delta=0.0), ValueError, "delta"),
        (lambda: L.Huber(delta=-1.0), ValueError, "delta"),
        (lambda: L.get("huber", delta="big"), TypeError, "delta"),
        (lambda: L.Dice(smooth=-0.1), ValueError, "smooth"),
        (lambda: L.CrossEntropy(from_logits="yes"), TypeError, "from_logits"),
        (lambda: L.L1(reduction="avg"), ValueError, "reduction"),
        (lambda: L.get("l1", reduction="max"), ValueError, "reduction"),
        (lambda: L.get(L.L1(), reduction="sum"), ValueError, "options"),
    ],
)
def test_loss_objects_validate_options_at_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# ---- neuron ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_neuron(backend, dtype):
    needs(backend, "dense_forward")
    x, w, b = np.array([1.0, 2.0], dtype), np.array([0.5, -0.25], dtype), 0.5
    # w·x + b = 0.5 - 0.5 + 0.5 = 0.5
    out = pycvnn.neuron(x, w, b)
    assert type(out) is float and out == pytest.approx(1 / (1 + np.exp(-0.5)), rel=RTOL[dtype])
    assert pycvnn.neuron(x, w, b, activation="none") == pytest.approx(0.5)
    assert pycvnn.neuron(x, w, -1.0, activation="relu") == 0.0
    X = np.stack([x, -x, 2 * x])
    batch = pycvnn.neuron(X, w, b, activation="tanh")
    assert batch.shape == (3,) and batch.dtype == dtype
    close(batch, np.tanh(X.astype(np.float64) @ w + b), dtype)
    assert (
        pycvnn.neuron([1, 2], [1, 1], np.array([0.0]), activation="none") == 3.0
    )  # ints -> float32


# ---- backend switching -------------------------------------------------------------------------


def test_using_backend_restores_previous():
    before = pycvnn.get_backend()
    with pycvnn.using_backend("numpy"):
        assert pycvnn.get_backend() == "numpy"
        with pycvnn.using_backend("cpp"):
            assert pycvnn.get_backend() == "cpp"
        assert pycvnn.get_backend() == "numpy"
    assert pycvnn.get_backend() == before


def test_using_backend_restores_after_an_exception():
    before = pycvnn.get_backend()
    pycvnn.set_backend("cpp")
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with pycvnn.using_backend("numpy"):
                raise RuntimeError("boom")
        assert pycvnn.get_backend() == "cpp"
        with pytest.raises(ValueError):
            with pycvnn.using_backend("numpy"):
                L.l1([1.0], [1.0, 2.0])
        assert pycvnn.get_backend() == "cpp"
    finally:
        pycvnn.set_backend(before)


def test_set_backend_rejects_unknown_names():
    before = pycvnn.get_backend()
    with pytest.raises(
        ValueError, match=r"backend: expected one of \['cpp', 'numpy'\], got 'bogus'"
    ):
        pycvnn.set_backend("bogus")
    with pytest.raises(ValueError, match="backend"):
        with pycvnn.using_backend("torch"):
            pass
    assert pycvnn.get_backend() == before


def test_public_functions_use_the_current_backend(monkeypatch):
    calls, original = [], R.sigmoid_forward

    def spy(z):
        calls.append(z.dtype)
        return original(z)

    monkeypatch.setattr(R, "sigmoid_forward", spy)
    with pycvnn.using_backend("numpy"):
        A.sigmoid([1, 2])
    assert calls == [np.float32]  # validated (ints -> float32) before the kernel saw it


# ---- bad input: each a TypeError/ValueError naming the argument ---------------------------------

Z = np.ones((2, 3))
NAN = np.array([[1.0, np.nan, 0.0], [0.0, 1.0, 0.0]])
INF = np.array([[1.0, np.inf, 0.0], [0.0, 1.0, 0.0]])
IDS = np.array([0, 2])
P = np.full((2, 3), 1 / 3)

BAD = [
    # activations
    (
        "z strings",
        lambda: A.sigmoid(np.array(["a", "b"])),
        TypeError,
        r"z: expected a real numeric",
    ),
    ("z None", lambda: A.tanh(None), TypeError, "z"),
    ("z complex", lambda: A.relu(np.ones(3, complex)), TypeError, "z"),
    (
        "z empty",
        lambda: A.sigmoid(np.zeros((0, 3))),
        ValueError,
        r"z: expected a non-empty array, got shape \(0, 3\)",
    ),
    ("z ragged", lambda: A.sigmoid([[1.0, 2.0], [3.0]]), ValueError, "z"),
    (
        "z nan",
        lambda: A.sigmoid(NAN),
        ValueError,
        r"z: expected finite values, got nan at index \(0, 1\)",
    ),
    ("z inf", lambda: A.softmax(INF), ValueError, r"z: expected finite values, got inf"),
    (
        "dout shape",
        lambda: A.sigmoid_backward(Z, np.ones((3, 2))),
        ValueError,
        r"dout: expected shape \(2, 3\) \(the shape of z\), got \(3, 2\)",
    ),
    ("dout broadcast", lambda: A.relu_backward(Z, np.ones(3)), ValueError, "dout"),
    ("dout strings", lambda: A.tanh_backward(Z, np.full((2, 3), "x")), TypeError, "dout"),
    ("dout nan", lambda: A.softmax_backward(Z, NAN), ValueError, "dout"),
    (
        "alpha negative",
        lambda: A.leaky_relu(Z, alpha=-0.1),
        ValueError,
        r"alpha: expected a number >= 0",
    ),
    ("alpha string", lambda: A.leaky_relu_backward(Z, Z, alpha="x"), TypeError, "alpha"),
    ("alpha nan", lambda: A.leaky_relu(Z, alpha=float("nan")), ValueError, "alpha"),
    (
        "softmax 0-d",
        lambda: A.softmax(np.float64(1.0)),
        ValueError,
        r"z: expected at least 1 dimension",
    ),
    ("activation name", lambda: A.get("swish"), ValueError, "name"),
    # elementwise losses
    ("pred strings", lambda: L.l1(np.array(["a"]), np.ones(1)), TypeError, "pred"),
    ("target strings", lambda: L.l2(Z, np.full((2, 3), "a")), TypeError, "target"),
    ("target None", lambda: L.huber(Z, None), TypeError, "target"),
    ("pred empty", lambda: L.l1(np.array([]), np.array([])), ValueError, "pred"),
    ("target empty", lambda: L.l1(Z, np.zeros((0,))), ValueError, "target"),
    ("pred nan", lambda: L.mse(NAN, Z), ValueError, r"pred: expected finite values"),
    ("target nan", lambda: L.l1_grad(Z, NAN), ValueError, r"target: expected finite values"),
    ("target inf", lambda: L.l2_grad(Z, INF), ValueError, "target"),
    (
        "no broadcasting",
        lambda: L.l2(np.ones(3), np.ones((3, 1))),
        ValueError,
        r"target: expected shape \(3,\) \(the shape of pred\), got \(3, 1\)",
    ),
    ("no broadcasting 2", lambda: L.huber_grad(Z, np.ones(3)), ValueError, "target"),
    (
        "reduction unknown",
        lambda: L.l1(Z, Z, reduction="avg"),
        ValueError,
        r"reduction: expected one of \('none', 'mean', 'sum'\), got 'avg'",
    ),
    ("reduction None", lambda: L.mse_grad(Z, Z, reduction=None), ValueError, "reduction"),
    ("reduction on grad", lambda: L.dice_grad(P, P, reduction="max"), ValueError, "reduction"),
    (
        "delta zero",
        lambda: L.huber(Z, Z, delta=0.0),
        ValueError,
        r"delta: expected a number > 0.0, got 0.0",
    ),
    ("delta negative", lambda: L.huber_grad(Z, Z, delta=-1), ValueError, "delta"),
    ("delta nan", lambda: L.huber(Z, Z, delta=float("nan")), ValueError, "delta"),
    ("delta string", lambda: L.huber(Z, Z, delta="1"), TypeError, "delta"),
    # cross-entropy
    (
        "ce pred 1-d",
        lambda: L.cross_entropy(np.ones(3), np.array([0])),
        ValueError,
        r"pred: expected scores of shape \(N, C\), got shape \(3,\)",
    ),
    ("ce pred 3-d", lambda: L.cross_entropy_grad(np.ones((2, 3, 4)), IDS), ValueError, "pred"),
    (
        "ce pred empty",
        lambda: L.cross_entropy(np.zeros((0, 3)), np.zeros(0, int)),
        ValueError,
        "pred",
    ),
    ("ce pred nan", lambda: L.cross_entropy(NAN, IDS), ValueError, "pred"),
    (
        "ce id too big",
        lambda: L.cross_entropy(Z, np.array([0, 3])),
        ValueError,
        r"target: expected class ids in \[0, 3\).*got values in \[0, 3\]",
    ),
    ("ce id negative", lambda: L.cross_entropy_grad(Z, np.array([-1, 0])), ValueError, "target"),
    (
        "ce ids length",
        lambda: L.cross_entropy(Z, np.array([0, 1, 2])),
        ValueError,
        r"target: expected class ids of shape \(2,\)",
    ),
    (
        "ce ids fractional",
        lambda: L.cross_entropy(Z, np.array([0.0, 1.5])),
        ValueError,
        r"target: expected integer class ids, got the non-integral value 1.5",
    ),
    ("ce ids nan", lambda: L.cross_entropy(Z, np.array([0.0, np.nan])), ValueError, "target"),
    ("ce ids strings", lambda: L.cross_entropy(Z, np.array(["cat", "dog"])), TypeError, "target"),
    (
        "ce probs shape",
        lambda: L.cross_entropy(Z, np.full((2, 4), 0.25)),
        ValueError,
        r"target: expected shape \(2, 3\)",
    ),
    (
        "ce probs range",
        lambda: L.cross_entropy(Z, np.array([[1.5, 0, 0], [0, 1, 0]])),
        ValueError,
        r"target: expected probabilities in \[0, 1\]",
    ),
    ("ce target 3-d", lambda: L.cross_entropy(Z, np.ones((2, 3, 1))), ValueError, "target"),
    (
        "ce probs pred range",
        lambda: L.cross_entropy(Z * 2, IDS, from_logits=False),
        ValueError,
        r"pred: expected probabilities \(from_logits=False\) in \[0, 1\]",
    ),
    (
        "ce probs pred negative",
        lambda: L.cross_entropy_grad(-P, IDS, from_logits=False),
        ValueError,
        "pred",
    ),
    (
        "ce from_logits",
        lambda: L.cross_entropy(Z, IDS, from_logits="yes"),
        TypeError,
        "from_logits",
    ),
    ("ce reduction", lambda: L.cross_entropy(Z, IDS, reduction="average"), ValueError, "reduction"),
    # binary cross-entropy
    (
        "bce pred 2 cols",
        lambda: L.binary_cross_entropy(Z, Z),
        ValueError,
        r"pred: expected binary scores of shape \(N,\) or \(N, 1\), got \(2, 3\)",
    ),
    (
        "bce pred 3-d",
        lambda: L.binary_cross_entropy_grad(np.ones((2, 1, 1)), np.ones((2, 1, 1))),
        ValueError,
        "pred",
    ),
    (
        "bce target shape",
        lambda: L.binary_cross_entropy(np.ones(3), np.ones((3, 1))),
        ValueError,
        "target",
    ),
    (
        "bce target range",
        lambda: L.binary_cross_entropy(np.ones(2), np.array([1.0, 2.0])),
        ValueError,
        r"target: expected labels in \[0, 1\]",
    ),
    (
        "bce target negative",
        lambda: L.binary_cross_entropy_grad(np.ones(2), np.array([-1.0, 1.0])),
        ValueError,
        "target",
    ),
    (
        "bce probs pred range",
        lambda: L.binary_cross_entropy(np.array([0.5, 1.2]), np.ones(2), from_logits=False),
        ValueError,
        "pred",
    ),
    (
        "bce from_logits",
        lambda: L.binary_cross_entropy(np.ones(2), np.ones(2), from_logits=1),
        TypeError,
        "from_logits",
    ),
    (
        "bce target nan",
        lambda: L.binary_cross_entropy(np.ones(2), np.array([np.nan, 1.0])),
        ValueError,
        "target",
    ),
    # hinge
    (
        "hinge labels",
        lambda: L.hinge(np.ones(3), np.array([0.5, 1.0, -1.0])),
        ValueError,
        r"target: expected binary labels in \{-1, \+1\} \(or all in \{0, 1\}\), got 0.5",
    ),
    (
        "hinge labels mixed",
        lambda: L.hinge_grad(np.ones(3), np.array([0.0, 1.0, -1.0])),
        ValueError,
        "target",
    ),
    (
        "hinge labels 2",
        lambda: L.squared_hinge(np.ones((3, 1)), np.array([[2.0], [1.0], [1.0]])),
        ValueError,
        "target",
    ),
    ("hinge binary shape", lambda: L.hinge(np.ones((3, 1)), np.ones(3)), ValueError, "target"),
    ("hinge pred 3-d", lambda: L.hinge(np.ones((2, 3, 4)), IDS), ValueError, "pred"),
    (
        "hinge id range",
        lambda: L.hinge(Z, np.array([0, 5])),
        ValueError,
        r"target: expected class ids in \[0, 3\)",
    ),
    ("hinge ids shape", lambda: L.squared_hinge_grad(Z, np.ones((2, 3))), ValueError, "target"),
    ("hinge pred nan", lambda: L.hinge(NAN, IDS), ValueError, "pred"),
    ("hinge reduction", lambda: L.hinge(Z, IDS, reduction="mode"), ValueError, "reduction"),
    # dice
    (
        "dice pred range",
        lambda: L.dice(Z * 2, Z),
        ValueError,
        r"pred: expected probabilities in \[0, 1\]",
    ),
    (
        "dice target range",
        lambda: L.dice(P, P * 4),
        ValueError,
        r"target: expected mask values in \[0, 1\]",
    ),
    ("dice shape", lambda: L.dice(P, np.ones((2, 4))), ValueError, "target"),
    ("dice 0-d", lambda: L.dice(np.float64(0.5), np.float64(0.5)), ValueError, "pred"),
    (
        "dice smooth",
        lambda: L.dice(P, P, smooth=-1e-3),
        ValueError,
        r"smooth: expected a number >= 0.0",
    ),
    ("dice smooth type", lambda: L.dice_grad(P, P, smooth=[1.0]), TypeError, "smooth"),
    ("dice nan", lambda: L.dice_grad(NAN, P), ValueError, "pred"),
    ("loss name", lambda: L.get("focal"), ValueError, "name"),
    # neuron
    (
        "neuron x strings",
        lambda: pycvnn.neuron(np.array(["a", "b"]), np.ones(2), 0.0),
        TypeError,
        "x",
    ),
    ("neuron x 3-d", lambda: pycvnn.neuron(np.ones((1, 2, 2)), np.ones(2), 0.0), ValueError, "x"),
    ("neuron x empty", lambda: pycvnn.neuron(np.ones((0, 2)), np.ones(2), 0.0), ValueError, "x"),
    (
        "neuron x nan",
        lambda: pycvnn.neuron(np.array([np.nan, 1.0]), np.ones(2), 0.0),
        ValueError,
        "x",
    ),
    (
        "neuron w shape",
        lambda: pycvnn.neuron(np.ones((4, 3)), np.ones(2), 0.0),
        ValueError,
        r"w: expected shape \(3,\)",
    ),
    (
        "neuron w nan",
        lambda: pycvnn.neuron(np.ones(2), np.array([np.inf, 1.0]), 0.0),
        ValueError,
        "w",
    ),
    ("neuron b shape", lambda: pycvnn.neuron(np.ones(2), np.ones(2), np.ones(2)), ValueError, "b"),
    ("neuron b string", lambda: pycvnn.neuron(np.ones(2), np.ones(2), "0"), TypeError, "b"),
    ("neuron b nan", lambda: pycvnn.neuron(np.ones(2), np.ones(2), float("nan")), ValueError, "b"),
    (
        "neuron activation",
        lambda: pycvnn.neuron(np.ones(2), np.ones(2), 0.0, activation="swish"),
        ValueError,
        r"activation: expected one of .*got 'swish'",
    ),
]


@pytest.mark.parametrize("what,call,exc,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(backend, what, call, exc, match):
    # Validation runs before the kernel, so this holds on either backend.
    with pytest.raises(exc, match=match):
        call()


# ---- properties ------------------------------------------------------------------------------


def float_arrays(min_dims=1, max_dims=3, lo=-50.0, hi=50.0, min_side=1):
    dtype = st.sampled_from([np.float32, np.float64])
    return dtype.flatmap(
        lambda d: arrays(
            d,
            array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=6),
            elements=st.floats(lo, hi, width=32 if d == np.float32 else 64),
        )
    )


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(z=float_arrays())
def test_prop_softmax_rows_sum_to_one_and_sigmoid_in_unit_interval(backend_name, z):
    needs(backend_name, "softmax_forward", "sigmoid_forward")
    with pycvnn.using_backend(backend_name):
        s = A.softmax(z)
        assert s.dtype == z.dtype and s.shape == z.shape
        np.testing.assert_allclose(
            s.sum(axis=-1), 1.0, rtol=1e-5 if z.dtype == np.float32 else 1e-12
        )
        sig = A.sigmoid(z)
        assert sig.dtype == z.dtype and np.all((sig >= 0) & (sig <= 1))


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(pred=float_arrays(max_dims=2, lo=-20.0, hi=20.0), data=st.data())
def test_prop_elementwise_losses_nonnegative_and_grad_like_pred(backend_name, pred, data):
    needs(
        backend_name,
        "l1_forward",
        "l2_forward",
        "huber_forward",
        "l1_backward",
        "l2_backward",
        "huber_backward",
    )
    target = data.draw(arrays(pred.dtype, pred.shape, elements=st.floats(-20, 20, width=32)))
    with pycvnn.using_backend(backend_name):
        for name in ("l1", "l2", "huber"):
            assert getattr(L, name)(pred, target) >= 0
            assert np.all(getattr(L, name)(pred, target, reduction="none") >= 0)
            g = getattr(L, f"{name}_grad")(pred, target)
            assert g.shape == pred.shape and g.dtype == pred.dtype


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(logits=float_arrays(min_dims=2, max_dims=2, lo=-100.0, hi=100.0, min_side=2), data=st.data())
def test_prop_classification_losses_nonnegative_and_grad_like_pred(backend_name, logits, data):
    needs(
        backend_name,
        "cross_entropy_forward",
        "cross_entropy_backward",
        "hinge_forward",
        "hinge_backward",
        "binary_cross_entropy_forward",
        "binary_cross_entropy_backward",
        "dice_forward",
        "dice_backward",
    )
    n, c = logits.shape
    ids = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    with pycvnn.using_backend(backend_name):
        for f, g, args in [
            (L.cross_entropy, L.cross_entropy_grad, (logits, ids)),
            (L.hinge, L.hinge_grad, (logits, ids)),
            (L.squared_hinge, L.squared_hinge_grad, (logits, ids)),
            (
                L.binary_cross_entropy,
                L.binary_cross_entropy_grad,
                (logits[:, 0], (ids > 0).astype(float)),
            ),
            (
                L.dice,
                L.dice_grad,
                (A.sigmoid(logits), (ids[:, None] == np.arange(c)).astype(float)),
            ),
        ]:
            assert f(*args) >= 0 and np.all(f(*args, reduction="none") >= 0)
            grad = g(*args)
            assert grad.shape == args[0].shape and grad.dtype == args[0].dtype
            assert np.all(np.isfinite(grad))
