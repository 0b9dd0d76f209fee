"""The core's two GEMM kernels (OpenBLAS and the small AVX-512 kernels of gemm_small.hpp)
against float64 NumPy and each other, through the `_gemm` test hook:
c := alpha op(a) op(b) + beta c, every transpose, odd and edge shapes (tails of the 16-lane
vectors and of the row blocks), batch-size-1 shapes, beta 0 (c never read) and beta != 0."""

import numpy as np
import pytest

from pycvnn import _core

needs_small = pytest.mark.skipif(not _core._small_gemm_available(),
                                 reason="the small GEMM kernels need AVX-512")

# (m, n, k): the tiny and mnist configs' GEMMs, vector/row-block tails, 1s and primes, skinny
# shapes past 2^18 (one side <= 16) that "auto" also sends to the small kernels.
SHAPES = [(32, 32, 64), (32, 64, 32), (32, 10, 32), (10, 32, 32), (32, 32, 10), (1, 1, 1),
          (1, 10, 64), (1, 64, 1), (7, 13, 5), (17, 33, 65), (6, 64, 3), (25, 49, 31),
          (16, 17, 16), (5, 80, 40), (128, 10, 128), (3, 130, 2), (200, 12, 150), (300, 200, 5),
          (16, 300, 90)]
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


@pytest.mark.parametrize("path", ["small", "blas", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_float64(m, n, k, ta, tb, dtype, path):
    if path == "small" and not _core._small_gemm_available():
        pytest.skip("the small GEMM kernels need AVX-512")
    for alpha, beta in [(1.0, 0.0), (-0.01, 1.0), (2.5, -0.5)]:
        a, b, c = operands(m, n, k, ta, tb, dtype)
        want = expected(a, b, c, ta, tb, alpha, beta)
        _core._gemm(a, b, c, ta, tb, alpha, beta, path)
        assert rel_err(c, want, a, b, ta, tb, alpha) < TOL[dtype], (alpha, beta)


@needs_small
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_small_beta_zero_never_reads_c(ta, tb, dtype):
    # BLAS semantics: with beta = 0, c is output only (NaN or inf in it must not leak).
    a, b, c = operands(19, 35, 21, ta, tb, dtype)
    c[:] = np.nan
    _core._gemm(a, b, c, ta, tb, 1.0, 0.0, "small")
    want = expected(a, b, c, ta, tb, 1.0, 0.0)
    assert np.isfinite(c).all()
    assert rel_err(c, want, a, b, ta, tb, 1.0) < TOL[dtype]


@needs_small
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_small_agrees_with_openblas_at_large_magnitude(ta, tb, dtype):
    a, b, c = operands(33, 47, 29, ta, tb, dtype, scale=1e3)
    c_small, c_blas = c.copy(), c.copy()
    _core._gemm(a, b, c_small, ta, tb, 1.0, 1.0, "small")
    _core._gemm(a, b, c_blas, ta, tb, 1.0, 1.0, "blas")
    want = expected(a, b, c, ta, tb, 1.0, 1.0)
    assert rel_err(c_small, want, a, b, ta, tb, 1.0) < TOL[dtype]
    assert rel_err(c_small, c_blas.astype(np.float64), a, b, ta, tb, 1.0) < 2 * TOL[dtype]


@needs_small
def test_small_writes_only_c():
    # Rows and columns past the tails are computed in registers but never stored: a c that is
    # a window of a larger buffer keeps its surroundings.
    a, b, _ = operands(7, 19, 9, False, True, np.float32)
    big = np.full((9, 40), 7.0, np.float32)
    c = big[1:8, 3:22]
    assert not c.flags.c_contiguous
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._gemm(a, b, c, False, True, 1.0, 0.0, "small")
    buf = np.full(7 * 19 + 32, 7.0, np.float32)
    c = buf[16:16 + 7 * 19].reshape(7, 19)
    _core._gemm(a, b, c, False, True, 1.0, 0.0, "small")
    assert (buf[:16] == 7).all() and (buf[16 + 7 * 19:] == 7).all()
    np.testing.assert_allclose(c, a @ b.T, rtol=1e-5, atol=1e-5)


def test_gemm_hook_rejects_bad_arguments():
    a, b, c = operands(4, 5, 6, False, False, np.float32)
    with pytest.raises(ValueError, match="path"):
        _core._gemm(a, b, c, False, False, 1.0, 0.0, "fast")
    with pytest.raises(ValueError, match="shapes"):
        _core._gemm(a, b, c, True, False, 1.0, 0.0, "blas")
