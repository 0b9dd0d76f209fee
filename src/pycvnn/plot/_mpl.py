"""matplotlib for the plot functions: pyplot, or a clear ImportError naming the extra."""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

try:
    import matplotlib.pyplot as plt
except ImportError:
    raise ImportError("plotting needs matplotlib: pip install 'pycvnn[plot]'") from None

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

# One panel's size in inches: a figure of n panels side by side is n of these wide.
PANEL = (4.6, 3.6)


@overload
def panels(
    n: int = ..., rows: int = ..., ax: None = ..., size: tuple[float, float] = ...
) -> tuple[Figure, list[Axes]]: ...
@overload
def panels(
    n: int = ..., rows: int = ..., ax: Axes | None = ..., size: tuple[float, float] = ...
) -> tuple[Figure | SubFigure, list[Axes]]: ...
def panels(
    n: int = 1, rows: int = 1, ax: Axes | None = None, size: tuple[float, float] = PANEL
) -> tuple[Figure | SubFigure, list[Axes]]:
    """(figure, list of axes): the caller's `ax` when given (one panel only), else a new
    pyplot figure of rows x n panels with constrained layout (so nothing is clipped)."""
    if ax is not None:
        if not isinstance(ax, plt.Axes):
            raise TypeError(f"ax: expected a matplotlib Axes, got {ax!r}")
        if n * rows != 1:
            raise ValueError(
                f"ax: this figure has {n * rows} panels, so it draws its own; got {ax!r}"
            )
        return ax.figure, [ax]
    fig, axes = plt.subplots(
        rows, n, figsize=(size[0] * n, size[1] * rows), layout="constrained", squeeze=False
    )
    return fig, list(axes.flat)


def tidy(ax: Axes, xlabel: str, ylabel: str, title: str | None = None, legend: bool = True) -> Axes:
    """Labels, a light grid and (when there are labelled artists) a legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax
