// GEMM through OpenBLAS. We do not link against it: `import scipy_openblas32` (done by
// pycvnn/__init__.py before _core) loads libscipy_openblas.so with RTLD_GLOBAL, and we find
// its cblas symbols with dlsym. This keeps the build free of BLAS paths and rpaths, and
// shares one OpenBLAS (one thread pool) with the process.
#include "gemm.hpp"
#include <dlfcn.h>

#include <algorithm>
#include <stdexcept>
#include "common.hpp"
#include "gemm_small.hpp"
#include "parallel.hpp"

namespace pycvnn {
namespace {

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                          float, float*, int);
using dgemm_fn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*,
                          int, double, double*, int);
using set_threads_fn = void (*)(int);
using get_threads_fn = int (*)();

struct Blas {
    sgemm_fn sgemm = nullptr;
    dgemm_fn dgemm = nullptr;
    set_threads_fn set_threads = nullptr;
    get_threads_fn get_threads = nullptr;
    std::string name;
};
Blas blas;

// The register-blocked kernels of gemm_small.hpp beat OpenBLAS up to kSmallMax multiply-adds
// and on skinny shapes (a side <= kSkinny), where OpenBLAS's packing has little to amortise.
// With trans_b they first transpose B (n k floats), which pays only once kSkinny rows share
// it, and, as they do not block for the cache, only while B is small or thin.
constexpr long long kSmallMax = 1LL << 18;
constexpr int kSkinny = 16;
bool small_ok = false;  // AVX-512 present (checked once in blas_load)

template <typename T>
bool use_small(bool tb, int m, int n, int k, T alpha) {
    if (!small_ok || alpha == T(0)) return false;
    const bool small = (long long)m * n * k <= kSmallMax;
    if (tb) return m >= kSkinny && (small || std::min(n, k) <= kSkinny);
    return small || std::min({m, n, k}) <= kSkinny;
}

// Three kinds of shape in that range go to OpenBLAS's small-matrix kernels, which beat ours
// there:
// - A^T B (a weight gradient: never an epilogue) unless both m and n are <= kSkinny, where
//   ours win;
// - A B^T into <= kSkinny columns from <= 32 rows with k >= 64, up to kBlasNtMax multiply-adds
//   (a 10-class output layer on a small batch, where few rows share our transpose of B; from
//   64 rows ours win within a training step). Its bias goes into C first, ReLU after
//   (gemm_blas);
// - A B with one row (a batch of one's dx, a GEMV), up to kSmallMax: the gate, which it cannot
//   take, is then the layer's own pass.
// In all three OpenBLAS stays on one thread whatever its thread count (its small-matrix path),
// so it never contends with the core's pool.
constexpr long long kBlasNtMax = 1LL << 19;
template <typename T>
bool use_blas_small(bool ta, bool tb, int m, int n, int k, const Epilogue<T>& epi) {
    const long long mnk = (long long)m * n * k;
    if (!ta && !tb) return m == 1 && mnk <= kSmallMax;
    if (ta && !tb)
        return mnk <= kSmallMax && !epi.any() && !epi.bias && (m > kSkinny || n > kSkinny);
    return !ta && tb && !epi.gate && mnk <= kBlasNtMax && n <= kSkinny && m <= 32 && k >= 64;
}

// Past those the blocked kernels (B packed per panel) beat OpenBLAS on one thread, except on
// an A^T B with more than 256 rows (wide's weight gradient), which stays with OpenBLAS there.
// On more threads every large GEMM runs here, split over the core's pool: OpenBLAS's threads
// spin after each call on the core the pool needs next, and the pool's on the core OpenBLAS
// needs.
// A B^T with a few rows (a small batch's forward, inference on a few samples): ours would
// transpose all of B for them. The dot-product kernels (B read as it is) take them where B is
// past gemv_bytes or, from kGemvRows + 1 rows, k is long; OpenBLAS's GEMV-like path, the
// fastest on a small B, the rest.
constexpr int kFewRows = 8;
constexpr int kGemvRows = 4;  // with k long, the dot kernels win from the row after this

// B's size up to which a few rows go to OpenBLAS: 1 MiB, or 4 MiB for one row, as far as its
// GEMV stays faster than the dot kernels.
size_t gemv_bytes(int m) { return (size_t(1) << 20) * (m == 1 ? 4 : 1); }

template <typename T>
bool use_dot(bool ta, bool tb, int m, int k, size_t b_bytes, T alpha) {
    return small_ok && alpha != T(0) && !ta && tb && m <= kFewRows &&
           (b_bytes > gemv_bytes(m) || (m > kGemvRows && k >= 512));
}

template <typename T>
bool use_blocked(bool ta, bool tb, int m, int n, int k, T alpha) {
    if (!small_ok || alpha == T(0)) return false;
    const size_t b_bytes = size_t(n) * k * sizeof(T);
    if (tb && m <= kFewRows && b_bytes <= gemv_bytes(m)) return false;
    return Pool::instance().threads() > 1 || !ta || m <= 256;
}

thread_local bool training_gemms = false;  // see TrainingGemms (gemm.hpp)

// The parts a split GEMM's side of length len falls into: multiples of 64, or of 16 where
// that leaves a thread under 64, so a narrow layer still gives every thread a share.
idx split_grain(idx len, int threads) { return len >= 64 * threads ? 64 : 16; }

#if defined(PYCVNN_AVX512_KERNELS)
// Whether a GEMM is split over the pool. In a training step, from a batch (m, or k for A^T B)
// of kSplitRows: the epoch runs in C++, the workers poll between jobs, and small batches'
// weights would move between cores. Elsewhere (predict, evaluate, a hand-written loop) calls
// come from Python with gaps where the workers go to sleep, and waking them costs tens of
// microseconds on a virtual machine: only from kSplitWork multiply-adds, enough work to repay
// the wake-up.
constexpr long long kSplitWork = 1LL << 24;
bool splits(bool ta, int m, int n, int k, bool training) {
    return training ? (ta ? k : m) >= kSplitRows : (long long)m * n * k >= kSplitWork;
}

// How blocked() splits over the core's pool, where splits() says to.
// A dense layer's weights are C's columns in the forward (x w^T) and C's rows in the weight
// gradient (dz^T x): the forward splits C by columns, A^T B by rows, both in parts that start
// on multiples of 64 (16 where that leaves a thread under 64), so each thread updates the
// weight rows it multiplies in the next forward and no core re-reads rows another wrote. Each
// thread transposes its own rows of A^T, where a split by columns would have every thread read
// the whole shared A^T. Smaller training batches run on the caller: a thread's share of the
// work is then below the cost of moving the weights between cores. kSplitRows: gemm.hpp; the
// parts: split_grain above.

// Rows [lo, lo + rows) of A^T, for A stored (k, m) lda apart, into this thread's scratch, k
// apart.
template <typename T>
const T* rows_of_a_t(const T* A, int lda, int k, idx lo, int rows) {
    thread_local avector<T> at;
    if (at.size() < size_t(rows) * k) at.resize(size_t(rows) * k);
    small_gemm::transpose(at.data(), k, A + lo, lda, k, rows);
    return at.data();
}

template <typename T>
void blocked(bool ta, bool tb, int m, int n, int k, T alpha, const T* A, int lda, const T* B,
             int ldb, T beta, T* C, int ldc, Epilogue<T> epi) {
    Pool& pool = Pool::instance();
    const int threads = pool.threads();
    const bool split = splits(ta, m, n, k, training_gemms);
    if (ta && split) {
        const idx grain = split_grain(m, threads);
        pool.parallel_for(
            m, grain,
            [&](idx lo, idx hi) {
                const int rows = int(hi - lo);
                small_gemm::gemm_blocked<T>(tb, rows, k, alpha, rows_of_a_t(A, lda, k, lo, rows), k,
                                            B, ldb, beta, C + size_t(lo) * ldc, ldc,
                                            epi.rows(int(lo), ldc), 0, n);
            },
            grain);
        return;
    }
    if (ta) {  // a small batch: on the caller, which transposes A^T whole
        A = rows_of_a_t(A, lda, k, 0, m);
        lda = k;
    }
    const auto cols = [&](idx lo, idx hi) {
        small_gemm::gemm_blocked<T>(tb, m, k, alpha, A, lda, B, ldb, beta, C, ldc, epi, int(lo),
                                    int(hi));
    };
    if (!split) return cols(0, n);
    const idx grain = split_grain(n, threads);
    pool.parallel_for(n, grain, cols, grain);
}
#endif

template <typename F>
F lookup(const std::string& prefix, const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, (prefix + name).c_str()));
}

}  // namespace

bool blas_load() {
    if (blas.sgemm) return true;
#if defined(PYCVNN_AVX512_KERNELS)
    small_ok = cpu_has_avx512f();
#endif
    for (const char* prefix : {"scipy_", ""}) {
        auto s = lookup<sgemm_fn>(prefix, "cblas_sgemm");
        auto d = lookup<dgemm_fn>(prefix, "cblas_dgemm");
        if (!s || !d) continue;
        blas.sgemm = s;
        blas.dgemm = d;
        blas.set_threads = lookup<set_threads_fn>(prefix, "openblas_set_num_threads");
        blas.get_threads = lookup<get_threads_fn>(prefix, "openblas_get_num_threads");
        blas.name = std::string(prefix) + "openblas";
        return true;
    }
    return false;
}

std::string blas_name() { return blas.name; }

bool small_gemm_available() { return small_ok; }

void blas_set_num_threads(int n) {
    if (blas.set_threads) blas.set_threads(n);
}

int blas_get_num_threads() { return blas.get_threads ? blas.get_threads() : 1; }

namespace {

void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda,
               const float* B, int ldb, float beta, float* C, int ldc) {
    if (!blas.sgemm) throw std::runtime_error("pycvnn: BLAS not loaded");
    blas.sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, A, lda, B, ldb,
               beta, C, ldc);
}

void blas_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* A, int lda,
               const double* B, int ldb, double beta, double* C, int ldc) {
    if (!blas.dgemm) throw std::runtime_error("pycvnn: BLAS not loaded");
    blas.dgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, A, lda, B, ldb,
               beta, C, ldc);
}

// OpenBLAS's path of gemm_via: it has no bias, which goes into C first for the GEMM to
// accumulate onto, and no epilogue: ReLU and the gate are left to the caller (returns false).
template <typename T>
bool gemm_blas(bool ta, bool tb, int m, int n, int k, T alpha, const T* A, int lda, const T* B,
               int ldb, T beta, T* C, int ldc, const Epilogue<T>& epi) {
    if (epi.bias) {
        for (int r = 0; r < m; ++r) std::copy(epi.bias, epi.bias + n, C + size_t(r) * ldc);
        beta = T(1);
    }
    blas_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return false;
}

}  // namespace

template <typename T>
bool gemm_via(GemmPath path, bool ta, bool tb, int m, int n, int k, T alpha, const T* A, int lda,
              const T* B, int ldb, T beta, T* C, int ldc, Epilogue<T> epi) {
    (void)path;  // without the AVX-512 kernels every path is OpenBLAS
#if defined(PYCVNN_AVX512_KERNELS)
    const bool by_shape = path == GemmPath::Auto;
    if (path == GemmPath::Dot
            ? small_ok && !ta && tb && m <= kFewRows
            : by_shape && use_dot(ta, tb, m, k, size_t(n) * k * sizeof(T), alpha)) {
        small_gemm::gemm_dot<T>(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, epi);
        return epi.any();
    }
    if (by_shape && use_blas_small(ta, tb, m, n, k, epi))
        return gemm_blas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    if (path == GemmPath::Small ? small_ok : by_shape && use_small(tb, m, n, k, alpha)) {
        small_gemm::gemm<T>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, epi);
        return epi.any();
    }
    if (path == GemmPath::Blocked ? small_ok : by_shape && use_blocked(ta, tb, m, n, k, alpha)) {
        blocked(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, epi);
        return epi.any();
    }
#endif
    return gemm_blas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, epi);
}

template <typename T>
void gemm(bool ta, bool tb, int m, int n, int k, T alpha, const T* A, int lda, const T* B, int ldb,
          T beta, T* C, int ldc) {
    gemm_via<T>(GemmPath::Auto, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
bool gemm_bias(bool ta, bool tb, int m, int n, int k, const T* A, int lda, const T* B, int ldb,
               const T* bias, T* C, int ldc, bool relu) {
    return gemm_via<T>(GemmPath::Auto, ta, tb, m, n, k, T(1), A, lda, B, ldb, T(0), C, ldc,
                       {bias, relu});
}

TrainingGemms::TrainingGemms() : outer_(training_gemms) { training_gemms = true; }
TrainingGemms::~TrainingGemms() { training_gemms = outer_; }

std::pair<idx, idx> weight_rows_of(idx N, idx in, idx out, int p) {
    const int threads = Pool::instance().threads();
    bool split = false;
    (void)N, (void)in;  // without the AVX-512 kernels no GEMM is split by the pool
#if defined(PYCVNN_AVX512_KERNELS)
    const int n = int(N), i = int(in), o = int(out);
    split = threads > 1 && !use_small(true, n, o, i, 1.0f) &&
            use_blocked(false, true, n, o, i, 1.0f) && splits(false, n, o, i, true) &&
            !use_small(false, o, i, n, 1.0f) && use_blocked(true, false, o, i, n, 1.0f) &&
            splits(true, o, i, n, true);
#endif
    const idx grain = split ? split_grain(out, threads) : out;
    const int parts = split ? Pool::parts(out, grain, threads) : 1;
    if (parts <= 1) return p == 0 ? std::pair<idx, idx>{0, out} : std::pair<idx, idx>{out, out};
    return {Pool::part_start(out, parts, grain, p), Pool::part_start(out, parts, grain, p + 1)};
}

#define PYCVNN_GEMM(T)                                                                             \
    template void gemm<T>(bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int); \
    template bool gemm_via<T>(GemmPath, bool, bool, int, int, int, T, const T*, int, const T*,     \
                              int, T, T*, int, Epilogue<T>);                                       \
    template bool gemm_bias<T>(bool, bool, int, int, int, const T*, int, const T*, int, const T*,  \
                               T*, int, bool);
PYCVNN_GEMM(float)
PYCVNN_GEMM(double)
#undef PYCVNN_GEMM

}  // namespace pycvnn
