// V<T>: the AVX-512 register of float or double and the operations the hand-written kernels
// (the small GEMMs, the ReLU gates) use on it, written once for both element types with gcc's
// vector extensions. Isa<T> holds the few intrinsics whose names carry the element type.
#pragma once
#include "common.hpp"
#if defined(PYCVNN_AVX512_KERNELS)
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#pragma GCC push_options
#pragma GCC target("avx512f")

namespace pycvnn {
namespace simd {

template <typename T>
struct Isa;
template <>
struct Isa<float> {
    static __m512 load(const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
    static void store(float* p, __m512 v, __mmask16 k) { _mm512_mask_storeu_ps(p, k, v); }
    static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Isa<double> {
    static __m512d load(const double* p, __mmask8 k) { return _mm512_maskz_loadu_pd(k, p); }
    static void store(double* p, __m512d v, __mmask8 k) { _mm512_mask_storeu_pd(p, k, v); }
    static __m512d fma(__m512d a, __m512d b, __m512d c) { return _mm512_fmadd_pd(a, b, c); }
};

template <typename T>
struct V : Isa<T> {
    typedef T reg __attribute__((vector_size(64), may_alias));             // __m512 or __m512d
    using mask = std::conditional_t<sizeof(T) == 4, __mmask16, __mmask8>;  // a bit a lane
    static constexpr int L = 64 / sizeof(T);
    using Isa<T>::load;  // masked, beside the whole-vector forms below
    using Isa<T>::store;
    static reg zero() { return reg{}; }
    static reg set1(T x) { return x - reg{}; }  // x - 0 is x for every x, -0 and NaN included
    static reg load(const T* p) {
        reg v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    static void store(T* p, reg v) { std::memcpy(p, &v, sizeof v); }
    static reg mul(reg a, reg b) { return a * b; }
    static reg add(reg a, reg b) { return a + b; }
    static reg max(reg a, reg b) { return a > b ? a : b; }  // b where either is NaN (vmaxps)
    template <int IMM>  // 128-bit lanes: two of a, then two of b (the same bits for both types)
    static reg shuffle128(reg a, reg b) {
        return reg(_mm512_shuffle_f32x4(__m512(a), __m512(b), IMM));
    }
    static reg where_positive(reg g, reg x) {  // x where g > 0, 0 where g <= 0, NaN g: g
        const reg kept = g > zero() ? x : zero();
        return g != g ? g : kept;
    }
};

}  // namespace simd
}  // namespace pycvnn

#pragma GCC pop_options
#endif
