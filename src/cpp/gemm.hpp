// The one matrix-multiply entry point. Row-major:
//   C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C
// op(X) is X or X^T; lda/ldb/ldc are the row strides of A, B, C as stored.
// Small shapes run the AVX-512 kernels of gemm_small.hpp; the rest OpenBLAS
// (scipy-openblas32), looked up at runtime, see gemm.cpp.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

#include "common.hpp"

namespace pycvnn {

template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* A,
          int lda,                 // (m, k), or (k, m) if trans_a
          const T* B, int ldb,     // (k, n), or (n, k) if trans_b
          T beta, T* C, int ldc);  // (m, n)

// C (m, n) = op(A) op(B) + bias, bias (n) on every row, then max(C, 0) if relu (a dense layer's
// forward). Our kernels do both as they store C (C never read). For OpenBLAS the bias is
// written into C first and the GEMM accumulates onto it (beta = 1, which also spares OpenBLAS
// its zeroing pass), and ReLU is not applied. Returns whether ReLU was applied.
template <typename T>
bool gemm_bias(bool trans_a, bool trans_b, int m, int n, int k, const T* A, int lda, const T* B,
               int ldb, const T* bias, T* C, int ldc, bool relu = false);

// What our kernels do to C as they store it (OpenBLAS does none of it): add bias (n) to every
// row, then max(C, 0) if relu (NaN kept), then C := 0 where gate <= 0 (NaN where the gate is
// NaN). The gate (m, n), C's row stride, is the layer below's ReLU output: its backward,
// dz = dx where a > 0, done in dx's GEMM.
template <typename T>
struct Epilogue {
    const T* bias = nullptr;
    bool relu = false;
    const T* gate = nullptr;
    bool any() const { return relu || gate; }
    Epilogue cols(int j) const {
        return {bias ? bias + j : nullptr, relu, gate ? gate + j : nullptr};
    }
    Epilogue rows(int i, int ldc) const {
        return {bias, relu, gate ? gate + static_cast<long long>(i) * ldc : nullptr};
    }
};

// On more than one thread a GEMM is split over the core's pool if it is large (gemm.cpp),
// and in a training step (a TrainingGemms alive on the calling thread) if its batch (m, or k
// for A^T B) is kSplitRows or more: below that the weights, which change every step, would
// move between cores at a cost above a thread's share; train_epoch's update follows.
constexpr int kSplitRows = 32;
class TrainingGemms {
public:
    TrainingGemms();
    ~TrainingGemms();
    TrainingGemms(const TrainingGemms&) = delete;
    TrainingGemms& operator=(const TrainingGemms&) = delete;

private:
    bool outer_;
};

// The kernel a GEMM runs on: Auto as gemm (by shape), Blas OpenBLAS, Small the unpacked
// kernels, Blocked the blocked ones, Dot the dot-product kernels for A B^T with at most 8 rows
// (Small, Blocked and Dot are OpenBLAS where the CPU lacks AVX-512, Dot also on other shapes).
enum class GemmPath { Auto, Blas, Small, Blocked, Dot };

// The path a bench or test hook names ("auto", "blas", "small", "blocked" or "dot"); any other
// name throws std::invalid_argument, which Python sees as a ValueError naming the argument.
inline GemmPath parse_gemm_path(const std::string& name) {
    static const std::pair<const char*, GemmPath> paths[] = {{"auto", GemmPath::Auto},
                                                             {"blas", GemmPath::Blas},
                                                             {"small", GemmPath::Small},
                                                             {"blocked", GemmPath::Blocked},
                                                             {"dot", GemmPath::Dot}};
    for (const auto& p : paths)
        if (name == p.first) return p.second;
    throw std::invalid_argument(
        "path: expected 'auto', 'blas', 'small', 'blocked' or 'dot', got '" + name + "'");
}

// The same as gemm on the given path. With an epilogue (a bias needs beta 0) returns whether
// relu and gate were applied (false on OpenBLAS's path, where the bias still goes in). The one
// dispatch; the other entry points call it.
template <typename T>
bool gemm_via(GemmPath path, bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* A,
              int lda, const T* B, int ldb, T beta, T* C, int ldc, Epilogue<T> epi = {});

// The rows [lo, hi) of a dense layer's weights (out, in) that thread p of the core's pool
// computes in a training step's forward (x w^T) and weight gradient (dz^T x) on a batch of N
// (callable from any thread, TrainingGemms or not): both
// GEMMs split the rows alike. All on thread 0 where they run on the calling thread (small
// shapes, a training batch under kSplitRows, one thread); empty past the last part.
std::pair<idx, idx> weight_rows_of(idx N, idx in, idx out, int p);

bool blas_load();         // resolve the BLAS symbols; false if none are loaded
std::string blas_name();  // which BLAS (for messages and the bench)
void blas_set_num_threads(int n);
int blas_get_num_threads();

bool small_gemm_available();  // the CPU runs the small kernels (AVX-512)

}  // namespace pycvnn
