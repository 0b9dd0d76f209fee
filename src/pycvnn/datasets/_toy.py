"""Two-dimensional toy data sets: the playground's four classification shapes.

Points lie in about [-6, 6]^2 with labels 0 and 1; the shapes follow TensorFlow Playground's.
Each `draw_*` takes a NumPy Generator and returns points (n, 2) and labels (n,), both float64,
in drawing order; the playground draws through them, `make_*` wraps them for users.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import _validate
from .._types import FloatArray, IntArray, NDArray

RADIUS = 5.0


def draw_circles(
    rng: np.random.Generator, n: int, noise: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    def ring(count: int, r_lo: float, r_hi: float) -> NDArray[np.float64]:
        r = rng.uniform(r_lo, r_hi, count)
        angle = rng.uniform(0, 2 * np.pi, count)
        return np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)

    half = n // 2
    xy = np.concatenate([ring(half, 0, 0.5 * RADIUS), ring(n - half, 0.7 * RADIUS, RADIUS)])
    noisy = xy + rng.uniform(-RADIUS, RADIUS, xy.shape) * noise
    return xy, (np.hypot(noisy[:, 0], noisy[:, 1]) < 0.5 * RADIUS).astype(np.float64)


def draw_xor(
    rng: np.random.Generator, n: int, noise: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    xy = rng.uniform(-RADIUS, RADIUS, (n, 2))
    xy += np.where(xy > 0, 0.3, -0.3)  # a gap along the axes, where the label is ambiguous
    noisy = xy + rng.uniform(-RADIUS, RADIUS, xy.shape) * noise
    return xy, (noisy[:, 0] * noisy[:, 1] >= 0).astype(np.float64)


def draw_gaussians(
    rng: np.random.Generator, n: int, noise: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    sigma = np.sqrt(0.5 + 7 * noise)  # variance 0.5 at no noise, 4 at noise 0.5
    half = n // 2
    centres = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [half, n - half], axis=0)
    xy = centres + rng.normal(0, sigma, (n, 2))
    return xy, (np.arange(n) < half).astype(np.float64)


def draw_spiral(
    rng: np.random.Generator, n: int, noise: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    half = n // 2
    parts = []
    for count, delta in ((half, 0.0), (n - half, np.pi)):
        i = np.arange(count)
        r = i / count * RADIUS
        t = 1.75 * i / count * 2 * np.pi + delta
        parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
    xy = np.concatenate(parts) + rng.uniform(-1, 1, (n, 2)) * noise
    return xy, (np.arange(n) < half).astype(np.float64)


def _make(
    draw: Callable[
        [np.random.Generator, int, float], tuple[NDArray[np.float64], NDArray[np.float64]]
    ],
    n: int,
    noise: float,
    seed: int | None,
) -> tuple[FloatArray, IntArray]:
    n = _validate.integer(n, "n", minimum=1)
    noise = _validate.number(noise, "noise", minimum=0)
    if seed is not None:
        seed = _validate.integer(seed, "seed", minimum=0)
    xy, labels = draw(np.random.default_rng(seed), n, noise)
    return xy.astype(np.float32), labels.astype(np.int64)


def make_circles(
    n: int = 200, noise: float = 0.0, seed: int | None = None
) -> tuple[FloatArray, IntArray]:
    """A disc (label 1, the first n // 2 rows at no noise) inside a ring (label 0).

    Returns X float32 (n, 2) and y int64 (n,) in drawing order (not shuffled); noise >= 0
    moves the points the label is computed from by up to noise * 5; the same seed gives the
    same data."""
    return _make(draw_circles, n, noise, seed)


def make_xor(
    n: int = 200, noise: float = 0.0, seed: int | None = None
) -> tuple[FloatArray, IntArray]:
    """Uniform points labelled 1 in the first and third quadrants, 0 in the other two.

    Returns X float32 (n, 2) and y int64 (n,); noise >= 0 moves the points the label is
    computed from by up to noise * 5; the same seed gives the same data."""
    return _make(draw_xor, n, noise, seed)


def make_gaussians(
    n: int = 200, noise: float = 0.0, seed: int | None = None
) -> tuple[FloatArray, IntArray]:
    """Two Gaussian blobs: the first n // 2 rows around (2, 2) (label 1), the rest around
    (-2, -2) (label 0), with variance 0.5 + 7 * noise.

    Returns X float32 (n, 2) and y int64 (n,); the same seed gives the same data."""
    return _make(draw_gaussians, n, noise, seed)


def make_spiral(
    n: int = 200, noise: float = 0.0, seed: int | None = None
) -> tuple[FloatArray, IntArray]:
    """Two interleaved spirals: the first n // 2 rows (label 1) and the rest (label 0), each
    point moved by up to noise in each coordinate.

    Returns X float32 (n, 2) and y int64 (n,); the same seed gives the same data."""
    return _make(draw_spiral, n, noise, seed)
