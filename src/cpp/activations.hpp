// Activation kernels: <name>_forward(out, z) and <name>_backward(dz, z, dout) = dout * f'(z)
// (for softmax the vector-Jacobian product). Elementwise kernels see the array as flat (n);
// softmax works on rows (rows, cols) = (everything but the last axis, the last axis).
// The *_backward_from_output variants take the forward's output a instead of z: every f'
// here is a function of a, so a layer keeps a and never needs z (used by dense.hpp).
#pragma once
#include <cmath>

#include "common.hpp"
#include "vmath.hpp"

namespace pycvnn {

enum class Activation { None, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax };

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

template <typename T>
PYCVNN_CLONES void relu_backward(T* __restrict dz,          // (n)
                   const T* __restrict z,     // (n)
                   const T* __restrict dout,  // (n)
                   idx n) {
    // Load dout unconditionally: gcc will not vectorise a load made under a condition, and
    // the scalar branch mispredicts on random signs (measured 4 ns vs 0.15 ns per element).
    // A NaN z fails both tests and passes through: relu'(NaN) dout = NaN. Written as two
    // selects in a row, gcc's AVX-512 clone is 2 compares, a blend and a zeroing move (the
    // nested form took 4 compares and 3 blends).
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

// dz = dout * f'(z) from the output a of activation act, for a (rows, cols) block.
template <typename T>
void activation_backward_from_output(T* __restrict dz,          // (rows, cols)
                                     const T* __restrict a,     // (rows, cols)
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
    }
}

}  // namespace pycvnn
