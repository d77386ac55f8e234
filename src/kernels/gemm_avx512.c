/* The AVX-512 GEMM kernel (compiled with the Makefile's ISA_AVX512 flags; run only where kernels/isa.h
 * finds AVX-512): register-blocked, 6 rows x 64 columns, reading A and B in place without packing. At the
 * study's shapes it runs at about 265 GFLOP/s on one Zen 4 core (AMD EPYC), against about 105 for OpenBLAS
 * 0.3.21's AVX2 (Haswell) kernels and 175 for its AVX-512 ones. */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"
#include "kernels/tile_avx512.h"

enum { MR = CNN_GEMM_MR, NR = 64 }; /* tile rows, tile columns (4 vectors) */

/* One tile: rows [0, mr) x vectors [0, nv) of C (the last vector masked by last), over p in [0, P). Row i of
 * A starts at r[i]; its p-th value is r[i][p * sap], or r[i][po[p]] when gathered through a table. Missing
 * rows of a short tile repeat a real row and are not stored; only the first `rows` rows (at least mr) are
 * computed. Inlined per (nv, gathered, rows); the 24 accumulators
 * are named variables (an array of them is kept in memory by the compiler, which halves the speed). */
#define TILE_FMA(i)                                                                                          \
    do {                                                                                                     \
        if ((i) >= rows) break;                                                                              \
        const __m512 x = _mm512_set1_ps(a##i[q]);                                                            \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                           \
        if (nv > 1) c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                               \
        if (nv > 2) c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);                                               \
        if (nv > 3) c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);                                               \
    } while (0)
static inline __attribute__((always_inline)) void gemm_tile(int nv, int gathered, int rows, int mr, int P,
                                                            const float *const *r, long sap, const int *po,
                                                            const float *b, long ldb, __mmask16 last,
                                                            float *c, long ldc, int accumulate)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z,
           c23 = z, c30 = z, c31 = z, c32 = z, c33 = z, c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z,
           c52 = z, c53 = z;
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (long p = 0, o = 0; p < P; p++, o += sap) {
        const long q = gathered ? po[p] : o;
        const float *bp = b + p * ldb;
        const __m512 b0 = nv == 1 ? _mm512_maskz_loadu_ps(last, bp) : _mm512_loadu_ps(bp);
        const __m512 b1 = nv < 2    ? z
                          : nv == 2 ? _mm512_maskz_loadu_ps(last, bp + 16)
                                    : _mm512_loadu_ps(bp + 16);
        const __m512 b2 = nv < 3    ? z
                          : nv == 3 ? _mm512_maskz_loadu_ps(last, bp + 32)
                                    : _mm512_loadu_ps(bp + 32);
        const __m512 b3 = nv < 4 ? z : _mm512_maskz_loadu_ps(last, bp + 48);
        CNN_TILE_EACH_ROW(TILE_FMA);
    }
    CNN_TILE_EACH_ROW(TILE_STORE);
}

#define TILE_CALL(nv, gathered)                                                                              \
    gemm_tile(nv, gathered, rows, mr, g->P, r, g->sap, g->po, b, g->ldb, last, ct, g->ldc, g->accumulate)

/* One tile computing `rows` rows (a compile-time constant once inlined), in the variant for (nv, gathered). A
 * block's short last tile computes 4 or 2 rows where that covers mr: at VGG16's deep layers (GEMMs of 100 or
 * 128 rows) two or four of the last tile's six rows would be computed for nothing, 2-3% of the work. Each
 * stored element adds the same products in the same order: the bits do not change. */
static inline __attribute__((always_inline)) void tile(int rows, const cnn_gemm_args *g, int nv, int mr,
                                                       const float *const *r, const float *b, __mmask16 last,
                                                       float *ct)
{
    switch (nv + 4 * (g->po != NULL)) {
    case 1:
        TILE_CALL(1, 0);
        break;
    case 2:
        TILE_CALL(2, 0);
        break;
    case 3:
        TILE_CALL(3, 0);
        break;
    case 4:
        TILE_CALL(4, 0);
        break;
    case 5:
        TILE_CALL(1, 1);
        break;
    case 6:
        TILE_CALL(2, 1);
        break;
    case 7:
        TILE_CALL(3, 1);
        break;
    default:
        TILE_CALL(4, 1);
        break;
    }
}

/* All tiles of one p block: panels of 64 columns (B's panel stays in cache), 6 rows at a time. */
void cnn_gemm_block_avx512(const cnn_gemm_args *g)
{
    for (int j0 = 0; j0 < g->N; j0 += NR) {
        const int w = g->N - j0 < NR ? g->N - j0 : NR, nv = (w + 15) / 16;
        const __mmask16 last = (__mmask16)(0xffffu >> (16 * nv - w));
        const float *b = g->b + j0;
        for (int i0 = 0; i0 < g->M; i0 += MR) {
            const int mr = g->M - i0 < MR ? g->M - i0 : MR;
            const float *r[MR];
            cnn_gemm_tile_rows(g, i0, mr, r);
            float *ct = g->c + (long)i0 * g->ldc + j0;
            if (mr > 4)
                tile(MR, g, nv, mr, r, b, last, ct);
            else if (mr > 2)
                tile(4, g, nv, mr, r, b, last, ct);
            else
                tile(2, g, nv, mr, r, b, last, ct);
        }
    }
}

float cnn_peak_avx512(long steps)
{
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
    /* different starting values: equal chains would be computed once (they were: one FMA a round) */
    __m512 v0 = _mm512_set1_ps(1e-3f), v1 = _mm512_set1_ps(2e-3f), v2 = _mm512_set1_ps(3e-3f),
           v3 = _mm512_set1_ps(4e-3f);
    __m512 v4 = _mm512_set1_ps(5e-3f), v5 = _mm512_set1_ps(6e-3f), v6 = _mm512_set1_ps(7e-3f),
           v7 = _mm512_set1_ps(8e-3f);
    __m512 v8 = _mm512_set1_ps(9e-3f), v9 = _mm512_set1_ps(1e-2f), v10 = _mm512_set1_ps(1.1e-2f),
           v11 = _mm512_set1_ps(1.2e-2f);
    for (long s = 0; s < steps; s++) CNN_PEAK_STEP(_mm512_fmadd_ps);
    const __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v0, v1), _mm512_add_ps(v2, v3)),
                                   _mm512_add_ps(_mm512_add_ps(v4, v5), _mm512_add_ps(v6, v7)));
    return _mm512_reduce_add_ps(
        _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(v8, v9), _mm512_add_ps(v10, v11))));
}
