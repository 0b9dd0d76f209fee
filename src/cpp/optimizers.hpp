// Optimizer update rules, one function per rule (after ensmallen), in place over flat buffers:
// all parameters of a model live in one contiguous arena, so a step is one loop. State
// buffers (velocity, sq, m, v) start at zeros and have the parameters' size n.
// Order in a step (DESIGN §7): clip_by_global_norm on the raw gradient, then
// add_weight_decay (coupled L2), then the update.
// The loops vectorise (sqrt and division need -fno-math-errno, set in CMakeLists.txt).
#pragma once
#include <cmath>

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
                     T lr, T beta, MomentumForm form, bool nesterov, idx n) {
    FlushDenormals ftz;  // v decays geometrically towards denormals once g vanishes
    const T gk = form == MomentumForm::EMA ? T(1) - beta : T(1);
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
                    T lr, T rho, T eps, idx n) {
    FlushDenormals ftz;
    const T k = T(1) - rho;
    for (idx i = 0; i < n; ++i) {
        const T g = grad[i];
        const T s = rho * sq[i] + k * g * g;
        sq[i] = s;
        param[i] -= lr * g / (std::sqrt(s) + eps);
    }
}

namespace detail {

// The Adam step shared by adam_update and adamw_update; decay = 1 - lr weight_decay (1 for
// Adam) applies AdamW's decoupled decay theta := theta - lr wd theta before the step.
template <typename T>
PYCVNN_CLONES void adam_step(T* __restrict param, T* __restrict m, T* __restrict v,
               const T* __restrict grad, T lr, T beta1, T beta2, T eps, long long t, T decay,
               idx n) {
    FlushDenormals ftz;
    // Bias corrections in double: beta2^t is 1 - O(1e-3 t), where float would lose digits.
    // lr / (1 - b1^t) folded into one factor: one division and one sqrt per element, the
    // two ops that bound this loop (0.66 -> 0.45 ns per float32 parameter, AVX-512).
    const T step = T(double(lr) / (1.0 - std::pow(double(beta1), double(t))));
    const T inv_bc2 = T(1.0 / (1.0 - std::pow(double(beta2), double(t))));
    const T k1 = T(1) - beta1, k2 = T(1) - beta2;
    for (idx i = 0; i < n; ++i) {
        const T g = grad[i];
        const T mi = beta1 * m[i] + k1 * g;
        const T vi = beta2 * v[i] + k2 * g * g;
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
void adam_update(T* param,        // (n)
                 T* m,            // (n) first moment
                 T* v,            // (n) second moment
                 const T* grad,   // (n)
                 T lr, T beta1, T beta2, T eps, long long t, idx n) {
    detail::adam_step(param, m, v, grad, lr, beta1, beta2, eps, t, T(1), n);
}

// PyTorch's AdamW: theta := theta - lr wd theta (decoupled), then the Adam step.
template <typename T>
void adamw_update(T* param,        // (n)
                  T* m,            // (n) first moment
                  T* v,            // (n) second moment
                  const T* grad,   // (n)
                  T lr, T beta1, T beta2, T eps, long long t, T weight_decay, idx n) {
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
