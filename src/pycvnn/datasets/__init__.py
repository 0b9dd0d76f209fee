"""Data sets: the bundled digits, MNIST-format IDX files, class-per-folder images and 2-D toy
generators."""

from __future__ import annotations

import importlib.resources

import numpy as np

from .._types import FloatArray, IntArray
from ._idx import load_idx
from ._images import load_image_folder
from ._toy import make_circles, make_gaussians, make_spiral, make_xor

__all__ = [
    "digits",
    "split",
    "load_idx",
    "load_image_folder",
    "make_circles",
    "make_xor",
    "make_gaussians",
    "make_spiral",
]


def digits() -> tuple[FloatArray, IntArray]:
    """The 8x8 handwritten digits: X float32 (1797, 64) = pixel / 16 in [0, 1], y int64 0..9.

    The UCI "Optical Recognition of Handwritten Digits" set as scikit-learn distributes it
    (built by scripts/make_digits.py).
    """
    with importlib.resources.files("pycvnn").joinpath("data/digits.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        X = data["images"].astype(np.float32) / np.float32(16.0)
        y = data["labels"].astype(np.int64)
    return X, y


def split(n: int, test_fraction: float = 0.2, seed: int = 20240101) -> tuple[IntArray, IntArray]:
    """(train rows, test rows) of a fixed split of n samples: the same permutation every run
    (what `pycvnn train` and the digits figures hold out)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]
