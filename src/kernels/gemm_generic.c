/* The portable GEMM kernel: C for any CPU (compiled for the library's baseline), and the reference the tests
 * hold the vector kernels to. Tiles of 6 rows x 8 columns in GNU C vectors of 4 floats (SSE on x86-64, the
 * native vectors elsewhere): 12 accumulators, two vectors of B and a broadcast fit the 16 registers. Plain
 * arrays of accumulators were kept in memory by the compiler (half the speed). Each product is
 * rounded before it is added, where the AVX kernels fuse the two. */
#include <string.h>

#include "kernels/gemm_kernels.h"

enum { MR = CNN_GEMM_MR, NR = 8 }; /* tile rows, tile columns */

typedef float vec4 __attribute__((vector_size(16)));

static inline vec4 load4(const float *p)
{
    vec4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

#define TILE_STEP(i)                                                                                         \
    do {                                                                                                     \
        const float s = a##i[q];                                                                             \
        const vec4 x = {s, s, s, s};                                                                         \
        c##i##0 += x * b0;                                                                                   \
        c##i##1 += x * b1;                                                                                   \
    } while (0)
#define TILE_STORE(i)                                                                                        \
    do {                                                                                                     \
        if (i < mr) {                                                                                        \
            float out[NR];                                                                                   \
            memcpy(out, &c##i##0, sizeof c##i##0);                                                           \
            memcpy(out + 4, &c##i##1, sizeof c##i##1);                                                       \
            float *ci = c + (i)*ldc;                                                                         \
            for (int j = 0; j < w; j++) ci[j] = accumulate ? out[j] + ci[j] : out[j];                        \
        }                                                                                                    \
    } while (0)

/* One tile: rows [0, mr) x columns [0, w) of C over p in [0, P), row i of A from r[i] (its p-th value at
 * r[i][p * sap], or r[i][po[p]] when gathered). Inlined for full panels (w == NR) and for the last one,
 * whose missing columns of B read as zeros. */
static inline __attribute__((always_inline)) void gemm_tile(int w, int gathered, int mr, int P,
                                                            const float *const *r, long sap, const int *po,
                                                            const float *b, long ldb, float *c, long ldc,
                                                            int accumulate)
{
    const vec4 z = {0, 0, 0, 0};
    vec4 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
         c51 = z;
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (long p = 0, o = 0; p < P; p++, o += sap) {
        const long q = gathered ? po[p] : o;
        const float *bp = b + p * ldb;
        float part[NR] = {0};
        if (w < NR) memcpy(part, bp, sizeof(float) * (size_t)w);
        const vec4 b0 = load4(w < NR ? part : bp), b1 = load4(w < NR ? part + 4 : bp + 4);
        CNN_TILE_EACH_ROW(TILE_STEP);
    }
    CNN_TILE_EACH_ROW(TILE_STORE);
}

/* All tiles of one p block: panels of 8 columns, 6 rows at a time. */
void cnn_gemm_block_generic(const cnn_gemm_args *g)
{
    for (int j0 = 0; j0 < g->N; j0 += NR) {
        const int w = g->N - j0 < NR ? g->N - j0 : NR;
        const float *b = g->b + j0;
        for (int i0 = 0; i0 < g->M; i0 += MR) {
            const int mr = g->M - i0 < MR ? g->M - i0 : MR;
            const float *r[MR];
            cnn_gemm_tile_rows(g, i0, mr, r);
            float *ct = g->c + (long)i0 * g->ldc + j0;
            if (w == NR && g->po)
                gemm_tile(NR, 1, mr, g->P, r, g->sap, g->po, b, g->ldb, ct, g->ldc, g->accumulate);
            else if (w == NR)
                gemm_tile(NR, 0, mr, g->P, r, g->sap, g->po, b, g->ldb, ct, g->ldc, g->accumulate);
            else
                gemm_tile(w, g->po != NULL, mr, g->P, r, g->sap, g->po, b, g->ldb, ct, g->ldc, g->accumulate);
        }
    }
}

/* The portable path's multiply-add: a product rounded, then added. */
#define MUL_ADD(v, a, b) ((v) * (a) + (b))

float cnn_peak_generic(long steps)
{
    const vec4 x = {0.999f, 0.999f, 0.999f, 0.999f}, y = {1e-3f, 1e-3f, 1e-3f, 1e-3f};
    vec4 v0 = y, v1 = y, v2 = y, v3 = y, v4 = y, v5 = y, v6 = y, v7 = y, v8 = y, v9 = y, v10 = y, v11 = y;
    for (long s = 0; s < steps; s++) CNN_PEAK_STEP(MUL_ADD);
    const vec4 t = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11;
    return t[0];
}
