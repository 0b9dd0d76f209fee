// Dense layer: a = f(x w^T + b), w (out, in) as in the lecture's z = W a + b, batches as rows.
// Forward keeps only a (every f' here is a function of a); backward takes it back.
// All products go through pycvnn::gemm (OpenBLAS).
#pragma once
#include "activations.hpp"
#include "common.hpp"
#include "gemm.hpp"
#include "vmath.hpp"

namespace pycvnn {

// In place on z (rows, cols): z = f(z + b), bias and activation in one pass over z while each
// row is in L1. Softmax per row: add bias and take the max, exp + sum, scale.
template <typename T>
PYCVNN_CLONES void bias_activation_inplace(T* __restrict z,        // (rows, cols) in: x w^T, out: a
                             const T* __restrict b,  // (cols)
                             idx rows, idx cols, Activation act, T alpha) {
    FlushDenormals ftz;  // sigmoid/tanh/softmax exps underflow to denormals otherwise
    for (idx r = 0; r < rows; ++r) {
        T* __restrict zr = z + r * cols;
        switch (act) {
            case Activation::None:
                for (idx j = 0; j < cols; ++j) zr[j] += b[j];
                break;
            case Activation::Sigmoid:
                for (idx j = 0; j < cols; ++j) zr[j] = vmath::sigmoid(zr[j] + b[j]);
                break;
            case Activation::Tanh:
                for (idx j = 0; j < cols; ++j) zr[j] = vmath::tanh(zr[j] + b[j]);
                break;
            case Activation::ReLU:
                for (idx j = 0; j < cols; ++j) {
                    const T v = zr[j] + b[j];
                    zr[j] = v > T(0) ? v : T(0);
                }
                break;
            case Activation::LeakyReLU:
                for (idx j = 0; j < cols; ++j) {
                    const T v = zr[j] + b[j];
                    zr[j] = v > T(0) ? v : alpha * v;
                }
                break;
            case Activation::Softmax: {
                T m = zr[0] + b[0];
#pragma omp simd reduction(max : m)
                for (idx j = 0; j < cols; ++j) {
                    const T v = zr[j] + b[j];
                    zr[j] = v;
                    m = v > m ? v : m;
                }
                T s = 0;
#pragma omp simd reduction(+ : s)
                for (idx j = 0; j < cols; ++j) {
                    zr[j] = vmath::exp_nonpos(zr[j] - m);
                    s += zr[j];
                }
                const T inv = T(1) / s;
                for (idx j = 0; j < cols; ++j) zr[j] *= inv;
                break;
            }
        }
    }
}

template <typename T>
void dense_forward(T* a,         // (N, out) f(x w^T + b)
                   const T* x,   // (N, in)
                   const T* w,   // (out, in)
                   const T* b,   // (out)
                   idx N, idx in, idx out, Activation act, T alpha) {
    gemm<T>(false, true, int(N), int(out), int(in), T(1), x, int(in), w, int(in), T(0), a,
            int(out));
    bias_activation_inplace(a, b, N, out, act, alpha);
}

// dz = dout * f'(a); dx = dz w; dw = dz^T x; db = column sums of dz.
// dz is a caller-owned workspace (no allocation here); with act == None dout is used directly
// and dz may be null. dx may be null when the caller does not need it (the first layer).
// leaky_relu needs alpha >= 0 (then a > 0 exactly where z > 0).
template <typename T>
void dense_backward(T* dx,          // (N, in) or null
                    T* dw,          // (out, in)
                    T* db,          // (out)
                    T* dz,          // (N, out) workspace, may be null for act == None
                    const T* dout,  // (N, out) d loss / d a
                    const T* x,     // (N, in)
                    const T* w,     // (out, in)
                    const T* a,     // (N, out) the forward's output
                    idx N, idx in, idx out, Activation act, T alpha) {
    FlushDenormals ftz;
    const T* g = dout;
    if (act != Activation::None) {
        activation_backward_from_output(dz, a, dout, N, out, act, alpha);
        g = dz;
    }
    if (dx)
        gemm<T>(false, false, int(N), int(in), int(out), T(1), g, int(out), w, int(in), T(0), dx,
                int(in));
    gemm<T>(true, false, int(out), int(in), int(N), T(1), g, int(out), x, int(in), T(0), dw,
            int(in));
    // Row by row so the inner loop is contiguous and vectorises.
    for (idx j = 0; j < out; ++j) db[j] = T(0);
    for (idx i = 0; i < N; ++i) {
        const T* __restrict gi = g + i * out;
        T* __restrict dbr = db;
        for (idx j = 0; j < out; ++j) dbr[j] += gi[j];
    }
}

}  // namespace pycvnn
