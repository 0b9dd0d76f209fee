"""pycvnn.plot's loss, activation and schedule curves and the Dice masks: each figure is drawn
(a non-blank PNG), and the data behind it equals closed forms, PyTorch where installed, the
schedule objects and numpy; bad arguments fail before anything is drawn."""

import io
import math
import re

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from nethelpers import BACKENDS, backend_fixture  # noqa: E402

from pycvnn import activations as A  # noqa: E402
from pycvnn import plot as P  # noqa: E402
from pycvnn import schedules as S  # noqa: E402
from pycvnn.plot import curves, masks  # noqa: E402

backend = pytest.fixture(params=BACKENDS)(backend_fixture)


@pytest.fixture
def draw():
    """Calls a plot function and closes its figure after the test."""
    figures = []

    def call(fn, **kwargs):
        figures.append(fn(**kwargs))
        return figures[-1]

    yield call
    for fig in figures:
        plt.close(fig)


@pytest.mark.parametrize("fn", [P.losses, P.activations, P.schedules, P.dice_masks])
def test_each_figure_saves_a_drawn_png(draw, fn):
    buf = io.BytesIO()
    draw(fn).savefig(buf, format="png", dpi=100)
    buf.seek(0)
    pixels = plt.imread(buf)[..., :3].reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20  # curves and text, not a blank canvas
    assert (pixels < 0.9).any(axis=1).mean() > 0.005


def line(ax, label):
    """(x, y) of the one line whose label starts with `label`."""
    found = [ln for ln in ax.lines if ln.get_label().split()[0] == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.lines]
    return np.asarray(found[0].get_xdata(), float), np.asarray(found[0].get_ydata(), float)


def panel(fig, title):
    """The axes whose title's first word (before any "(") is `title`."""
    found = [ax for ax in fig.axes if re.split(r"[\s(]", ax.get_title())[0] == title]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def huber(r, d):
    return np.where(np.abs(r) <= d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d))


# ---- losses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("deltas", [(0.5, 1.0, 2.0), (0.25, 3)])
def test_regression_losses_are_their_closed_forms(backend, draw, deltas):
    ax = panel(draw(P.losses, deltas=deltas), "Regression")
    r, l1 = line(ax, "L1")
    assert r[0] == -3 and r[-1] == 3 and len(r) == 401
    np.testing.assert_allclose(l1, np.abs(r), atol=1e-12)
    np.testing.assert_allclose(line(ax, "L2")[1], r**2, atol=1e-12)
    hubers = [ln for ln in ax.lines if ln.get_label().startswith("Huber")]
    assert [ln.get_label() for ln in hubers] == [f"Huber δ = {d:g}" for d in deltas]
    for ln, d in zip(hubers, deltas):
        np.testing.assert_allclose(ln.get_ydata(), huber(r, d), atol=1e-12)


@pytest.mark.parametrize("margin", [(-4, 2.5), (0.5, 3), (-3, -1)])
def test_classification_losses_are_their_closed_forms(backend, draw, margin):
    ax = panel(draw(P.losses, margin=margin, points=301), "Classification")
    m, hinge = line(ax, "hinge")
    assert (m[0], m[-1]) == margin and len(m) == 301
    np.testing.assert_allclose(hinge, np.maximum(0, 1 - m), atol=1e-12)
    np.testing.assert_allclose(line(ax, "squared")[1], np.maximum(0, 1 - m) ** 2, atol=1e-12)
    np.testing.assert_allclose(line(ax, "BCE")[1], np.log1p(np.exp(-m)), rtol=1e-12)
    x, y = line(ax, "0-1")
    # 1 for m <= 0, else 0: its step at 0 when 0 is in the drawn range.
    assert x.tolist() == [margin[0], *[np.clip(0, *margin)] * 2, margin[1]]
    want = {(-4, 2.5): [1, 1, 0, 0], (0.5, 3): [0, 0, 0, 0], (-3, -1): [1, 1, 1, 1]}[margin]
    assert y.tolist() == want
    assert ax.get_ylim()[1] > max(1, 1 - margin[0])  # the hinge and the 0-1 loss stay in view


@pytest.mark.parametrize("pixels", [16, 5])
def test_dice_loss_curves_are_its_closed_forms(backend, draw, pixels):
    ax = panel(draw(P.losses, pixels=pixels), "Dice")
    overlap, hard = line(ax, "two")
    np.testing.assert_allclose(overlap, np.arange(pixels + 1) / pixels)
    # |A| = |B| = pixels, |A∩B| = overlap * pixels; the library's smooth (1e-6) shifts it by less.
    a = b = pixels
    np.testing.assert_allclose(hard, 1 - 2 * overlap * pixels / (a + b), atol=1e-6)
    p, soft = line(ax, "soft:")
    assert p[0] == 0 and p[-1] == 1
    np.testing.assert_allclose(soft, 1 - 2 * p * pixels / (p * pixels + pixels), atol=1e-6)


# ---- activations -----------------------------------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


CLOSED = {
    "sigmoid": lambda z, a: (sigmoid(z), sigmoid(z) * (1 - sigmoid(z))),
    "tanh": lambda z, a: (np.tanh(z), 1 - np.tanh(z) ** 2),
    "relu": lambda z, a: (np.maximum(z, 0), (z > 0).astype(float)),
    "leaky_relu": lambda z, a: (np.where(z > 0, z, a * z), np.where(z > 0, 1.0, a)),
}


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_activations_match_closed_forms(backend, draw, alpha):
    fig = draw(P.activations, alpha=alpha)
    assert len([ax for ax in fig.axes if ax.lines]) == len(A.REGISTRY)
    for name, closed in CLOSED.items():
        ax = panel(fig, name)
        z, f = line(ax, "f(z)")
        assert z[0] == -5 and z[-1] == 5 and 0.0 in z  # the kink at 0 is drawn
        want_f, want_df = closed(z, alpha)
        np.testing.assert_allclose(f, want_f, atol=1e-12)
        np.testing.assert_allclose(line(ax, "f′(z)")[1], want_df, atol=1e-12)
    assert f"α = {alpha:g}" in panel(fig, "leaky_relu").get_title()


def torch_curves(torch, name, z, alpha):
    """f(z) and f'(z) by autograd; softmax as component 0 of softmax([z, 0])."""
    F = torch.nn.functional
    t = torch.tensor(z, requires_grad=True)
    if A.REGISTRY[name].per_row:
        out = F.softmax(torch.stack([t, torch.zeros_like(t)], -1), -1)[:, 0]
    elif name == "leaky_relu":
        out = F.leaky_relu(t, alpha)
    else:
        out = getattr(F, name)(t)
    out.sum().backward()
    return out.detach().numpy(), t.grad.numpy()


def test_each_activation_panel_matches_torch_autograd(backend, draw):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the compare extra)")
    fig = draw(P.activations, z=(-6, 4), points=201)
    for name in A.REGISTRY:
        ax = panel(fig, name)
        z, f = line(ax, "f(z)")
        assert z[0] == -6 and z[-1] == 4 and len(z) == 201
        want_f, want_df = torch_curves(torch, name, z, 0.1)
        np.testing.assert_allclose(f, want_f, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(
            line(ax, "f′(z)")[1], want_df, rtol=1e-12, atol=1e-12, err_msg=name
        )


# ---- schedules -------------------------------------------------------------------------------


def replay(schedule, epochs):
    """The lr per epoch as fit drives a schedule, ReduceOnPlateau fed plateau_loss."""
    lrs = []
    for e in range(epochs):
        lrs.append(schedule(e))
        if isinstance(schedule, S.ReduceOnPlateau):
            schedule.step(curves.plateau_loss(e, epochs))
    return lrs


@pytest.mark.parametrize("lr, epochs", [(0.1, 100), (0.5, 30), (0, 10)])
def test_schedule_curves_are_the_schedules_values(draw, lr, epochs):
    fig = draw(P.schedules, lr=lr, epochs=epochs)
    (ax,) = fig.axes
    assert len(ax.lines) == len(S.REGISTRY)
    for name, cls in S.REGISTRY.items():
        e, lrs = line(ax, name)
        assert e.tolist() == list(range(epochs))
        assert lrs.tolist() == replay(cls.for_run(lr, epochs), epochs)
    if lr:
        assert line(ax, "plateau")[1][-1] < lr  # the plateau was reached and the lr cut


def test_plateau_curve_matches_torch_reduce_on_plateau(draw):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the compare extra)")
    (ax,) = draw(P.schedules, lr=0.1, epochs=100).axes
    s = S.ReduceOnPlateau.for_run(0.1, 100)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=s.factor, patience=s.patience)
    want = []
    for e in range(100):
        want.append(opt.param_groups[0]["lr"])
        sched.step(curves.plateau_loss(e, 100))
    np.testing.assert_allclose(line(ax, "plateau")[1], want, rtol=1e-12)
    assert min(want) < 0.1


def test_schedules_draws_into_a_given_ax_and_its_legend_is_not_clipped(draw):
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    try:
        assert P.schedules(ax=ax) is fig and len(ax.lines) == len(S.REGISTRY)
    finally:
        plt.close(fig)
    fig = draw(P.schedules)
    fig.canvas.draw()
    box, legend = fig.bbox, fig.axes[0].get_legend().get_window_extent()
    assert (
        box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0 <= legend.y1 <= box.y1
    )


# ---- dice_masks ------------------------------------------------------------------------------


def shown_numbers(fig):
    """The numbers written on the figure: |A|, |B|, |A∩B| from the titles, Dice and its loss."""
    titles = " ".join(ax.get_title() for ax in fig.axes)
    counts = {k: int(n) for k, n in re.findall(r"\|(A|B|A∩B)\| = (\d+)", titles)}
    dice, loss = re.findall(r"= ([0-9.]+)(?:\s|$)", fig.get_suptitle())[-2:]
    return counts, float(dice), float(loss)


def test_the_lectures_masks_teach_six_and_five_pixels_overlapping_in_four():
    a, b = masks.PREDICTION, masks.GROUND_TRUTH
    assert a.shape == b.shape == (4, 4)
    assert (a.sum(), b.sum(), (a & b).sum()) == (6, 5, 4)


@pytest.mark.parametrize(
    "a, b",
    [
        (masks.PREDICTION, masks.GROUND_TRUTH),
        (np.eye(3, dtype=int), np.ones((3, 3), int)),
        (np.eye(2, dtype=int), np.eye(2, dtype=int)[::-1]),
    ],
)
def test_dice_masks_shows_the_masks_and_their_numbers(backend, draw, a, b):
    fig = draw(P.dice_masks, prediction=a, ground_truth=b)
    pa, pb, po = fig.axes
    assert np.array_equal(pa.images[0].get_array(), a)
    assert np.array_equal(pb.images[0].get_array(), b)
    assert np.array_equal(po.images[0].get_array(), a + 2 * b)  # 3 marks the intersection
    counts, dice, loss = shown_numbers(fig)
    inter = int(np.logical_and(a, b).sum())
    assert counts == {"A": a.sum(), "B": b.sum(), "A∩B": inter}
    want = 2 * inter / (a.sum() + b.sum())
    assert dice == round(want, 3) and loss == round(1 - want, 3)


def test_dice_masks_default_is_eight_elevenths(draw):
    counts, dice, loss = shown_numbers(draw(P.dice_masks))
    assert counts == {"A": 6, "B": 5, "A∩B": 4}
    assert (dice, loss) == (0.727, 0.273)


# ---- bad arguments ---------------------------------------------------------------------------

BAD = [
    (P.losses, {"residual": (3, -3)}, ValueError, "residual"),
    (P.losses, {"residual": 5}, TypeError, "residual"),
    (P.losses, {"margin": (0, math.nan)}, ValueError, "margin"),
    (P.losses, {"deltas": ()}, ValueError, "deltas"),
    (P.losses, {"deltas": (1, -1)}, ValueError, "deltas"),
    (P.losses, {"deltas": 1.0}, TypeError, "deltas"),
    (P.losses, {"points": 1}, ValueError, "points"),
    (P.losses, {"pixels": 0}, ValueError, "pixels"),
    (P.activations, {"alpha": -0.1}, ValueError, "alpha"),
    (P.activations, {"z": ("a", 1)}, TypeError, "z"),
    (P.activations, {"columns": 0}, ValueError, "columns"),
    (P.schedules, {"lr": -0.1}, ValueError, "lr"),
    (P.schedules, {"epochs": 1}, ValueError, "epochs"),
    (P.schedules, {"epochs": 2.5}, TypeError, "epochs"),
    (P.schedules, {"ax": "left"}, TypeError, "ax"),
    (P.dice_masks, {"prediction": [[0, 2], [1, 0]]}, ValueError, "prediction"),
    (P.dice_masks, {"ground_truth": np.ones(16)}, ValueError, "ground_truth"),
    (P.dice_masks, {"ground_truth": np.ones((3, 4))}, ValueError, "ground_truth"),
    (
        P.dice_masks,
        {"prediction": np.zeros((2, 2)), "ground_truth": np.zeros((2, 2))},
        ValueError,
        "prediction",
    ),
    (P.dice_masks, {"prediction": "mask"}, TypeError, "prediction"),
]


@pytest.mark.parametrize("fn, kwargs, exc, name", BAD)
def test_bad_arguments_are_named_before_drawing(fn, kwargs, exc, name):
    before = plt.get_fignums()
    with pytest.raises(exc, match=rf"^{re.escape(name)}: expected"):
        fn(**kwargs)
    assert plt.get_fignums() == before
