/* The input transform of kernels/winograd.h for the BF16 products, compiled with the Makefile's ISA_AVX512
 * flags plus -mavx512bf16 and run only where cnn_bf16_check passes: V = B^T d B rounded to BF16 as it is
 * written, instead of FP32 V rounded by a second pass over it. The additions and subtractions are
 * winograd.inc's, in its order, so V holds the same values and the products the same bits. */
#include <immintrin.h>

#include "kernels/winograd.h"

/* 16 channels of a run, n of them (the rest zero, as winograd.inc's tail: computed on, never stored). */
static inline __m512 run16(const float *p, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, p);
}

static inline void store16(uint16_t *p, __m512 x, __mmask16 m)
{
    _mm256_mask_storeu_epi16(p, m, (__m256i)_mm512_cvtneps_pbh(x));
}

void cnn_wino_input_bf16(const float *const src[16], int cin, uint16_t *v, size_t vs)
{
    for (int c0 = 0; c0 < cin; c0 += 16) {
        const __mmask16 m = cin - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cin - c0)) - 1);
        __m512 t[16]; /* B^T d: column c of d through bt4 */
        for (int c = 0; c < 4; c++) {
            const __m512 d0 = run16(src[c] + c0, m), d1 = run16(src[4 + c] + c0, m),
                         d2 = run16(src[8 + c] + c0, m), d3 = run16(src[12 + c] + c0, m);
            t[c] = _mm512_sub_ps(d0, d2);
            t[4 + c] = _mm512_add_ps(d1, d2);
            t[8 + c] = _mm512_sub_ps(d2, d1);
            t[12 + c] = _mm512_sub_ps(d1, d3);
        }
        for (int r = 0; r < 4; r++) { /* (B^T d) B: row r through bt4 */
            const __m512 *q = t + 4 * r;
            uint16_t *o = v + 4 * r * vs + c0;
            store16(o, _mm512_sub_ps(q[0], q[2]), m);
            store16(o + vs, _mm512_add_ps(q[1], q[2]), m);
            store16(o + 2 * vs, _mm512_sub_ps(q[2], q[1]), m);
            store16(o + 3 * vs, _mm512_sub_ps(q[1], q[3]), m);
        }
    }
}
