/* The GEMM kernels; see gemm.h. */
#include "kernels/gemm.h"

#include <cblas.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>

enum { MR = 6, NR = 64, KC = 512 }; /* tile rows, tile columns (4 vectors), p block */

/* One tile: rows [0, mr) x vectors [0, nv) of C (the last vector masked by last), over p in [0, P). Row i of
 * A starts at r[i]; its p-th value is r[i][p * sap], or r[i][po[p]] when gathered through a table. Missing
 * rows of a short tile repeat a real row and are not stored. Inlined per (nv, gathered); the 24 accumulators
 * are named variables (an array of them is kept in memory by the compiler, which halves the speed). */
#define TILE_FMA(i)                                                                                          \
    do {                                                                                                     \
        const __m512 x = _mm512_set1_ps(a##i[q]);                                                            \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                           \
        if (nv > 1) c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                               \
        if (nv > 2) c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);                                               \
        if (nv > 3) c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);                                               \
    } while (0)
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

typedef struct gemm_args {
    int M, N, P;
    const float *a;
    long sai, sap; /* strided A */
    const int *ri; /* gathered A: row offsets (NULL: strided) */
    const int *po; /* gathered A: p offsets */
    const float *b;
    long ldb;
    float *c;
    long ldc;
    int accumulate;
} gemm_args;

static inline __attribute__((always_inline)) void gemm_tile(int nv, int gathered, int mr, int P,
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
        TILE_FMA(0);
        TILE_FMA(1);
        TILE_FMA(2);
        TILE_FMA(3);
        TILE_FMA(4);
        TILE_FMA(5);
    }
    TILE_STORE(0);
    TILE_STORE(1);
    TILE_STORE(2);
    TILE_STORE(3);
    TILE_STORE(4);
    TILE_STORE(5);
}

#define TILE_CALL(nv, gathered)                                                                              \
    gemm_tile(nv, gathered, mr, g->P, r, g->sap, g->po, b, g->ldb, last, ct, g->ldc, g->accumulate)

/* All tiles of one p block: panels of 64 columns (B's panel stays in cache), 6 rows at a time. */
static void gemm_block(const gemm_args *g)
{
    for (int j0 = 0; j0 < g->N; j0 += NR) {
        const int w = g->N - j0 < NR ? g->N - j0 : NR, nv = (w + 15) / 16;
        const __mmask16 last = (__mmask16)(0xffffu >> (16 * nv - w));
        const float *b = g->b + j0;
        for (int i0 = 0; i0 < g->M; i0 += MR) {
            const int mr = g->M - i0 < MR ? g->M - i0 : MR;
            const float *r[MR];
            for (int i = 0; i < MR; i++) {
                const int row = i0 + (i < mr ? i : mr - 1);
                r[i] = g->a + (g->ri ? g->ri[row] : row * g->sai);
            }
            float *ct = g->c + (long)i0 * g->ldc + j0;
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
    }
}

/* p in even blocks of at most KC, so that a block of B (KC x 64) stays in L2 across all row tiles. */
static void gemm_run(gemm_args g)
{
    const int P = g.P, blocks = (P + KC - 1) / KC, kc = blocks ? (P + blocks - 1) / blocks : 0;
    if (P == 0 && !g.accumulate)
        for (int i = 0; i < g.M; i++) memset(g.c + (long)i * g.ldc, 0, sizeof(float) * (size_t)g.N);
    const float *a = g.a, *b = g.b;
    const int *po = g.po;
    const int accumulate = g.accumulate;
    for (int p0 = 0; p0 < P; p0 += kc) {
        g.P = P - p0 < kc ? P - p0 : kc;
        g.a = po ? a : a + p0 * g.sap;
        g.po = po ? po + p0 : NULL;
        g.b = b + p0 * g.ldb;
        g.accumulate = accumulate || p0 > 0;
        gemm_block(&g);
    }
}

void cnn_gemm(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb, float *c,
              long ldc, int accumulate)
{
    gemm_run((gemm_args){M, N, P, a, sai, sap, NULL, NULL, b, ldb, c, ldc, accumulate});
}

void cnn_gemm_gather(int M, int N, int P, const float *a, const int *ri, const int *po, const float *b,
                     long ldb, float *c, long ldc, int accumulate)
{
    gemm_run((gemm_args){M, N, P, a, 0, 0, ri, po, b, ldb, c, ldc, accumulate});
}

int cnn_gemm_gathers(void)
{
    return 1;
}

#else

void cnn_gemm(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb, float *c,
              long ldc, int accumulate)
{
    /* A is (M x P) with rows sai apart, or transposed: (P x M) with rows sap apart. A leading dimension only
     * matters between rows, so with a single row it is any value BLAS accepts. */
    const int trans = sap != 1;
    long lda = trans ? sap : sai;
    if (trans ? P == 1 : M == 1) lda = trans ? (M > 1 ? M : 1) : (P > 1 ? P : 1);
    cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, P, 1.0f, a, (int)lda, b,
                (int)ldb, accumulate ? 1.0f : 0.0f, c, (int)ldc);
}

/* Plain loops: correct everywhere, fast nowhere; Conv2D lowers with im2col instead when this returns 0. */
void cnn_gemm_gather(int M, int N, int P, const float *a, const int *ri, const int *po, const float *b,
                     long ldb, float *c, long ldc, int accumulate)
{
    for (int i = 0; i < M; i++) {
        float *ci = c + (long)i * ldc;
        if (!accumulate) memset(ci, 0, sizeof(float) * (size_t)N);
        for (int p = 0; p < P; p++) {
            const float av = a[ri[i] + po[p]], *bp = b + (long)p * ldb;
            for (int j = 0; j < N; j++) ci[j] += av * bp[j];
        }
    }
}

int cnn_gemm_gathers(void)
{
    return 0;
}

#endif

int cnn_gemm_nests(void)
{
#if defined(__AVX512F__)
    return 1;
#else
    static int nests = -1;
    if (nests < 0) nests = openblas_get_parallel() == 2;
    return nests;
#endif
}

/* Below this many multiply-adds a parallel region costs more than it saves; a block of rows should be at
 * least a few microseconds of work. At Model_1's shapes (batch 512) blocks of 6 to 96 rows all ran within a
 * few percent of each other on 2 threads. */
enum { PARALLEL_MIN_MACS = 1 << 18, BLOCK_ROWS = 24, BLOCK_MIN_MACS = 1 << 16, BLOCK_MAX_ROWS = 1 << 24 };

int cnn_gemm_block_rows(int N, int P)
{
    const double per_row = (double)N * P;
    if (per_row * BLOCK_ROWS >= BLOCK_MIN_MACS) return BLOCK_ROWS;
    const double need = per_row > 0 ? BLOCK_MIN_MACS / per_row : BLOCK_MIN_MACS;
    const int rows = need < BLOCK_MAX_ROWS ? (int)need : BLOCK_MAX_ROWS;
    return (rows + 5) / 6 * 6;
}

void cnn_gemm_parallel(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb,
                       float *c, long ldc, int accumulate, cnn_gemm_rows_fn after, void *arg)
{
    const int rows = cnn_gemm_block_rows(N, P), blocks = (int)(((long)M + rows - 1) / rows);
    const int wide = blocks > 1 && (double)M * N * P >= PARALLEL_MIN_MACS;
#if defined(__AVX512F__)
    /* Dynamic: a thread that loses its core to another process does not hold the others back, and which
     * thread computes a block changes nothing in it. */
#pragma omp parallel for schedule(dynamic) if (wide)
    for (int k = 0; k < blocks; k++) {
        const long i0 = (long)k * rows;
        const int m = M - i0 < rows ? (int)(M - i0) : rows;
        cnn_gemm(m, N, P, a + i0 * sai, sai, sap, b, ldb, c + i0 * ldc, ldc, accumulate);
        if (after) after(arg, (int)i0, m);
    }
#else
    cnn_gemm(M, N, P, a, sai, sap, b, ldb, c, ldc, accumulate);
    if (!after) return;
#pragma omp parallel for schedule(static) if (wide)
    for (int k = 0; k < blocks; k++) {
        const long i0 = (long)k * rows;
        after(arg, (int)i0, M - i0 < rows ? (int)(M - i0) : rows);
    }
#endif
}

int cnn_gemm_parallel_exact(void)
{
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}
