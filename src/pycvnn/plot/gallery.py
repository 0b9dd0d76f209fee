"""The gallery: every lecture figure by name, as `pycvnn figures` writes them (NAME.png) and
the README shows them. Each entry is the call that draws it, as text and as a function."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Tuple

from .. import MLP, datasets
from .._atomic import write_atomically
from .._types import FloatArray, IntArray, PathLike
from ..model import Sequential
from ..training import History
from . import curves, descent, masks, models
from ._mpl import plt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The digits run: (model, history, held-out X, held-out y).
DigitsRun = Tuple[Sequential, History, FloatArray, IntArray]


def _digits_run() -> DigitsRun:
    """An MLP trained on the digits' fixed 80/20 split, logging every batch:
    (model, history, held-out X, held-out y)."""
    X, y = datasets.digits()
    train, test = datasets.split(len(X))
    model = MLP([64, 32, 10], output="softmax", seed=0)
    history = model.fit(
        X[train],
        y[train],
        epochs=20,
        seed=0,
        validation_data=(X[test], y[test]),
        verbose=False,
        log_every="batch",
    )
    return model, history, X[test], y[test]


# name -> (the call, as the README shows it; what draws it, given the digits run)
FIGURES: Dict[str, Tuple[str, Callable[[Callable[[], DigitsRun]], Figure]]] = {
    "losses": ("plot.losses()", lambda run: curves.losses()),
    "activations": ("plot.activations()", lambda run: curves.activations()),
    "gd_variants": ("plot.gd_variants()", lambda run: descent.gd_variants()),
    "optimizers_quadratic": (
        'plot.optimizer_paths("quadratic")',
        lambda run: descent.optimizer_paths("quadratic"),
    ),
    "optimizers_rosenbrock": (
        'plot.optimizer_paths("rosenbrock")',
        lambda run: descent.optimizer_paths("rosenbrock"),
    ),
    "optimizers_saddle": (
        'plot.optimizer_paths("saddle")',
        lambda run: descent.optimizer_paths("saddle"),
    ),
    "schedules": ("plot.schedules()", lambda run: curves.schedules()),
    "dice": ("plot.dice_masks()", lambda run: masks.dice_masks()),
    "digits_curves": (
        'plot.history(model.fit(X, y, log_every="batch", ...))',
        lambda run: models.history(run()[1]),
    ),
    "digits_confusion": (
        "plot.confusion_matrix(model, X_test, y_test)",
        lambda run: models.confusion_matrix(run()[0], *run()[2:]),
    ),
}


def write(out: PathLike, names: Iterable[str] | None = None, dpi: float = 100) -> list[str]:
    """Write the figures called `names` (default: all) as out/NAME.png, each atomically;
    returns their paths. The digits model is trained once, if a figure needs it."""
    names = list(FIGURES) if names is None else list(names)
    for name in names:
        if name not in FIGURES:
            raise ValueError(f"names: expected figures among {list(FIGURES)}, got {name!r}")
    os.makedirs(out, exist_ok=True)
    cache: list[DigitsRun] = []

    def run() -> DigitsRun:
        if not cache:
            cache.append(_digits_run())
        return cache[0]

    paths = []
    for name in names:
        fig = FIGURES[name][1](run)
        path = os.path.join(out, f"{name}.png")
        try:
            write_atomically(path, functools.partial(fig.savefig, format="png", dpi=dpi))
        finally:
            plt.close(fig)
        paths.append(path)
    return paths
