"""Two-variable test functions for optimizers: what optim.minimize runs on in the lecture's
pictures. Each surface gives f on grids (for contours) and (value, gradient) at a point (for
minimize), a start that shows the optimizers apart, its minima and a window to draw."""

from __future__ import annotations

from typing import NamedTuple, Protocol, Tuple, TypeVar, Union, overload

import numpy as np

from ._registry import Registry
from ._types import FloatArray

Point = Tuple[float, float]
# The surfaces' functions take numbers or arrays (grids) and give the same back.
XY = TypeVar("XY", float, FloatArray)


class Function(Protocol):
    """f(x, y), elementwise over arrays."""

    @overload
    def __call__(self, x: float, y: float) -> float: ...
    @overload
    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray: ...


class Gradient(Protocol):
    """(df/dx, df/dy), elementwise over arrays."""

    @overload
    def __call__(self, x: float, y: float) -> Tuple[float, float]: ...
    @overload
    def __call__(self, x: FloatArray, y: FloatArray) -> Tuple[FloatArray, FloatArray]: ...


class Surface(NamedTuple):
    name: str
    title: str
    f: Function
    gradient: Gradient
    start: Point
    minima: Tuple[Point, ...]  # ((x, y), ...): every global minimum
    window: Tuple[Point, Point]  # ((x_lo, x_hi), (y_lo, y_hi))

    def __call__(self, point: Union[FloatArray, Point]) -> Tuple[float, FloatArray]:
        """(f, gradient) at point (2,): the grad argument optim.minimize takes."""
        x, y = point
        return float(self.f(x, y)), np.array(self.gradient(x, y), dtype=np.float64)

    @property
    def minimum_value(self) -> float:
        return float(self.f(*self.minima[0]))


def _quadratic(x: XY, y: XY) -> XY:
    return 0.1 * x * x + 5.0 * y * y


def _rosenbrock(x: XY, y: XY) -> XY:
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _saddle(x: XY, y: XY) -> XY:
    return x * x + 0.25 * y**4 - 0.5 * y * y


SURFACES: Registry[Surface] = Registry("surface")
REGISTRY = SURFACES
SURFACES.update(
    quadratic=Surface(
        "quadratic",
        "ill-conditioned quadratic 0.1x² + 5y²",
        _quadratic,
        lambda x, y: (0.2 * x, 10.0 * y),
        start=(-4.5, 1.5),
        minima=((0.0, 0.0),),
        window=((-5.0, 1.5), (-2.0, 2.0)),
    ),
    rosenbrock=Surface(
        "rosenbrock",
        "Rosenbrock (1 − x)² + 100(y − x²)²",
        _rosenbrock,
        lambda x, y: (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)),
        start=(-1.2, 1.0),
        minima=((1.0, 1.0),),
        window=((-1.6, 1.6), (-0.6, 1.8)),
    ),
    saddle=Surface(
        "saddle",
        "saddle x² + y⁴/4 − y²/2",
        _saddle,
        lambda x, y: (2.0 * x, y**3 - y),
        start=(-1.5, 1e-3),
        minima=((0.0, 1.0), (0.0, -1.0)),
        window=((-2.0, 2.0), (-1.6, 1.6)),
    ),
)


def get(name: Union[str, Surface]) -> Surface:
    """A surface by name ("quadratic", "rosenbrock", "saddle"); a Surface passes through."""
    return SURFACES.lookup(name) if not isinstance(name, Surface) else name
