// Dense layer: a = f(x w^T + b), w (out, in) as in the lecture's z = W a + b, batches as rows.
// Forward keeps a, and z too where the activation's backward needs it (needs_input: GELU);
// backward takes them back.
// All products go through pycvnn::gemm / gemm_bias / gemm_via (gemm.hpp).
#pragma once
#include "activations.hpp"
#include "common.hpp"
#include "gemm.hpp"
#include "vmath.hpp"

namespace pycvnn {

// db := db_keep db + g_scale (column sums of g (N, out)); db_keep = 0 writes db (it may be
// unset). Four rows per pass: db's load and store, the loop-carried chain, happen a quarter as
// often; the inner loop is contiguous and vectorises.
template <typename T>
PYCVNN_CLONES void column_sums(T* __restrict db,       // (out)
                               const T* __restrict g,  // (N, out)
                               idx N, idx out, T g_scale, T db_keep) {
    for (idx j = 0; j < out; ++j) db[j] = db_keep == T(0) ? T(0) : db_keep * db[j];
    idx i = 0;
    for (; i + 4 <= N; i += 4) {
        const T *g0 = g + i * out, *g1 = g0 + out, *g2 = g1 + out, *g3 = g2 + out;
        for (idx j = 0; j < out; ++j) db[j] += g_scale * ((g0[j] + g1[j]) + (g2[j] + g3[j]));
    }
    for (; i < N; ++i)
        for (idx j = 0; j < out; ++j) db[j] += g_scale * g[i * out + j];
}

// z = x w^T + b in one GEMM with the bias, and ReLU, in its epilogue (gemm_bias); any other f
// (or ReLU, where the GEMM was OpenBLAS's) in place after. z_keep (N, out) receives z where
// needs_input(act), and is not touched otherwise.
template <typename T>
void dense_forward(T* a,        // (N, out) f(x w^T + b)
                   const T* x,  // (N, in)
                   const T* w,  // (out, in)
                   const T* b,  // (out)
                   idx N, idx in, idx out, Activation act, T alpha, T* z_keep = nullptr) {
    const bool keep = needs_input(act);
    if (gemm_bias<T>(false, true, int(N), int(out), int(in), x, int(in), w, int(in), b,
                     keep ? z_keep : a, int(out), act == Activation::ReLU))
        return;
    if (keep)
        activation_forward(a, z_keep, N, out, act, alpha);
    else
        activation_inplace(a, N, out, act, alpha);
}

// dz = dout * f'(a); dx = dz w; dw = dz^T x; db = column sums of dz.
// dz is a caller-owned workspace (no allocation here); with act == None dout is used directly
// and dz may be null. dx may be null when the caller does not need it (the first layer).
// leaky_relu needs alpha >= 0 (then a > 0 exactly where z > 0).
// Accumulate form, as BLAS: dw := g_scale dz^T x + dw_keep dw, db := g_scale sum(dz) + db_keep db.
// The defaults (1, 0, 0) write the plain gradients. Plain gradient descent passes the
// parameters themselves with g_scale = -lr, dw_keep = 1 - lr weight_decay, db_keep = 1: the
// update happens inside the GEMM (dx is computed first, from the old w).
// In a network the layer below's ReLU backward can go into dx's GEMM: dx_gate is that layer's
// output a (N, in), and dx := 0 where a <= 0 as it is stored; returns whether that was done
// (OpenBLAS's path cannot). The layer below then gets dout_gated: its dout is already dz.
template <typename T>
bool dense_backward(T* dx,          // (N, in) or null
                    T* dw,          // (out, in)
                    T* db,          // (out)
                    T* dz,          // (N, out) workspace, may be null for act == None
                    const T* dout,  // (N, out) d loss / d a
                    const T* x,     // (N, in)
                    const T* w,     // (out, in)
                    const T* a,     // (N, out) the forward's output
                    const T* z,     // (N, out) its input z where needs_input(act), else null
                    idx N, idx in, idx out, Activation act, T alpha, T g_scale = T(1),
                    T dw_keep = T(0), T db_keep = T(0), const T* dx_gate = nullptr,
                    bool dout_gated = false) {
    FlushDenormals ftz;
    const T* g = dout;
    if (act != Activation::None && !dout_gated) {
        activation_backward_from_output(dz, a, z, dout, N, out, act, alpha);
        g = dz;
    }
    bool gated = false;
    if (dx)
        gated = gemm_via<T>(GemmPath::Auto, false, false, int(N), int(in), int(out), T(1), g,
                            int(out), w, int(in), T(0), dx, int(in), {nullptr, false, dx_gate}) &&
                dx_gate;
    gemm<T>(true, false, int(out), int(in), int(N), g_scale, g, int(out), x, int(in), dw_keep, dw,
            int(in));
    column_sums(db, g, N, out, g_scale, db_keep);
    return gated;
}

}  // namespace pycvnn
