"""Curves of the losses, the activations and the learning-rate schedules, every value computed
by pycvnn's own kernels on the current backend."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable, overload

import numpy as np

from .. import _validate as v
from .. import activations as A
from .. import losses as L
from .. import schedules as S
from .._types import FloatArray
from ._mpl import panels, tidy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure


def _interval(value: tuple[float, float], name: str) -> tuple[float, float]:
    """(low, high) as two finite floats with low < high."""
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a pair (low, high), got {value!r}") from None
    lo, hi = v.number(lo, name), v.number(hi, name)
    if not lo < hi:
        raise ValueError(f"{name}: expected low < high, got {value!r}")
    return lo, hi


def _grid(value: tuple[float, float], name: str, points: int) -> FloatArray:
    return np.linspace(*_interval(value, name), v.integer(points, "points", minimum=2))


def _deltas(deltas: Iterable[float]) -> list[float]:
    if isinstance(deltas, str) or not hasattr(deltas, "__iter__"):
        raise TypeError(f"deltas: expected a sequence of positive numbers, got {deltas!r}")
    checked = [v.number(d, "deltas", 0, strict=True) for d in deltas]
    if not checked:
        raise ValueError("deltas: expected at least one Huber delta, got an empty sequence")
    return checked


def _regression(ax: Axes, r: FloatArray, deltas: list[float]) -> None:
    zero = np.zeros_like(r)
    ax.plot(r, L.l1(r, zero, reduction="none"), label="L1  |r|")
    ax.plot(r, L.l2(r, zero, reduction="none"), label="L2  r²")
    for d in deltas:
        ax.plot(r, L.huber(r, zero, delta=d, reduction="none"), "--", label=f"Huber δ = {d:g}")
    tidy(ax, "residual r = pred − target", "loss", "Regression losses")


def _classification(ax: Axes, m: FloatArray) -> None:
    one = np.ones_like(m)
    hinge = L.hinge(m, one, reduction="none")
    ax.plot(m, hinge, label="hinge  max(0, 1 − m)")
    ax.plot(m, L.squared_hinge(m, one, reduction="none"), label="squared hinge")
    ax.plot(m, L.binary_cross_entropy(m, one, reduction="none"), label="BCE  log(1 + e⁻ᵐ)")
    # The 0-1 loss has no kernel (it has no gradient to train on): drawn only for comparison.
    step, lo, hi = min(max(0.0, m[0]), m[-1]), float(m[0] <= 0), float(m[-1] <= 0)
    ax.plot([m[0], step, step, m[-1]], [lo, lo, hi, hi], color="0.3", lw=0.8, label="0-1 loss")
    # The squared hinge would dwarf the rest: the view stops a little above the hinge.
    ax.set_ylim(-0.1, max(1.2, 1.1 * float(hinge.max())))
    tidy(ax, "margin m = y·s  (y = ±1, s the score)", "loss", "Classification losses")


def _dice(ax: Axes, pixels: int, p: FloatArray) -> None:
    """Two masks of `pixels` pixels overlapping in k = 0..pixels of them; a soft prediction p
    on every pixel of the ground truth."""
    k = np.arange(pixels + 1)[:, None]
    idx = np.arange(2 * pixels)
    a = np.broadcast_to(idx < pixels, (pixels + 1, 2 * pixels)).astype(float)
    b = ((idx >= pixels - k) & (idx < 2 * pixels - k)).astype(float)
    ax.plot(
        k[:, 0] / pixels,
        L.dice(a, b, reduction="none"),
        "o-",
        ms=3,
        label=f"two masks of {pixels} px, overlap |A∩B|/|A|",
    )
    soft = np.repeat(p[:, None], pixels, axis=1)
    ax.plot(
        p,
        L.dice(soft, np.ones_like(soft), reduction="none"),
        "--",
        label="soft: p on every ground-truth pixel",
    )
    tidy(ax, "overlap |A∩B| / |A|   or   soft prediction p", "Dice loss", "Dice loss")


def losses(
    residual: tuple[float, float] = (-3.0, 3.0),
    deltas: Iterable[float] = (0.5, 1.0, 2.0),
    margin: tuple[float, float] = (-2.0, 3.0),
    pixels: int = 16,
    points: int = 401,
) -> Figure:
    """Three panels: L1, L2 and Huber (one curve per delta) against the residual; hinge,
    squared hinge and binary cross-entropy from logits against the margin (with the 0-1 loss);
    the Dice loss against the overlap of two equal masks and against a soft prediction."""
    r = _grid(residual, "residual", points)
    m = _grid(margin, "margin", points)
    deltas = _deltas(deltas)
    pixels = v.integer(pixels, "pixels", minimum=1)
    fig, (reg, cls, dice) = panels(3)
    _regression(reg, r, deltas)
    _classification(cls, m)
    _dice(dice, pixels, np.linspace(0.0, 1.0, points))
    return fig


def _activation_curves(
    act: A.Activation, z: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """(f(z), f'(z)); a per-row activation (softmax) is shown as component 0 of f([z, 0])."""
    opts = {"alpha": alpha} if "alpha" in act.options else {}
    if not act.per_row:
        return act(z, **opts), act.backward(z, np.ones_like(z), **opts)
    zz = np.stack([z, np.zeros_like(z)], axis=-1)
    # dout = e0 picks the Jacobian's row 0, whose entry 0 is d f_0 / d z.
    e0 = np.broadcast_to([1.0, 0.0], zz.shape)
    return act(zz, **opts)[:, 0], act.backward(zz, e0, **opts)[:, 0]


def activations(
    z: tuple[float, float] = (-5.0, 5.0), alpha: float = 0.1, points: int = 401, columns: int = 4
) -> Figure:
    """One panel per registered activation with f(z) and f'(z) (from its backward kernel);
    softmax as component 0 of softmax([z, 0]); leaky ReLU with slope `alpha` below 0."""
    grid = _grid(z, "z", points)
    alpha = v.number(alpha, "alpha", 0)
    columns = v.integer(columns, "columns", minimum=1)
    names = list(A.REGISTRY)
    rows = math.ceil(len(names) / columns)
    fig, axes = panels(min(columns, len(names)), rows)
    for ax, name in zip(axes, names):
        act = A.REGISTRY[name]
        f, df = _activation_curves(act, grid, alpha)
        ax.plot(grid, f, label="f(z)")
        ax.plot(grid, df, "--", label="f′(z)")
        title = name + ("([z, 0])₀" if act.per_row else "")
        title += f"  (α = {alpha:g})" if "alpha" in act.options else ""
        tidy(ax, "z", "f(z), f′(z)", title)
    for ax in axes[len(names) :]:
        ax.remove()
    return fig


def plateau_loss(epoch: int, epochs: int) -> float:
    """The loss fed to ReduceOnPlateau in `schedules`: falls linearly, then flat at 0.3 from a
    quarter of the run on."""
    return max(0.3, 1.0 - epoch / (0.35 * epochs))


def _lrs(schedule: Callable[[int], float], epochs: int) -> list[float]:
    """The lr a schedule gives at each epoch, as fit uses it: schedule(e) at an epoch's start,
    step(plateau_loss(e, epochs)) at its end when the schedule has a step."""
    lrs = []
    for e in range(epochs):
        lrs.append(schedule(e))
        if hasattr(schedule, "step"):
            schedule.step(plateau_loss(e, epochs))
    return lrs


@overload
def schedules(lr: float = ..., epochs: int = ..., ax: None = ...) -> Figure: ...
@overload
def schedules(lr: float = ..., epochs: int = ..., ax: Axes | None = ...) -> Figure | SubFigure: ...
def schedules(lr: float = 0.1, epochs: int = 100, ax: Axes | None = None) -> Figure | SubFigure:
    """The lr against the epoch for every schedule in pycvnn.schedules.REGISTRY, each built by
    its class's for_run(lr, epochs); ReduceOnPlateau is fed plateau_loss."""
    lr = v.number(lr, "lr", 0)
    epochs = v.integer(epochs, "epochs", minimum=2)
    fig, (ax,) = panels(ax=ax, size=(6.4, 3.6))
    e = np.arange(epochs)
    for name, cls in S.REGISTRY.items():
        label = name
        if cls is S.ReduceOnPlateau:
            label += f"\nfed the loss\nmax(0.3, 1 − e/{0.35 * epochs:g})"
        ax.plot(e, _lrs(cls.for_run(lr, epochs), epochs), label=label)
    tidy(ax, "epoch e", "learning rate η", f"Schedules: for_run(lr={lr:g}, epochs={epochs})")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig
