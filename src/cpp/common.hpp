// Shared helpers for the kernels: index type, aligned workspace, CPU checks, the denormal
// guard and cache prefetch.
#pragma once
#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>
#if defined(__SSE2__) || defined(__x86_64__)
#include <immintrin.h>
#define PYCVNN_X86 1
#endif

// Function multiversioning for the elementwise hot loops: the wheel targets baseline x86-64
// (SSE2), so gcc also compiles AVX2 and AVX-512 clones of each marked kernel and picks one at
// load time (ifunc): a baseline wheel still gets the wide vectors on CPUs that have them.
// Not for softmax: its rows are short (10 classes), where 16-wide vectors only add overhead.
// Needs glibc's ifunc; elsewhere the baseline build alone is used.
#include <cstdlib>  // defines __GLIBC__ on glibc
#if defined(__x86_64__) && defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(PYCVNN_NO_CLONES)
#define PYCVNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PYCVNN_CLONES
#endif
// Small math helpers must be inlined into each clone to be compiled for its ISA.
#define PYCVNN_INLINE __attribute__((always_inline)) inline

// Hand-written AVX-512 kernels (small GEMMs, 16-class rows), chosen at run time by
// cpu_has_avx512f(); other CPUs take the portable path.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PYCVNN_AVX512_KERNELS 1
#define PYCVNN_AVX512 __attribute__((target("avx512f")))
#endif

namespace pycvnn {

using idx = std::ptrdiff_t;

// Workspace buffers on 64-byte (cache line, AVX-512 vector) boundaries: a vector load that
// splits two lines costs two.
template <typename T>
struct Aligned64 {
    using value_type = T;
    Aligned64() = default;
    template <typename U>
    Aligned64(const Aligned64<U>&) {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
    }
    void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
    template <typename U>
    bool operator==(const Aligned64<U>&) const {
        return true;
    }
    template <typename U>
    bool operator!=(const Aligned64<U>&) const {
        return false;
    }
};
template <typename T>
using avector = std::vector<T, Aligned64<T>>;

// PYCVNN_NO_AVX512=1 in the environment (read once) turns the hand-written AVX-512 kernels off,
// so tests can check the portable paths on an AVX-512 machine.
inline bool cpu_has_avx512f() {
#if defined(PYCVNN_AVX512_KERNELS)
    static const bool yes = [] {
        const char* off = std::getenv("PYCVNN_NO_AVX512");
        return __builtin_cpu_supports("avx512f") && !(off && *off && *off != '0');
    }();
    return yes;
#else
    return false;
#endif
}

// Denormals make every float op on them far slower (a microcode assist each). Kernels open a
// FlushDenormals scope: it sets FTZ (results) and DAZ (inputs) in MXCSR and restores the
// caller's mode on exit, so Python code around the call is left untouched.
struct FlushDenormals {
#if defined(PYCVNN_X86)
    // Writing MXCSR stalls the pipeline; inside an enclosing scope (train_epoch opens one
    // for the whole epoch) the mode is already set and nothing is written.
    unsigned int saved;
    bool set;
    FlushDenormals() : saved(_mm_getcsr()), set((saved & 0x8040u) != 0x8040u) {
        if (set) _mm_setcsr(saved | 0x8040u);
    }
    ~FlushDenormals() {
        if (set) _mm_setcsr(saved);
    }
#elif defined(__aarch64__)
    unsigned long saved;  // FPCR bit 24 (FZ) flushes denormal inputs and results
    FlushDenormals() {
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved));
        __asm__ __volatile__("msr fpcr, %0" : : "r"(saved | (1ul << 24)));
    }
    ~FlushDenormals() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved)); }
#else
    FlushDenormals() = default;  // no known control: denormals are left as they are
#endif
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// Asks for the cache lines of [p, p + bytes) to be brought into cache (no fault, no wait).
// Inline asm, not __builtin_prefetch: gcc deems a function of only prefetches free of side
// effects, marks it pure and drops the call.
inline void prefetch_lines(const void* p, std::size_t bytes) {
    if (bytes == 0) return;
    const char* c = static_cast<const char*>(p);
    for (std::size_t off = 0; off < bytes + 63; off += 64) {
        const char* line = c + std::min(off, bytes - 1);  // the last byte's line too
#if defined(PYCVNN_X86) && (defined(__GNUC__) || defined(__clang__))
        __asm__ volatile("prefetcht0 %0" : : "m"(*line));
#else
        (void)line;
#endif
    }
}

}  // namespace pycvnn
