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
#ifdef PYCVNN_X86
    unsigned int saved;
    FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(saved); }
#endif
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace pycvnn
