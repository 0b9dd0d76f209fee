"""Gradient descent in pictures: batch, stochastic and mini-batch descent on the lecture's
walkthrough problem, and the optimizers' paths over a surface. Every step is pycvnn's own
update rule, run by optim.minimize."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from .. import _validate as v
from .. import losses, optim, surfaces
from .._net import rng_for
from .._types import FloatArray, IntArray
from ._mpl import panels, tidy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The lecture's walkthrough problem: y = 2x fits it exactly.
WALK_X = np.array([1.0, 2.0, 3.0])
WALK_Y = np.array([2.0, 4.0, 6.0])
VARIANTS = {"batch": None, "stochastic": 1, "mini-batch": 2}  # name -> batch size


def _line_gradient(
    X: FloatArray, y: FloatArray, batches: Iterable[IntArray]
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """grad(theta) for optim.minimize: the MSE of y_hat = w x + b over the next batch of
    `batches`, (value, (dL/dw, dL/db)), from pycvnn's l2 loss and its gradient kernel."""
    batches = iter(batches)

    def grad(theta: FloatArray) -> tuple[float, FloatArray]:
        rows = next(batches)
        pred = theta[0] * X[rows] + theta[1]
        dpred = losses.l2_grad(pred, y[rows])  # dL/dy_hat = 2/n (y_hat - y)
        return float(losses.l2(pred, y[rows])), np.array([dpred @ X[rows], dpred.sum()])

    return grad


def _batches(n: int, size: int | None, epochs: int, rng: np.random.Generator) -> Iterator[IntArray]:
    """The rows of each step: one shuffled permutation per epoch (as fit draws them), cut into
    batches of `size` (None: the whole set, in order)."""
    for _ in range(epochs):
        order = np.arange(n) if size is None else rng.permutation(n)
        step = size or n
        yield from (order[i : i + step] for i in range(0, n, step))
    yield np.arange(n)  # minimize's last call only reads the value at the last iterate


def descent_paths(
    lr: float = 0.1,
    epochs: int = 30,
    seed: int | None = 0,
    X: FloatArray = WALK_X,
    y: FloatArray = WALK_Y,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """{variant: (iterates (steps + 1, 2) of (w, b), full-data MSE at each iterate)} for
    batch, stochastic and mini-batch gradient descent from w = b = 0."""
    lr = v.number(lr, "lr", minimum=0)
    epochs = v.integer(epochs, "epochs", minimum=1, exc=ValueError)
    rng = rng_for(seed)
    out = {}
    for name, size in VARIANTS.items():
        steps = epochs * -(-len(X) // (size or len(X)))
        grad = _line_gradient(X, y, _batches(len(X), size, epochs, rng))
        path, _ = optim.minimize(grad, np.zeros(2), optim.GD(lr=lr), steps)
        full = [losses.l2(w * X + b, y) for w, b in path]
        out[name] = (path, np.array(full))
    return out


def gd_variants(lr: float = 0.1, epochs: int = 30, seed: int | None = 0) -> Figure:
    """Batch, stochastic (batch 1) and mini-batch (batch 2) gradient descent on the lecture's
    walkthrough (X = [1, 2, 3], y = [2, 4, 6], y_hat = w x + b, MSE) from w = b = 0: the loss
    over the whole set against iterations, and the (w, b) paths over the loss's contours."""
    runs = descent_paths(lr, epochs, seed)
    fig, (ax_loss, ax_path) = panels(2)
    (w_lo, w_hi), (b_lo, b_hi) = (-0.3, 2.6), (-0.6, 1.6)
    for name, (path, full) in runs.items():
        ax_loss.plot(np.arange(len(full)), full, marker=".", ms=3, lw=1.2, label=name)
        w_lo, w_hi = min(w_lo, path[:, 0].min() - 0.2), max(w_hi, path[:, 0].max() + 0.2)
        b_lo, b_hi = min(b_lo, path[:, 1].min() - 0.2), max(b_hi, path[:, 1].max() + 0.2)
    ax_loss.set_yscale("log")
    tidy(ax_loss, "iteration (one update each)", "MSE over the whole set", f"loss, η = {lr:g}")
    W, B = np.meshgrid(np.linspace(w_lo, w_hi, 200), np.linspace(b_lo, b_hi, 200))
    mse = ((W[..., None] * WALK_X + B[..., None] - WALK_Y) ** 2).mean(axis=-1)
    ax_path.contour(W, B, mse, levels=np.geomspace(1e-3, mse.max(), 16), cmap="viridis", alpha=0.45)
    for name, (path, _) in runs.items():
        ax_path.plot(path[:, 0], path[:, 1], marker=".", ms=3, lw=1.2, label=name)
    ax_path.plot([2.0], [0.0], "r*", ms=12, label="minimum (2, 0)")
    tidy(ax_path, "w", "b", f"(w, b) paths over {epochs} epochs")
    ax_path.legend(loc="lower left", fontsize="small")
    return fig


def _six(
    gd: float, ema: float, heavy_ball: float, rmsprop: float, adam: float
) -> dict[str, optim.Optimizer]:
    """The six optimizers of the pictures, with these learning rates (Nesterov's is heavy
    ball's)."""
    return {
        "GD": optim.GD(lr=gd),
        "momentum (EMA)": optim.Momentum(lr=ema, beta=0.9),
        "heavy ball": optim.Momentum(lr=heavy_ball, beta=0.9, form="heavy_ball"),
        "Nesterov": optim.Momentum(lr=heavy_ball, beta=0.9, form="heavy_ball", nesterov=True),
        "RMSProp": optim.RMSProp(lr=rmsprop),
        "Adam": optim.Adam(lr=adam),
    }


# Per surface: the steps to run and each optimizer with an lr that shows its character there.
PATHS = {
    "quadratic": (80, _six(gd=0.19, ema=0.1, heavy_ball=0.019, rmsprop=0.1, adam=0.3)),
    "rosenbrock": (2000, _six(gd=1e-3, ema=1e-3, heavy_ball=1e-3, rmsprop=1e-2, adam=0.05)),
    "saddle": (100, _six(gd=0.1, ema=0.1, heavy_ball=0.01, rmsprop=0.05, adam=0.1)),
}


def surface_paths(
    surface: str | surfaces.Surface,
    optimizers: dict[str, optim.Optimizer] | None = None,
    steps: int | None = None,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """{label: (iterates (steps + 1, 2), values)} of each optimizer from the surface's start."""
    chosen = surfaces.get(surface)
    default_steps, default_optimizers = PATHS.get(chosen.name, (100, PATHS["saddle"][1]))
    steps = default_steps if steps is None else v.integer(steps, "steps", minimum=1)
    if optimizers is None:
        optimizers = default_optimizers
    if not isinstance(optimizers, dict) or not optimizers:
        raise TypeError(f"optimizers: expected a dict label -> optimizer, got {optimizers!r}")
    # Copies: the defaults are shared by every call (and thread), and a caller's optimizer
    # keeps its own state.
    return {label: _path(chosen, copy.deepcopy(opt), steps) for label, opt in optimizers.items()}


def _path(
    surface: surfaces.Surface, optimizer: optim.Optimizer, steps: int
) -> tuple[FloatArray, FloatArray]:
    found = optim.minimize(surface, surface.start, optimizer, steps)
    # A surface returns (value, gradient), so minimize returns (iterates, values).
    assert isinstance(found, tuple)
    return found


def optimizer_paths(
    surface: str | surfaces.Surface = "quadratic",
    optimizers: dict[str, optim.Optimizer] | None = None,
    steps: int | None = None,
) -> Figure:
    """GD, momentum (EMA and heavy ball), Nesterov, RMSProp and Adam from one start on a
    surface ("quadratic", "rosenbrock", "saddle" or a pycvnn.surfaces.Surface): the paths over
    its contours with the minima marked, and f - f* against step. `optimizers` (label ->
    optimizer) and `steps` replace the defaults."""
    chosen = surfaces.get(surface)
    runs = surface_paths(chosen, optimizers, steps)
    fig, (ax_path, ax_loss) = panels(2)
    (x_lo, x_hi), (y_lo, y_hi) = chosen.window
    X, Y = np.meshgrid(np.linspace(x_lo, x_hi, 300), np.linspace(y_lo, y_hi, 300))
    gap = chosen.f(X, Y) - chosen.minimum_value
    ax_path.contour(
        X,
        Y,
        gap,
        levels=np.geomspace(max(gap.min(), 1e-3), gap.max(), 18),
        cmap="viridis",
        alpha=0.4,
    )
    for label, (path, values) in runs.items():
        (line,) = ax_path.plot(path[:, 0], path[:, 1], lw=1.3, label=label)
        ax_loss.plot(
            np.maximum(values - chosen.minimum_value, 1e-16),
            color=line.get_color(),
            lw=1.3,
            label=label,
        )
    ax_path.plot(*chosen.start, "ko", ms=5, label="start")
    for i, (mx, my) in enumerate(chosen.minima):
        ax_path.plot(mx, my, "r*", ms=13, label="minimum" if i == 0 else None)
    ax_path.set_xlim(x_lo, x_hi)
    ax_path.set_ylim(y_lo, y_hi)
    tidy(ax_path, "x", "y", chosen.title, legend=False)
    fig.legend(*ax_path.get_legend_handles_labels(), loc="outside right center", fontsize="small")
    ax_loss.set_yscale("log")
    tidy(ax_loss, "step", "f(x) − f*", "distance to the minimum's value", legend=False)
    return fig
