"""The NumPy twin of pycvnn._core: same names, argument order and return values.

Written to be read: each function is the formula, vectorised. The C++ path is tested
against it, and it is tested against central finite differences.
"""

from .gemm import matmul

__all__ = ["matmul"]
