"""plot.gd_variants and plot.optimizer_paths: the drawn paths are pycvnn's own updates (the
walkthrough's rows, optim.minimize's iterates), and the surfaces' gradients are right."""

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from pycvnn import optim, surfaces  # noqa: E402
from pycvnn import plot as P  # noqa: E402
from pycvnn.plot import descent  # noqa: E402
from pycvnn.walkthrough import linear_regression  # noqa: E402


def png_colours(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    image = plt.imread(io.BytesIO(buf.getvalue()))
    plt.close(fig)
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


def test_batch_descent_is_the_walkthrough():
    path, full = descent.descent_paths(lr=0.1, epochs=12)["batch"]
    rows = linear_regression([1, 2, 3], [2, 4, 6], 0.1, iterations=12)
    np.testing.assert_allclose(path[1:], [(r.w, r.b) for r in rows], rtol=1e-12)
    np.testing.assert_allclose(full[:-1], [r.loss for r in rows], rtol=1e-12)


def test_stochastic_and_mini_batch_take_one_update_per_batch():
    runs = descent.descent_paths(lr=0.1, epochs=4, seed=3)
    assert len(runs["stochastic"][0]) == 4 * 3 + 1 and len(runs["mini-batch"][0]) == 4 * 2 + 1
    # The first stochastic epoch by hand: samples in np.random.default_rng(3)'s order.
    w = b = 0.0
    order = np.random.default_rng(3).permutation(3)
    for k, i in enumerate(order, start=1):
        x, t = descent.WALK_X[i], descent.WALK_Y[i]
        r = w * x + b - t
        w, b = w - 0.1 * 2 * r * x, b - 0.1 * 2 * r
        np.testing.assert_allclose(runs["stochastic"][0][k], [w, b], rtol=1e-12)
    for path, full in runs.values():
        np.testing.assert_allclose(
            full, [np.mean((w * descent.WALK_X + b - descent.WALK_Y) ** 2) for w, b in path]
        )


def test_gd_variants_draws_the_paths_and_losses():
    fig = P.gd_variants(lr=0.1, epochs=10, seed=1)
    runs = descent.descent_paths(lr=0.1, epochs=10, seed=1)
    ax_loss, ax_path = fig.axes
    drawn = {line.get_label(): line for line in ax_path.lines}
    for name, (path, full) in runs.items():
        np.testing.assert_array_equal(drawn[name].get_xdata(), path[:, 0])
        np.testing.assert_array_equal(drawn[name].get_ydata(), path[:, 1])
        loss_line = next(line for line in ax_loss.lines if line.get_label() == name)
        np.testing.assert_array_equal(loss_line.get_ydata(), full)
    assert ax_loss.get_xlabel() and ax_path.get_xlabel() == "w" and ax_path.get_ylabel() == "b"
    assert png_colours(fig) > 50


@pytest.mark.parametrize("name", sorted(surfaces.SURFACES))
def test_surface_gradients_and_minima(name):
    surface = surfaces.get(name)
    rng = np.random.default_rng(0)
    (x_lo, x_hi), (y_lo, y_hi) = surface.window
    for point in rng.uniform([x_lo, y_lo], [x_hi, y_hi], size=(20, 2)):
        h = 1e-6
        numeric = [
            (surface.f(*(point + h * e)) - surface.f(*(point - h * e))) / (2 * h) for e in np.eye(2)
        ]
        np.testing.assert_allclose(surface(point)[1], numeric, rtol=1e-6, atol=1e-6)
    for minimum in surface.minima:
        np.testing.assert_allclose(surface(np.array(minimum))[1], 0, atol=1e-12)
    X, Y = np.meshgrid(np.linspace(x_lo, x_hi, 101), np.linspace(y_lo, y_hi, 101))
    assert surface.f(X, Y).min() >= surface.minimum_value


@pytest.mark.parametrize("name", sorted(surfaces.SURFACES))
def test_optimizer_paths_draws_each_optimizers_iterates(name):
    fig = P.optimizer_paths(name)
    surface = surfaces.get(name)
    steps, defaults = descent.PATHS[name]
    ax_path, ax_loss = fig.axes
    assert len(defaults) == 6
    for label, opt in defaults.items():
        fresh = type(opt)(lr=opt.lr, **opt.hyperparameters())
        path, values = optim.minimize(surface, surface.start, fresh, steps)
        line = next(line for line in ax_path.lines if line.get_label() == label)
        np.testing.assert_array_equal(np.c_[line.get_xdata(), line.get_ydata()], path)
        gap = next(line for line in ax_loss.lines if line.get_label() == label).get_ydata()
        np.testing.assert_array_equal(gap, np.maximum(values - surface.minimum_value, 1e-16))
    stars = [line for line in ax_path.lines if line.get_marker() == "*"]
    assert sorted((s.get_xdata()[0], s.get_ydata()[0]) for s in stars) == sorted(surface.minima)
    assert png_colours(fig) > 50


def test_the_defaults_are_not_consumed_and_a_callers_optimizer_is_copied():
    mine = {"Adam": optim.Adam(lr=0.1)}
    first = descent.surface_paths("saddle", mine, steps=20)["Adam"][0]
    assert mine["Adam"].t == 0
    np.testing.assert_array_equal(descent.surface_paths("saddle", mine, steps=20)["Adam"][0], first)
    assert all(opt.t == 0 for opt in descent.PATHS["saddle"][1].values())


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"surface": "bowl"}, ValueError, "surface: expected one of"),
        ({"optimizers": ["adam"]}, TypeError, "optimizers: expected a dict"),
        ({"optimizers": {}}, TypeError, "optimizers: expected a dict"),
        ({"steps": 0}, ValueError, "steps: expected an int >= 1"),
    ],
)
def test_optimizer_paths_bad_input(kwargs, error, words):
    with pytest.raises(error) as info:
        P.optimizer_paths(**kwargs)
    assert words in str(info.value)
    plt.close("all")


@pytest.mark.parametrize(
    "kwargs, words",
    [({"lr": -1.0}, "lr: expected a number >= 0"), ({"epochs": 0}, "epochs: expected an int >= 1")],
)
def test_gd_variants_bad_input(kwargs, words):
    with pytest.raises(ValueError, match=words):
        P.gd_variants(**kwargs)
