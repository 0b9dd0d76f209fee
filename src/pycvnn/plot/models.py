"""Figures of a model and its training: the curves of a History, the decision regions of a
2-D classifier and the confusion matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence, overload

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, ListedColormap, Normalize, to_rgb
from matplotlib.ticker import MaxNLocator

from .. import _validate as v
from .. import metrics
from .._types import ArrayLike, FloatArray, IntArray, NDArray
from ..model import Sequential
from ..training import History, Log
from ._mpl import panels, plt, tidy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

CURVES: tuple[Literal["loss"], Literal["accuracy"]] = ("loss", "accuracy")
# More classes than this get neither numbers in the cells nor a tick per class: they would
# not fit in a panel.
MAX_WRITTEN = 20
# The most opaque a decision region gets, so that the points on top stay visible.
REGION_ALPHA = 0.6
MAX_RESOLUTION = 2000


@overload
def history(
    h: History, ax: None = ..., columns: Sequence[Literal["loss", "accuracy"]] = ...
) -> Figure: ...
@overload
def history(
    h: History, ax: Axes | None = ..., columns: Sequence[Literal["loss", "accuracy"]] = ...
) -> Figure | SubFigure: ...
def history(
    h: History, ax: Axes | None = None, columns: Sequence[Literal["loss", "accuracy"]] = CURVES
) -> Figure | SubFigure:
    """The training curves of a History: a panel per logged column of `columns` ("loss",
    "accuracy"), training and held-out, against the epoch counted from 1; the per-batch losses
    of fit(log_every="batch") are drawn faintly under the epoch loss."""
    if not isinstance(h, History):
        raise TypeError(f"h: expected the History that fit returns, got {type(h).__name__}")
    if not len(h):
        raise ValueError("h: expected a History of at least one epoch, got an empty one")
    if not isinstance(columns, (tuple, list)) or not columns or not set(columns) <= set(CURVES):
        raise ValueError(f"columns: expected some of {CURVES}, got {columns!r}")
    shown = [c for c in columns if c in h.columns]
    if not shown:
        raise ValueError(f"columns: none of {columns!r} was logged; the History has {h.columns}")
    if ax is not None and len(shown) > 1:
        raise ValueError(
            f"ax: this History has {shown} to draw, a panel each; pass columns=({shown[0]!r},) "
            f"to draw one of them into ax, got ax={ax!r}"
        )
    fig, axes = panels(len(shown), ax=ax)
    epochs = np.asarray(h["epoch"]) + 1
    for ax, name in zip(axes, shown):
        if name == "loss":
            _batch_losses(ax, getattr(h, "batches", None))
        ax.plot(epochs, h[name], "o-", ms=3, color="C0", label=f"training {name}")
        if f"val_{name}" in h.columns:
            ax.plot(epochs, h[f"val_{name}"], "s-", ms=3, color="C1", label=f"held-out {name}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        tidy(ax, "epoch", name, f"{name} per epoch")
    return fig


def _batch_losses(ax: Axes, batches: Log | None) -> None:
    """Batch b of e's n batches sits at x = e + (b + 1) / n, so an epoch's last batch lines up
    with that epoch's point (epochs counted from 1)."""
    if batches is None or not len(batches) or not len(batches["loss"]):
        return
    epoch, batch = np.asarray(batches["epoch"]), np.asarray(batches["batch"])
    n = np.zeros(epoch.max() + 1)
    np.maximum.at(n, epoch, batch + 1)
    x = epoch + (batch + 1) / n[epoch]
    ax.plot(x, batches["loss"], lw=0.7, alpha=0.35, color="C0", label="training loss per batch")


def _model(model: Sequential) -> int:
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a pycvnn model (MLP, Sequential), got {model!r}")
    n_classes: int = max(model.out_features, 2)  # one output is a 0/1 decision
    return n_classes


def _targets(y: ArrayLike, n: int, n_classes: int) -> IntArray:
    ids: IntArray = metrics._labels(y, "y")
    if ids.shape != (n,):
        raise ValueError(f"y: expected shape ({n},) (one class per row of X), got {ids.shape}")
    if ids.max() >= n_classes:
        raise ValueError(
            f"y: expected class ids in [0, {n_classes}) (the model's classes), got {ids.max()}"
        )
    return ids


def _colors(n_classes: int) -> NDArray[np.float64]:
    return plt.get_cmap("tab10" if n_classes <= 10 else "tab20")(np.arange(n_classes) % 20)


@overload
def decision_boundary(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: None = ...,
    resolution: int = ...,
    margin: float = ...,
) -> Figure: ...
@overload
def decision_boundary(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: Axes | None = ...,
    resolution: int = ...,
    margin: float = ...,
) -> Figure | SubFigure: ...
def decision_boundary(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: Axes | None = None,
    resolution: int = 200,
    margin: float = 0.1,
) -> Figure | SubFigure:
    """The decision regions of a model of 2 inputs over the box around X (widened by `margin`
    of its size on each side), `resolution` points a side, with the points of X coloured by
    their class y. For two classes the shading is the model's confidence: P(class 1) for a
    sigmoid or softmax output, else the score."""
    n_classes = _model(model)
    X = v.floating(X, "X")
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X: expected 2-D points of shape (N, 2), got shape {X.shape}")
    if model.in_features != 2:
        raise ValueError(f"model: expected a model of 2 inputs (as X), got {model.in_features}")
    y = _targets(y, len(X), n_classes)
    resolution = v.integer(resolution, "resolution", minimum=2)
    if resolution > MAX_RESOLUTION:
        raise ValueError(f"resolution: expected an int <= {MAX_RESOLUTION}, got {resolution}")
    margin = v.number(margin, "margin", minimum=0)

    lo, hi = X.min(axis=0).astype(float), X.max(axis=0).astype(float)
    pad = np.where(hi > lo, margin * (hi - lo), 0.5)
    xs, ys = (np.linspace(lo[i] - pad[i], hi[i] + pad[i], resolution) for i in (0, 1))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(X.dtype)
    classes = model.predict_classes(grid).reshape(resolution, resolution)
    colors = _colors(n_classes)
    # Pixel centres on the grid points, so pixel (i, j) shows the decision at (xs[j], ys[i]).
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    extent = (xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2)

    fig, (ax,) = panels(ax=ax)
    alpha, shading = 0.35, None
    if n_classes == 2:
        value, label, norm = _confidence(model, grid)
        shading = norm(value).reshape(resolution, resolution)
        alpha = REGION_ALPHA * np.abs(2 * shading - 1)
    ax.imshow(
        classes,
        extent=extent,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=n_classes - 0.5,
        alpha=alpha,
    )
    if shading is not None:
        # Blending a class colour with white at alpha a is the colour a of the way from white
        # to it: this scale is exactly the colours drawn.
        ends = [REGION_ALPHA * np.array(to_rgb(c)) + (1 - REGION_ALPHA) for c in colors[:2, :3]]
        stops = np.array([ends[0], to_rgb("white"), ends[1]])
        scale = LinearSegmentedColormap.from_list("confidence", stops)
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=scale), ax=ax, label=label)
    for k in range(n_classes):
        mine = X[y == k]
        if len(mine):
            ax.scatter(
                mine[:, 0],
                mine[:, 1],
                s=16,
                color=colors[k],
                edgecolors="k",
                lw=0.4,
                label=f"class {k}",
            )
    accuracy = float(np.mean(model.predict_classes(X) == y))
    tidy(ax, "$x_1$", "$x_2$", f"decision regions, accuracy {accuracy:.3f}", legend=False)
    # Below the axes, where it covers no point whatever the data.
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(n_classes, 5), fontsize="small"
    )
    return fig


def _confidence(model: Sequential, grid: FloatArray) -> tuple[FloatArray, str, Normalize]:
    """(values, their name, the norm putting the decision threshold at 0.5) for two classes."""
    out = model.predict(grid).astype(np.float64)
    # Only these outputs are P(class 1); any other pair decides by its larger value.
    probability = (out.shape[1], model.ops[-1].activation) in ((1, "sigmoid"), (2, "softmax"))
    value = out[:, 1] - out[:, 0] if out.shape[1] == 2 and not probability else out[:, -1]
    if probability:
        return value, "P(class 1)", Normalize(0.0, 1.0)
    top = max(float(np.abs(value).max()), 1e-12)
    return value, "score (class 1 where > 0)", Normalize(-top, top)


@overload
def confusion_matrix(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: None = ...,
    normalize: Literal["true"] | None = ...,
) -> Figure: ...
@overload
def confusion_matrix(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: Axes | None = ...,
    normalize: Literal["true"] | None = ...,
) -> Figure | SubFigure: ...
def confusion_matrix(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    ax: Axes | None = None,
    normalize: Literal["true"] | None = None,
) -> Figure | SubFigure:
    """The confusion matrix of the model's decisions on X against the classes y: rows true,
    columns predicted, counts in the cells; normalize="true" shows each row as fractions of
    its true class."""
    n_classes = _model(model)
    if normalize not in (None, "true"):
        raise ValueError(f"normalize: expected None or 'true', got {normalize!r}")
    X = v.floating(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X: expected shape (N, {model.in_features}), got shape {X.shape}")
    y = _targets(y, len(X), n_classes)
    counts = metrics.confusion_matrix(y, model.predict_classes(X), n_classes=n_classes)
    shown = counts
    if normalize:
        shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)

    fig, (ax,) = panels(ax=ax)
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, label="fraction of the true class" if normalize else "count")
    if n_classes <= MAX_WRITTEN:
        for (i, j), value in np.ndenumerate(shown):
            dark = value > 0.5 * shown.max()
            text = f"{value:.2f}" if normalize else f"{value}"
            color = "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color=color)
        ax.set_xticks(range(n_classes))
        ax.set_yticks(range(n_classes))
    accuracy = np.trace(counts) / counts.sum()
    tidy(ax, "predicted", "true", f"accuracy {accuracy:.3f} on {counts.sum()} samples")
    ax.grid(False)
    return fig
