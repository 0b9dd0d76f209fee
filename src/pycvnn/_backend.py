"""Backend choice: "cpp" (pycvnn._core) or "numpy" (pycvnn.reference), process-wide."""

from __future__ import annotations

import contextlib
import numbers
from types import ModuleType
from typing import Iterator

import scipy_openblas32  # noqa: F401  (loads OpenBLAS with RTLD_GLOBAL; _core finds its symbols)

from . import _core, reference

if not _core._blas_load():
    raise ImportError("pycvnn: OpenBLAS symbols not found; is scipy-openblas32 installed?")
_core._set_num_threads(_core._blas_num_threads())  # the core's pool matches OpenBLAS's count

_BACKENDS = {"cpp": _core, "numpy": reference}
_current = "cpp"


def set_backend(name: str) -> None:
    """Select the backend every public function and fit use: "cpp" or "numpy"."""
    global _current
    if not isinstance(name, str) or name not in _BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(_BACKENDS)}, got {name!r}")
    _current = name


def get_backend() -> str:
    """The name of the current backend."""
    return _current


@contextlib.contextmanager
def using_backend(name: str) -> Iterator[None]:
    """`with using_backend("numpy"):` runs the block on that backend, then restores the previous."""
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def backend() -> ModuleType:
    """The module implementing the current backend (_core or reference)."""
    return _BACKENDS[_current]


def set_num_threads(n: int) -> None:
    """Threads used by the compiled core (its BLAS included), from 1 to 1024. Safe at any time
    from any thread: it never waits; the count applies once no call into the core is running,
    and a fit keeps the count it started with to its end."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= int(n) <= 1024:
        raise ValueError(f"n: expected an int from 1 to 1024, got {n!r}")
    _core._set_num_threads(int(n))


def get_num_threads() -> int:
    return _core._get_num_threads()
