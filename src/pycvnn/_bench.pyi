"""Stub of pycvnn._bench: the C++ timing loops bench/compare.py measures the core with.

Each releases the GIL and times only the work named, its buffers made once outside the loop.
A non-positive size or count, or an unknown path, raises ValueError naming the argument.
"""

from typing import List

def fma_peak(seconds: float = 0.2) -> float:
    """Float32 FMA peak of one core, GFLOP/s: the best short burst of a register-only loop
    in the widest ISA the CPU has, over seconds in (0, 60]."""

def time_gemm(
    m: int,
    n: int,
    k: int,
    trans_a: bool = False,
    trans_b: bool = False,
    reps: int = 10,
    path: str = "auto",
) -> float:
    """Seconds per float32 gemm (m, n, k) at pycvnn's thread count, averaged over reps calls:
    path "auto" (the core's entry point), "blas", "small", "blocked" or "dot" (A B^T with
    at most 8 rows)."""

def time_loss_and_bias_sums(N: int, outs: List[int], reps: int = 100) -> float:
    """Seconds per call of a float32 step's softmax + cross-entropy (value and gradient) on
    (N, outs[-1]) logits and the bias sums of layers of widths outs."""
