"""The float32 GEMMs of one training step per config: pycvnn's `_core.matmul` vs NumPy.

Run: python -m pytest bench/bench_gemm.py --benchmark-json=bench/gemm.json
     python bench/report.py bench/gemm.json

Shapes from gemms.step_gemms (forward X W^T, dX = dZ W, dW = dZ^T X per layer), transposes
passed as flags. Each result is checked against NumPy before it is timed. `_core.matmul`
allocates its output and converts arguments, so at tiny shapes this measures the Python entry
point; compare.py times the core's GEMM itself (`_bench.time_gemm`) against the FMA peak.
bench_gemm_kernel times the core's kernels on the same shapes in place (`_core._gemm`, no
allocation): its own AVX-512 kernels, unpacked ("small") and blocked, against OpenBLAS, the
measurement behind the entry point's choice (gemm.cpp); skipped without AVX-512.
"""

import gemms as G
import numpy as np
import pytest
import workloads as W

from pycvnn import _core

CASES = [
    (config, g) for config, (sizes, batch) in W.CONFIGS.items() for g in G.step_gemms(sizes, batch)
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    W.single_thread()


def stored(x):
    """The array as stored (its transpose if x is a transposed view), for matmul's flags."""
    return x.T if not x.flags.c_contiguous else x


def numpy_gemm(a, b, c):
    return np.matmul(a, b, out=c)


def cpp_gemm(g, a, b):
    return _core.matmul(stored(a), stored(b), trans_a=g.trans_a, trans_b=g.trans_b)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize(
    "config,g", CASES, ids=[f"{c}-{g.label.replace(' ', '_')}" for c, g in CASES]
)
def bench_gemm(benchmark, config, g, backend):
    a, b, c = G.operands(g)
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = cpp_gemm(g, a, b) if backend == "cpp" else numpy_gemm(a, b, c)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(g.k))
    benchmark.group = f"gemm:{config}:{g.label}:{g.shape}"
    benchmark.extra_info["flops"] = g.flops
    if backend == "cpp":
        benchmark(cpp_gemm, g, a, b)
    else:
        benchmark(numpy_gemm, a, b, c)


@pytest.mark.parametrize("path", ["small", "blocked", "blas"])
@pytest.mark.parametrize(
    "config,g", CASES, ids=[f"{c}-{g.label.replace(' ', '_')}" for c, g in CASES]
)
def bench_gemm_kernel(benchmark, config, g, path):
    if path != "blas" and not _core._small_gemm_available():
        pytest.skip("the small GEMM kernels need AVX-512")
    a, b, _ = G.operands(g)
    a, b = stored(a), stored(b)
    c = np.empty((g.m, g.n), np.float32)
    args = (a, b, c, g.trans_a, g.trans_b, 1.0, 0.0, path)
    _core._gemm(*args)
    want = (a.T if g.trans_a else a).astype(np.float64) @ (b.T if g.trans_b else b).astype(
        np.float64
    )
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4 * np.sqrt(g.k))
    benchmark.group = f"gemm-kernel:{config}:{g.label}:{g.shape}"
    benchmark.extra_info["flops"] = g.flops
    benchmark(_core._gemm, *args)
