// Optimizer update rules, one function per rule (after ensmallen), in place over flat buffers:
// all parameters of a model live in one contiguous arena, so a step is one loop. State
// buffers (velocity, sq, m, v) start at zeros and have the parameters' size n.
// Order in a step: clip_by_global_norm on the raw gradient, then
// add_weight_decay (coupled L2), then the update.
// The loops vectorise (sqrt and division need -fno-math-errno, set in CMakeLists.txt).
#pragma once
#include <cmath>
#include <type_traits>

#include "common.hpp"

namespace pycvnn {

enum class MomentumForm { EMA, HeavyBall };

// theta := theta - lr g
template <typename T>
PYCVNN_CLONES void gd_update(T* __restrict param,       // (n)
                             const T* __restrict grad,  // (n)
                             T lr, idx n) {
    FlushDenormals ftz;
    for (idx i = 0; i < n; ++i) param[i] -= lr * grad[i];
}

// EMA (the lecture's): v := beta v + (1 - beta) g. Heavy ball (PyTorch's SGD momentum):
// v := beta v + g. Then theta := theta - lr v, or with Nesterov (heavy ball only, the caller
// checks) theta := theta - lr (g + beta v), PyTorch's form.
template <typename T>
PYCVNN_CLONES void momentum_update(T* __restrict param,       // (n)
                                   T* __restrict velocity,    // (n)
                                   const T* __restrict grad,  // (n)
                                   T lr, double beta_, MomentumForm form, bool nesterov, idx n) {
    FlushDenormals ftz;  // v decays geometrically towards denormals once g vanishes
    // beta comes in double: 1 - beta taken in float (1 - 0.9f) is off by 1e-7 relative
    const T beta = T(beta_), gk = form == MomentumForm::EMA ? T(1.0 - beta_) : T(1);
    if (nesterov) {
        for (idx i = 0; i < n; ++i) {
            const T v = beta * velocity[i] + gk * grad[i];
            velocity[i] = v;
            param[i] -= lr * (grad[i] + beta * v);
        }
    } else {
        for (idx i = 0; i < n; ++i) {
            const T v = beta * velocity[i] + gk * grad[i];
            velocity[i] = v;
            param[i] -= lr * v;
        }
    }
}

// s := rho s + (1 - rho) g^2; theta := theta - lr g / (sqrt(s) + eps)
template <typename T>
PYCVNN_CLONES void rmsprop_update(T* __restrict param,       // (n)
                                  T* __restrict sq,          // (n) running mean of g^2
                                  const T* __restrict grad,  // (n)
                                  T lr, double rho_, T eps, idx n) {
    FlushDenormals ftz;
    const T rho = T(rho_), k = T(1.0 - rho_);  // 1 - rho in double, as for Adam's betas
    for (idx i = 0; i < n; ++i) {
        const T g = grad[i];
        const T s = rho * sq[i] + k * (g * g);  // as the twin: (1 - rho) g^2
        sq[i] = s;
        param[i] -= lr * g / (std::sqrt(s) + eps);
    }
}

namespace detail {

#if defined(PYCVNN_AVX512_KERNELS)
// vfixupimm's table, one nibble per class of the keyed value (QNaN, SNaN, 0, +1, -Inf, +Inf,
// negative, positive from the lowest nibble); 0 keeps the estimate, 8 gives +0. Keyed on x,
// kInfFixup gives 1 / (sqrt(+Inf) + eps) = 0.
constexpr int kInfFixup = 0x00800000;

// float Adam's sqrt and division, the two ops that bound its loop (23 cycles per 16 floats on
// the divider), as rsqrt14 / rcp14 estimates each refined by one Newton step: within a few
// ulp of the exact ops. Whole vectors only; returns how many were done.
// Decayed: AdamW's param * decay (Adam skips that multiply by 1, one op of the loop's 21).
template <bool Decayed>
PYCVNN_AVX512 inline idx adam_step_avx512(float* __restrict param, float* __restrict m,
                                          float* __restrict v, const float* __restrict grad,
                                          float step, float inv_bc2, float beta1, float beta2,
                                          float k1_, float k2_, float eps, float decay, idx n) {
    const __m512 b1 = _mm512_set1_ps(beta1), b2 = _mm512_set1_ps(beta2), k1 = _mm512_set1_ps(k1_),
                 k2 = _mm512_set1_ps(k2_), st = _mm512_set1_ps(step), ib = _mm512_set1_ps(inv_bc2),
                 ep = _mm512_set1_ps(eps), dc = _mm512_set1_ps(decay), half = _mm512_set1_ps(0.5f),
                 two = _mm512_set1_ps(2.0f), fmax = _mm512_set1_ps(3.40282347e+38f);
    const __m512i inf_fix = _mm512_set1_epi32(kInfFixup);
    const idx nv = n / 16 * 16;
    for (idx i = 0; i < nv; i += 16) {
        // Every load ahead of the stores: a load behind a store 4 KiB away (buffers at the same
        // page offset) waits on it as if they overlapped.
        const __m512 g = _mm512_loadu_ps(grad + i), m0 = _mm512_loadu_ps(m + i),
                     v0 = _mm512_loadu_ps(v + i);
        __m512 p = _mm512_loadu_ps(param + i);
        if constexpr (Decayed) p = _mm512_mul_ps(p, dc);
        __asm__ volatile("" ::: "memory");  // gcc would sink the loads into later operands
        const __m512 mi = _mm512_fmadd_ps(b1, m0, _mm512_mul_ps(k1, g));
        const __m512 vi = _mm512_fmadd_ps(b2, v0, _mm512_mul_ps(k2, _mm512_mul_ps(g, g)));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        // sqrt(x) as s = x y refined by s += s (1/2 - s y/2), y ~ 1/sqrt(x); y capped at
        // FLT_MAX so x = 0 gives s = 0 (not 0 * Inf), NaN kept (min returns its second operand
        // on NaN). A negative x gives NaN from rsqrt14, as sqrt; +Inf is fixed up at the end.
        const __m512 x = _mm512_mul_ps(vi, ib);
        const __m512 y = _mm512_min_ps(fmax, _mm512_rsqrt14_ps(x));
        const __m512 s = _mm512_mul_ps(x, y);
        const __m512 e = _mm512_fnmadd_ps(s, _mm512_mul_ps(half, y), half);
        const __m512 d = _mm512_fmadd_ps(s, e, _mm512_add_ps(s, ep));  // sqrt(x) + eps
        __m512 r = _mm512_rcp14_ps(d);                                 // r *= 2 - d r
        r = _mm512_fixupimm_ps(_mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, two)), x, inf_fix, 0);
        _mm512_storeu_ps(param + i, _mm512_fnmadd_ps(_mm512_mul_ps(st, mi), r, p));
    }
    return nv;
}
#endif

// The Adam step shared by adam_update and adamw_update; decay = 1 - lr weight_decay (1 for
// Adam) applies AdamW's decoupled decay theta := theta - lr wd theta before the step.
template <typename T>
PYCVNN_CLONES void adam_step(T* __restrict param, T* __restrict m, T* __restrict v,
                             const T* __restrict grad, T lr, double beta1_, double beta2_, T eps,
                             long long t, T decay, idx n) {
    FlushDenormals ftz;
    // Bias corrections in double: beta2^t is 1 - O(1e-3 t), where float would lose digits.
    // lr / (1 - b1^t) folded into one factor, so that each element pays only one division
    // and one sqrt, the two ops that bound this loop.
    // The betas come in double: 1 - beta in float32 arithmetic (1 - 0.999f) is 1.3e-5 off.
    const T step = T(double(lr) / (1.0 - std::pow(beta1_, double(t))));
    const T inv_bc2 = T(1.0 / (1.0 - std::pow(beta2_, double(t))));
    const T beta1 = T(beta1_), beta2 = T(beta2_), k1 = T(1.0 - beta1_), k2 = T(1.0 - beta2_);
    idx i = 0;
#if defined(PYCVNN_AVX512_KERNELS)
    if constexpr (std::is_same_v<T, float>)
        if (cpu_has_avx512f())
            i = decay == T(1) ? adam_step_avx512<false>(param, m, v, grad, step, inv_bc2, beta1,
                                                        beta2, k1, k2, eps, decay, n)
                              : adam_step_avx512<true>(param, m, v, grad, step, inv_bc2, beta1,
                                                       beta2, k1, k2, eps, decay, n);
#endif
    for (; i < n; ++i) {
        const T g = grad[i];
        const T mi = beta1 * m[i] + k1 * g;
        const T vi = beta2 * v[i] + k2 * (g * g);  // as the twin: (1 - b2) g^2
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] * decay - step * mi / (std::sqrt(vi * inv_bc2) + eps);
    }
}

}  // namespace detail

// PyTorch's Adam, t >= 1 the step number after increment:
// m := b1 m + (1-b1) g; v := b2 v + (1-b2) g^2; theta := theta - lr m^ / (sqrt(v^) + eps)
// with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t).
template <typename T>
void adam_update(T* param,       // (n)
                 T* m,           // (n) first moment
                 T* v,           // (n) second moment
                 const T* grad,  // (n)
                 T lr, double beta1, double beta2, T eps, long long t, idx n) {
    detail::adam_step(param, m, v, grad, lr, beta1, beta2, eps, t, T(1), n);
}

// PyTorch's AdamW: theta := theta - lr wd theta (decoupled), then the Adam step.
template <typename T>
void adamw_update(T* param,       // (n)
                  T* m,           // (n) first moment
                  T* v,           // (n) second moment
                  const T* grad,  // (n)
                  T lr, double beta1, double beta2, T eps, long long t, T weight_decay, idx n) {
    detail::adam_step(param, m, v, grad, lr, beta1, beta2, eps, t, T(1) - lr * weight_decay, n);
}

// Coupled L2: grad := grad + wd theta (applied to weights only; the caller passes those).
template <typename T>
PYCVNN_CLONES void add_weight_decay(T* __restrict grad,         // (n)
                                    const T* __restrict param,  // (n)
                                    T weight_decay, idx n) {
    for (idx i = 0; i < n; ++i) grad[i] += weight_decay * param[i];
}

// g := k g, the scaling half of clip_by_global_norm (for callers that split the arena).
template <typename T>
PYCVNN_CLONES void scale_inplace(T* __restrict g,  // (n)
                                 T k, idx n) {
    for (idx i = 0; i < n; ++i) g[i] *= k;
}

// sqrt(sum g^2), accumulated in double (a float sum of ~1e6 squares loses ~3 digits).
template <typename T>
double global_norm(const T* grad,  // (n)
                   idx n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (idx i = 0; i < n; ++i) s += double(grad[i]) * double(grad[i]);
    return std::sqrt(s);
}

// If the global norm exceeds max_norm, scale grad by max_norm / norm. Returns the norm before.
template <typename T>
double clip_by_global_norm(T* grad,  // (n)
                           double max_norm, idx n) {
    const double norm = global_norm(grad, n);
    if (norm > max_norm) {
        const T k = T(max_norm / norm);
        for (idx i = 0; i < n; ++i) grad[i] *= k;
    }
    return norm;
}

}  // namespace pycvnn
