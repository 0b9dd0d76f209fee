// PYBIND11_MODULE(_bench): the timing loops bench/compare.py measures the core with (the FMA
// peak, one GEMM, the loss and bias sums), in C++ so that no Python call is timed. A module of
// its own keeps them out of pycvnn._core's surface.
//
// It links its own copy of the core's kernels, so its BLAS symbol table and thread pool are
// not pycvnn._core's: the import loads the symbols as pycvnn._core's does, and a GEMM timing
// runs at the thread count pycvnn._core was given.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common.hpp"
#include "dense.hpp"
#include "gemm.hpp"
#include "network.hpp"
#include "parallel.hpp"

namespace py = pybind11;

namespace pycvnn {
namespace {

using Clock = std::chrono::steady_clock;

// 12 independent accumulators cover the FMA latency (4 cycles) on two ports; the empty asm
// keeps them in registers and the loop from being folded. One loop for every ISA: Reg is its
// float vector, Fma its multiply-add (operands by reference, so no vector crosses a call of
// this untargeted template); inlined into a caller of the ISA's target, Fma inlines too.
#define PYCVNN_R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#if defined(__x86_64__)
template <typename Reg, void (*Fma)(Reg&, const Reg&, const Reg&)>
PYCVNN_INLINE double fma_loop(long iters) {
    const Reg b = 0.9999999f - Reg{}, c = 1e-7f - Reg{};  // x - 0: x in every lane
#define D(i) Reg a##i = float(i) - Reg{};
    PYCVNN_R12(D)
#undef D
    for (long k = 0; k < iters; ++k) {
#define F(i) Fma(a##i, b, c);
        PYCVNN_R12(F)
#undef F
        __asm__ volatile(""
                         : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6),
                           "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    return double(iters) * 12 * (sizeof(Reg) / sizeof(float)) * 2;
}

__attribute__((target("avx512f"))) inline void fma512(__m512& a, const __m512& b, const __m512& c) {
    a = _mm512_fmadd_ps(a, b, c);
}
__attribute__((target("avx2,fma"))) inline void fma256(__m256& a, const __m256& b,
                                                       const __m256& c) {
    a = _mm256_fmadd_ps(a, b, c);
}
__attribute__((target("avx512f"))) double flops_avx512(long iters) {
    return fma_loop<__m512, fma512>(iters);
}
__attribute__((target("avx2,fma"))) double flops_avx2(long iters) {
    return fma_loop<__m256, fma256>(iters);
}
#endif

double flops_portable(long iters) {  // mul + add, 4-wide if the compiler vectorises
    float a[12][4];
    for (int i = 0; i < 12; ++i)
        for (int j = 0; j < 4; ++j) a[i][j] = float(i + j);
    for (long k = 0; k < iters; ++k) {
        for (int i = 0; i < 12; ++i)
            for (int j = 0; j < 4; ++j) a[i][j] = a[i][j] * 0.9999999f + 1e-7f;
        __asm__ volatile("" : : "r"(a) : "memory");
    }
    return double(iters) * 12 * 4 * 2;
}
#undef PYCVNN_R12

// The float32 FMA peak of one core (GFLOP/s) from a register-only loop of independent FMAs,
// in the widest ISA this CPU has (AVX-512, else AVX2+FMA, else SSE).
double fma_peak_gflops(double seconds) {
    double (*run)(long) = flops_portable;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f"))
        run = flops_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        run = flops_avx2;
#endif
    // Best of short bursts: the host is shared, the best burst is the machine's peak.
    double best = 0, spent = 0;
    while (spent < seconds) {
        const auto t0 = Clock::now();
        const double flops = run(2000000);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::max(best, flops / s / 1e9);
        spent += s;
    }
    return best;
}

// Seconds per float32 gemm of this shape on path, buffers allocated once outside the timed
// loop, so only the GEMM is measured.
double time_gemm(bool ta, bool tb, int m, int n, int k, int reps, GemmPath path) {
    avector<float> A(size_t(m) * k, 0.5f), B(size_t(k) * n, 0.25f), C(size_t(m) * n);
    const int lda = ta ? m : k, ldb = tb ? k : n;
    gemm_via<float>(path, ta, tb, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), n);
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r)
        gemm_via<float>(path, ta, tb, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(),
                        n);
    return std::chrono::duration<double>(Clock::now() - t0).count() / reps;
}

// Seconds per call of a float32 training step's work outside its GEMMs and its update, for a
// batch of N through dense layers of output widths outs (the last one the classes): the fused
// softmax + cross-entropy value and gradient, and each layer's bias sums. Buffers are made
// once, outside the timed loop.
double time_loss_and_bias_sums(idx N, const std::vector<idx>& outs, int reps) {
    const idx C = outs.back(), widest = *std::max_element(outs.begin(), outs.end());
    avector<float> logits(static_cast<size_t>(N * C)), dlogits(static_cast<size_t>(N * C)),
        g(static_cast<size_t>(N * widest)), db(static_cast<size_t>(widest));
    std::vector<std::int64_t> ids(static_cast<size_t>(N));
    for (idx i = 0; i < N * C; ++i) logits[size_t(i)] = float(3 * std::sin(double(i)));
    for (idx i = 0; i < N * widest; ++i) g[size_t(i)] = 1e-3f * float(i % 7);
    for (idx i = 0; i < N; ++i) ids[size_t(i)] = i % C;
    const LossSpec spec{LossKind::CrossEntropy};
    FlushDenormals ftz;
    double sink = 0;
    const auto once = [&] {
        sink += spec.value_and_grad(dlogits.data(), logits.data(),
                                    static_cast<const float*>(nullptr), ids.data(), N, C);
        for (idx w : outs) column_sums(db.data(), g.data(), N, w, 1.0f, 0.0f);
    };
    once();
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) once();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    volatile double keep = sink + db[0];  // the work is used
    (void)keep;
    return s / reps;
}

}  // namespace
}  // namespace pycvnn

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& expected,
                       const std::string& got) {
    throw py::value_error(name + ": expected " + expected + ", got " + got);
}

void require_positive(long long v, const char* name, const char* expected) {
    if (v < 1) fail(name, expected, std::to_string(v));
}

}  // namespace

PYBIND11_MODULE(_bench, m) {
    m.doc() = "Timing loops for bench/compare.py, on the core's kernels; GIL released.";

    // Importing pycvnn._core runs pycvnn's import, which loads OpenBLAS (scipy_openblas32).
    py::module_::import("pycvnn._core");
    if (!pycvnn::blas_load())
        throw py::import_error(
            "pycvnn: OpenBLAS symbols not found; is scipy-openblas32 installed?");

    m.def(
        "fma_peak",
        [](double seconds) {
            if (!(seconds > 0 && seconds <= 60))
                fail("seconds", "a duration in (0, 60]",
                     std::string(py::repr(py::float_(seconds))));
            py::gil_scoped_release nogil;
            return pycvnn::fma_peak_gflops(seconds);
        },
        py::arg("seconds") = 0.2, "Float32 FMA peak of one core, GFLOP/s.");

    m.def(
        "time_gemm",
        [](int m, int n, int k, bool ta, bool tb, int reps, const std::string& path) {
            require_positive(m, "m", "a positive size");
            require_positive(n, "n", "a positive size");
            require_positive(k, "k", "a positive size");
            require_positive(reps, "reps", "a positive count");
            const pycvnn::GemmPath p = pycvnn::parse_gemm_path(path);
            py::object core_threads = py::module_::import("pycvnn._core").attr("_get_num_threads");
            pycvnn::Pool::instance().request_threads(core_threads().cast<int>());
            pycvnn::Pool::Session session;
            py::gil_scoped_release nogil;
            return pycvnn::time_gemm(ta, tb, m, n, k, reps, p);
        },
        py::arg("m"), py::arg("n"), py::arg("k"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("reps") = 10, py::arg("path") = "auto",
        "Seconds per float32 gemm of this shape at pycvnn's thread count: 'auto' (the core's "
        "entry point), 'blas', 'small', 'blocked' or 'dot' (A B^T with <= 8 rows).");

    m.def(
        "time_loss_and_bias_sums",
        [](long long N, const std::vector<long long>& outs, int reps) {
            require_positive(N, "N", "a positive batch size");
            require_positive(reps, "reps", "a positive count");
            if (outs.empty()) fail("outs", "a non-empty list of layer widths", "an empty list");
            for (long long w : outs)
                if (w < 1) fail("outs", "positive widths", std::to_string(w));
            const std::vector<pycvnn::idx> widths(outs.begin(), outs.end());
            py::gil_scoped_release nogil;
            return pycvnn::time_loss_and_bias_sums(pycvnn::idx(N), widths, reps);
        },
        py::arg("N"), py::arg("outs"), py::arg("reps") = 100,
        "Seconds per call of a float32 step's softmax + cross-entropy (value and gradient) on "
        "(N, outs[-1]) logits and the bias sums of layers of widths outs.");
}
