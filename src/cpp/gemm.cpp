// GEMM through OpenBLAS. We do not link against it: `import scipy_openblas32` (done by
// pycvnn/__init__.py before _core) loads libscipy_openblas.so with RTLD_GLOBAL, and we find
// its cblas symbols with dlsym. This keeps the build free of BLAS paths and rpaths, and
// shares one OpenBLAS (one thread pool) with the process.
#include "gemm.hpp"
#include <dlfcn.h>
#include <stdexcept>

namespace pycvnn {
namespace {

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int,
                          const float*, int, float, float*, int);
using dgemm_fn = void (*)(int, int, int, int, int, int, double, const double*, int,
                          const double*, int, double, double*, int);
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

template <typename F>
F lookup(const std::string& prefix, const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, (prefix + name).c_str()));
}

}  // namespace

bool blas_load() {
    if (blas.sgemm) return true;
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

void blas_set_num_threads(int n) {
    if (blas.set_threads) blas.set_threads(n);
}

int blas_get_num_threads() { return blas.get_threads ? blas.get_threads() : 1; }

template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
    if (!blas.sgemm) throw std::runtime_error("pycvnn: BLAS not loaded");
    blas.sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, A, lda, B,
               ldb, beta, C, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* A, int lda,
                  const double* B, int ldb, double beta, double* C, int ldc) {
    if (!blas.dgemm) throw std::runtime_error("pycvnn: BLAS not loaded");
    blas.dgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, A, lda, B,
               ldb, beta, C, ldc);
}

}  // namespace pycvnn
