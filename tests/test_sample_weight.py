"""fit(sample_weight=w): each sample's loss and gradient weighted in the core's epoch loop and
the twin's alike, normalised per batch by the weights' sum (scikit-learn's rule), equal to
PyTorch's reduction="none" losses times w, over every loss; and the bad weights."""

import numpy as np
import pytest
from nethelpers import BACKENDS, close

import pycvnn
from pycvnn import optim

RNG = np.random.default_rng(7)
N, F = 13, 5


@pytest.fixture(params=BACKENDS)
def backend(request):
    with pycvnn.using_backend(request.param):
        yield request.param


def _data(loss, C):
    """(targets, torch's per-sample loss of (scores, targets)) for a loss on C outputs."""
    torch = pytest.importorskip("torch")
    F_ = torch.nn.functional
    if loss in ("l1", "l2", "huber"):
        y = RNG.normal(size=(N, C))
        per = {
            "l1": lambda s, t: F_.l1_loss(s, t, reduction="none"),
            "l2": lambda s, t: F_.mse_loss(s, t, reduction="none"),
            "huber": lambda s, t: F_.huber_loss(s, t, reduction="none", delta=1.0),
        }[loss]
        return y, lambda s, t: per(s, t).mean(dim=1)
    if loss == "cross_entropy":
        y = RNG.integers(0, C, N)
        return y, lambda s, t: F_.cross_entropy(s, t, reduction="none")
    if loss == "binary_cross_entropy":
        y = RNG.integers(0, 2, (N, 1)).astype(np.float64)
        return y, lambda s, t: F_.binary_cross_entropy_with_logits(s, t, reduction="none")[:, 0]
    if loss in ("hinge", "squared_hinge") and C == 1:
        y = RNG.choice([-1.0, 1.0], (N, 1))
        power = 1 if loss == "hinge" else 2
        return y, lambda s, t: torch.relu(1 - t * s)[:, 0] ** power
    if loss in ("hinge", "squared_hinge"):
        y = RNG.integers(0, C, N)
        power = 1 if loss == "hinge" else 2
        # PyTorch's multi_margin_loss divides the sum over j != y by C.
        return y, lambda s, t: C * F_.multi_margin_loss(s, t, p=power, reduction="none")
    y = (RNG.uniform(size=(N, C)) > 0.5).astype(np.float64)  # dice on sigmoid outputs
    return y, lambda s, t: 1 - (2 * (s * t).sum(1) + 1e-6) / (s.sum(1) + t.sum(1) + 1e-6)


CASES = [
    ("l1", 3),
    ("l2", 3),
    ("huber", 3),
    ("cross_entropy", 4),
    ("binary_cross_entropy", 1),
    ("hinge", 1),
    ("hinge", 4),
    ("squared_hinge", 1),
    ("squared_hinge", 4),
    ("dice", 3),
]


@pytest.mark.parametrize("loss, C", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_a_weighted_step_equals_pytorchs(backend, loss, C):
    torch = pytest.importorskip("torch")
    y, per_sample = _data(loss, C)
    X = RNG.normal(size=(N, F))
    w = RNG.uniform(0, 3, N)
    w[2] = 0.0  # a sample of no weight
    out = "sigmoid" if loss == "dice" else None
    model = pycvnn.MLP([F, C], output=out, seed=1, dtype="float64")
    W0, b0 = model.get_weights()
    history = model.fit(
        X,
        y,
        loss=loss,
        optimizer=optim.GD(lr=1.0),
        epochs=1,
        batch_size=None,
        shuffle=False,
        verbose=False,
        sample_weight=w,
    )
    Wt = torch.tensor(W0, requires_grad=True)
    bt = torch.tensor(b0, requires_grad=True)
    scores = torch.tensor(X) @ Wt.T + bt
    if out == "sigmoid":
        scores = torch.sigmoid(scores)
    target = torch.tensor(y)
    wt = torch.tensor(w)
    value = (per_sample(scores, target) * wt).sum() / wt.sum()
    value.backward()
    assert history["loss"][0] == pytest.approx(float(value.detach()), rel=1e-12)
    W1, b1 = model.get_weights()
    np.testing.assert_allclose(W0 - W1, Wt.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(b0 - b1, bt.grad.numpy(), rtol=1e-10, atol=1e-13)


def _fit(X, y, w=None, dtype="float64", **kw):
    model = pycvnn.MLP([F, 8, 3], seed=3, dtype=dtype)
    args = dict(optimizer=optim.Adam(lr=0.01), epochs=4, verbose=False, seed=5, **kw)
    return model, model.fit(X, y, sample_weight=w, **args)


X3 = RNG.normal(size=(40, F))
Y3 = RNG.integers(0, 3, 40)


def test_unit_weights_are_the_unweighted_fit(backend):
    a, ha = _fit(X3, Y3, batch_size=8)
    b, hb = _fit(X3, Y3, np.ones(40), batch_size=8)
    close(b.params, a.params, np.float64)
    close(hb["loss"], ha["loss"], np.float64)


def test_integer_weights_repeat_samples_in_batch_descent(backend):
    w = RNG.integers(0, 4, 40)
    w[0] = 1
    a, _ = _fit(X3, Y3, w.astype(float), batch_size=None)
    rows = np.repeat(np.arange(40), w)
    b, _ = _fit(X3[rows], Y3[rows], batch_size=None)
    close(a.params, b.params, np.float64)


def test_backends_agree_in_float32():
    w = RNG.uniform(0, 2, 40)
    runs = []
    for name in ("numpy", "cpp"):
        with pycvnn.using_backend(name):
            runs.append(_fit(X3, Y3, w, dtype="float32", batch_size=7)[0].params)
    close(runs[1], runs[0], np.float32)


def test_a_batch_of_no_weight_adds_nothing(backend):
    w = np.ones(40)
    w[:8] = 0
    model = pycvnn.MLP([F, 3], seed=0, dtype="float64")
    before = model.params.copy()
    h = model.fit(
        X3,
        Y3,
        optimizer=optim.GD(lr=0.5),
        epochs=1,
        batch_size=8,
        shuffle=False,
        verbose=False,
        sample_weight=w,
        log_every="batch",
    )
    assert h.batches["loss"][0] == 0.0
    # The first step saw a zero gradient: replaying from the start without that batch agrees.
    other = pycvnn.MLP([F, 3], seed=0, dtype="float64")
    np.testing.assert_array_equal(other.params, before)
    other.fit(
        X3[8:],
        Y3[8:],
        optimizer=optim.GD(lr=0.5),
        epochs=1,
        batch_size=8,
        shuffle=False,
        verbose=False,
    )
    close(model.params, other.params, np.float64)
    sums = [0.0, 8, 8, 8, 8]
    assert h["loss"][0] == pytest.approx(np.dot(sums, h.batches["loss"]) / 32, rel=1e-12)


def test_evaluate_and_the_logs_are_weighted_means(backend):
    w = RNG.uniform(0, 2, 40)
    model, h = _fit(X3, Y3, w, batch_size=8, validation_data=(X3, Y3, w))
    per_sample = pycvnn.losses.cross_entropy(model.forward(X3), Y3, reduction="none")
    got = model.evaluate(X3, Y3, sample_weight=w)
    assert got["loss"] == pytest.approx(np.dot(w, per_sample) / w.sum(), rel=1e-10)
    hits = model.predict_classes(X3) == Y3
    assert got["accuracy"] == pytest.approx(np.dot(w, hits) / w.sum(), rel=1e-12)
    assert h["val_loss"][-1] == pytest.approx(got["loss"], rel=1e-12)
    assert h["accuracy"][-1] == pytest.approx(got["accuracy"], rel=1e-12)


@pytest.mark.parametrize(
    "w, error, words",
    [
        (np.ones(39), ValueError, "sample_weight: expected shape (40,)"),
        (np.ones((40, 1)), ValueError, "sample_weight: expected shape (40,)"),
        (-np.ones(40), ValueError, "sample_weight: expected weights >= 0, got -1.0 at index 0"),
        (np.r_[np.ones(39), np.nan], ValueError, "sample_weight: expected finite values"),
        (np.zeros(40), ValueError, "sample_weight: expected a positive total weight"),
        (np.array(["a"] * 40), TypeError, "sample_weight: expected a real numeric"),
    ],
)
def test_bad_weights_are_named(backend, w, error, words):
    model = pycvnn.MLP([F, 3], seed=0)
    before = model.params.copy()
    with pytest.raises(error) as info:
        model.fit(X3, Y3, epochs=1, verbose=False, sample_weight=w)
    assert words in str(info.value)
    np.testing.assert_array_equal(model.params, before)
    with pytest.raises(error):
        model.evaluate(X3, Y3, sample_weight=w)


def test_bad_validation_weights_are_named():
    model = pycvnn.MLP([F, 3], seed=0)
    with pytest.raises(ValueError, match="validation_data: w_val: expected shape"):
        model.fit(X3, Y3, epochs=1, verbose=False, validation_data=(X3, Y3, np.ones(3)))


@pytest.mark.parametrize("bad", [np.ones(39), np.r_[-1.0, np.ones(39)], np.r_[np.inf, np.ones(39)]])
def test_the_epoch_loops_check_weights_alike(bad):
    """The core and the twin refuse the same weights with the same error type, naming it."""
    errors = []
    for name in ("numpy", "cpp"):
        with pycvnn.using_backend(name):
            model = pycvnn.MLP([F, 3], seed=0, dtype="float64")
            net = model.network(model.ops)
            rule = optim.GD(lr=0.1).update_rule()
            spec = pycvnn._backend.backend().LossSpec("cross_entropy")
            with pytest.raises(ValueError) as info:
                net.train_epoch(
                    model._params,
                    model._grads,
                    np.zeros(0),
                    np.zeros(0),
                    X3,
                    Y3,
                    np.arange(40),
                    8,
                    0.1,
                    0,
                    spec,
                    rule,
                    sample_weight=bad,
                )
            errors.append(str(info.value))
    assert all(e.startswith("sample_weight: ") for e in errors), errors
