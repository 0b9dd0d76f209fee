"""Loss and accuracy curves of a History, saved as an image (needs matplotlib: pycvnn[plot])."""


def plot_history(history, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'pycvnn[plot]'") from None
    cols = history.columns
    panels = [c for c in ("loss", "accuracy") if c in cols]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    epochs = [e + 1 for e in history["epoch"]]
    for ax, name in zip(axes[0], panels):
        ax.plot(epochs, history[name], label=f"train {name}")
        if f"val_{name}" in cols:
            ax.plot(epochs, history[f"val_{name}"], label=f"held-out {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
