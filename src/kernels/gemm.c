/* The GEMM driver; see gemm.h. The kernels live in one file per instruction-set path (gemm_kernels.h); this
 * file, compiled for the baseline, splits p into blocks and rows into fixed blocks for the threads, and calls
 * the kernel of the path kernels/isa.h chose. */
#include "kernels/gemm.h"

#include <omp.h>
#include <string.h>

#include "cnnlab.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_kernels.h"
#include "kernels/isa.h"

/* The p block: a block of B (KC rows x a kernel's panel) stays in L2 across all row tiles. */
enum { KC = CNN_GEMM_KC };

typedef void (*block_fn)(const cnn_gemm_args *g);
static const block_fn BLOCKS[CNN_ISA_COUNT] = {cnn_gemm_block_generic, cnn_gemm_block_avx2,
                                               cnn_gemm_block_avx512};

/* p in even blocks of at most KC; the first overwrites C (unless accumulating), the others add to it. */
static void gemm_run(cnn_gemm_args g)
{
    const block_fn block = BLOCKS[cnn_isa_current()];
    const int P = g.P, blocks = (P + KC - 1) / KC, kc = blocks ? (P + blocks - 1) / blocks : 0;
    if (P == 0 && !g.accumulate)
        for (int i = 0; i < g.M; i++) memset(g.c + (long)i * g.ldc, 0, sizeof(float) * (size_t)g.N);
    if (cnn_gemm_bf16_on()) { /* --precision bf16: it splits p itself (pairs) */
        if (P) cnn_gemm_bf16_avx512(&g);
        return;
    }
    const float *a = g.a, *b = g.b;
    const int *po = g.po;
    const int accumulate = g.accumulate;
    for (int p0 = 0; p0 < P; p0 += kc) {
        g.P = P - p0 < kc ? P - p0 : kc;
        g.a = po ? a : a + p0 * g.sap;
        g.po = po ? po + p0 : NULL;
        g.b = b + p0 * g.ldb;
        g.accumulate = accumulate || p0 > 0;
        block(&g);
    }
}

void cnn_gemm(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb, float *c,
              long ldc, int accumulate)
{
    gemm_run(
        (cnn_gemm_args){M, N, P, a, sai, sap, NULL, NULL, b, ldb, c, ldc, accumulate, NULL, NULL, 0, NULL});
}

void cnn_gemm_gather(int M, int N, int P, const float *a, const int *ri, const int *po, const float *b,
                     long ldb, float *c, long ldc, int accumulate)
{
    gemm_run((cnn_gemm_args){M, N, P, a, 0, 0, ri, po, b, ldb, c, ldc, accumulate, NULL, NULL, 0, NULL});
}

enum { PANEL = CNN_GEMM_PANEL, PACK_ROWS = 256 };

void cnn_gemm_pack_b(int P, int N, const float *b, long ldb, float *packed)
{
    const int panels = (N + PANEL - 1) / PANEL, slabs = (P + PACK_ROWS - 1) / PACK_ROWS;
    /* Pure copies: any split of the work gives the same bytes. */
#pragma omp parallel for schedule(static) if ((long)P * N > 65536)
    for (int k = 0; k < panels * slabs; k++) {
        const int j0 = k / slabs * PANEL, p0 = k % slabs * PACK_ROWS, w = N - j0 < PANEL ? N - j0 : PANEL;
        const int p1 = P - p0 < PACK_ROWS ? P : p0 + PACK_ROWS;
        for (int p = p0; p < p1; p++)
            memcpy(packed + cnn_gemm_packed_at(P, p, j0), b + p * ldb + j0, sizeof(float) * (size_t)w);
    }
}

void cnn_gemm_gather_bf16(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                          const float *b, long ldb, float *c, long ldc, int accumulate)
{
    gemm_run((cnn_gemm_args){M, N, P, NULL, 0, 0, ri, po, b, ldb, c, ldc, accumulate, a->a16, a->pairs,
                             a->pair_step, NULL});
}

/* One panel at a time, each with every p block: an element's p blocks still run in ascending order, so the
 * bits are those of cnn_gemm_gather. A is FP32 (a) or BF16 (a16 not NULL). */
static void gather_packed(int M, int N, int P, const float *a, const cnn_bf16_images *a16, const int *ri,
                          const int *po, const float *packed, float *c, long ldc, int accumulate)
{
    const cnn_bf16_images none = {NULL, NULL, 0}, *h = a16 ? a16 : &none;
    for (int j0 = 0; j0 < N; j0 += PANEL)
        gemm_run((cnn_gemm_args){M, N - j0 < PANEL ? N - j0 : PANEL, P, a, 0, 0, ri, po,
                                 packed + (size_t)j0 * P, PANEL, c + j0, ldc, accumulate, h->a16, h->pairs,
                                 h->pair_step, NULL});
}

void cnn_gemm_gather_packed(int M, int N, int P, const float *a, const int *ri, const int *po,
                            const float *packed, float *c, long ldc, int accumulate)
{
    gather_packed(M, N, P, a, NULL, ri, po, packed, c, ldc, accumulate);
}

void cnn_gemm_gather_packed_bf16(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                                 const float *packed, float *c, long ldc, int accumulate)
{
    gather_packed(M, N, P, NULL, a, ri, po, packed, c, ldc, accumulate);
}

void cnn_gemm_gather_bf16_paired(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                                 const uint32_t *b16, float *c, long ldc, int accumulate)
{
    gemm_run((cnn_gemm_args){M, N, P, NULL, 0, 0, ri, po, NULL, 0, c, ldc, accumulate, a->a16, a->pairs,
                             a->pair_step, b16});
}

/* Below this many multiply-adds a parallel region costs more than it saves; a block of rows should be at
 * least a few microseconds of work. At Model_1's shapes (batch 512) blocks of 6 to 96 rows all ran within a
 * few percent of each other on 2 threads. */
enum { PARALLEL_MIN_MACS = 1 << 18, BLOCK_ROWS = 24, BLOCK_MIN_MACS = 1 << 16, BLOCK_MAX_ROWS = 1 << 24 };
enum { BF16_BLOCK_ROWS = 96 };

int cnn_gemm_block_rows(int N, int P)
{
    const double per_row = (double)N * P;
    /* The BF16 kernel packs all of B once per call: 96 rows keep that near 5% of the work (its results do
     * not depend on the blocks either). */
    if (cnn_gemm_bf16_on() && per_row * BF16_BLOCK_ROWS >= BLOCK_MIN_MACS) return BF16_BLOCK_ROWS;
    if (per_row * BLOCK_ROWS >= BLOCK_MIN_MACS) return BLOCK_ROWS;
    const double need = per_row > 0 ? BLOCK_MIN_MACS / per_row : BLOCK_MIN_MACS;
    const int rows = need < BLOCK_MAX_ROWS ? (int)need : BLOCK_MAX_ROWS;
    return (rows + CNN_GEMM_MR - 1) / CNN_GEMM_MR * CNN_GEMM_MR;
}

void cnn_gemm_parallel(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb,
                       float *c, long ldc, int accumulate, cnn_gemm_rows_fn after, void *arg)
{
    const int rows = cnn_gemm_block_rows(N, P), blocks = (int)(((long)M + rows - 1) / rows);
    const int wide = blocks > 1 && (double)M * N * P >= PARALLEL_MIN_MACS;
    /* Dynamic: a thread that loses its core to another process does not hold the others back, and which
     * thread computes a block changes nothing in it. */
#pragma omp parallel for schedule(dynamic) if (wide)
    for (int k = 0; k < blocks; k++) {
        const long i0 = (long)k * rows;
        const int m = M - i0 < rows ? (int)(M - i0) : rows;
        cnn_gemm(m, N, P, a + i0 * sai, sai, sap, b, ldb, c + i0 * ldc, ldc, accumulate);
        if (after) after(arg, (int)i0, m);
    }
}

enum { SUM_BLOCK = 16 };

void cnn_column_sums(const float *dy, float *db, size_t rows, int cols)
{
    const int blocks = (cols + SUM_BLOCK - 1) / SUM_BLOCK;
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
    for (int bk = 0; bk < blocks; bk++) {
        const int j0 = bk * SUM_BLOCK, w = cols - j0 < SUM_BLOCK ? cols - j0 : SUM_BLOCK;
        float acc[SUM_BLOCK] = {0};
        for (size_t r = 0; r < rows; r++) {
            const float *d = dy + r * cols + j0;
            for (int j = 0; j < w; j++) acc[j] += d[j];
        }
        memcpy(db + j0, acc, sizeof(float) * (size_t)w);
    }
}

/* Rounds of the peak loop per measurement: about 30 ms on one Zen 4 core. */
enum { PEAK_STEPS = 1 << 23, PEAK_REPEATS = 3 };

typedef float (*peak_fn)(long steps);

/* Best of PEAK_REPEATS runs of `peak` on every thread; a round is flop_per_round FLOP. */
static double peak_gflops(peak_fn peak, double flop_per_round)
{
    double best = 0.0;
    for (int r = 0; r < PEAK_REPEATS; r++) {
        volatile float sink = 0.0f;
        int threads = 1;
        const double t0 = omp_get_wtime();
#pragma omp parallel
        {
#pragma omp single
            threads = omp_get_num_threads();
            const float v = peak(PEAK_STEPS);
#pragma omp critical
            sink += v;
        }
        const double t = omp_get_wtime() - t0;
        const double rate = (double)threads * PEAK_STEPS * flop_per_round / t * 1e-9;
        if (rate > best) best = rate;
    }
    return best;
}

double cnn_fma_peak_gflops(void)
{
    static const peak_fn PEAKS[CNN_ISA_COUNT] = {cnn_peak_generic, cnn_peak_avx2, cnn_peak_avx512};
    static const int LANES[CNN_ISA_COUNT] = {2, 8, 16};
    const cnn_isa isa = cnn_isa_current();
    return peak_gflops(PEAKS[isa], CNN_PEAK_CHAINS * 2.0 * LANES[isa]);
}

double cnn_bf16_peak_gflops(void)
{
    /* vdpbf16ps: 16 lanes, each two multiply-adds; only where precision bf16 can run (cnn_bf16_check) */
    const int runs = cnn_bf16_supported() && cnn_isa_current() == CNN_ISA_AVX512;
    return runs ? peak_gflops(cnn_peak_bf16_avx512, CNN_PEAK_CHAINS * 2.0 * 32) : 0.0;
}
