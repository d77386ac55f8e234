/* The portable GEMM kernel: plain C for any CPU (compiled for the library's baseline), and the reference the
 * tests hold the vector kernels to. Tiles of 6 rows x 8 columns, whose 48 accumulators fit the 16 SSE
 * registers of x86-64 (the compiler vectorises the loops over the 8 columns); each product is rounded before
 * it is added, where the vector kernels fuse the two. */
#include "kernels/gemm_kernels.h"

enum { MR = CNN_GEMM_MR, NR = 8 }; /* tile rows, tile columns */

/* One tile: rows [0, mr) x columns [0, w) of C over p in [0, P), row i of A from r[i] (its p-th value at
 * r[i][p * sap], or r[i][po[p]] when gathered). Inlined for full panels (w == NR) and for the last one. */
static inline __attribute__((always_inline)) void gemm_tile(int w, int gathered, int mr, int P,
                                                            const float *const *r, long sap, const int *po,
                                                            const float *b, long ldb, float *c, long ldc,
                                                            int accumulate)
{
    float acc[MR][NR] = {{0}};
    for (long p = 0, o = 0; p < P; p++, o += sap) {
        const long q = gathered ? po[p] : o;
        const float *bp = b + p * ldb;
        float bv[NR];
        for (int j = 0; j < NR; j++) bv[j] = j < w ? bp[j] : 0.0f;
        for (int i = 0; i < MR; i++) {
            const float x = r[i][q];
            for (int j = 0; j < NR; j++) acc[i][j] += x * bv[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int j = 0; j < w; j++) ci[j] = accumulate ? acc[i][j] + ci[j] : acc[i][j];
    }
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
