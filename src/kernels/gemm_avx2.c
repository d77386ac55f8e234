/* The AVX2 + FMA GEMM kernel (compiled with the Makefile's ISA_AVX2 flags; run only where kernels/isa.h finds
 * AVX2 and FMA): the AVX-512 kernel's scheme in 256-bit vectors. A tile is 6 rows x 16 columns: 12
 * accumulators, two vectors of B and one broadcast of A take 15 of the 16 registers, and each step of p does
 * 12 multiply-adds for 8 loads. A is read in place (strided or gathered). B's 16-column panel is copied into
 * a contiguous block first: read in place, its rows lie N floats apart, and at N = 256 the whole panel falls
 * into 4 of the L1 cache's 64 sets (512x256x784 on one Zen 4 core: 61 GFLOP/s in place, 88 with the copy, of
 * a 114 GFLOP/s FMA peak). The copy also pads a short last panel with zeros, so that only the stores need
 * masks. */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"

enum { MR = CNN_GEMM_MR, NR = 16 }; /* tile rows, tile columns (2 vectors) */

/* MASKS + 8 - k: a mask of the first k lanes. */
static const int MASKS[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* One step of p for row i of the tile. The accumulators are named variables: an array of them would be kept
 * in memory. */
#define TILE_FMA(i)                                                                                          \
    do {                                                                                                     \
        if ((i) >= rows) break;                                                                              \
        const __m256 x = _mm256_broadcast_ss(a##i + q);                                                      \
        c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                                                           \
        if (nv > 1) c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                                               \
    } while (0)
/* Vector j of row i to C (added to it when accumulating); masked when it is the panel's partial last one. */
#define TILE_STORE1(i, j)                                                                                    \
    do {                                                                                                     \
        float *cp = c + (i)*ldc + 8 * (j);                                                                   \
        if (tail && (j) == nv - 1) {                                                                         \
            if (accumulate) c##i##j = _mm256_add_ps(c##i##j, _mm256_maskload_ps(cp, mask));                  \
            _mm256_maskstore_ps(cp, mask, c##i##j);                                                          \
        } else {                                                                                             \
            if (accumulate) c##i##j = _mm256_add_ps(c##i##j, _mm256_loadu_ps(cp));                           \
            _mm256_storeu_ps(cp, c##i##j);                                                                   \
        }                                                                                                    \
    } while (0)
#define TILE_STORE(i)                                                                                        \
    do {                                                                                                     \
        if (i < mr) {                                                                                        \
            TILE_STORE1(i, 0);                                                                               \
            if (nv > 1) TILE_STORE1(i, 1);                                                                   \
        }                                                                                                    \
    } while (0)

/* One tile: rows [0, mr) x vectors [0, nv) of C, the last one partial (lanes in mask) when tail, over p in
 * [0, P), B from the packed panel (NR floats a row). Row i of A starts at r[i]; its p-th value is
 * r[i][p * sap], or r[i][po[p]] when gathered. Only the first `rows` rows (at least mr) are computed. Inlined
 * per (nv, tail, gathered, rows). */
static inline __attribute__((always_inline)) void gemm_tile(int nv, int tail, int gathered, int rows, int mr,
                                                            int P, const float *const *r, long sap,
                                                            const int *po, const float *b, __m256i mask,
                                                            float *c, long ldc, int accumulate)
{
    const __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
           c51 = z;
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (long p = 0, o = 0; p < P; p++, o += sap) {
        const long q = gathered ? po[p] : o;
        const __m256 b0 = _mm256_load_ps(b + p * NR), b1 = nv > 1 ? _mm256_load_ps(b + p * NR + 8) : z;
        CNN_TILE_EACH_ROW(TILE_FMA);
    }
    CNN_TILE_EACH_ROW(TILE_STORE);
}

#define TILE_CALL(nv, tail, gathered)                                                                        \
    gemm_tile(nv, tail, gathered, rows, mr, g->P, r, g->sap, g->po, panel, mask, ct, g->ldc, g->accumulate)

/* One tile computing `rows` rows (a compile-time constant once inlined), in the variant for (nv, tail,
 * gathered): 6, or 4 or 2 for a block's short last tile where that covers mr (as in gemm_avx512.c: the same
 * bits, less work on GEMMs of few rows). */
static inline __attribute__((always_inline)) void tile(int rows, const cnn_gemm_args *g, int nv, int tail,
                                                       int mr, const float *const *r, const float *panel,
                                                       __m256i mask, float *ct)
{
    switch (nv - 1 + 2 * tail + 4 * (g->po != NULL)) {
    case 0:
        TILE_CALL(1, 0, 0);
        break;
    case 1:
        TILE_CALL(2, 0, 0);
        break;
    case 2:
        TILE_CALL(1, 1, 0);
        break;
    case 3:
        TILE_CALL(2, 1, 0);
        break;
    case 4:
        TILE_CALL(1, 0, 1);
        break;
    case 5:
        TILE_CALL(2, 0, 1);
        break;
    case 6:
        TILE_CALL(1, 1, 1);
        break;
    default:
        TILE_CALL(2, 1, 1);
        break;
    }
}

/* panel (P x NR) <- columns [j0, j0 + w) of B, zeros after them. */
static void pack_panel(const cnn_gemm_args *g, int j0, int w, float *panel)
{
    for (int p = 0; p < g->P; p++) {
        const float *bp = g->b + p * g->ldb + j0;
        float *o = panel + p * NR;
        if (w == NR) {
            _mm256_store_ps(o, _mm256_loadu_ps(bp));
            _mm256_store_ps(o + 8, _mm256_loadu_ps(bp + 8));
            continue;
        }
        for (int j = 0; j < NR; j++) o[j] = j < w ? bp[j] : 0.0f;
    }
}

/* All tiles of one p block: panels of 16 columns (packed, in L1), 6 rows at a time. */
void cnn_gemm_block_avx2(const cnn_gemm_args *g)
{
    _Alignas(32) float panel[CNN_GEMM_KC * NR];
    for (int j0 = 0; j0 < g->N; j0 += NR) {
        const int w = g->N - j0 < NR ? g->N - j0 : NR, nv = (w + 7) / 8, tail = w % 8 != 0;
        const __m256i mask = _mm256_loadu_si256((const __m256i *)(MASKS + 8 - w % 8));
        pack_panel(g, j0, w, panel);
        for (int i0 = 0; i0 < g->M; i0 += MR) {
            const int mr = g->M - i0 < MR ? g->M - i0 : MR;
            const float *r[MR];
            cnn_gemm_tile_rows(g, i0, mr, r);
            float *ct = g->c + (long)i0 * g->ldc + j0;
            if (mr > 4)
                tile(MR, g, nv, tail, mr, r, panel, mask, ct);
            else if (mr > 2)
                tile(4, g, nv, tail, mr, r, panel, mask, ct);
            else
                tile(2, g, nv, tail, mr, r, panel, mask, ct);
        }
    }
}

float cnn_peak_avx2(long steps)
{
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
    /* different starting values: equal chains would be computed once (they were: one FMA a round) */
    __m256 v0 = _mm256_set1_ps(1e-3f), v1 = _mm256_set1_ps(2e-3f), v2 = _mm256_set1_ps(3e-3f),
           v3 = _mm256_set1_ps(4e-3f);
    __m256 v4 = _mm256_set1_ps(5e-3f), v5 = _mm256_set1_ps(6e-3f), v6 = _mm256_set1_ps(7e-3f),
           v7 = _mm256_set1_ps(8e-3f);
    __m256 v8 = _mm256_set1_ps(9e-3f), v9 = _mm256_set1_ps(1e-2f), v10 = _mm256_set1_ps(1.1e-2f),
           v11 = _mm256_set1_ps(1.2e-2f);
    for (long s = 0; s < steps; s++) CNN_PEAK_STEP(_mm256_fmadd_ps);
    const __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)),
                                   _mm256_add_ps(_mm256_add_ps(v4, v5), _mm256_add_ps(v6, v7)));
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(t, _mm256_add_ps(_mm256_add_ps(v8, v9), _mm256_add_ps(v10, v11))));
    return out[0];
}
