"""The core's GEMM kernels (OpenBLAS, and the small and blocked AVX-512 kernels of
gemm_small.hpp) against float64 NumPy and each other, through the `_gemm` test hook:
c := alpha op(a) op(b) + beta c, every transpose, odd and edge shapes (tails of the 16-lane
vectors and of the row blocks), batch-size-1 shapes, beta 0 (c never read) and beta != 0."""

import numpy as np
import pytest

from pycvnn import _core

needs_small = pytest.mark.skipif(
    not _core._small_gemm_available(), reason="the small GEMM kernels need AVX-512"
)

# (m, n, k): the tiny and mnist configs' GEMMs; vector/row-block tails, 1s and primes; skinny
# shapes past 2^18 (one side <= 16) that "auto" also sends to the small kernels.
SHAPES = (
    [(32, 32, 64), (32, 64, 32), (32, 10, 32), (10, 32, 32), (32, 32, 10)]
    + [(1, 1, 1), (1, 10, 64), (1, 64, 1), (7, 13, 5), (17, 33, 65), (6, 64, 3), (25, 49, 31)]
    + [(16, 17, 16), (5, 80, 40), (128, 10, 128), (3, 130, 2)]
    + [(200, 12, 150), (300, 200, 5), (16, 300, 90)]
)
# Past one 64-column panel and one 128-deep block of the blocked kernels, with tails of both;
# then B past 1 MiB, where the k blocks are up to 1,024 deep (400: one; 1,100: two), and C
# past 1 MiB (one block of 200).
BIG_SHAPES = (
    [(70, 150, 300), (33, 200, 129), (130, 65, 257), (6, 64, 128), (1, 129, 513)]
    + [(9, 700, 400), (5, 300, 1100)]
    + [(1100, 260, 200)]
)
TOL = {np.float32: 2e-6, np.float64: 1e-14}


def operands(m, n, k, ta, tb, dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    a = (scale * rng.standard_normal((k, m) if ta else (m, k))).astype(dtype)
    b = (scale * rng.standard_normal((n, k) if tb else (k, n))).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def expected(a, b, c, ta, tb, alpha, beta):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    prod = (a64.T if ta else a64) @ (b64.T if tb else b64)
    return alpha * prod + (beta * c.astype(np.float64) if beta else 0.0)


def rel_err(got, want, a, b, ta, tb, alpha):
    # Relative to the size of the terms summed, so cancellation does not inflate it.
    a64, b64 = np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))
    bound = abs(alpha) * ((a64.T if ta else a64) @ (b64.T if tb else b64)) + np.abs(want) + 1e-300
    return float(np.max(np.abs(got - want) / bound))


@pytest.mark.parametrize(
    "path,m,n,k",
    [(p, *s) for p in ("small", "blocked", "blas", "auto") for s in SHAPES]
    + [(p, *s) for p in ("blocked", "auto") for s in BIG_SHAPES],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_float64(m, n, k, ta, tb, dtype, path):
    if path in ("small", "blocked") and not _core._small_gemm_available():
        pytest.skip("the AVX-512 GEMM kernels need AVX-512")
    for alpha, beta in [(1.0, 0.0), (-0.01, 1.0), (2.5, -0.5)]:
        a, b, c = operands(m, n, k, ta, tb, dtype)
        want = expected(a, b, c, ta, tb, alpha, beta)
        _core._gemm(a, b, c, ta, tb, alpha, beta, path)
        assert rel_err(c, want, a, b, ta, tb, alpha) < TOL[dtype], (alpha, beta)


# The dot-product kernels (A B^T, at most 8 rows): every row-block height (1, 2, 4, 8 rows,
# and 3, 5, 7 padded), B's rows in and past whole groups, k below a vector, with a tail and
# without.
DOT_SHAPES = (
    [(1, 1, 1), (1, 17, 16), (2, 5, 33), (4, 4, 64), (8, 2, 48), (8, 70, 600)]  # whole heights
    + [(3, 9, 100), (5, 3, 7), (7, 31, 513), (6, 11, 2)]  # padded heights
)


@needs_small
@pytest.mark.parametrize("m,n,k", DOT_SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dot_kernels_match_float64(m, n, k, scale, dtype):
    for alpha, beta in [(1.0, 0.0), (-0.01, 1.0), (2.5, -0.5)]:
        a, b, c = operands(m, n, k, False, True, dtype, scale=scale, seed=m * 31 + k)
        want = expected(a, b, c, False, True, alpha, beta)
        gate = np.random.default_rng(k).standard_normal((m, n)).astype(dtype)
        c_gated = c.copy()
        _core._gemm(a, b, c, False, True, alpha, beta, "dot")
        assert rel_err(c, want, a, b, False, True, alpha) < TOL[dtype], (alpha, beta)
        assert _core._gemm(a, b, c_gated, False, True, alpha, beta, "dot", gate=gate)
        assert (
            rel_err(c_gated, np.where(gate > 0, want, 0.0), a, b, False, True, alpha) < TOL[dtype]
        )


@needs_small
@pytest.mark.parametrize("path", ["small", "blocked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_small_beta_zero_never_reads_c(ta, tb, dtype, path):
    # BLAS semantics: with beta = 0, c is output only (NaN or inf in it must not leak).
    a, b, c = operands(19, 135, 200, ta, tb, dtype)
    c[:] = np.nan
    _core._gemm(a, b, c, ta, tb, 1.0, 0.0, path)
    want = expected(a, b, c, ta, tb, 1.0, 0.0)
    assert np.isfinite(c).all()
    assert rel_err(c, want, a, b, ta, tb, 1.0) < TOL[dtype]


@needs_small
@pytest.mark.parametrize("path", ["small", "blocked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_small_agrees_with_openblas_at_large_magnitude(ta, tb, dtype, path):
    a, b, c = operands(33, 147, 229, ta, tb, dtype, scale=1e3)
    c_small, c_blas = c.copy(), c.copy()
    _core._gemm(a, b, c_small, ta, tb, 1.0, 1.0, path)
    _core._gemm(a, b, c_blas, ta, tb, 1.0, 1.0, "blas")
    want = expected(a, b, c, ta, tb, 1.0, 1.0)
    assert rel_err(c_small, want, a, b, ta, tb, 1.0) < TOL[dtype]
    assert rel_err(c_small, c_blas.astype(np.float64), a, b, ta, tb, 1.0) < 2 * TOL[dtype]


@needs_small
@pytest.mark.parametrize("path,m,n,k", [("small", 7, 19, 9), ("blocked", 7, 70, 200)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_small_writes_only_c(path, m, n, k, ta, tb):
    # Rows and columns past the tails are computed in registers but never stored: a c with
    # guard zones around it keeps them.
    a, b, _ = operands(m, n, k, ta, tb, np.float32)
    buf = np.full(m * n + 32, 7.0, np.float32)
    c = buf[16 : 16 + m * n].reshape(m, n)
    _core._gemm(a, b, c, ta, tb, 1.0, 0.0, path)
    assert (buf[:16] == 7).all() and (buf[16 + m * n :] == 7).all()
    want = expected(a, b, c, ta, tb, 1.0, 0.0)
    assert rel_err(c, want, a, b, ta, tb, 1.0) < TOL[np.float32]


@needs_small
# Outside a training step a GEMM is split from 2^24 multiply-adds (k is grown to get there).
@pytest.mark.parametrize(
    "m,n,k,ta,tb",
    [
        (80, 700, 300, False, True),  # split by columns (320 + 380)
        (300, 200, 280, True, False),  # A^T B split by rows (128 + 172), each thread's own A^T
        (100, 300, 560, True, False),  # under 64 rows a thread: 16-row parts (48 + 52)
        (32, 64, 8200, False, True),  # narrower than 64 a thread: 16-column parts (32 + 32)
        (40, 100, 4200, False, False),  # 48 + 52
        (20, 300, 2800, False, True),  # 128 + 172
        (10, 40, 30, True, False),  # small: on the caller, A^T transposed whole
    ],
)
def test_blocked_splits_over_threads(m, n, k, ta, tb):
    import pycvnn

    before = pycvnn.get_num_threads()
    try:
        pycvnn.set_num_threads(2)
        for alpha, beta in [(1.0, 0.0), (-0.01, 1.0)]:
            a, b, c = operands(m, n, k, ta, tb, np.float32)
            want = expected(a, b, c, ta, tb, alpha, beta)
            _core._gemm(a, b, c, ta, tb, alpha, beta, "blocked")
            assert rel_err(c, want, a, b, ta, tb, alpha) < TOL[np.float32], (alpha, beta)
    finally:
        pycvnn.set_num_threads(before)


@pytest.mark.parametrize(
    "path,m,n,k",
    [(p, *s) for p in ("small", "blocked", "blas", "auto") for s in SHAPES[:8]]
    + [(p, *s) for p in ("blocked", "auto") for s in BIG_SHAPES[-4:]],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("threads", [1, 2])
def test_gate_zeroes_c_where_the_gate_is_not_positive(m, n, k, ta, tb, dtype, path, threads):
    # ReLU's backward in the epilogue (dz = dx where a > 0): exactly the select of
    # relu_backward, NaN where the gate is NaN; OpenBLAS's path says it did not gate, and did not.
    import pycvnn

    if path in ("small", "blocked") and not _core._small_gemm_available():
        pytest.skip("the AVX-512 GEMM kernels need AVX-512")
    before = pycvnn.get_num_threads()
    try:
        pycvnn.set_num_threads(threads)
        a, b, c = operands(m, n, k, ta, tb, dtype, seed=5)
        gate = np.random.default_rng(6).standard_normal((m, n)).astype(dtype)
        gate.flat[::7] = 0.0
        gate.flat[3::11] = np.nan
        want = expected(a, b, c, ta, tb, -0.5, 1.0)
        gated = _core._gemm(a, b, c, ta, tb, -0.5, 1.0, path, gate=gate)
        assert gated == (path in ("small", "blocked")) or path == "auto"
        if gated:
            assert np.all(c[gate <= 0] == 0) and np.all(np.isnan(c[np.isnan(gate)]))
            assert not np.any(np.isnan(c[gate > 0]))
            want = np.where(gate > 0, want, 0.0)
            c, want = np.where(np.isnan(gate), 0, c), np.where(np.isnan(gate), 0, want)
        assert rel_err(c, want, a, b, ta, tb, -0.5) < TOL[dtype]
    finally:
        pycvnn.set_num_threads(before)


def test_gate_must_match_c():
    a, b, c = operands(4, 5, 3, False, False, np.float32)
    with pytest.raises(ValueError, match="gate"):
        _core._gemm(a, b, c, False, False, 1.0, 0.0, "auto", gate=np.ones((5, 4), np.float32))


def test_non_contiguous_c_is_rejected():
    a, b, _ = operands(7, 19, 9, False, True, np.float32)
    c = np.full((9, 40), 7.0, np.float32)[1:8, 3:22]
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._gemm(a, b, c, False, True, 1.0, 0.0, "blas")


def test_gemm_hook_rejects_bad_arguments():
    a, b, c = operands(4, 5, 6, False, False, np.float32)
    with pytest.raises(ValueError, match="path"):
        _core._gemm(a, b, c, False, False, 1.0, 0.0, "fast")
    with pytest.raises(ValueError, match="shapes"):
        _core._gemm(a, b, c, True, False, 1.0, 0.0, "blas")


@needs_small
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_dense_layers_on_every_kernel_match_the_reference(dtype, threads):
    # The forward's bias and ReLU go in the GEMM's epilogue. The entry point sends the three
    # larger shapes to the blocked kernels (k = 300 and 1,100: ReLU only after the last k
    # block), on two threads split over the pool where they are past 2^24 multiply-adds (64 x
    # 1,100 x 300; the backward's A^T B by rows), on the caller below; the small one to the
    # small kernels; 5 and 2 rows to the dot-product kernels (k >= 512 from 5 rows; B past
    # 1 MiB). (OpenBLAS's path, bias
    # first and ReLU a pass after, is what test_portable_paths.py runs these kernels' tests on.)
    import pycvnn
    from pycvnn import reference

    rng = np.random.default_rng(3)
    before = pycvnn.get_num_threads()
    try:
        pycvnn.set_num_threads(threads)
        for n, fin, fout in [
            (40, 300, 50),
            (64, 200, 130),
            (20, 1100, 300),
            (64, 1100, 300),
            (9, 20, 13),
            (5, 600, 70),
            (2, 1100, 300),
        ]:
            x = rng.standard_normal((n, fin)).astype(dtype)
            w = (rng.standard_normal((fout, fin)) / np.sqrt(fin)).astype(dtype)
            b = rng.standard_normal(fout).astype(dtype)
            got = _core.dense_forward(x, w, b, activation="relu")
            want = reference.dense_forward(x, w, b, activation="relu")
            np.testing.assert_allclose(got, want, rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
            assert 0.2 < np.mean(want == 0) < 0.8  # ReLU has work to do
            dout = rng.standard_normal((n, fout)).astype(dtype)
            for g, r in zip(
                _core.dense_backward(dout, x, w, got, activation="relu"),
                reference.dense_backward(dout, x, w, want, activation="relu"),
            ):
                np.testing.assert_allclose(
                    g,
                    r,
                    rtol=1e-4 if dtype == np.float32 else 1e-12,
                    atol=1e-4 if dtype == np.float32 else 1e-12,
                )
    finally:
        pycvnn.set_num_threads(before)
