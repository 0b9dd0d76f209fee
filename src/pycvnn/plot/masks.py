"""The Dice coefficient on two small binary masks, its loss from pycvnn.losses.dice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from .. import _validate as v
from .. import losses as L
from .._types import ArrayLike, NDArray
from ._mpl import panels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The lecture's example: a prediction of 6 pixels and a ground truth of 5, overlapping in 4.
PREDICTION = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
GROUND_TRUTH = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0]])

# Overlap codes A + 2B: neither, A only, B only, both.
_OVERLAP = ("white", "#9ecae1", "#fdae6b", "#2ca02c")


def _mask(value: ArrayLike, name: str) -> NDArray[np.int_]:
    mask = v.numeric(value, name)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"{name}: expected a 2-D mask, got shape {mask.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(
            f"{name}: expected a binary mask of 0s and 1s, got {mask[~np.isin(mask, (0, 1))][0]!r}"
        )
    return mask.astype(int)


def _image(ax: Axes, image: NDArray[np.int_], colors: Sequence[str], title: str) -> None:
    ax.imshow(image, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1)
    rows, cols = image.shape
    # Pixel borders as lines: minor-tick grids vanish on an image's inverted y axis.
    ax.hlines(np.arange(rows + 1) - 0.5, -0.5, cols - 0.5, color="0.5", lw=0.8)
    ax.vlines(np.arange(cols + 1) - 0.5, -0.5, rows - 0.5, color="0.5", lw=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def dice_masks(
    prediction: ArrayLike = PREDICTION, ground_truth: ArrayLike = GROUND_TRUTH
) -> Figure:
    """Prediction A, ground truth B and their overlap (A∩B highlighted), with |A|, |B|, |A∩B|,
    Dice = 2|A∩B| / (|A| + |B|) and the Dice loss of pycvnn.losses.dice written on it."""
    a, b = _mask(prediction, "prediction"), _mask(ground_truth, "ground_truth")
    if a.shape != b.shape:
        raise ValueError(f"ground_truth: expected prediction's shape {a.shape}, got {b.shape}")
    na, nb, both = int(a.sum()), int(b.sum()), int((a & b).sum())
    if na + nb == 0:
        raise ValueError(
            "prediction: expected a pixel set in it or in ground_truth (Dice is undefined "
            "for two empty masks), got two empty masks"
        )
    dice = 2 * both / (na + nb)
    loss = L.dice(a[None].astype(float), b[None].astype(float))
    fig, (pa, pb, po) = panels(3, size=(3.6, 3.9))
    _image(pa, a, ("white", _OVERLAP[1]), f"prediction A:  |A| = {na}")
    _image(pb, b, ("white", _OVERLAP[2]), f"ground truth B:  |B| = {nb}")
    _image(po, a + 2 * b, _OVERLAP, f"overlap:  |A∩B| = {both}")
    labels = ("A only", "B only", "A∩B")
    po.legend(
        [Patch(color=c, ec="0.5") for c in _OVERLAP[1:]],
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncols=3,
        fontsize="small",
    )
    fig.suptitle(
        f"Dice = 2|A∩B| / (|A| + |B|) = 2·{both} / ({na} + {nb}) = {dice:.3f}"
        f"      Dice loss (pycvnn.losses.dice) = {loss:.3f}"
    )
    return fig
