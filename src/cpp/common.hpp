// Shared helpers for the kernels: index type and the denormal guard.
#pragma once
#include <cstddef>
#if defined(__SSE2__) || defined(__x86_64__)
#include <immintrin.h>
#define PYCVNN_X86 1
#endif

namespace pycvnn {

using idx = std::ptrdiff_t;

// Denormals make every float op on them ~100x slower. Kernels open a FlushDenormals scope:
// it sets FTZ (results) and DAZ (inputs) in MXCSR and restores the caller's mode on exit,
// so Python code around the call is left untouched.
struct FlushDenormals {
#if defined(PYCVNN_X86)
    unsigned int saved;
    FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(saved); }
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

}  // namespace pycvnn
