// Scalar exp / sigmoid / tanh written so that gcc vectorises the loops they are inlined into.
// glibc's expf/tanh are opaque calls: a loop that calls them stays scalar unless -ffast-math
// (which we do not use). These are branch-free (selects only), use the round-to-nearest magic
// constant instead of floor, and build 2^n from integer bits, all of which SSE2 has.
// Accuracy: ~1-2 ulp (Cephes' expf/exp/tanhf/tanh polynomials).
#pragma once
#include <cstdint>
#include <cstring>

#include "common.hpp"

namespace pycvnn {
namespace vmath {

template <typename T>
struct Bits;
template <>
struct Bits<float> {
    using U = std::uint32_t;
};
template <>
struct Bits<double> {
    using U = std::uint64_t;
};

template <typename To, typename From>
PYCVNN_INLINE To bit_cast(From x) {
    To y;
    std::memcpy(&y, &x, sizeof y);
    return y;
}

// exp(x) for x <= 0 (the only range softmax, log-sum-exp and sigmoid need: they subtract the
// max or take -|z|). Returns 0 below the smallest normal result instead of a denormal.
PYCVNN_INLINE float exp_nonpos(float x) {
    const float lo = -87.0f;  // exp(-87) ~ 1.6e-38, just above FLT_MIN
    const float xc = x < lo ? lo : x;
    // n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer in the low mantissa bits.
    const float magic = 12582912.0f;
    const float t = xc * 1.44269504088896341f + magic;
    const float n = t - magic;
    float r = xc - n * 0.693359375f;  // Cody-Waite: ln2 split in two parts
    r = r - n * -2.12194440e-4f;
    const float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    // 2^n: the low bits of t hold magic + n; shifting by 23 drops the magic's exponent bits.
    const std::uint32_t e = (bit_cast<std::uint32_t>(t) + 127u) << 23;
    const float y = p * bit_cast<float>(e);
    return x < lo ? 0.0f : y;  // NaN fails the test and propagates through y
}

PYCVNN_INLINE double exp_nonpos(double x) {
    const double lo = -708.0;  // exp(-708) ~ 3.3e-308, just above DBL_MIN
    const double xc = x < lo ? lo : x;
    const double magic = 6755399441055744.0;  // 1.5 * 2^52
    const double t = xc * 1.4426950408889634074 + magic;
    const double n = t - magic;
    double r = xc - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    // Pade form: exp(r) = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)).
    const double r2 = r * r;
    const double P = ((1.26177193074810590878e-4 * r2 + 3.02994407707441961300e-2) * r2 +
                      9.99999999999999999910e-1) *
                     r;
    const double Q = ((3.00198505138664455042e-6 * r2 + 2.52448340349684104192e-3) * r2 +
                      2.27265548208155028766e-1) *
                         r2 +
                     2.00000000000000000009e0;
    const double p = 1.0 + 2.0 * P / (Q - P);
    const std::uint64_t e = (bit_cast<std::uint64_t>(t) + 1023u) << 52;
    const double y = p * bit_cast<double>(e);
    return x < lo ? 0.0 : y;
}

// sigmoid without overflow: with e = exp(-|z|) <= 1, s = 1/(1+e) for z >= 0, e/(1+e) below.
template <typename T>
PYCVNN_INLINE T sigmoid(T z) {
    const T az = z < T(0) ? -z : z;
    const T e = exp_nonpos(-az);
    const T r = T(1) / (T(1) + e);
    return z >= T(0) ? r : e * r;
}

// tanh: a polynomial (rational for double) near 0, where (1-e)/(1+e) would cancel, and
// 1 - 2e/(1+e) with e = exp(-2|z|) <= 1 elsewhere (no overflow at any |z|).
// tanh_far is that second form, the same for both widths; the tanh overloads pick between it
// and their own polynomial at |z| = 0.625.
template <typename T>
PYCVNN_INLINE T tanh_far(T z, T az) {
    const T e = exp_nonpos(T(-2) * az);
    const T big = T(1) - T(2) * e / (T(1) + e);
    return z < T(0) ? -big : big;
}

PYCVNN_INLINE float tanh(float z) {
    const float az = z < 0.0f ? -z : z;
    const float big = tanh_far(z, az);  // computed either way: a select, not a branch
    const float s = z * z;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    const float small = p * s * z + z;
    return az > 0.625f ? big : small;
}

PYCVNN_INLINE double tanh(double z) {
    const double az = z < 0.0 ? -z : z;
    const double big = tanh_far(z, az);
    const double s = z * z;
    const double P =
        (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3;
    const double Q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s +
                     4.84406305325125486048e3;
    const double small = z + z * s * (P / Q);
    return az > 0.625 ? big : small;
}

}  // namespace vmath
}  // namespace pycvnn
