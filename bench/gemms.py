"""The float32 GEMMs of one training step, shared by compare.py and bench_gemm.py.

Per dense layer (out, in) on a batch of N rows, as C (m, n) = op(A) (m, k) @ op(B) (k, n):
    forward  Z = X W^T        (m, n, k) = (N, out, in)   trans_b
    dX = dZ W                 (N, in, out)               every layer but the first
    dW = dZ^T X               (out, in, N)               trans_a
"""

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gemm:
    label: str
    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False

    @property
    def flops(self):
        return 2 * self.m * self.n * self.k

    @property
    def shape(self):
        ta, tb = ("ᵀ" if self.trans_a else ""), ("ᵀ" if self.trans_b else "")
        return f"{self.m}×{self.n}×{self.k} A{ta}B{tb}"


def step_gemms(sizes, batch):
    """The GEMMs of one training step of an MLP with these layer sizes."""
    out = []
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        out.append(Gemm(f"L{i} forward", batch, fout, fin, trans_b=True))
        if i > 1:
            out.append(Gemm(f"L{i} dX", batch, fin, fout))
        out.append(Gemm(f"L{i} dW", fout, fin, batch, trans_a=True))
    return out


def operands(g, seed=0):
    """(a, b) for g as NumPy arrays, transposed views where g transposes (so NumPy hands
    BLAS the transpose flag, no copy), and the output buffer."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((g.k, g.m) if g.trans_a else (g.m, g.k), dtype=np.float32)
    B = rng.standard_normal((g.n, g.k) if g.trans_b else (g.k, g.n), dtype=np.float32)
    return (A.T if g.trans_a else A), (B.T if g.trans_b else B), np.empty((g.m, g.n), np.float32)


def reps_for(g, seconds=2e-3, gflops=100.0):
    """Repetitions so that one timed batch of calls takes about `seconds`."""
    return max(1, int(seconds * gflops * 1e9 / g.flops))


def time_calls(call, reps):
    """Seconds per call of call(), averaged over reps calls."""
    t0 = time.perf_counter()
    for _ in range(reps):
        call()
    return (time.perf_counter() - t0) / reps


def time_numpy(g, a, b, c, reps):
    """Seconds per np.matmul(a, b, out=c) call."""
    return time_calls(lambda: np.matmul(a, b, out=c), reps)


def time_torch(g, a, b, c, reps):
    """Seconds per torch.mm(a, b, out=c) call (MKL), on the same arrays as time_numpy."""
    import torch

    ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    torch.mm(ta, tb, out=tc)
    return time_calls(lambda: torch.mm(ta, tb, out=tc), reps)
