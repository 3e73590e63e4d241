/* The float -> PCM16 inner loops of src_ext/pcm.pyx, in C with SSE2 where available.
 *
 * Why C: a compiler keeps IEEE semantics for `v < hi ? v : hi` and so cannot turn it
 * into a SIMD min without -ffast-math; written in Cython the loops ran scalar, 4x
 * slower. SSE2 is part of every x86-64 CPU; elsewhere the portable loop below runs.
 *
 * Semantics (fishjam_fast/_pcm_py.py is the reference): v = x * 32767 in the input's
 * precision; NaN -> 0; clip to [-32768, 32767]; round to nearest, ties to even (the
 * default floating-point rounding mode, as np.rint). Clipping before rounding gives the
 * same result as after, since the bounds are integers and rounding is monotonic.
 *
 * Output: n int16 written little-endian at `dst`, which may be unaligned. `x` must be
 * aligned for its type (the caller gathers unaligned input first).
 */
#ifndef FISHJAM_FAST_PCM_KERNELS_H
#define FISHJAM_FAST_PCM_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <numpy/npy_common.h>
#include <numpy/npy_endian.h>

/* PCM16 on the wire is little-endian: on such a machine an int16_t in memory is
   already its wire form. */
#define PCM_LITTLE_ENDIAN (NPY_BYTE_ORDER == NPY_LITTLE_ENDIAN)

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define PCM_HAVE_SSE2 1
#else
#define PCM_HAVE_SSE2 0
#endif

static inline void pcm_store_le16(uint8_t *dst, int16_t value) {
    uint16_t u = (uint16_t)value;
    dst[0] = (uint8_t)(u & 0xFF);
    dst[1] = (uint8_t)(u >> 8);
}

static inline int16_t pcm_f32_scalar(float x) {
    float v = x * 32767.0f;
    if (v != v) return 0;
    if (v >= 32767.0f) return 32767;
    if (v <= -32768.0f) return -32768;
    return (int16_t)rintf(v);
}

static inline int16_t pcm_f64_scalar(double x) {
    double v = x * 32767.0;
    if (v != v) return 0;
    if (v >= 32767.0) return 32767;
    if (v <= -32768.0) return -32768;
    return (int16_t)rint(v);
}

static void pcm_f32_to_le16(const float *x, ptrdiff_t n, uint8_t *dst) {
    ptrdiff_t i = 0;
#if PCM_HAVE_SSE2
    const __m128 scale = _mm_set1_ps(32767.0f);
    const __m128 hi = _mm_set1_ps(32767.0f);
    const __m128 lo = _mm_set1_ps(-32768.0f);
    for (; i + 8 <= n; i += 8) {
        __m128 a = _mm_mul_ps(_mm_loadu_ps(x + i), scale);
        __m128 b = _mm_mul_ps(_mm_loadu_ps(x + i + 4), scale);
        a = _mm_and_ps(a, _mm_cmpord_ps(a, a));  /* NaN -> +0 */
        b = _mm_and_ps(b, _mm_cmpord_ps(b, b));
        a = _mm_max_ps(_mm_min_ps(a, hi), lo);   /* no NaN left: plain min/max */
        b = _mm_max_ps(_mm_min_ps(b, hi), lo);
        /* cvtps rounds by the current mode (nearest, ties to even); values are in
           int16 range, so the saturating pack is exact */
        _mm_storeu_si128((__m128i *)(dst + 2 * i),
                         _mm_packs_epi32(_mm_cvtps_epi32(a), _mm_cvtps_epi32(b)));
    }
#endif
    for (; i < n; i++) pcm_store_le16(dst + 2 * i, pcm_f32_scalar(x[i]));
}

static void pcm_f64_to_le16(const double *x, ptrdiff_t n, uint8_t *dst) {
    ptrdiff_t i = 0;
#if PCM_HAVE_SSE2
    const __m128d scale = _mm_set1_pd(32767.0);
    const __m128d hi = _mm_set1_pd(32767.0);
    const __m128d lo = _mm_set1_pd(-32768.0);
    for (; i + 8 <= n; i += 8) {
        __m128i r[4];
        int k;
        for (k = 0; k < 4; k++) {
            __m128d v = _mm_mul_pd(_mm_loadu_pd(x + i + 2 * k), scale);
            v = _mm_and_pd(v, _mm_cmpord_pd(v, v));
            v = _mm_max_pd(_mm_min_pd(v, hi), lo);
            r[k] = _mm_cvtpd_epi32(v);  /* two int32 in the low half */
        }
        __m128i a = _mm_unpacklo_epi64(r[0], r[1]);
        __m128i b = _mm_unpacklo_epi64(r[2], r[3]);
        _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_packs_epi32(a, b));
    }
#endif
    for (; i < n; i++) pcm_store_le16(dst + 2 * i, pcm_f64_scalar(x[i]));
}

#endif /* FISHJAM_FAST_PCM_KERNELS_H */
