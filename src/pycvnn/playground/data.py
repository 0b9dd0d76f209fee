"""The playground's data: six two-dimensional data sets (the four classification ones drawn by
pycvnn.datasets) and the input features computed from their coordinates.

Points lie in [-6, 6]^2 (the plane the page shows); class labels are 0 and 1, regression
targets lie in about [-1, 1]. The shapes follow TensorFlow Playground's.
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Tuple

import numpy as np

from .._types import DTypeLike, FloatArray
from ..datasets._toy import draw_circles, draw_gaussians, draw_spiral, draw_xor

# A data set's generator: (rng, n, noise) -> (points (n, 2), targets (n,)).
Generator = Callable[[np.random.Generator, int, float], Tuple[FloatArray, FloatArray]]

EXTENT = (-6.0, 6.0, -6.0, 6.0)  # x0, x1, y0, y1 of the plane the page draws

# The features a network can take, each a function of the coordinates (x1, x2): the
# polynomial ones are scaled by 1/6 so every feature lies in [-1, 1] over the plane.
FEATURES: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "x1": lambda a, b: a / 6,
    "x2": lambda a, b: b / 6,
    "x1^2": lambda a, b: (a / 6) ** 2,
    "x2^2": lambda a, b: (b / 6) ** 2,
    "x1*x2": lambda a, b: a * b / 36,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[FloatArray, FloatArray]:
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, xy.shape) * noise
    return xy, (noisy[:, 0] + noisy[:, 1]) / 10


# Centre x, centre y and sign of each bump of the "gaussian" regression surface.
BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _bumps(rng: np.random.Generator, n: int, noise: float) -> tuple[FloatArray, FloatArray]:
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, xy.shape) * noise
    bumps = (
        s * np.exp(-((noisy[:, 0] - cx) ** 2 + (noisy[:, 1] - cy) ** 2) / 2) for cx, cy, s in BUMPS
    )
    target = sum(bumps, np.zeros(n))  # an array start, so the sum is one to a type checker too
    return xy, target


# name -> (kind, generator(rng, n, noise) -> (points (n, 2), targets (n,))).
DATASETS: dict[str, tuple[str, Generator]] = {
    "circle": ("classification", draw_circles),
    "xor": ("classification", draw_xor),
    "gaussians": ("classification", draw_gaussians),
    "spiral": ("classification", draw_spiral),
    "plane": ("regression", _plane),
    "gaussian": ("regression", _bumps),
}


class Split(NamedTuple):
    """Points (n, 2) and targets (n,) of the training and the test part."""

    train_points: FloatArray
    train_targets: FloatArray
    test_points: FloatArray
    test_targets: FloatArray


def generate(name: str, n: int, noise: float, train_fraction: float, seed: int) -> Split:
    """The data set `name` with n points, split at random into train and test (each gets at
    least one point); the same arguments give the same data."""
    rng = np.random.default_rng(seed)
    points, targets = DATASETS[name][1](rng, n, noise)
    order = rng.permutation(n)
    n_train = min(n - 1, max(1, round(n * train_fraction)))
    train, test = order[:n_train], order[n_train:]
    return Split(points[train], targets[train], points[test], targets[test])


def features(points: FloatArray, names: Iterable[str], dtype: DTypeLike = np.float32) -> FloatArray:
    """The input matrix (n, len(names)) of the named features at points (n, 2)."""
    a, b = points[:, 0], points[:, 1]
    return np.ascontiguousarray(np.stack([FEATURES[f](a, b) for f in names], axis=1), dtype=dtype)


def grid(size: int) -> FloatArray:
    """size * size points over EXTENT, row-major, y from y0 (row 0) to y1, x from x0 to x1."""
    x0, x1, y0, y1 = EXTENT
    xs, ys = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)
