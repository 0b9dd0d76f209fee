"""The NumPy twin (pycvnn.reference) against the math: central finite differences in float64,
values worked by hand, stability at |z| = 1000, optimizer steps by hand, dtype rules."""

import warnings

import numpy as np
import pytest
from nethelpers import ACTIVATION_NAMES, activation_kwargs

from pycvnn import reference as R

REDUCTIONS = ["none", "mean", "sum"]


# ---- finite-difference helpers --------------------------------------------------------------


def numgrad(f, x, h=1e-6):
    """Central differences of the scalar f at x (float64), element by element."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def assert_grad(analytic, f, x):
    assert analytic.shape == np.shape(x) and analytic.dtype == np.float64
    np.testing.assert_allclose(analytic, numgrad(f, x), rtol=1e-6, atol=1e-8)


def as_scalar(out):
    """A loss value as one number: "none" arrays are summed (their backward is of the sum)."""
    return float(np.sum(out))


# ---- activations ----------------------------------------------------------------------------


def away_from_zero(rng, shape, gap=0.05):
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < gap, gap * np.sign(z) + gap, z)  # no kink within h


ACTIVATIONS = [(name, activation_kwargs(name, 0.1)) for name in ACTIVATION_NAMES] + [
    ("leaky_relu", {})
]


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5)])
@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activation_backward_matches_finite_differences(name, kw, shape):
    rng = np.random.default_rng(1)
    z = away_from_zero(rng, shape) * 2
    dout = rng.standard_normal(shape)
    fwd, bwd = getattr(R, f"{name}_forward"), getattr(R, f"{name}_backward")
    assert_grad(bwd(z, dout, **kw), lambda zz: float(np.sum(dout * fwd(zz, **kw))), z)


def test_activation_derivatives_at_zero():
    z, ones = np.zeros(3), np.ones(3)
    assert np.all(R.relu_backward(z, ones) == 0)  # relu'(0) = 0
    assert np.all(R.leaky_relu_backward(z, ones, alpha=0.2) == 0.2)  # leaky'(0) = alpha
    assert np.all(R.sigmoid_backward(z, ones) == 0.25)
    assert np.all(R.tanh_backward(z, ones) == 1.0)


def test_activation_values_by_hand():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(R.sigmoid_forward(z), [1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-3)])
    np.testing.assert_allclose(R.relu_forward(z), [0, 0, 3])
    np.testing.assert_allclose(R.leaky_relu_forward(z, alpha=0.1), [-0.2, 0, 3])
    np.testing.assert_allclose(R.tanh_forward(z), np.tanh(z))


def test_softmax_of_1_2_3():
    # e^k / (e + e^2 + e^3)
    np.testing.assert_allclose(
        R.softmax_forward(np.array([1.0, 2.0, 3.0])),
        [0.09003057317038046, 0.24472847105479767, 0.6652409557748219],
        rtol=1e-12,
    )


def test_softmax_over_last_axis():
    z = np.random.default_rng(0).standard_normal((2, 3, 4))
    s = R.softmax_forward(z)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0)
    np.testing.assert_allclose(s[1, 2], R.softmax_forward(z[1, 2]))


# ---- losses against finite differences -------------------------------------------------------


def case_l1(rng):
    pred = rng.standard_normal((4, 3))
    return pred, pred - away_from_zero(rng, (4, 3)), {}


def case_l2(rng):
    return rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), {}


def case_huber(rng):
    # residuals on both branches, none within h of |r| = delta
    r = np.array([[0.3, -0.7, 1.5], [-2.5, 0.05, 4.0]])
    pred = rng.standard_normal(r.shape)
    return pred, pred - r, {"delta": 1.0}


def rows_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def case_ce(from_logits, kind):
    def make(rng):
        z = rng.standard_normal((5, 4))
        pred = z if from_logits else rows_softmax(z)
        target = rng.integers(0, 4, size=5) if kind == "ids" else rng.dirichlet(np.ones(4), size=5)
        return pred, target, {"from_logits": from_logits}

    return make


def case_bce(from_logits, shape):
    def make(rng):
        pred = rng.standard_normal(shape) * 2 if from_logits else rng.uniform(0.05, 0.95, shape)
        return pred, rng.uniform(0, 1, shape), {"from_logits": from_logits}

    return make


def hinge_margins(pred, target):
    if pred.ndim == 1 or pred.shape[1] == 1:
        return 1 - target * pred
    n = pred.shape[0]
    m = 1 - pred[np.arange(n), target][:, None] + pred
    m[np.arange(n), target] = 5.0  # no term there: keep it away from the kink check
    return m


def case_hinge(binary, shape):
    def make(rng):
        while True:  # resample until no margin is within 0.01 of a kink
            pred = rng.standard_normal(shape) * 1.5
            if binary:
                target = rng.choice([-1.0, 1.0], size=shape)
            else:
                target = rng.integers(0, shape[1], size=shape[0])
            if np.min(np.abs(hinge_margins(pred, target))) > 0.01:
                return pred, target, {}

    return make


def case_dice(smooth):
    def make(rng):
        pred = rng.uniform(0.05, 0.95, (3, 2, 4))
        return pred, (rng.uniform(size=(3, 2, 4)) > 0.5).astype(float), {"smooth": smooth}

    return make


LOSS_CASES = [
    ("l1", case_l1),
    ("l2", case_l2),
    ("huber", case_huber),
    ("cross_entropy", case_ce(True, "ids")),
    ("cross_entropy", case_ce(True, "probs")),
    ("cross_entropy", case_ce(False, "ids")),
    ("cross_entropy", case_ce(False, "probs")),
    ("binary_cross_entropy", case_bce(True, (6,))),
    ("binary_cross_entropy", case_bce(True, (6, 1))),
    ("binary_cross_entropy", case_bce(False, (6,))),
    ("binary_cross_entropy", case_bce(False, (6, 1))),
    ("hinge", case_hinge(True, (8,))),
    ("hinge", case_hinge(True, (8, 1))),
    ("hinge", case_hinge(False, (6, 4))),
    ("squared_hinge", case_hinge(True, (8,))),
    ("squared_hinge", case_hinge(True, (8, 1))),
    ("squared_hinge", case_hinge(False, (6, 4))),
    ("dice", case_dice(1e-6)),
    ("dice", case_dice(1.0)),
]
LOSS_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(LOSS_CASES)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,make", LOSS_CASES, ids=LOSS_IDS)
def test_loss_backward_matches_finite_differences(name, make, reduction):
    pred, target, kw = make(np.random.default_rng(7))
    fwd, bwd = getattr(R, f"{name}_forward"), getattr(R, f"{name}_backward")
    f = lambda p: as_scalar(fwd(p, target, **kw, reduction=reduction))  # noqa: E731
    assert_grad(bwd(pred, target, **kw, reduction=reduction), f, pred)


@pytest.mark.parametrize("name,make", LOSS_CASES, ids=LOSS_IDS)
def test_loss_reductions_relate(name, make):
    pred, target, kw = make(np.random.default_rng(3))
    fwd, bwd = getattr(R, f"{name}_forward"), getattr(R, f"{name}_backward")
    none = fwd(pred, target, **kw, reduction="none")
    per_sample = name not in ("l1", "l2", "huber")
    assert none.shape == ((pred.shape[0],) if per_sample else pred.shape)
    mean, total = (
        fwd(pred, target, **kw, reduction="mean"),
        fwd(pred, target, **kw, reduction="sum"),
    )
    assert type(mean) is float and type(total) is float
    assert mean == pytest.approx(none.mean(), rel=1e-12) and total == pytest.approx(
        none.sum(), rel=1e-12
    )
    g_none, g_sum = (
        bwd(pred, target, **kw, reduction="none"),
        bwd(pred, target, **kw, reduction="sum"),
    )
    np.testing.assert_array_equal(g_none, g_sum)
    count = pred.shape[0] if per_sample else pred.size
    np.testing.assert_allclose(bwd(pred, target, **kw, reduction="mean"), g_sum / count, rtol=1e-12)


# ---- loss values worked by hand ---------------------------------------------------------------


def test_l1_l2_by_hand():
    pred, target = np.array([1.0, -2.0, 3.0]), np.array([0.0, 0.0, 3.0])
    assert R.l1_forward(pred, target) == pytest.approx((1 + 2 + 0) / 3)
    assert R.l2_forward(pred, target, reduction="sum") == pytest.approx(1 + 4)
    np.testing.assert_array_equal(
        R.l1_backward(pred, target, reduction="sum"), [1, -1, 0]
    )  # 0 at a tie


def test_huber_each_branch_by_hand():
    pred, target = np.array([0.5, -2.0, 3.0]), np.zeros(3)
    # delta 1: 0.5 * 0.5^2 = 0.125 (quadratic); 1 * (2 - 0.5) = 1.5; 1 * (3 - 0.5) = 2.5 (linear)
    np.testing.assert_allclose(R.huber_forward(pred, target, reduction="none"), [0.125, 1.5, 2.5])
    np.testing.assert_allclose(R.huber_backward(pred, target, reduction="none"), [0.5, -1.0, 1.0])
    # delta 2: 0.5 * 0.25, 0.5 * 4 = 2 (|r| = delta is quadratic), 2 * (3 - 1) = 4
    np.testing.assert_allclose(
        R.huber_forward(pred, target, delta=2.0, reduction="none"), [0.125, 2.0, 4.0]
    )
    np.testing.assert_allclose(
        R.huber_backward(pred, target, delta=2.0, reduction="none"), [0.5, -2.0, 2.0]
    )


def test_cross_entropy_uniform_row_is_log_c():
    for c in (2, 5, 10):
        assert R.cross_entropy_forward(np.full((3, c), 0.7), np.zeros(3, int)) == pytest.approx(
            np.log(c)
        )
        probs = np.full((3, c), 1.0 / c)
        assert R.cross_entropy_forward(probs, np.ones(3, int), from_logits=False) == pytest.approx(
            np.log(c)
        )


def test_cross_entropy_by_hand():
    logits = np.array([[1.0, 2.0, 3.0]])
    # -log softmax([1,2,3])[2] = log(e + e^2 + e^3) - 3
    assert R.cross_entropy_forward(logits, np.array([2])) == pytest.approx(
        np.log(np.exp([1, 2, 3]).sum()) - 3
    )
    p = np.array([[0.2, 0.3, 0.5]])
    assert R.cross_entropy_forward(
        p, np.array([[0.0, 0.5, 0.5]]), from_logits=False
    ) == pytest.approx(-(0.5 * np.log(0.3) + 0.5 * np.log(0.5)))
    # fused gradient p - onehot
    np.testing.assert_allclose(
        R.cross_entropy_backward(logits, np.array([2])), R.softmax_forward(logits) - [[0, 0, 1]]
    )


def test_cross_entropy_probabilities_clip_at_eps():
    p = np.array([[0.0, 1.0]])
    assert R.cross_entropy_forward(p, np.array([0]), from_logits=False) == pytest.approx(
        -np.log(1e-12)
    )
    assert R.cross_entropy_forward(
        p.astype(np.float32), np.array([0]), from_logits=False
    ) == pytest.approx(-np.log(1e-7), rel=1e-6)
    # -t / p, and 0 where p was clipped (the clip is flat there)
    np.testing.assert_array_equal(
        R.cross_entropy_backward(p, np.array([[0.5, 0.5]]), from_logits=False), [[0, -0.5]]
    )


def test_binary_cross_entropy_by_hand():
    # -(1 log 0.8) and -(log 0.6) for t = 0, p = 0.4
    np.testing.assert_allclose(
        R.binary_cross_entropy_forward(
            np.array([0.8, 0.4]), np.array([1.0, 0.0]), from_logits=False, reduction="none"
        ),
        [-np.log(0.8), -np.log(0.6)],
    )
    # logit 0 is p = 0.5: log 2 whatever the target; logit ln 4 is p = 0.8
    np.testing.assert_allclose(
        R.binary_cross_entropy_forward(
            np.array([0.0, np.log(4.0)]), np.array([0.3, 1.0]), reduction="none"
        ),
        [np.log(2), -np.log(0.8)],
    )
    np.testing.assert_allclose(
        R.binary_cross_entropy_backward(np.array([0.0]), np.array([1.0])), [-0.5]
    )


def test_hinge_multiclass_by_hand():
    # the CS231n example: scores per row, true classes 0, 1, 2
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    # row 0: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9; row 1: 0 + 0; row 2: 6.3 + 6.6 = 12.9
    np.testing.assert_allclose(R.hinge_forward(scores, y, reduction="none"), [2.9, 0.0, 12.9])
    np.testing.assert_allclose(
        R.squared_hinge_forward(scores, y, reduction="none"), [2.9**2, 0.0, 6.3**2 + 6.6**2]
    )
    np.testing.assert_allclose(
        R.hinge_backward(scores, y, reduction="sum"), [[-1, 1, 0], [0, 0, 0], [1, 1, -2]]
    )


def test_hinge_binary_by_hand_and_kink():
    s, y = np.array([0.5, -2.0, 1.0, 3.0]), np.array([1.0, -1.0, 1.0, -1.0])
    # max(0, 1 - y s): 0.5, 0, 0 (margin exactly 0), 4
    np.testing.assert_allclose(R.hinge_forward(s, y, reduction="none"), [0.5, 0, 0, 4])
    np.testing.assert_array_equal(
        R.hinge_backward(s, y, reduction="sum"), [-1, 0, 0, 1]
    )  # 0 at the kink
    np.testing.assert_allclose(R.squared_hinge_backward(s, y, reduction="sum"), [-1, 0, 0, 8])


def test_dice_by_hand():
    pred = np.array([[1.0, 1.0, 0.0, 0.0], [0.5, 1.0, 0.0, 0.5]])
    mask = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    # row 0: 1 - 2*1 / (2 + 2) = 0.5; row 1: 1 - 2*1.5 / (2 + 2) = 0.25
    np.testing.assert_allclose(
        R.dice_forward(pred, mask, smooth=0.0, reduction="none"), [0.5, 0.25]
    )
    # smooth 1: 1 - (2 + 1) / (4 + 1) = 0.4
    assert R.dice_forward(pred[:1], mask[:1], smooth=1.0) == pytest.approx(0.4)
    # an all-zero sample with smooth 0 is 0/0: loss 0 and gradient 0, as in the core
    assert R.dice_forward(np.zeros((1, 4)), np.zeros((1, 4)), smooth=0.0) == 0.0
    np.testing.assert_array_equal(
        R.dice_backward(np.zeros((1, 4)), np.zeros((1, 4)), smooth=0.0), 0.0
    )
    # a perfect mask scores 0; the batch axis is kept per sample for any shape
    assert R.dice_forward(
        mask.reshape(2, 2, 2), mask.reshape(2, 2, 2), smooth=0.0
    ) == pytest.approx(0.0)


# ---- stability -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_large_magnitudes(dtype):
    big = np.array([-1000.0, 1000.0], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
            np.testing.assert_array_equal(R.sigmoid_forward(big), [0.0, 1.0])
            np.testing.assert_allclose(R.softmax_forward(big), [0.0, 1.0])
            np.testing.assert_allclose(
                R.softmax_forward(np.array([-1000.0, -1000.0], dtype)), [0.5, 0.5]
            )
            logits = np.array([[1000.0, 0.0], [-1000.0, 1000.0]], dtype)
            np.testing.assert_allclose(
                R.cross_entropy_forward(logits, np.array([1, 1]), reduction="none"), [1000.0, 0.0]
            )
            np.testing.assert_allclose(
                R.cross_entropy_backward(logits, np.array([1, 1]), reduction="sum"),
                [[1, -1], [0, 0]],
            )
            np.testing.assert_allclose(
                R.binary_cross_entropy_forward(big, np.array([1.0, 0.0], dtype), reduction="none"),
                [1000.0, 1000.0],
            )
            np.testing.assert_allclose(
                R.binary_cross_entropy_backward(big, np.array([1.0, 0.0], dtype), reduction="sum"),
                [-1.0, 1.0],
            )
            np.testing.assert_allclose(R.sigmoid_backward(big, np.ones(2, dtype)), [0.0, 0.0])


# ---- dense layer ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["none", *ACTIVATION_NAMES])
def test_dense_backward_matches_finite_differences(activation):
    rng = np.random.default_rng(11)
    while True:  # keep every pre-activation away from relu's kink
        x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
        if np.min(np.abs(x @ w.T + b)) > 0.01:
            break
    dout = rng.standard_normal((5, 3))
    kw = {"activation": activation, "alpha": 0.1}
    a = R.dense_forward(x, w, b, **kw)
    dx, dw, db = R.dense_backward(dout, x, w, a, z=x @ w.T + b, **kw)
    loss = lambda x_, w_, b_: float(np.sum(dout * R.dense_forward(x_, w_, b_, **kw)))  # noqa: E731
    assert_grad(dx, lambda v: loss(v, w, b), x)
    assert_grad(dw, lambda v: loss(x, v, b), w)
    assert_grad(db, lambda v: loss(x, w, v), b)


def test_dense_forward_is_the_lecture_formula():
    x, w, b = np.array([[1.0, 2.0]]), np.array([[0.5, -1.0], [2.0, 0.0]]), np.array([0.25, -1.0])
    # z = W a + b per sample: [0.5 - 2 + 0.25, 2 - 1] = [-1.25, 1]
    np.testing.assert_allclose(R.dense_forward(x, w, b), [[-1.25, 1.0]])
    np.testing.assert_allclose(R.dense_forward(x, w, b, "relu"), [[0.0, 1.0]])


def test_dense_rejects_mismatched_shapes():
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.ones(4)
    with pytest.raises(ValueError, match="w"):
        R.dense_forward(x, np.ones((4, 2)), b)
    with pytest.raises(ValueError, match="b"):
        R.dense_forward(x, w, np.ones(3))
    with pytest.raises(ValueError, match="activation"):
        R.dense_forward(x, w, b, "swish")
    with pytest.raises(ValueError, match="dout"):
        R.dense_backward(np.ones((2, 3)), x, w, np.ones((2, 4)))


# ---- optimizers, three steps worked by hand: theta0 = 1, g = 1, -2, 0.5, lr = 0.1 ------------

GRADS = [1.0, -2.0, 0.5]
TINY = 1e-300  # eps must be > 0; this one vanishes next to sqrt(s), so the hand values are exact


def run_steps(update, nstate, dtype=np.float64, **kw):
    """Apply `update` for the three gradients; return theta after each step."""
    param = np.array([1.0], dtype)
    state = [np.zeros(1, dtype) for _ in range(nstate)]
    out = []
    for t, g in enumerate(GRADS, start=1):
        extra = {"t": t} if update in (R.adam_update, R.adamw_update) else {}
        assert update(param, np.array([g], dtype), *state, **kw, **extra) is None  # in place
        out.append(float(param[0]))
    return out


def test_gd_by_hand():
    # 1 - 0.1 = 0.9; 0.9 + 0.2 = 1.1; 1.1 - 0.05 = 1.05
    np.testing.assert_allclose(run_steps(R.gd_update, 0, lr=0.1), [0.9, 1.1, 1.05])


def test_momentum_ema_by_hand():
    # v = 0.9 v + 0.1 g: 0.1, -0.11, -0.049; theta -= 0.1 v
    np.testing.assert_allclose(
        run_steps(R.momentum_update, 1, lr=0.1, beta=0.9, form="ema"), [0.99, 1.001, 1.0059]
    )


def test_momentum_heavy_ball_by_hand():
    # v = 0.9 v + g: 1, -1.1, -0.49; theta -= 0.1 v
    np.testing.assert_allclose(
        run_steps(R.momentum_update, 1, lr=0.1, beta=0.9, form="heavy_ball"), [0.9, 1.01, 1.059]
    )


def test_momentum_nesterov_by_hand():
    # v as heavy ball; theta -= 0.1 (g + 0.9 v): 1 - 0.19, 0.81 + 0.299, 1.109 - 0.0059
    np.testing.assert_allclose(
        run_steps(R.momentum_update, 1, lr=0.1, beta=0.9, form="heavy_ball", nesterov=True),
        [0.81, 1.109, 1.1031],
    )


def test_momentum_rejects_ema_nesterov_and_unknown_form():
    p, g, v = np.ones(2), np.ones(2), np.zeros(2)
    with pytest.raises(ValueError, match="nesterov"):
        R.momentum_update(p, g, v, 0.1, form="ema", nesterov=True)
    with pytest.raises(ValueError, match="form"):
        R.momentum_update(p, g, v, 0.1, form="polyak")
    np.testing.assert_array_equal(p, 1.0)  # nothing changed


def test_rmsprop_by_hand():
    # s = 0.9 s + 0.1 g^2: 0.1, 0.49, 0.466; theta -= 0.1 g / sqrt(s)
    # 1 - 0.1/sqrt(0.1) = 0.6837722; + 0.2/0.7 = 0.9694865; - 0.05/sqrt(0.466) = 0.8962417
    np.testing.assert_allclose(
        run_steps(R.rmsprop_update, 1, lr=0.1, rho=0.9, eps=TINY),
        [0.683772233983162, 0.9694865196974477, 0.8962416777838167],
        rtol=1e-12,
    )


def test_adam_bias_correction_by_hand():
    # t=1: m=0.1, v=0.001, m^=1, v^=1 -> theta = 0.9 (a full lr step despite zero-started state)
    # t=2: m=-0.11, v=0.004999, m^=-0.11/0.19, v^=0.004999/0.001999 -> 0.9366104
    # t=3: m=-0.049, v=0.005244001, m^=-0.049/0.271, v^=0.005244001/0.002997001 -> 0.9502794
    np.testing.assert_allclose(
        run_steps(R.adam_update, 2, lr=0.1, beta1=0.9, beta2=0.999, eps=TINY),
        [0.9, 0.9366103527035843, 0.9502794190086667],
        rtol=1e-12,
    )


def test_adamw_decays_before_the_adam_step():
    # theta -= 0.1 * 0.1 * theta first: 1 -> 0.99 -> 0.89; then as Adam
    np.testing.assert_allclose(
        run_steps(R.adamw_update, 2, lr=0.1, beta1=0.9, beta2=0.999, eps=TINY, weight_decay=0.1),
        [0.89, 0.9177103527035841, 0.9222023154816308],
        rtol=1e-12,
    )


def test_adam_rejects_step_zero():
    p = np.ones(2)
    with pytest.raises(ValueError, match="t"):
        R.adam_update(p, np.ones(2), np.zeros(2), np.zeros(2), 0.1, 0.9, 0.999, 1e-8, 0)
    with pytest.raises(ValueError, match="t"):
        R.adamw_update(p, np.ones(2), np.zeros(2), np.zeros(2), 0.1, 0.9, 0.999, 1e-8, 0, 0.1)
    np.testing.assert_array_equal(p, 1.0)


def test_weight_decay_norm_and_clipping():
    g, p = np.array([3.0, 4.0]), np.array([1.0, -2.0])
    assert R.add_weight_decay(g, p, 0.5) is None
    np.testing.assert_allclose(g, [3.5, 3.0])
    g = np.array([3.0, 4.0], np.float32)
    assert R.global_norm(g) == 5.0
    assert R.clip_by_global_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-6)
    assert g.dtype == np.float32
    assert R.clip_by_global_norm(g, 10.0) == pytest.approx(1.0)  # below the cap: unchanged
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-6)


def test_optimizers_require_in_place_buffers_of_one_dtype():
    with pytest.raises(TypeError, match="grad"):
        R.gd_update(np.ones(3), np.ones(3, np.float32), 0.1)
    with pytest.raises(TypeError, match="param"):
        R.gd_update([1.0, 2.0], np.ones(2), 0.1)
    with pytest.raises(ValueError, match="param"):
        R.gd_update(
            np.ones((3, 4))[:, 0], np.ones(3), 0.1
        )  # not contiguous: could not update in place
    with pytest.raises(ValueError, match="velocity"):
        R.momentum_update(np.ones(3), np.ones(3), np.zeros(4), 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_keep_dtype(dtype):
    assert run_steps(R.adam_update, 2, dtype, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)[
        0
    ] == pytest.approx(0.9, rel=1e-6)
    p, g, m, v = np.ones(4, dtype), np.ones(4, dtype), np.zeros(4, dtype), np.zeros(4, dtype)
    R.adamw_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 1, 0.1)
    R.rmsprop_update(p, g, m, 0.1)
    R.momentum_update(p, g, v, 0.1)
    assert {a.dtype for a in (p, g, m, v)} == {np.dtype(dtype)}


# ---- dtype rules ---------------------------------------------------------------------------


def dtype_calls(z):
    """(name, result) for one call of every array-returning kernel family on input z (N, C)."""
    n, c = z.shape
    ids = np.arange(n) % c
    mask = (z > 0).astype(z.dtype)
    return [
        ("sigmoid", R.sigmoid_forward(z)),
        ("tanh_b", R.tanh_backward(z, z)),
        ("relu", R.relu_forward(z)),
        ("leaky_b", R.leaky_relu_backward(z, z)),
        ("softmax_b", R.softmax_backward(z, z)),
        ("l1", R.l1_forward(z, z, reduction="none")),
        ("huber_b", R.huber_backward(z, z)),
        ("ce_b", R.cross_entropy_backward(z, ids)),
        ("ce", R.cross_entropy_forward(z, ids, reduction="none")),
        ("bce_b", R.binary_cross_entropy_backward(z[:, 0], mask[:, 0])),
        ("hinge_b", R.hinge_backward(z, ids)),
        ("dice_b", R.dice_backward(mask, mask)),
        ("dense", R.dense_forward(z, z, z[:, 0])),
        ("dense_b", R.dense_backward(z, z, np.ones((c, c), z.dtype), z)[1]),
        ("matmul", R.matmul(z, z, trans_b=True)),
    ]


@pytest.mark.parametrize(
    "dtype,expected",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float32),
        (np.int32, np.float32),
        (np.bool_, np.float32),
        (np.float16, np.float32),
    ],
)
def test_results_take_the_dtype_rule(dtype, expected):
    z = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    for name, out in dtype_calls(z):
        assert out.dtype == expected, name


def test_second_array_is_cast_to_the_first():
    z32, z64 = np.ones((2, 3), np.float32), np.ones((2, 3))
    assert R.sigmoid_backward(z32, z64).dtype == np.float32
    assert R.l2_backward(z64, z32).dtype == np.float64
    assert R.cross_entropy_backward(z32, np.full((2, 3), 1 / 3)).dtype == np.float32


def test_non_contiguous_and_fortran_inputs():
    z = np.asfortranarray(np.random.default_rng(0).standard_normal((4, 6)))
    out = R.softmax_forward(z)
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out, R.softmax_forward(np.ascontiguousarray(z)))
    np.testing.assert_allclose(
        R.l2_forward(z[:, ::2], z[:, 1::2]), np.mean((z[:, ::2] - z[:, 1::2]) ** 2)
    )


def test_optimizer_scalar_and_buffer_checks():
    p, g, m, v = np.ones(3), np.ones(3), np.zeros(3), np.zeros(3)
    for call, name in [
        (lambda: R.gd_update(p, g, -0.1), "lr"),
        (lambda: R.momentum_update(p, g, v, 0.1, beta=1.0), "beta"),
        (lambda: R.rmsprop_update(p, g, v, 0.1, rho=-0.1), "rho"),
        (lambda: R.rmsprop_update(p, g, v, 0.1, eps=0.0), "eps"),
        (lambda: R.adam_update(p, g, m, v, 0.1, 0.9, 1.5, 1e-8, 1), "beta2"),
        (lambda: R.adamw_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 1, -0.1), "weight_decay"),
        (lambda: R.adamw_update(p, g, m, v, float("nan"), 0.9, 0.999, 1e-8, 1, 0.1), "lr"),
        (lambda: R.add_weight_decay(g, p, -1.0), "weight_decay"),
        (lambda: R.momentum_update(p, g, g, 0.1), "velocity"),  # shares grad's memory
        (lambda: R.gd_update(np.ones(0), np.ones(0), 0.1), "param"),  # empty
    ]:
        with pytest.raises(ValueError, match=name):
            call()
    np.testing.assert_array_equal(p, 1.0)  # nothing was updated
    assert R.global_norm([3, 4]) == 5.0  # only reads: any numeric input


def test_kernel_level_errors():
    with pytest.raises(TypeError, match="z"):
        R.sigmoid_forward(np.array(["a"]))
    with pytest.raises(ValueError, match="z"):
        R.relu_forward(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="target"):
        R.l1_forward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        R.l2_forward(np.ones(3), np.ones(3), reduction="avg")
    with pytest.raises(ValueError, match="target"):
        R.cross_entropy_forward(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="delta"):
        R.huber_forward(np.ones(3), np.ones(3), delta=0.0)
    with pytest.raises(ValueError, match="smooth"):
        R.dice_forward(np.ones((1, 3)), np.ones((1, 3)), smooth=-1.0)
    with pytest.raises(ValueError, match="target"):
        R.hinge_forward(
            np.ones(3), np.array([0.0, 1.0, 1.0])
        )  # {0, 1} mapping is the public layer's
    with pytest.raises(ValueError, match="target"):
        R.binary_cross_entropy_forward(np.ones(2), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="alpha"):
        R.leaky_relu_forward(np.ones(2), alpha=float("inf"))
