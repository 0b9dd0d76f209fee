// Activation kernels: <name>_forward(out, z) and <name>_backward(dz, z, dout) = dout * f'(z)
// (for softmax the vector-Jacobian product). Elementwise kernels see the array as flat (n);
// softmax works on rows (rows, cols) = (everything but the last axis, the last axis).
// The *_backward_from_output variants take the forward's output a instead of z where f' is a
// function of a, so a layer keeps a alone; an activation whose f' is not (GELU) has its
// registry entry say so, and layers keep z for it.
//
// Adding an activation: its kernels here, its enum value, its kActivations entry and its case
// in each activation_* dispatch below; the bindings, the network and the dense layer take it
// from there.
#pragma once
#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "vmath.hpp"

namespace pycvnn {

enum class Activation { None, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, GELU, Softplus };

// ---- sigmoid: 1 / (1 + exp(-z)), no overflow at any |z| (vmath::sigmoid branches on sign) ----

template <typename T>
PYCVNN_CLONES void sigmoid_forward(T* __restrict out,      // (n)
                                   const T* __restrict z,  // (n)
                                   idx n) {
    FlushDenormals ftz;  // exp(-|z|) for moderate |z| would otherwise produce denormals
    for (idx i = 0; i < n; ++i) out[i] = vmath::sigmoid(z[i]);
}

// s (1 - s) = e / (1 + e)^2 with e = exp(-|z|): 1 - s from a rounded s is all rounding error
// once s is within a few ulp of 1 (float32 from |z| ~ 10); this form keeps every digit.
template <typename T>
PYCVNN_CLONES void sigmoid_backward(T* __restrict dz,          // (n)
                                    const T* __restrict z,     // (n)
                                    const T* __restrict dout,  // (n)
                                    idx n) {
    FlushDenormals ftz;
    for (idx i = 0; i < n; ++i) {
        const T az = z[i] < T(0) ? -z[i] : z[i];
        const T e = vmath::exp_nonpos(-az), d = T(1) + e;
        dz[i] = dout[i] * (e / (d * d));
    }
}

template <typename T>
PYCVNN_CLONES void sigmoid_backward_from_output(T* __restrict dz,          // (n)
                                                const T* __restrict a,     // (n) sigmoid(z)
                                                const T* __restrict dout,  // (n)
                                                idx n) {
    FlushDenormals ftz;
    for (idx i = 0; i < n; ++i) dz[i] = dout[i] * a[i] * (T(1) - a[i]);
}

// ---- tanh -----------------------------------------------------------------------------------

template <typename T>
PYCVNN_CLONES void tanh_forward(T* __restrict out,      // (n)
                                const T* __restrict z,  // (n)
                                idx n) {
    FlushDenormals ftz;
    for (idx i = 0; i < n; ++i) out[i] = vmath::tanh(z[i]);
}

template <typename T>
PYCVNN_CLONES void tanh_backward(T* __restrict dz,          // (n)
                                 const T* __restrict z,     // (n)
                                 const T* __restrict dout,  // (n)
                                 idx n) {
    FlushDenormals ftz;
    // 1 - tanh^2 = 4 e / (1 + e)^2 with e = exp(-2|z|): accurate where tanh rounds to ~1.
    for (idx i = 0; i < n; ++i) {
        const T az = z[i] < T(0) ? -z[i] : z[i];
        const T e = vmath::exp_nonpos(T(-2) * az), d = T(1) + e;
        dz[i] = dout[i] * (T(4) * e / (d * d));
    }
}

template <typename T>
PYCVNN_CLONES void tanh_backward_from_output(T* __restrict dz,          // (n)
                                             const T* __restrict a,     // (n) tanh(z)
                                             const T* __restrict dout,  // (n)
                                             idx n) {
    FlushDenormals ftz;
    // (1 - a)(1 + a): 1 - a is exact near 1, and no fused multiply-add decides the rounding
    for (idx i = 0; i < n; ++i) dz[i] = dout[i] * ((T(1) - a[i]) * (T(1) + a[i]));
}

// ---- relu: relu'(0) = 0 (as PyTorch) --------------------------------------------------------

template <typename T>
PYCVNN_CLONES void relu_forward(T* __restrict out,      // (n)
                                const T* __restrict z,  // (n)
                                idx n) {
    // z < 0, not z > 0, as the test: NaN fails it and passes through (relu(NaN) = NaN).
    for (idx i = 0; i < n; ++i) out[i] = z[i] < T(0) ? T(0) : z[i];
}

#if defined(PYCVNN_AVX512_KERNELS)
namespace detail {

// The ReLU gates in one vfixupimm per vector, keyed on z's class (a nibble per class from the
// lowest: QNaN, SNaN, 0, +1, -Inf, +Inf, negative, positive): 0 keeps the first operand, 2 is
// z made quiet, 8 is +0, 10 is +1. kReluGate on dout: dout where z > 0, 0 where z <= 0, NaN
// where z is NaN. kLeakyFactor on alpha: 1 where z > 0, alpha where z <= 0, NaN where z is.
// One op where the portable select takes two compares and two blends.
constexpr int kReluGate = 0x08080822;
constexpr int kLeakyFactor = int(0xA0A0A022u);

// gate(dout, z) over n elements, the tail under a lane mask.
template <typename Gate>
PYCVNN_AVX512 PYCVNN_INLINE void map16(float* __restrict out, const float* __restrict z,
                                       const float* __restrict dout, idx n, Gate gate) {
    idx i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, gate(_mm512_loadu_ps(dout + i), _mm512_loadu_ps(z + i)));
    if (i < n) {
        const __mmask16 k = __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(
            out + i, k, gate(_mm512_maskz_loadu_ps(k, dout + i), _mm512_maskz_loadu_ps(k, z + i)));
    }
}
template <typename Gate>
PYCVNN_AVX512 PYCVNN_INLINE void map8(double* __restrict out, const double* __restrict z,
                                      const double* __restrict dout, idx n, Gate gate) {
    idx i = 0;
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(out + i, gate(_mm512_loadu_pd(dout + i), _mm512_loadu_pd(z + i)));
    if (i < n) {
        const __mmask8 k = __mmask8((1u << (n - i)) - 1);
        _mm512_mask_storeu_pd(
            out + i, k, gate(_mm512_maskz_loadu_pd(k, dout + i), _mm512_maskz_loadu_pd(k, z + i)));
    }
}

PYCVNN_AVX512 inline void relu_backward_avx512(float* dz, const float* z, const float* dout,
                                               idx n) {
    const __m512i t = _mm512_set1_epi32(kReluGate);
    map16(dz, z, dout, n,
          [t](__m512 d, __m512 x) PYCVNN_AVX512 { return _mm512_fixupimm_ps(d, x, t, 0); });
}
PYCVNN_AVX512 inline void relu_backward_avx512(double* dz, const double* z, const double* dout,
                                               idx n) {
    const __m512i t = _mm512_set1_epi64(kReluGate);
    map8(dz, z, dout, n,
         [t](__m512d d, __m512d x) PYCVNN_AVX512 { return _mm512_fixupimm_pd(d, x, t, 0); });
}
PYCVNN_AVX512 inline void leaky_relu_backward_avx512(float* dz, const float* z, const float* dout,
                                                     idx n, float alpha) {
    const __m512i t = _mm512_set1_epi32(kLeakyFactor);
    const __m512 a = _mm512_set1_ps(alpha);
    map16(dz, z, dout, n, [t, a](__m512 d, __m512 x) PYCVNN_AVX512 {
        return _mm512_mul_ps(_mm512_fixupimm_ps(a, x, t, 0), d);
    });
}
PYCVNN_AVX512 inline void leaky_relu_backward_avx512(double* dz, const double* z,
                                                     const double* dout, idx n, double alpha) {
    const __m512i t = _mm512_set1_epi64(kLeakyFactor);
    const __m512d a = _mm512_set1_pd(alpha);
    map8(dz, z, dout, n, [t, a](__m512d d, __m512d x) PYCVNN_AVX512 {
        return _mm512_mul_pd(_mm512_fixupimm_pd(a, x, t, 0), d);
    });
}

// Read once as the module loads: cpu_has_avx512f()'s guarded static, checked per call, gave
// each clone a full stack frame, which short arrays pay for on every call.
inline const bool kAvx512Gates = (__builtin_cpu_init(), cpu_has_avx512f());

}  // namespace detail
#endif

template <typename T>
PYCVNN_CLONES void relu_backward(T* __restrict dz,          // (n)
                                 const T* __restrict z,     // (n)
                                 const T* __restrict dout,  // (n)
                                 idx n) {
#if defined(PYCVNN_AVX512_KERNELS)
    if (detail::kAvx512Gates) return detail::relu_backward_avx512(dz, z, dout, n);
#endif
    // Load dout unconditionally: gcc will not vectorise a load made under a condition, and
    // the scalar branch mispredicts on random signs. A NaN z fails both tests and passes
    // through: relu'(NaN) dout = NaN. Two selects in a row, not nested, because gcc compiles
    // them to fewer compares and blends.
    for (idx i = 0; i < n; ++i) {
        const T d = dout[i], zi = z[i];
        const T t = zi > T(0) ? d : zi;
        dz[i] = zi <= T(0) ? T(0) : t;
    }
}

// a > 0 exactly where z > 0 (and a is NaN where z is), so the same mask works on the output.
template <typename T>
void relu_backward_from_output(T* __restrict dz,          // (n)
                               const T* __restrict a,     // (n) relu(z)
                               const T* __restrict dout,  // (n)
                               idx n) {
    relu_backward(dz, a, dout, n);
}

// ---- leaky_relu: z for z > 0, alpha z otherwise; derivative alpha at 0 (as PyTorch) ----------

template <typename T>
PYCVNN_CLONES void leaky_relu_forward(T* __restrict out,      // (n)
                                      const T* __restrict z,  // (n)
                                      idx n, T alpha) {
    for (idx i = 0; i < n; ++i) out[i] = z[i] > T(0) ? z[i] : alpha * z[i];
}

template <typename T>
PYCVNN_CLONES void leaky_relu_backward(T* __restrict dz,          // (n)
                                       const T* __restrict z,     // (n)
                                       const T* __restrict dout,  // (n)
                                       idx n, T alpha) {
#if defined(PYCVNN_AVX512_KERNELS)
    if (detail::kAvx512Gates) return detail::leaky_relu_backward_avx512(dz, z, dout, n, alpha);
#endif
    for (idx i = 0; i < n; ++i) {  // NaN z: NaN, as relu's
        const T d = dout[i], zi = z[i];
        const T t = zi > T(0) ? d : zi;
        dz[i] = zi <= T(0) ? alpha * d : t;
    }
}

// Needs alpha >= 0: then a > 0 exactly where z > 0 (a NaN where z is).
template <typename T>
void leaky_relu_backward_from_output(T* __restrict dz,          // (n)
                                     const T* __restrict a,     // (n) leaky_relu(z)
                                     const T* __restrict dout,  // (n)
                                     idx n, T alpha) {
    leaky_relu_backward(dz, a, dout, n, alpha);
}

// ---- softmax over the last axis: max, exp + sum, scale (the max subtraction keeps exp <= 1) ----

// out may be z itself (in place, as dense_forward uses it): each entry is read before it is
// written, so no __restrict here.
template <typename T>
void softmax_forward(T* out,      // (rows, cols)
                     const T* z,  // (rows, cols)
                     idx rows, idx cols) {
    FlushDenormals ftz;  // exp(z - max) underflows to denormals for far-below-max entries
    for (idx r = 0; r < rows; ++r) {
        const T* zr = z + r * cols;
        T* o = out + r * cols;
        T m = zr[0];
#pragma omp simd reduction(max : m)
        for (idx j = 0; j < cols; ++j) m = zr[j] > m ? zr[j] : m;
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (idx j = 0; j < cols; ++j) {
            o[j] = vmath::exp_nonpos(zr[j] - m);
            s += o[j];
        }
        const T inv = T(1) / s;  // s >= 1: the max entry contributes exp(0)
        for (idx j = 0; j < cols; ++j) o[j] *= inv;
    }
}

// VJP from the output: dz = a * (dout - sum(dout * a) / sum(a)) per row (sum(a) = 1).
template <typename T>
void softmax_backward_from_output(T* __restrict dz,          // (rows, cols)
                                  const T* __restrict a,     // (rows, cols) softmax(z)
                                  const T* __restrict dout,  // (rows, cols)
                                  idx rows, idx cols) {
    FlushDenormals ftz;
    for (idx r = 0; r < rows; ++r) {
        const T* ar = a + r * cols;
        const T* dr = dout + r * cols;
        T* o = dz + r * cols;
        const T d0 = std::isfinite(dr[0]) ? dr[0] : T(0);  // see softmax_backward
        T dot = 0, sum = 0;
#pragma omp simd reduction(+ : dot, sum)
        for (idx j = 0; j < cols; ++j) {
            dot += (dr[j] - d0) * ar[j];
            sum += ar[j];
        }
        dot /= sum;
        for (idx j = 0; j < cols; ++j) o[j] = ar[j] * ((dr[j] - d0) - dot);
    }
}

// From z: recompute s = softmax(z) into dz, then apply the VJP in place.
template <typename T>
void softmax_backward(T* __restrict dz,          // (rows, cols)
                      const T* __restrict z,     // (rows, cols)
                      const T* __restrict dout,  // (rows, cols)
                      idx rows, idx cols) {
    FlushDenormals ftz;
    softmax_forward(dz, z, rows, cols);
    for (idx r = 0; r < rows; ++r) {
        T* s = dz + r * cols;
        const T* dr = dout + r * cols;
        // Shifting dout by its first (finite) entry keeps the VJP exactly shift-invariant: a
        // constant dout gives exactly 0 whatever the order of the sum, not rounding noise.
        const T d0 = std::isfinite(dr[0]) ? dr[0] : T(0);
        T dot = 0, sum = 0;
#pragma omp simd reduction(+ : dot, sum)
        for (idx j = 0; j < cols; ++j) {
            dot += (dr[j] - d0) * s[j];
            sum += s[j];
        }
        dot /= sum;  // sum(s) = 1 up to rounding
        for (idx j = 0; j < cols; ++j) s[j] = s[j] * ((dr[j] - d0) - dot);
    }
}

// ---- GELU, exact: z Phi(z) = z erfc(-z / sqrt 2) / 2 (PyTorch's gelu default) ------------------
// erfc keeps every digit where Phi(z) is tiny (1 + erf(z / sqrt 2) would cancel for z < -3).

namespace detail {
template <typename T>
T gelu(T z) {
    return T(0.5) * z * std::erfc(-z * T(0.70710678118654752440));
}
// Phi(z) + z phi(z)
template <typename T>
T gelu_grad(T z) {
    return T(0.5) * std::erfc(-z * T(0.70710678118654752440)) +
           z * T(0.39894228040143267794) * std::exp(T(-0.5) * z * z);
}
// max(z, 0) + log1p(exp(-|z|)): no overflow for any z, exact to rounding for both tails.
template <typename T>
T softplus(T z) {
    return (z > T(0) ? z : T(0)) + std::log1p(std::exp(-std::fabs(z)));
}
}  // namespace detail

template <typename T>
void gelu_forward(T* __restrict out,      // (n)
                  const T* __restrict z,  // (n)
                  idx n) {
    for (idx i = 0; i < n; ++i) out[i] = detail::gelu(z[i]);
}

template <typename T>
void gelu_backward(T* __restrict dz,          // (n)
                   const T* __restrict z,     // (n)
                   const T* __restrict dout,  // (n)
                   idx n) {
    for (idx i = 0; i < n; ++i) dz[i] = dout[i] * detail::gelu_grad(z[i]);
}

// ---- softplus: log(1 + exp(z)); derivative sigmoid(z) ----------------------------------------

template <typename T>
void softplus_forward(T* __restrict out,      // (n)
                      const T* __restrict z,  // (n)
                      idx n) {
    for (idx i = 0; i < n; ++i) out[i] = detail::softplus(z[i]);
}

template <typename T>
PYCVNN_CLONES void softplus_backward(T* __restrict dz,          // (n)
                                     const T* __restrict z,     // (n)
                                     const T* __restrict dout,  // (n)
                                     idx n) {
    FlushDenormals ftz;
    for (idx i = 0; i < n; ++i) dz[i] = dout[i] * vmath::sigmoid(z[i]);
}

// sigmoid(z) = 1 - exp(-a) for a = softplus(z), as -expm1(-a): exact where a is tiny too.
template <typename T>
void softplus_backward_from_output(T* __restrict dz,          // (n)
                                   const T* __restrict a,     // (n) softplus(z)
                                   const T* __restrict dout,  // (n)
                                   idx n) {
    for (idx i = 0; i < n; ++i) dz[i] = dout[i] * -std::expm1(-a[i]);
}

// ---- the registry and the dispatch by Activation ---------------------------------------------

struct ActivationInfo {
    Activation act;
    const char* name;
    bool per_row;      // works over each row (the last axis), not elementwise
    bool has_alpha;    // takes leaky ReLU's slope
    bool needs_input;  // its backward needs z, not only a = f(z)
    const char* forward_doc;
    const char* backward_doc;
};

inline constexpr ActivationInfo kActivations[] = {
    {Activation::Sigmoid, "sigmoid", false, false, false, "1 / (1 + exp(-z)), elementwise.",
     "dout * sigmoid(z) (1 - sigmoid(z))."},
    {Activation::Tanh, "tanh", false, false, false, "tanh(z), elementwise.",
     "dout * (1 - tanh(z)^2)."},
    {Activation::ReLU, "relu", false, false, false, "max(z, 0), elementwise.", "relu'(0) = 0."},
    {Activation::LeakyReLU, "leaky_relu", false, true, false,
     "z if z > 0 else alpha z, elementwise.",
     "leaky_relu'(z) = 1 for z > 0, else alpha (so alpha at 0)."},
    {Activation::Softmax, "softmax", true, false, false,
     "Max-subtracted softmax over the last axis.",
     "Vector-Jacobian product: s * (dout - sum(dout * s, axis=-1, keepdims=True))."},
    {Activation::GELU, "gelu", false, false, true, "z Phi(z) (exact, erf form), elementwise.",
     "dout * (Phi(z) + z phi(z))."},
    {Activation::Softplus, "softplus", false, false, false, "log(1 + exp(z)), elementwise.",
     "dout * sigmoid(z)."},
};

inline const ActivationInfo* find_activation(Activation act) {
    for (const auto& info : kActivations)
        if (info.act == act) return &info;
    return nullptr;  // Activation::None
}
inline bool needs_input(Activation act) {
    const ActivationInfo* info = find_activation(act);
    return info && info->needs_input;
}

// out = f(z) for a (rows, cols) block (out and z distinct).
template <typename T>
void activation_forward(T* __restrict out,      // (rows, cols)
                        const T* __restrict z,  // (rows, cols)
                        idx rows, idx cols, Activation act, T alpha) {
    const idx n = rows * cols;
    switch (act) {
        case Activation::None: std::copy(z, z + n, out); break;
        case Activation::Sigmoid: sigmoid_forward(out, z, n); break;
        case Activation::Tanh: tanh_forward(out, z, n); break;
        case Activation::ReLU: relu_forward(out, z, n); break;
        case Activation::LeakyReLU: leaky_relu_forward(out, z, n, alpha); break;
        case Activation::Softmax: softmax_forward(out, z, rows, cols); break;
        case Activation::GELU: gelu_forward(out, z, n); break;
        case Activation::Softplus: softplus_forward(out, z, n); break;
    }
}

// In place on a (rows, cols): a = f(a), one pass while each row is in L1 (a dense layer's
// output, right after its GEMM).
template <typename T>
PYCVNN_CLONES void activation_inplace(T* __restrict a,  // (rows, cols)
                                      idx rows, idx cols, Activation act, T alpha) {
    FlushDenormals ftz;  // sigmoid/tanh exps underflow to denormals otherwise
    const idx n = rows * cols;
    switch (act) {
        case Activation::None: break;
        case Activation::Sigmoid:
            for (idx i = 0; i < n; ++i) a[i] = vmath::sigmoid(a[i]);
            break;
        case Activation::Tanh:
            for (idx i = 0; i < n; ++i) a[i] = vmath::tanh(a[i]);
            break;
        case Activation::ReLU:
            for (idx i = 0; i < n; ++i) a[i] = a[i] < T(0) ? T(0) : a[i];  // keeps NaN
            break;
        case Activation::LeakyReLU:
            for (idx i = 0; i < n; ++i) a[i] = a[i] > T(0) ? a[i] : alpha * a[i];
            break;
        case Activation::Softmax: softmax_forward(a, a, rows, cols); break;
        case Activation::GELU:
            for (idx i = 0; i < n; ++i) a[i] = detail::gelu(a[i]);
            break;
        case Activation::Softplus:
            for (idx i = 0; i < n; ++i) a[i] = detail::softplus(a[i]);
            break;
    }
}

// dz = dout * f'(z) for a (rows, cols) block.
template <typename T>
void activation_backward(T* __restrict dz,          // (rows, cols)
                         const T* __restrict z,     // (rows, cols)
                         const T* __restrict dout,  // (rows, cols)
                         idx rows, idx cols, Activation act, T alpha) {
    const idx n = rows * cols;
    switch (act) {
        case Activation::None:
            for (idx i = 0; i < n; ++i) dz[i] = dout[i];
            break;
        case Activation::Sigmoid: sigmoid_backward(dz, z, dout, n); break;
        case Activation::Tanh: tanh_backward(dz, z, dout, n); break;
        case Activation::ReLU: relu_backward(dz, z, dout, n); break;
        case Activation::LeakyReLU: leaky_relu_backward(dz, z, dout, n, alpha); break;
        case Activation::Softmax: softmax_backward(dz, z, dout, rows, cols); break;
        case Activation::GELU: gelu_backward(dz, z, dout, n); break;
        case Activation::Softplus: softplus_backward(dz, z, dout, n); break;
    }
}

// dz = dout * f'(z) from the output a of activation act, for a (rows, cols) block; z (the
// input) is read only where needs_input(act), and may be null otherwise.
template <typename T>
void activation_backward_from_output(T* __restrict dz,          // (rows, cols)
                                     const T* __restrict a,     // (rows, cols)
                                     const T* z,                // (rows, cols) or null
                                     const T* __restrict dout,  // (rows, cols)
                                     idx rows, idx cols, Activation act, T alpha) {
    const idx n = rows * cols;
    switch (act) {
        case Activation::None:
            for (idx i = 0; i < n; ++i) dz[i] = dout[i];
            break;
        case Activation::Sigmoid: sigmoid_backward_from_output(dz, a, dout, n); break;
        case Activation::Tanh: tanh_backward_from_output(dz, a, dout, n); break;
        case Activation::ReLU: relu_backward_from_output(dz, a, dout, n); break;
        case Activation::LeakyReLU: leaky_relu_backward_from_output(dz, a, dout, n, alpha); break;
        case Activation::Softmax: softmax_backward_from_output(dz, a, dout, rows, cols); break;
        case Activation::GELU: gelu_backward(dz, z, dout, n); break;
        case Activation::Softplus: softplus_backward_from_output(dz, a, dout, n); break;
    }
}

}  // namespace pycvnn
