/* What the GEMM driver (gemm.c) hands to the kernel of each instruction-set path (gemm_avx512.c, gemm_avx2.c,
 * gemm_generic.c, each compiled with its own target flags; kernels/isa.h chooses one). Internal to
 * src/kernels. */
#ifndef CNN_KERNELS_GEMM_KERNELS_H
#define CNN_KERNELS_GEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Rows per tile of every kernel (cnn_gemm_block_rows gives whole tiles), and the most p values the driver
 * hands to a kernel at once. */
enum { CNN_GEMM_MR = 6, CNN_GEMM_KC = 512 };

/* One block of the GEMM of gemm.h: C (M x N) (+)= sum over p < P of A_p B_p^T, with P at most the driver's p
 * block, so that the kernels never split p themselves. A is strided (ri NULL: A_p[i] = a[i*sai + p*sap]) or
 * gathered (A_p[i] = a[ri[i] + po[p]]). Every kernel sums each element's P products in ascending p into a
 * zeroed accumulator and then stores it, or adds it to C when accumulate: the order is the same on every path
 * and independent of where the element lies in a tile. */
typedef struct cnn_gemm_args {
    int M, N, P;
    const float *a;
    long sai, sap;
    const int *ri, *po;
    const float *b;
    long ldb;
    float *c;
    long ldc;
    int accumulate;
    /* The BF16 kernel only: A's values already rounded to BF16, read as a would be (a unused); and where not
     * NULL, the pair image of a16 (cnn_bf16_pair_image: pairs[o] holds the values at o and o + pair_step),
     * which the tiles read in place where each pair of p lies pair_step apart through the tables. */
    const uint16_t *a16;
    const uint32_t *pairs;
    long pair_step;
    /* The BF16 kernel only: where not NULL, B already rounded and paired (cnn_bf16_pack_b's layout; b
     * unused). */
    const uint32_t *b16;
} cnn_gemm_args;

/* The start of A's rows i0 .. i0 + CNN_GEMM_MR - 1 (rows past mr repeat the last real one: a short tile
 * computes them and does not store them). */
static inline void cnn_gemm_tile_rows(const cnn_gemm_args *g, int i0, int mr, const float **r)
{
    for (int i = 0; i < CNN_GEMM_MR; i++) {
        const int row = i0 + (i < mr ? i : mr - 1);
        r[i] = g->a + (g->ri ? g->ri[row] : row * g->sai);
    }
}

void cnn_gemm_block_avx512(const cnn_gemm_args *g);
void cnn_gemm_block_avx2(const cnn_gemm_args *g);
void cnn_gemm_block_generic(const cnn_gemm_args *g);

/* The peak microbenchmark: `steps` rounds of CNN_PEAK_CHAINS independent multiply-adds on full vectors (as
 * many as keep every FMA unit busy through its latency), nothing else. Returns a value of the result, so that
 * the work cannot be dropped. Each round is CNN_PEAK_CHAINS * 2 * (lanes of the path's vector) FLOP. */
enum { CNN_PEAK_CHAINS = 12 };
/* One round of the peak loop over accumulators v0 .. v11: v = f(v, x, y). */
#define CNN_PEAK_STEP(f)                                                                                     \
    do {                                                                                                     \
        v0 = f(v0, x, y), v1 = f(v1, x, y), v2 = f(v2, x, y), v3 = f(v3, x, y), v4 = f(v4, x, y);            \
        v5 = f(v5, x, y), v6 = f(v6, x, y), v7 = f(v7, x, y), v8 = f(v8, x, y), v9 = f(v9, x, y);            \
        v10 = f(v10, x, y), v11 = f(v11, x, y);                                                              \
    } while (0)

/* step(i) for each row i of a tile (the accumulators are named variables per row: an array of them would be
 * kept in memory). */
#define CNN_TILE_EACH_ROW(step)                                                                              \
    do {                                                                                                     \
        step(0);                                                                                             \
        step(1);                                                                                             \
        step(2);                                                                                             \
        step(3);                                                                                             \
        step(4);                                                                                             \
        step(5);                                                                                             \
    } while (0)
float cnn_peak_avx512(long steps);
float cnn_peak_avx2(long steps);
float cnn_peak_generic(long steps);

#endif
