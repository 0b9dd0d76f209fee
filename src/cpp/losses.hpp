// Loss kernels: <name>_forward returns the loss value, <name>_backward writes d loss / d pred.
// Forward returns the mean or the sum (accumulated in double: float sums over large batches
// lose digits); with Reduction::None it also writes the unreduced values to out (per element
// for l1/l2/huber, per sample for the others) and returns their sum. out may be null
// otherwise. Backward for None is the gradient of the sum; for Mean it is divided by the count
// (elements for l1/l2/huber, samples N for the others).
// At a kink (l1 at r = 0, a hinge margin of exactly 0) the subgradient is 0.
// NaN and Inf propagate as in the NumPy twin's formulas: every test that drops an element
// (a clip, a max with 0, a mask) is written so that NaN fails it and passes through.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "activations.hpp"
#include "common.hpp"
#include "vmath.hpp"

namespace pycvnn {

enum class Reduction { None, Mean, Sum };

// Probability clipping for the losses on probabilities: p in [eps, 1] before the log.
template <typename T>
constexpr T prob_eps();
template <>
constexpr float prob_eps<float>() {
    return 1e-7f;
}
template <>
constexpr double prob_eps<double>() {
    return 1e-12;
}

namespace detail {

inline double reduced(double sum, idx count, Reduction r) {
    return r == Reduction::Mean ? sum / double(count) : sum;
}

template <typename T>
inline T grad_scale(idx count, Reduction r) {
    return r == Reduction::Mean ? T(1.0 / double(count)) : T(1);
}

// The shared forward of the elementwise losses: out[i] = f(pred[i], target[i]) when unreduced,
// sum in double either way.
template <typename T, typename F>
double elementwise_forward(T* __restrict out, const T* __restrict pred, const T* __restrict target,
                           idx n, Reduction r, F f) {
    FlushDenormals ftz;
    double sum = 0;
    if (r == Reduction::None) {
#pragma omp simd reduction(+ : sum)
        for (idx i = 0; i < n; ++i) {
            const T v = f(pred[i] - target[i]);
            out[i] = v;
            sum += v;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (idx i = 0; i < n; ++i) sum += f(pred[i] - target[i]);
    }
    return reduced(sum, n, r);
}

template <typename T, typename F>
void elementwise_backward(T* __restrict dpred, const T* __restrict pred, const T* __restrict target,
                          idx n, Reduction r, F df) {
    FlushDenormals ftz;
    const T scale = grad_scale<T>(n, r);
    for (idx i = 0; i < n; ++i) dpred[i] = scale * df(pred[i] - target[i]);
}

// 1 where keep, 0 where drop, NaN where x is NaN: the factor of a masked gradient (the NumPy
// twin's g * mask, where NaN g stays NaN).
template <typename T>
inline T mask_or_nan(bool keep, bool drop, T x) {
    return keep ? T(1) : (drop ? T(0) : x);
}

// The shared frame of the per-sample forwards: v = loss(i) for sample i, written to out when
// out is given (Reduction::None), summed in double either way.
template <typename T, typename F>
double per_sample_forward(T* out, idx N, Reduction r, F loss) {
    FlushDenormals ftz;
    double sum = 0;
    for (idx i = 0; i < N; ++i) {
        const auto v = loss(i);
        if (out) out[i] = T(v);
        sum += v;
    }
    return reduced(sum, N, r);
}

// The shared frame of the row-wise backwards on (N, C): grad_row(g, x, t, scale) fills a row
// of the gradient from the input's row and the sample's target (its class id, or its row of
// probabilities), scale being the reduction's 1/N or 1.
template <typename T, typename F>
void per_row_backward(T* dpred, const T* pred, const std::int64_t* ids, idx N, idx C, Reduction r,
                      F grad_row) {
    FlushDenormals ftz;
    const T scale = grad_scale<T>(N, r);
    for (idx i = 0; i < N; ++i) grad_row(dpred + i * C, pred + i * C, idx(ids[i]), scale);
}
template <typename T, typename F>
void per_row_backward(T* dpred, const T* pred, const T* target, idx N, idx C, Reduction r,
                      F grad_row) {
    FlushDenormals ftz;
    const T scale = grad_scale<T>(N, r);
    for (idx i = 0; i < N; ++i) grad_row(dpred + i * C, pred + i * C, target + i * C, scale);
}

}  // namespace detail

// ---- l1: |pred - target| ---------------------------------------------------------------------

template <typename T>
double l1_forward(T* out,           // (n) per element, written for Reduction::None
                  const T* pred,    // (n)
                  const T* target,  // (n)
                  idx n, Reduction reduction) {
    return detail::elementwise_forward(out, pred, target, n, reduction,
                                       [](T r) { return std::fabs(r); });
}

template <typename T>
void l1_backward(T* dpred,         // (n)
                 const T* pred,    // (n)
                 const T* target,  // (n)
                 idx n, Reduction reduction) {
    // scale * sign(r) as r times 1/min_normal twice, clamped to [-scale, scale]: a nonzero r
    // (a denormal too) lands beyond +-1 >= +-scale, 0 stays 0, and NaN fails both tests and
    // passes through (np.sign's NaN); a multiply, max and min instead of compares and blends.
    FlushDenormals ftz;
    const T scale = detail::grad_scale<T>(n, reduction);
    const T big = T(1) / std::numeric_limits<T>::min();  // 2^126 (float), 2^1022 (double)
    for (idx i = 0; i < n; ++i) {
        const T t = (pred[i] - target[i]) * big * big;
        const T lo = t < -scale ? -scale : t;
        dpred[i] = lo > scale ? scale : lo;
    }
}

// ---- l2: (pred - target)^2 -------------------------------------------------------------------

template <typename T>
double l2_forward(T* out,           // (n) per element, written for Reduction::None
                  const T* pred,    // (n)
                  const T* target,  // (n)
                  idx n, Reduction reduction) {
    return detail::elementwise_forward(out, pred, target, n, reduction, [](T r) { return r * r; });
}

template <typename T>
void l2_backward(T* dpred,         // (n)
                 const T* pred,    // (n)
                 const T* target,  // (n)
                 idx n, Reduction reduction) {
    detail::elementwise_backward(dpred, pred, target, n, reduction, [](T r) { return T(2) * r; });
}

// ---- huber: 0.5 r^2 for |r| <= delta, delta (|r| - 0.5 delta) beyond (delta > 0) -----------

template <typename T>
double huber_forward(T* out,           // (n) per element, written for Reduction::None
                     const T* pred,    // (n)
                     const T* target,  // (n)
                     idx n, T delta, Reduction reduction) {
    return detail::elementwise_forward(out, pred, target, n, reduction, [delta](T r) {
        const T a = std::fabs(r);
        return a <= delta ? T(0.5) * r * r : delta * (a - T(0.5) * delta);
    });
}

template <typename T>
void huber_backward(T* dpred,         // (n)
                    const T* pred,    // (n)
                    const T* target,  // (n)
                    idx n, T delta, Reduction reduction) {
    detail::elementwise_backward(dpred, pred, target, n, reduction, [delta](T r) {
        return r > delta ? delta : (r < -delta ? -delta : r);  // clip(r, -delta, delta)
    });
}

// ---- cross_entropy ---------------------------------------------------------------------------
// pred (N, C): logits (from_logits) or probabilities. Target either class ids (N,) in [0, C)
// (checked by the caller) or probabilities (N, C). Per sample -sum_c t_c log p_c with
// log p = z - lse(z), lse(z) = m + log(sum exp(z - m)), m = max z (no overflow, no log(0)).

namespace detail {

// Max and log(sum exp(z - max)) of one row.
template <typename T>
inline void row_max_logsumexp(const T* __restrict z, idx C, T& m, T& log_s) {
    m = z[0];
#pragma omp simd reduction(max : m)
    for (idx j = 0; j < C; ++j) m = z[j] > m ? z[j] : m;
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (idx j = 0; j < C; ++j) s += vmath::exp_nonpos(z[j] - m);
    log_s = std::log(s);  // s >= 1
}

template <typename T>
inline T clip_prob(T p) {
    return p < prob_eps<T>() ? prob_eps<T>() : (p > T(1) ? T(1) : p);
}

}  // namespace detail

template <typename T>
double cross_entropy_forward(T* out,                   // (N) per sample, for Reduction::None
                             const T* pred,            // (N, C)
                             const std::int64_t* ids,  // (N) class ids
                             idx N, idx C, bool from_logits, Reduction reduction) {
    if (!from_logits)
        return detail::per_sample_forward(out, N, reduction, [&](idx i) {
            return -std::log(detail::clip_prob(pred[i * C + ids[i]]));
        });
    return detail::per_sample_forward(out, N, reduction, [&](idx i) {
        const T* z = pred + i * C;
        T m, log_s;
        detail::row_max_logsumexp(z, C, m, log_s);
        return (m - z[ids[i]]) + log_s;  // lse - z_y, the difference of large terms first
    });
}

// From logits the fused softmax + CE gradient: p - onehot (class ids), p sum(t) - t (soft).
// From probabilities: -t / clip(p) where p > eps, 0 where p was clipped below.
template <typename T>
void cross_entropy_backward(T* dpred,                 // (N, C)
                            const T* pred,            // (N, C)
                            const std::int64_t* ids,  // (N) class ids
                            idx N, idx C, bool from_logits, Reduction reduction) {
    if (from_logits)
        return detail::per_row_backward(
            dpred, pred, ids, N, C, reduction,
            [C](T* __restrict g, const T* __restrict z, idx y, T scale) {
                softmax_forward(g, z, 1, C);
                for (idx j = 0; j < C; ++j) g[j] *= scale;
                g[y] -= scale;
            });
    detail::per_row_backward(dpred, pred, ids, N, C, reduction,
                             [C](T* __restrict g, const T* __restrict z, idx y, T scale) {
                                 for (idx j = 0; j < C; ++j) g[j] = T(0);
                                 const T p = z[y];
                                 g[y] =
                                     -scale / detail::clip_prob(p) *
                                     detail::mask_or_nan(p > prob_eps<T>(), p <= prob_eps<T>(), p);
                             });
}

template <typename T>
double cross_entropy_forward(T* out,           // (N) per sample, for Reduction::None
                             const T* pred,    // (N, C)
                             const T* target,  // (N, C) probabilities
                             idx N, idx C, bool from_logits, Reduction reduction) {
    return detail::per_sample_forward(out, N, reduction, [&](idx i) {
        const T* __restrict z = pred + i * C;
        const T* __restrict t = target + i * C;
        T v = 0;
        if (from_logits) {
            // -sum t log p with log p = (z - m) - log s per entry, as the twin: an infinite
            // target then gives the twin's Inf, not the NaN of a regrouped sum.
            T m, log_s;
            detail::row_max_logsumexp(z, C, m, log_s);
            T tl = 0;
#pragma omp simd reduction(+ : tl)
            for (idx j = 0; j < C; ++j) tl += t[j] * ((z[j] - m) - log_s);
            v = -tl;
        } else {
            for (idx j = 0; j < C; ++j) v -= t[j] * std::log(detail::clip_prob(z[j]));
        }
        return v;
    });
}

template <typename T>
void cross_entropy_backward(T* dpred,         // (N, C)
                            const T* pred,    // (N, C)
                            const T* target,  // (N, C) probabilities
                            idx N, idx C, bool from_logits, Reduction reduction) {
    if (from_logits)
        return detail::per_row_backward(
            dpred, pred, target, N, C, reduction,
            [C](T* __restrict g, const T* __restrict z, const T* __restrict t, T scale) {
                softmax_forward(g, z, 1, C);
                T ts = 0;
#pragma omp simd reduction(+ : ts)
                for (idx j = 0; j < C; ++j) ts += t[j];
                const T k = scale * ts;
                for (idx j = 0; j < C; ++j) g[j] = g[j] * k - scale * t[j];
            });
    const T eps = prob_eps<T>();
    detail::per_row_backward(
        dpred, pred, target, N, C, reduction,
        [C, eps](T* __restrict g, const T* __restrict z, const T* __restrict t, T scale) {
            for (idx j = 0; j < C; ++j)
                g[j] = -scale * t[j] / detail::clip_prob(z[j]) *
                       detail::mask_or_nan(z[j] > eps, z[j] <= eps, z[j]);
        });
}

// Training's fused cross-entropy from logits with class ids: the mean loss and its gradient
// (p - onehot) / N in one pass over the logits, one exp per element. The exps run as one
// flat loop over all N*C entries (AVX-512 clone), not row by row: rows are only C long.
template <typename T>
PYCVNN_CLONES void exp_nonpos_inplace(T* __restrict v,  // (n) values <= 0
                                      idx n) {
    for (idx i = 0; i < n; ++i) v[i] = vmath::exp_nonpos(v[i]);
}

#if defined(PYCVNN_AVX512_KERNELS)
// float, C <= 16: each row in one masked AVX-512 register for its max, shift, sum and scale.
// The portable loops below spend more on 10-wide rows' reductions (store-forwarding stalls)
// than on the exps. The shifted rows go to a scratch of 16-float, 64-byte aligned rows, so
// each row's load after the flat exp pass matches one store (a row at a 40-byte offset spans
// two and stalls); the label's -1/N goes in by a lane mask; one log per 16 rows takes the log
// of their sums' product (each sum is in [1, 16], so the product stays below 2^64).
PYCVNN_AVX512 inline double cross_entropy_value_and_grad_rows16(float* dpred, const float* pred,
                                                                const std::int64_t* ids, idx N,
                                                                idx C) {
    thread_local avector<float> buf;
    if (buf.size() < size_t(N) * 16) buf.resize(size_t(N) * 16);  // grows once
    float* rows = buf.data();
    const __mmask16 k = __mmask16((1u << C) - 1u);
    double sum = 0;
    for (idx i = 0; i < N; ++i) {
        const __m512 z = _mm512_maskz_loadu_ps(k, pred + i * C);
        const float m = _mm512_mask_reduce_max_ps(k, z);
        // lanes past C hold -m <= 0 or 0: exp_nonpos is defined there, and they are masked off
        _mm512_store_ps(rows + i * 16, _mm512_maskz_sub_ps(k, z, _mm512_set1_ps(m)));
        sum -= double(pred[i * C + ids[i]] - m);
    }
    exp_nonpos_inplace(rows, N * 16);
    const float scale = float(1.0 / double(N));
    const __m512 vscale = _mm512_set1_ps(scale);
    double prod = 1;
    for (idx i = 0; i < N; ++i) {
        const __m512 e = _mm512_load_ps(rows + i * 16);
        const float s = _mm512_mask_reduce_add_ps(k, e);
        prod *= double(s);
        if ((i & 15) == 15 || i == N - 1) {
            sum += std::log(prod);
            prod = 1;
        }
        __m512 out = _mm512_mul_ps(e, _mm512_set1_ps(scale / s));
        out = _mm512_mask_sub_ps(out, __mmask16(1u << ids[i]), out, vscale);
        _mm512_mask_storeu_ps(dpred + i * C, k, out);
    }
    return sum / double(N);
}
#endif

template <typename T>
double cross_entropy_value_and_grad(T* dpred,                 // (N, C) (p - onehot) / N
                                    const T* pred,            // (N, C) logits
                                    const std::int64_t* ids,  // (N) class ids
                                    idx N, idx C) {
    FlushDenormals ftz;
#if defined(PYCVNN_AVX512_KERNELS)
    if constexpr (std::is_same_v<T, float>)
        if (C <= 16 && cpu_has_avx512f())
            return cross_entropy_value_and_grad_rows16(dpred, pred, ids, N, C);
#endif
    // Pass 1: shift each row by its max, into dpred; keep z_y - max per row.
    double sum = 0;
    for (idx i = 0; i < N; ++i) {
        const T* __restrict z = pred + i * C;
        T* __restrict g = dpred + i * C;
        T m = z[0];
#pragma omp simd reduction(max : m)
        for (idx j = 0; j < C; ++j) m = z[j] > m ? z[j] : m;
        for (idx j = 0; j < C; ++j) g[j] = z[j] - m;
        sum -= double(g[ids[i]]);  // -(z_y - m)
    }
    // Pass 2: the exps, flat.
    exp_nonpos_inplace(dpred, N * C);
    // Pass 3: per row, loss += log(s); gradient = e / s / N, minus 1/N at the label.
    const T scale = T(1.0 / double(N));
    for (idx i = 0; i < N; ++i) {
        T* __restrict g = dpred + i * C;
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (idx j = 0; j < C; ++j) s += g[j];
        sum += double(std::log(s));
        const T k = scale / s;
        for (idx j = 0; j < C; ++j) g[j] *= k;
        g[ids[i]] -= scale;
    }
    return sum / double(N);
}

// ---- binary_cross_entropy: one output per sample, target in [0, 1] -------------------------
// From logits x, the softplus form max(x, 0) - x t + log1p(exp(-|x|)) (no overflow, no
// log(0)); gradient sigmoid(x) - t. From probabilities p clipped to [eps, 1 - eps]:
// -(t log p + (1 - t) log(1 - p)); gradient (p - t) / (p (1 - p)), 0 where p was clipped.

template <typename T>
double binary_cross_entropy_forward(T* out,           // (N) per sample, for Reduction::None
                                    const T* pred,    // (N)
                                    const T* target,  // (N)
                                    idx N, bool from_logits, Reduction reduction) {
    const T eps = prob_eps<T>();
    return detail::per_sample_forward(out, N, reduction, [&](idx i) {
        const T x = pred[i], t = target[i];
        if (from_logits)
            return (x > T(0) ? x : T(0)) - x * t + std::log1p(vmath::exp_nonpos(-std::fabs(x)));
        const T p = x < eps ? eps : (x > T(1) - eps ? T(1) - eps : x);
        return -(t * std::log(p) + (T(1) - t) * std::log1p(-p));
    });
}

template <typename T>
void binary_cross_entropy_backward(T* __restrict dpred,         // (N)
                                   const T* __restrict pred,    // (N)
                                   const T* __restrict target,  // (N)
                                   idx N, bool from_logits, Reduction reduction) {
    FlushDenormals ftz;
    const T scale = detail::grad_scale<T>(N, reduction);
    const T eps = prob_eps<T>();
    if (from_logits) {
        for (idx i = 0; i < N; ++i) dpred[i] = scale * (vmath::sigmoid(pred[i]) - target[i]);
    } else {
        for (idx i = 0; i < N; ++i) {
            const T p = pred[i];
            const bool inside = p > eps && p < T(1) - eps;
            dpred[i] = inside ? scale * (p - target[i]) / (p * (T(1) - p))
                              : (p != p ? p : T(0));  // NaN p stays NaN
        }
    }
}

// ---- hinge and squared_hinge -----------------------------------------------------------------
// Binary: scores (N), targets y in {-1, +1}: max(0, 1 - y s) (squared: its square).
// Multiclass: scores (N, C), class ids: sum_{j != y} max(0, 1 - s_y + s_j) (squared: each
// term squared). Subgradient 0 where a margin is exactly 0.

template <typename T>
double hinge_binary_forward(T* out,           // (N) per sample, for Reduction::None
                            const T* scores,  // (N)
                            const T* target,  // (N) in {-1, +1}
                            idx N, bool squared, Reduction reduction) {
    return detail::per_sample_forward(out, N, reduction, [&](idx i) {
        const T m = T(1) - target[i] * scores[i];
        const T h = m < T(0) ? T(0) : m;  // max(0, m) keeping NaN
        return squared ? h * h : h;
    });
}

template <typename T>
void hinge_binary_backward(T* __restrict dscores,       // (N)
                           const T* __restrict scores,  // (N)
                           const T* __restrict target,  // (N) in {-1, +1}
                           idx N, bool squared, Reduction reduction) {
    const T scale = detail::grad_scale<T>(N, reduction);
    for (idx i = 0; i < N; ++i) {
        const T m = T(1) - target[i] * scores[i];
        const T dm = m > T(0) ? (squared ? T(2) * m : T(1)) : (m <= T(0) ? T(0) : m);  // d/dm
        dscores[i] = -scale * dm * target[i];
    }
}

template <typename T>
double hinge_multiclass_forward(T* out,                   // (N) per sample, for Reduction::None
                                const T* scores,          // (N, C)
                                const std::int64_t* ids,  // (N) class ids
                                idx N, idx C, bool squared, Reduction reduction) {
    return detail::per_sample_forward(out, N, reduction, [&](idx i) {
        const T* __restrict s = scores + i * C;
        const idx y = idx(ids[i]);
        const T sy = s[y];
        T v = 0;
#pragma omp simd reduction(+ : v)
        for (idx j = 0; j < C; ++j) {
            const T m = T(1) - sy + s[j];
            const T h = (j == y || m < T(0)) ? T(0) : m;  // max(0, m) keeping NaN
            v += squared ? h * h : h;
        }
        return v;
    });
}

template <typename T>
void hinge_multiclass_backward(T* dscores,               // (N, C)
                               const T* scores,          // (N, C)
                               const std::int64_t* ids,  // (N) class ids
                               idx N, idx C, bool squared, Reduction reduction) {
    const auto row = [C, squared](T* __restrict g, const T* __restrict s, idx y, T scale) {
        const T sy = s[y];
        T total = 0;  // d/ds_y = -sum_j d/ds_j
#pragma omp simd reduction(+ : total)
        for (idx j = 0; j < C; ++j) {
            const T m = T(1) - sy + s[j];
            const T dm = m > T(0) ? (squared ? T(2) * m : T(1)) : (m <= T(0) ? T(0) : m);
            const T d = j == y ? T(0) : scale * dm;
            g[j] = d;
            total += d;
        }
        g[y] = -total;
    };
    detail::per_row_backward(dscores, scores, ids, N, C, reduction, row);
}

// ---- dice: per sample over its M elements, 1 - (2 sum(p g) + smooth) / (sum p + sum g + smooth)
// A sample with a zero denominator (all zeros, smooth = 0) has loss 0 and gradient 0; a NaN
// or infinite one gives NaN (den == 0 is the test, not den > 0, so NaN is not dropped).
// Products p g below the smallest normal flush to 0, which the gradient only notices for a
// den below the square root of the smallest normal (1.1e-19 float32, 1.5e-154 float64).

template <typename T>
double dice_forward(T* out,           // (N) per sample, for Reduction::None
                    const T* pred,    // (N, M) probabilities
                    const T* target,  // (N, M)
                    idx N, idx M, T smooth, Reduction reduction) {
    FlushDenormals ftz;
    double sum = 0;
    for (idx i = 0; i < N; ++i) {
        const T* __restrict p = pred + i * M;
        const T* __restrict g = target + i * M;
        double inter = 0, total = 0;  // sums over a whole image: accumulate in double
#pragma omp simd reduction(+ : inter, total)
        for (idx j = 0; j < M; ++j) {
            inter += double(p[j] * g[j]);
            total += double(p[j] + g[j]);
        }
        const double den = total + double(smooth);
        const double v = den == 0 ? 0.0 : 1.0 - (2.0 * inter + double(smooth)) / den;
        if (out) out[i] = T(v);
        sum += v;
    }
    return detail::reduced(sum, N, reduction);
}

// d loss / d p_k = ((2I + smooth) - 2 g_k (U + smooth)) / (U + smooth)^2,
// I = sum(p g), U = sum p + sum g.
template <typename T>
void dice_backward(T* dpred,         // (N, M)
                   const T* pred,    // (N, M) probabilities
                   const T* target,  // (N, M)
                   idx N, idx M, T smooth, Reduction reduction) {
    FlushDenormals ftz;
    const double scale = reduction == Reduction::Mean ? 1.0 / double(N) : 1.0;
    for (idx i = 0; i < N; ++i) {
        const T* __restrict p = pred + i * M;
        const T* __restrict g = target + i * M;
        T* __restrict d = dpred + i * M;
        double inter = 0, total = 0;
#pragma omp simd reduction(+ : inter, total)
        for (idx j = 0; j < M; ++j) {
            inter += double(p[j] * g[j]);
            total += double(p[j] + g[j]);
        }
        const double den = total + double(smooth);
        // / den twice, not / (den * den): below den ~ 1.5e-154 the square would flush to 0.
        const T a = den == 0 ? T(0) : T(scale * (2.0 * inter + double(smooth)) / den / den);
        const T b = den == 0 ? T(0) : T(scale * 2.0 / den);
        for (idx j = 0; j < M; ++j) d[j] = a - b * g[j];
    }
}

}  // namespace pycvnn
