"""The playground's data: six two-dimensional data sets (the four classification ones drawn by
pycvnn.datasets) and the input features computed from their coordinates.

Points lie in [-6, 6]^2 (the plane the page shows); class labels are 0 and 1, regression
targets lie in about [-1, 1]. The shapes follow TensorFlow Playground's.
"""

from typing import NamedTuple

import numpy as np

from ..datasets._toy import draw_circles, draw_gaussians, draw_spiral, draw_xor

EXTENT = (-6.0, 6.0, -6.0, 6.0)  # x0, x1, y0, y1 of the plane the page draws

# The features a network can take, each a function of the coordinates (x1, x2): the
# polynomial ones are scaled by 1/6 so every feature lies in [-1, 1] over the plane.
FEATURES = {
    "x1": lambda a, b: a / 6,
    "x2": lambda a, b: b / 6,
    "x1^2": lambda a, b: (a / 6) ** 2,
    "x2^2": lambda a, b: (b / 6) ** 2,
    "x1*x2": lambda a, b: a * b / 36,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}


def _plane(rng, n, noise):
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, xy.shape) * noise
    return xy, (noisy[:, 0] + noisy[:, 1]) / 10


# Centre x, centre y and sign of each bump of the "gaussian" regression surface.
BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _bumps(rng, n, noise):
    xy = rng.uniform(-6, 6, (n, 2))
    noisy = xy + rng.uniform(-6, 6, xy.shape) * noise
    target = sum(
        s * np.exp(-((noisy[:, 0] - cx) ** 2 + (noisy[:, 1] - cy) ** 2) / 2) for cx, cy, s in BUMPS
    )
    return xy, target


# name -> (kind, generator(rng, n, noise) -> (points (n, 2), targets (n,))).
DATASETS = {
    "circle": ("classification", draw_circles),
    "xor": ("classification", draw_xor),
    "gaussians": ("classification", draw_gaussians),
    "spiral": ("classification", draw_spiral),
    "plane": ("regression", _plane),
    "gaussian": ("regression", _bumps),
}


class Split(NamedTuple):
    """Points (n, 2) and targets (n,) of the training and the test part."""

    train_points: np.ndarray
    train_targets: np.ndarray
    test_points: np.ndarray
    test_targets: np.ndarray


def generate(name, n, noise, train_fraction, seed):
    """The data set `name` with n points, split at random into train and test (each gets at
    least one point); the same arguments give the same data."""
    rng = np.random.default_rng(seed)
    points, targets = DATASETS[name][1](rng, n, noise)
    order = rng.permutation(n)
    n_train = min(n - 1, max(1, round(n * train_fraction)))
    train, test = order[:n_train], order[n_train:]
    return Split(points[train], targets[train], points[test], targets[test])


def features(points, names, dtype=np.float32):
    """The input matrix (n, len(names)) of the named features at points (n, 2)."""
    a, b = points[:, 0], points[:, 1]
    return np.ascontiguousarray(np.stack([FEATURES[f](a, b) for f in names], axis=1), dtype=dtype)


def grid(size):
    """size * size points over EXTENT, row-major, y from y0 (row 0) to y1, x from x0 to x1."""
    x0, x1, y0, y1 = EXTENT
    xs, ys = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)
