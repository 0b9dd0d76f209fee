"""Each kernel family, cpp vs numpy, on realistic sizes. Checked against the reference, then timed.

Run: python -m pytest bench/bench_kernels.py --benchmark-json=bench/kernels.json
     python bench/report.py bench/kernels.json
"""

import numpy as np
import pytest

from pycvnn import _core, reference

BACKENDS = {"cpp": _core, "numpy": reference}
rng = np.random.default_rng(0)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


N, C, F, H = 256, 10, 784, 256  # a batch of 256 images of 28x28, 256 hidden units, 10 classes
Z = f32(N, 1024)
LOGITS, IDS = f32(N, C), rng.integers(0, C, N)
X, W, B = f32(128, F), f32(H, F, scale=0.05), f32(H)
A_RELU = reference.dense_forward(X, W, B, activation="relu")
DOUT = f32(128, H)
MASK_P = rng.uniform(0, 1, (16, 64, 64)).astype(np.float32)
MASK_G = (rng.uniform(0, 1, (16, 64, 64)) > 0.5).astype(np.float32)
P = 1_000_000  # parameters in the flat buffer

# (family, kernel, args); every run gets copies, so in-place kernels are safe.
CASES = [
    ("activations", "sigmoid_forward", (Z,)),
    ("activations", "tanh_forward", (Z,)),
    ("activations", "relu_backward", (Z, Z)),
    ("activations", "leaky_relu_backward", (Z, Z, 0.01)),
    ("activations", "softmax_forward", (LOGITS,)),
    ("activations", "softmax_backward", (LOGITS, LOGITS)),
    ("losses", "cross_entropy_forward", (LOGITS, IDS)),
    ("losses", "cross_entropy_backward", (LOGITS, IDS)),
    ("losses", "l1_backward", (Z, Z[::-1].copy())),
    ("losses", "l2_backward", (Z, Z[::-1].copy())),
    ("losses", "dice_backward", (MASK_P, MASK_G)),
    ("dense", "dense_forward", (X, W, B, "relu")),
    ("dense", "dense_backward", (DOUT, X, W, A_RELU, "relu")),
    ("gemm", "matmul", (f32(256, 1024), f32(1024, 1024))),
    ("optimizers", "gd_update", (f32(P), f32(P), 0.01)),
    (
        "optimizers",
        "adam_update",
        (
            f32(P),
            f32(P),
            np.zeros(P, np.float32),
            np.zeros(P, np.float32),
            1e-3,
            0.9,
            0.999,
            1e-8,
            1,
        ),
    ),
]


def as_f64(args):
    return tuple(
        a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a
        for a in args
    )


# The elementwise kernels whose NaN handling is written for speed, also in float64.
CASES += [
    (family, kernel, as_f64(args))
    for family, kernel, args in CASES
    if kernel
    in ("relu_backward", "leaky_relu_backward", "l1_backward", "dice_backward", "adam_update")
]


def name(kernel, args):
    f64 = any(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in args)
    return kernel + (" float64" if f64 else "")


def fresh(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


# Float32 sums of many products round differently in each kernel: matmul's 1,024-term sums
# (up to ~150) are up to 1.8e-4 from the float64 result in the core and 0.9e-4 in NumPy, which
# near zero exceeds rtol; atol 1e-3 still fails any wrong block or panel by orders of magnitude.
ATOL = {"matmul": 1e-3}


def check(got, want, atol=1e-5):
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            check(g, w, atol)
    elif isinstance(want, (np.ndarray, float)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("family,kernel,args", CASES, ids=[name(c[1], c[2]) for c in CASES])
def bench_kernel(benchmark, family, kernel, args, backend):
    fn = getattr(BACKENDS[backend], kernel)
    got_args, want_args = fresh(args), fresh(args)
    # Outputs and in-place buffers must match the reference before anything is timed.
    check(
        (fn(*got_args), *got_args),
        (getattr(reference, kernel)(*want_args), *want_args),
        ATOL.get(kernel, 1e-5),
    )
    benchmark.group = f"{family}:{name(kernel, args)}"
    benchmark(fn, *fresh(args))
