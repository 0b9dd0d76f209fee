"""Bundled data sets."""

import importlib.resources

import numpy as np


def digits():
    """The 8x8 handwritten digits: X float32 (1797, 64) = pixel / 16 in [0, 1], y int64 0..9.

    The UCI "Optical Recognition of Handwritten Digits" set as scikit-learn distributes it
    (built by scripts/make_digits.py).
    """
    with importlib.resources.files("pycvnn").joinpath("data/digits.npz").open("rb") as f:
        data = np.load(f, allow_pickle=False)
        X = data["images"].astype(np.float32) / np.float32(16.0)
        y = data["labels"].astype(np.int64)
    return X, y
