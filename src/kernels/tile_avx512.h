/* What the AVX-512 kernels (gemm_avx512.c, gemm_bf16_avx512.c) share: the store of a 6 x 64 tile of FP32
 * accumulators. Internal to src/kernels; include it only from files compiled with the AVX-512 flags. */
#ifndef CNN_KERNELS_TILE_AVX512_H
#define CNN_KERNELS_TILE_AVX512_H

#include <immintrin.h>

/* Row i's vector j of accumulators (c##i##j) into C at c + i*ldc + 16j (lanes m), added to what C holds when
 * accumulate; TILE_STORE(i) stores row i's nv vectors (the last masked by last) when row i < mr is real. */
#define TILE_STORE1(i, j, m)                                                                                 \
    do {                                                                                                     \
        float *cp = c + (i)*ldc + 16 * (j);                                                                  \
        if (accumulate) c##i##j = _mm512_add_ps(c##i##j, _mm512_maskz_loadu_ps(m, cp));                      \
        _mm512_mask_storeu_ps(cp, m, c##i##j);                                                               \
    } while (0)
#define TILE_STORE(i)                                                                                        \
    do {                                                                                                     \
        if (i < mr) {                                                                                        \
            TILE_STORE1(i, 0, nv == 1 ? last : 0xffff);                                                      \
            if (nv > 1) TILE_STORE1(i, 1, nv == 2 ? last : 0xffff);                                          \
            if (nv > 2) TILE_STORE1(i, 2, nv == 3 ? last : 0xffff);                                          \
            if (nv > 3) TILE_STORE1(i, 3, last);                                                             \
        }                                                                                                    \
    } while (0)

#endif
