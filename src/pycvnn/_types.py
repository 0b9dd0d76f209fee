"""Type aliases shared by pycvnn's annotations (arrays in and out, file paths)."""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

# What the public functions return: float32 or float64 arrays, as the dtype rule says.
FloatArray = NDArray[np.floating[Any]]
# Class ids and row orders.
IntArray = NDArray[np.int64]
# Any ndarray, for buffers whose dtype the caller chooses.
Array = NDArray[Any]
# What the file functions take for a path.
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["ArrayLike", "Array", "DTypeLike", "FloatArray", "IntArray", "NDArray", "PathLike"]
