// Small GEMMs without BLAS, for the shapes of small networks (tiny: 32x32x64), where OpenBLAS's
// call, dispatch and packing cost is most of the time. Included by gemm.cpp only.
//   C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C, row-major, as gemm.hpp.
// AVX-512 register blocks: MR rows of C x NV vectors of 16 floats (8 doubles) accumulate over
// k in registers, one broadcast of A and NV loads of a B row per step; no packing for NN/TN.
// NT (the forward's x w^T) first transposes B into a per-thread scratch buffer. The epilogue
// (gemm.hpp: bias, ReLU, gate) is applied as C is stored. They run on the calling thread;
// gemm.cpp decides which shapes come here.
#pragma once
#include "common.hpp"
#include "gemm.hpp"
#include "simd.hpp"
#if defined(PYCVNN_AVX512_KERNELS)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx512f")

namespace pycvnn {
namespace small_gemm {

using simd::V;

// One block: C rows [0, rows) x columns [0, NV L), the last vector's lanes masked by `tail`
// if MASK (a masked load costs an extra ALU uop in the k loop, so full panels skip it).
// rows <= MR; rows past the end repeat the last row's work and are not stored (no branch in
// the k loop). TA: A is stored (k, m), so row r of op(A) is a column.
// The epilogue's bias (the panel's NV L entries) is added to every row as C is stored; with
// relu, C = max(C, 0) (NaN stays NaN, as relu's pass); with a gate (rows ldc apart, as C),
// C = 0 where the gate is <= 0 and NaN where it is NaN, as relu_backward's select.
template <typename T, int MR, int NV, bool TA, bool MASK>
void block(int rows, int k, T alpha, const T* A, int lda,  // op(A) rows [0, rows)
           const T* B, int ldb,                            // (k, NV L) panel
           T beta, T* C, int ldc, Epilogue<T> e, typename V<T>::mask tail) {
    using W = V<T>;
    constexpr int L = W::L;
    typename W::reg acc[MR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = W::zero();
    const T* a[MR];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
        const int ir = std::min(r, rows - 1);
        a[r] = TA ? A + ir : A + size_t(ir) * lda;
    }
    const size_t as = TA ? size_t(lda) : 1;  // step of op(A) along k
    for (int p = 0; p < k; ++p) {
        const T* b = B + size_t(p) * ldb;
        typename W::reg bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            bv[v] = MASK && v == NV - 1 ? W::load(b + v * L, tail) : W::load(b + v * L);
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
            const typename W::reg ar = W::set1(a[r][p * as]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = W::fma(ar, bv[v], acc[r][v]);
        }
    }
    const typename W::reg va = W::set1(alpha), vb = W::set1(beta);
    const typename W::mask full = typename W::mask(~0u);
    typename W::reg bias_v[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
        bias_v[v] = e.bias ? W::load(e.bias + v * L, v == NV - 1 ? tail : full) : W::zero();
    // Two copies of the store loop, with and without the gate: a third test inside it would
    // slow every small GEMM call.
    const auto store = [&](auto gated) {
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
            if (r >= rows) break;
            T* c = C + size_t(r) * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                const typename W::mask km = v == NV - 1 ? tail : full;
                typename W::reg out = W::fma(va, acc[r][v], bias_v[v]);
                if (beta != T(0))  // beta 0: C unread
                    out = W::fma(vb, W::load(c + v * L, km), out);
                if (e.relu) out = W::max(W::zero(), out);  // max(0, NaN) is the NaN
                if constexpr (decltype(gated)::value)
                    out = W::where_positive(W::load(e.gate + size_t(r) * ldc + v * L, km), out);
                W::store(c + v * L, out, km);
            }
        }
    };
    if (e.gate)
        store(std::true_type{});
    else
        store(std::false_type{});
}

// b_padded: B's rows may be read whole vectors past n (the transposed scratch of NT).
template <typename T, int MR, int NV, bool TA>
void panel(int m, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C, int ldc,
           Epilogue<T> e, typename V<T>::mask tail, bool b_padded) {
    const bool full = b_padded || tail == typename V<T>::mask((1ull << V<T>::L) - 1);
    for (int i = 0; i < m; i += MR) {
        const int rows = std::min(MR, m - i);
        const T* a = TA ? A + i : A + size_t(i) * lda;
        T* c = C + size_t(i) * ldc;
        if (full)
            block<T, MR, NV, TA, false>(rows, k, alpha, a, lda, B, ldb, beta, c, ldc,
                                        e.rows(i, ldc), tail);
        else
            block<T, MR, NV, TA, true>(rows, k, alpha, a, lda, B, ldb, beta, c, ldc, e.rows(i, ldc),
                                       tail);
    }
}

// Rows in blocks of MR1, the taller height, whose extra accumulators bring the k loop closer
// to the FMA peak; the m % MR1 rows left, if MR2 or fewer, in one MR2 block rather than a
// padded MR1 one that would compute rows only to drop them.
template <typename T, int MR1, int MR2, int NV, bool TA>
void panel_best(int m, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
                int ldc, Epilogue<T> e, typename V<T>::mask tail, bool b_padded) {
    const int rest = m % MR1, main = m - rest;
    if (rest == 0 || rest > MR2)
        return panel<T, MR1, NV, TA>(m, k, alpha, A, lda, B, ldb, beta, C, ldc, e, tail, b_padded);
    if (main > 0)
        panel<T, MR1, NV, TA>(main, k, alpha, A, lda, B, ldb, beta, C, ldc, e, tail, b_padded);
    const T* a = TA ? A + main : A + size_t(main) * lda;
    panel<T, MR2, NV, TA>(rest, k, alpha, a, lda, B, ldb, beta, C + size_t(main) * ldc, ldc,
                          e.rows(main, ldc), tail, b_padded);
}

// NN (TA = false) or TN (TA = true): column panels of up to 4 vectors; MR keeps MR x NV
// accumulators + NV B vectors + 1 broadcast within the 32 zmm registers.
template <typename T, bool TA>
void gemm_nb(int m, int n, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
             int ldc, Epilogue<T> epi, bool b_padded) {
    constexpr int L = V<T>::L;
    for (int j = 0; j < n; j += 4 * L) {
        const int w = std::min(4 * L, n - j), nv = (w + L - 1) / L;
        const auto tail = typename V<T>::mask((1u << (w - (nv - 1) * L)) - 1u);
        const T* b = B + j;
        const Epilogue<T> e = epi.cols(j);
        T* c = C + j;
        switch (nv) {
            case 1:
                panel_best<T, 16, 8, 1, TA>(m, k, alpha, A, lda, b, ldb, beta, c, ldc, e, tail,
                                            b_padded);
                break;
            case 2:
                panel_best<T, 12, 8, 2, TA>(m, k, alpha, A, lda, b, ldb, beta, c, ldc, e, tail,
                                            b_padded);
                break;
            case 3:
                panel_best<T, 8, 6, 3, TA>(m, k, alpha, A, lda, b, ldb, beta, c, ldc, e, tail,
                                           b_padded);
                break;
            default:
                panel_best<T, 6, 4, 4, TA>(m, k, alpha, A, lda, b, ldb, beta, c, ldc, e, tail,
                                           b_padded);
                break;
        }
    }
}

// dst (cols, rows) = src (rows, cols)^T, strides ls and ld >= rows; dst's row padding
// [rows, ld) is zeroed.
template <typename T>
void transpose(T* dst, int ld, const T* src, int ls, int rows, int cols) {
    for (int j = 0; j < rows; ++j)
        for (int p = 0; p < cols; ++p) dst[size_t(p) * ld + j] = src[size_t(j) * ls + p];
    for (int p = 0; p < cols; ++p)
        for (int j = rows; j < ld; ++j) dst[size_t(p) * ld + j] = T(0);
}

// float: 16 x 16 tiles transposed in registers (4 shuffle stages), which spares the strided
// scalar stores above; partial tiles by masked loads and stores.
inline void transpose(float* dst, int ld, const float* src, int ls, int rows, int cols) {
    for (int j0 = 0; j0 < rows; j0 += 16) {
        const int nr = std::min(16, rows - j0);
        const __mmask16 kr = __mmask16((1u << nr) - 1u);
        for (int p0 = 0; p0 < cols; p0 += 16) {
            const int nc = std::min(16, cols - p0);
            const __mmask16 kc = __mmask16((1u << nc) - 1u);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < nr ? _mm512_maskz_loadu_ps(kc, src + size_t(j0 + i) * ls + p0)
                              : _mm512_setzero_ps();
            for (int i = 0; i < 16; i += 2) {  // 32-bit interleave of row pairs
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 16;
                 i += 4) {  // 64-bit: lane l of r[i+q] = column 4l+q, rows i..i+3
                const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]),
                              c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
                r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
                r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
            }
            for (int q = 0; q < 4; ++q) {  // gather 128-bit lane l of the 4 row groups: column 4l+q
                const __m512 v0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88),
                             w0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD),
                             v1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88),
                             w1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
                t[q] = _mm512_shuffle_f32x4(v0, v1, 0x88);
                t[8 + q] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
                t[4 + q] = _mm512_shuffle_f32x4(w0, w1, 0x88);
                t[12 + q] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
            }
            // whole vectors where ld leaves room: zeros in the padding, no masked store
            const __mmask16 ks = j0 + 16 <= ld ? __mmask16(0xFFFF) : kr;
            for (int c = 0; c < nc; ++c)
                _mm512_mask_storeu_ps(dst + size_t(p0 + c) * ld + j0, ks, t[c]);
        }
    }
}

// dst (rows, 4 vectors) = src (rows, w <= 4 vectors), zero-padded, with whole-vector loads and
// stores rather than std::copy + fill, which make a library call per row.
template <typename T>
void pack_rows(T* dst, int ld, const T* src, int ls, int rows, int w) {
    using W = V<T>;
    constexpr int L = W::L;
    const int full = w / L;
    const auto tail = typename W::mask((1u << (w - full * L)) - 1u);
    const auto all = typename W::mask(~0u);
    for (int p = 0; p < rows; ++p) {
        const T* s = src + size_t(p) * ls;
        T* d = dst + size_t(p) * ld;
        for (int v = 0; v < 4; ++v) {
            const auto k = v < full ? all : v == full ? tail : typename W::mask(0);
            W::store(d + v * L, W::load(s + v * L, k), all);
        }
    }
}

// C = alpha op(A) op(B) + beta C, then the epilogue; with trans_b, B (n, k) is first
// transposed into scratch.
template <typename T>
void gemm(bool ta, bool tb, int m, int n, int k, T alpha, const T* A, int lda, const T* B, int ldb,
          T beta, T* C, int ldc, Epilogue<T> e = {}) {
    bool padded = false;
    if (tb) {  // rows padded to whole vectors, so the k loop never needs a masked load
        const int ld = (n + V<T>::L - 1) / V<T>::L * V<T>::L;
        thread_local avector<T> bt;
        if (bt.size() < size_t(ld) * k) bt.resize(size_t(ld) * k);  // grows once, then reused
        transpose(bt.data(), ld, B, ldb, n, k);
        B = bt.data();
        ldb = ld;
        padded = true;
    }
    if (ta)
        gemm_nb<T, true>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e, padded);
    else
        gemm_nb<T, false>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e, padded);
}

// A B^T for a few rows of A (m <= 8): B is not transposed. Each C entry is the dot product of
// a row of A and a row of B along k: MR rows of A x NR rows of B (MR NR = L, the lanes of a
// vector) accumulate in L vectors over k, B read once, and a shuffle tree sums the L across
// their lanes at the end (float: 45 ops for 16 entries). The epilogue goes in entry by entry.

// sum_lanes's first two stages, the same for both widths: n vectors to n / 4, each 128-bit
// lane of the result holding one input vector's partial sums (its lanes 0+2 and 1+3, then
// those two added).
template <typename T>
void fold_to_128bit_lanes(const typename V<T>::reg* v, int n, typename V<T>::reg* u) {
    using W = V<T>;
    typename W::reg t[8];
    for (int i = 0; i < n / 2; ++i)
        t[i] = W::add(W::template shuffle128<0x44>(v[2 * i], v[2 * i + 1]),
                      W::template shuffle128<0xEE>(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < n / 4; ++i)
        u[i] = W::add(W::template shuffle128<0x88>(t[2 * i], t[2 * i + 1]),
                      W::template shuffle128<0xDD>(t[2 * i], t[2 * i + 1]));
}

// The sums of L vectors, one a lane, in the order lane_slots gives.
inline __m512 sum_lanes(const __m512* v) {  // 16 floats: then 4 floats a 128-bit lane -> 1
    __m512 u[4], w[2];
    fold_to_128bit_lanes<float>(v, 16, u);
    for (int i = 0; i < 2; ++i)
        w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
}
inline __m512d sum_lanes(const __m512d* v) {  // 8 doubles: then 2 a 128-bit lane -> 1
    __m512d u[2];
    fold_to_128bit_lanes<double>(v, 8, u);
    return _mm512_add_pd(_mm512_unpacklo_pd(u[0], u[1]), _mm512_unpackhi_pd(u[0], u[1]));
}

// slot[i]: the lane of sum_lanes's result that holds the sum of v[i], found once by summing
// v[i] = (i, ..., i).
template <typename T>
const int* lane_slots() {
    using W = V<T>;
    static const auto slots = [] {
        typename W::reg v[W::L];
        for (int i = 0; i < W::L; ++i) v[i] = W::set1(T(i));
        alignas(64) T out[W::L];
        W::store(out, sum_lanes(v), typename W::mask(~0u));
        std::array<int, W::L> s{};
        for (int lane = 0; lane < W::L; ++lane) s[size_t(out[lane] / W::L + T(0.5))] = lane;
        return s;
    }();
    return slots.data();
}

template <typename T, int MR>
void dot_rows(int m, int n, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
              int ldc, const Epilogue<T>& e) {
    using W = V<T>;
    constexpr int L = W::L, NR = L / MR;
    const int* slot = lane_slots<T>();
    const T* a[MR];
    for (int r = 0; r < MR; ++r) a[r] = A + size_t(std::min(r, m - 1)) * lda;
    const int kv = k / L * L;
    const auto tail = typename W::mask((1u << (k - kv)) - 1u);
    for (int j = 0; j < n; j += NR) {
        const T* b[NR];
        for (int c = 0; c < NR; ++c) b[c] = B + size_t(std::min(j + c, n - 1)) * ldb;
        typename W::reg acc[L];
        for (int i = 0; i < L; ++i) acc[i] = W::zero();
        // Masked loads only for k's tail: a masked load takes an ALU uop beside the FMAs.
        const auto chunk = [&](int p, auto masked) {
            const auto load = [&](const T* q) {
                if constexpr (decltype(masked)::value)
                    return W::load(q, tail);
                else
                    return W::load(q);
            };
            typename W::reg av[MR];
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r) av[r] = load(a[r] + p);
#pragma GCC unroll 16
            for (int c = 0; c < NR; ++c) {
                const typename W::reg bv = load(b[c] + p);
#pragma GCC unroll 8
                for (int r = 0; r < MR; ++r) acc[r * NR + c] = W::fma(av[r], bv, acc[r * NR + c]);
            }
        };
        for (int p = 0; p < kv; p += L) chunk(p, std::false_type{});
        if (kv < k) chunk(kv, std::true_type{});
        alignas(64) T sums[L];
        W::store(sums, sum_lanes(acc), typename W::mask(~0u));
        for (int r = 0; r < std::min(m, MR); ++r)
            for (int c = 0; c < NR && j + c < n; ++c) {
                const int col = j + c;
                T* cp = C + size_t(r) * ldc + col;
                T v = alpha * sums[slot[r * NR + c]];
                if (beta != T(0)) v += beta * *cp;
                if (e.bias) v += e.bias[col];
                if (e.relu) v = v < T(0) ? T(0) : v;  // keeps NaN
                if (e.gate) {
                    const T g = e.gate[size_t(r) * ldc + col];
                    v = g > T(0) ? v : (g <= T(0) ? T(0) : g);
                }
                *cp = v;
            }
    }
}

// m <= 8 rows: the smallest MR of 1, 2, 4 that holds them; 5 to 8 rows as 8 at once only
// when B is past L2, so it is read from memory once, else as two 4s, the faster blocks while
// B stays in cache.
template <typename T>
void gemm_dot(int m, int n, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
              int ldc, const Epilogue<T>& e) {
    if (m == 1) return dot_rows<T, 1>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e);
    if (m == 2) return dot_rows<T, 2>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e);
    if (m <= 4) return dot_rows<T, 4>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e);
    if (size_t(n) * k * sizeof(T) > (size_t(2) << 20))
        return dot_rows<T, 8>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e);
    dot_rows<T, 4>(4, n, k, alpha, A, lda, B, ldb, beta, C, ldc, e);
    dot_rows<T, 4>(m - 4, n, k, alpha, A + size_t(4) * lda, lda, B, ldb, beta, C + size_t(4) * ldc,
                   ldc, e.rows(4, ldc));
}

// Blocked, for shapes past the small ones: B is packed one 4-vector column panel and KC rows
// at a time into a contiguous, zero-padded scratch that MR-row blocks of A (unpacked, read by
// broadcasts) sweep; C accumulates across the KC blocks (beta for the first, 1 after); the
// epilogue's bias goes in with the first, ReLU and the gate with the last. Packing B also
// removes the cache-set conflicts of B rows a power-of-two stride apart, which held the
// unblocked kernels back on these sizes. Columns [j_lo, j_hi) of C only, so threads can split
// C by column panels. A is read by rows: gemm.cpp transposes A^T first (its rows, A's columns
// lda apart, a power-of-two stride, would share a few L1 sets).
// KC: 128 while B and C fit in L2 (a 32 KiB float panel that stays in L1). Past that one
// block of the whole k (up to 1,024) reads and writes C once instead of once per block: a B
// past L2 (wide's weights) comes from DRAM either way, and a C past L2 (wide's dW on 2
// threads) would be re-read from L3 per block.
constexpr std::size_t kBlockedInL2 = std::size_t(1) << 20;

template <typename T>
void gemm_blocked(bool tb, int m, int k, T alpha, const T* A, int lda, const T* B, int ldb, T beta,
                  T* C, int ldc, Epilogue<T> epi, int j_lo, int j_hi) {
    constexpr int L = V<T>::L, W4 = 4 * L, MR = 6;
    const size_t cols = size_t(j_hi - j_lo) * sizeof(T);
    const bool in_l2 = size_t(k) * cols <= kBlockedInL2 && size_t(m) * cols <= kBlockedInL2;
    const int KC = in_l2 ? 128 : std::min(k, 1024);
    thread_local avector<T> pack;
    if (pack.size() < size_t(KC) * W4) pack.resize(size_t(KC) * W4);
    T* bp = pack.data();
    for (int j = j_lo; j < j_hi; j += W4) {
        const int w = std::min(W4, j_hi - j);
        const int last = w - (w - 1) / L * L;  // lanes of the last used vector
        const auto tail = typename V<T>::mask((1u << last) - 1u);
        const int nv = (w + L - 1) / L;
        for (int p0 = 0; p0 < k; p0 += KC) {
            const int kc = std::min(KC, k - p0);
            if (tb) {  // B (n, k): rows j..j+w, columns p0..p0+kc -> bp (kc, W4)
                transpose(bp, W4, B + size_t(j) * ldb + p0, ldb, w, kc);
            } else {
                pack_rows(bp, W4, B + size_t(p0) * ldb + j, ldb, kc, w);
            }
            const T b = p0 == 0 ? beta : T(1);
            const bool last = p0 + kc == k;  // ReLU and the gate on the finished sums
            const Epilogue<T> e = Epilogue<T>{p0 == 0 ? epi.bias : nullptr, last && epi.relu,
                                              last ? epi.gate : nullptr}
                                      .cols(j);
            const T* a = A + p0;
            T* c = C + j;
            switch (nv) {  // loads from the padded pack, stores masked to the panel's width
                case 1:
                    panel<T, 16, 1, false>(m, kc, alpha, a, lda, bp, W4, b, c, ldc, e, tail, true);
                    break;
                case 2:
                    panel<T, 12, 2, false>(m, kc, alpha, a, lda, bp, W4, b, c, ldc, e, tail, true);
                    break;
                case 3:
                    panel<T, 8, 3, false>(m, kc, alpha, a, lda, bp, W4, b, c, ldc, e, tail, true);
                    break;
                default:
                    panel<T, MR, 4, false>(m, kc, alpha, a, lda, bp, W4, b, c, ldc, e, tail, true);
                    break;
            }
        }
    }
}

}  // namespace small_gemm
}  // namespace pycvnn

#pragma GCC pop_options
#endif
