"""matplotlib for the plot functions: pyplot, or a clear ImportError naming the extra."""

try:
    import matplotlib.pyplot as plt
except ImportError:
    raise ImportError("plotting needs matplotlib: pip install 'pycvnn[plot]'") from None

# One panel's size in inches: a figure of n panels side by side is n of these wide.
PANEL = (4.6, 3.6)


def panels(n=1, rows=1, ax=None, size=PANEL):
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


def tidy(ax, xlabel, ylabel, title=None, legend=True):
    """Labels, a light grid and (when there are labelled artists) a legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax
