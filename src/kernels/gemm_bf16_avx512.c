/* The BF16 GEMM (kernels/gemm_bf16.h), compiled with the Makefile's ISA_AVX512 flags plus -mavx512bf16 and
 * run only where the CPU has AVX512_BF16. vdpbf16ps multiplies 32 pairs of BF16 values and adds each pair's
 * two products to one FP32 lane: per instruction twice the multiply-adds of an FP32 vfmadd, at the same
 * throughput.
 *
 * It needs its operands as pairs of BF16 values in 32-bit words, (A_2k, A_2k+1) for a row of A and
 * (B_2k[j], B_2k+1[j]) for a column of B, so each call packs them on its stack: panels of B (up to KC values
 * of p x 64 columns, interleaved by pairs) and a block of up to MB rows of A, converted with vcvtneps2bf16
 * (round to nearest even). A convolution's images may come already rounded (cnn_gemm_args.a16, with their
 * pair image): then A is packed from them without rounding, or where its pairs lie side by side (forward's
 * patches over an even channel count) or one pair step apart (the weight gradient's patches^T over
 * neighbouring pixels) not packed at all: the tiles read the words in place through the tables, as the FP32
 * kernel reads its floats. The tile is the FP32 kernel's: 6 rows x 64 columns, 24 FP32 accumulators, one
 * broadcast word of A per row and four words-vectors of B per pair of p. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_bf16.h"
#include "kernels/gemm_kernels.h"
#include "kernels/tile_avx512.h"

/* Tile rows, tile columns, the most p values per block (even: a block holds whole pairs), rows of A packed at
 * once (a multiple of MR; 96 rows keep the repacking of B's panel, once per block of rows where B's panels do
 * not fit the buffer together, near 5% of the work). The packs take 160 KiB of stack. */
enum { MR = CNN_GEMM_MR, NR = 64, KC = CNN_GEMM_KC, KP = KC / 2, MB = 96 };

/* ---------------------------------------------------------------- conversion */

static inline __mmask16 first_n(int n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* Two groups of BF16 x0[j] (low half of x) and x1[j] (high half) as 16 words (x0[j], x1[j]). */
static inline __m512i interleave16(__m512i x)
{
    const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                         22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(mix, x);
}

/* x0[j], x1[j] (j < 16), BF16 already, as 16 words (x0[j], x1[j]). */
static inline __m512i pairs16_bf16(__m256i x0, __m256i x1)
{
    return interleave16(_mm512_inserti64x4(_mm512_castsi256_si512(x0), x1, 1));
}

/* x0[j], x1[j] (j < 16) rounded to BF16, as 16 words (x0[j], x1[j]): the pair layout of both operands. */
static inline __m512i pairs16(__m512 x0, __m512 x1)
{
    /* cvtne2ps puts x0 in bf16 lanes 0..15 and x1 in 16..31 */
    return interleave16((__m512i)_mm512_cvtne2ps_pbh(x1, x0));
}

/* 1 when the n ints at t are t[0], t[0] + 1, ...: 16 values read by one vector load. */
static inline int consecutive(const int *t, int n)
{
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __mmask16 m = first_n(n);
    const __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, t), _mm512_set1_epi32(t[0]));
    return _mm512_mask_cmpeq_epi32_mask(m, d, iota) == m;
}

/* How A's values lie in memory along one index (p for a packing by rows, i for one by pairs of p), in
 * groups of 16: runs[r] = 1 when group r is one vector load away, at stride 1. The tables are the same for
 * every row (or pair) of a block, so they are checked once per block. */
enum { GROUPS = (MB > KC ? MB : KC) / 16 };

/* Group r's 16 values (n of them, the rest zero) of A at base offset o along a table t (or stride s where
 * t is NULL); run: the group is adjacent in memory. */
static inline __m512 a_group(const float *a, long o, const int *t, long s, int n, int run)
{
    const __mmask16 m = first_n(n);
    if (run) return _mm512_maskz_loadu_ps(m, a + o + (t ? t[0] : 0));
    float v[16] = {0};
    for (int k = 0; k < n; k++) v[k] = a[o + (t ? t[k] : k * s)];
    return _mm512_loadu_ps(v);
}

/* The same from A already in BF16 (g->a16). */
static inline __m256i a_group16(const uint16_t *a, long o, const int *t, long s, int n, int run)
{
    const uint16_t *at = a + o + (t ? t[0] : 0);
    if (run)
        return n == 16 ? _mm256_loadu_si256((const __m256i *)at) : _mm256_maskz_loadu_epi16(first_n(n), at);
    uint16_t v[16] = {0};
    for (int k = 0; k < n; k++) v[k] = a[o + (t ? t[k] : k * s)];
    return _mm256_loadu_si256((const __m256i *)v);
}

/* A group of 16 values as BF16: rounded here (FP32 A) or as they are (BF16 A, rounded by cnn_bf16_round with
 * the same instruction: the same bits). */
static inline __m256i bf16_group(const cnn_gemm_args *g, long o, const int *t, long s, int n, int run)
{
    if (g->a16) return a_group16(g->a16, o, t, s, n, run);
    return (__m256i)_mm512_cvtneps_pbh(a_group(g->a, o, t, s, n, run));
}

/* The groups at o0 and o1 (zeros where !has1) as 16 pair words, from A in BF16 or rounded here (one
 * conversion for both). */
static inline __m512i pair_group(const cnn_gemm_args *g, long o0, long o1, int has1, const int *t, long s,
                                 int n, int run)
{
    if (!g->a16)
        return pairs16(a_group(g->a, o0, t, s, n, run),
                       has1 ? a_group(g->a, o1, t, s, n, run) : _mm512_setzero_ps());
    const __m256i x0 = a_group16(g->a16, o0, t, s, n, run),
                  x1 = has1 ? a_group16(g->a16, o1, t, s, n, run) : _mm256_setzero_si256();
    return pairs16_bf16(x0, x1);
}

/* Where the tiles read A's words: row i's word k is the 32 bits at row(i) + (wo ? wo[k] : k * sk), counted
 * in BF16 values, with row(i) = base + (ri ? ri[i] << shift : i * si). A block packed on the stack
 * (pack_rows, pack_pairs) has no tables. Where the pairs of p lie side by side in a16 (a convolution's
 * patches over an even number of channels, read by rows) or pair_step apart (read through the pair image of
 * a16: the patches^T of a weight gradient, whose pairs are neighbouring pixels), the tiles read A in place
 * through the row table and a table of the pairs: nothing is packed or rounded per use. */
typedef struct a_view {
    const uint16_t *base;
    const int *ri, *wo;
    long si, sk;
    int shift;
} a_view;

/* A's values run along p in memory (row-major A, or a gather whose p table is made of runs, as the patches
 * of a convolution's forward pass): pack row by row. Else (A read transposed, or the patches^T of a weight
 * gradient) they run along i: pack pair by pair. */
static int pack_by_rows(const cnn_gemm_args *g)
{
    if (!g->ri) return g->sap == 1;
    return g->P < 2 || g->po[1] == g->po[0] + 1;
}

/* runs[] for count values along table t (stride s where NULL). */
static void find_runs(const int *t, long s, int count, int *runs)
{
    for (int r = 0; 16 * r < count; r++) {
        const int n = count - 16 * r < 16 ? count - 16 * r : 16;
        runs[r] = t ? consecutive(t + 16 * r, n) : s == 1;
    }
}

/* Rows i0 .. i0+mb-1 of A, p in [p0, p0 + pc), as BF16 pairs, row by row: 16 values of p make 8 words. */
static a_view pack_rows(const cnn_gemm_args *g, int i0, int mb, int p0, int pc, uint32_t *buf)
{
    const int kp = (pc + 1) / 2;
    const int *po = g->ri ? g->po + p0 : NULL;
    int runs[GROUPS];
    find_runs(po, g->sap, pc, runs);
    for (int i = 0; i < mb; i++) {
        const long o = g->ri ? g->ri[i0 + i] : (long)(i0 + i) * g->sai + (long)p0 * g->sap;
        for (int p = 0, r = 0; p < pc; p += 16, r++) {
            const int n = pc - p < 16 ? pc - p : 16;
            const __m256i w =
                bf16_group(g, o + (po ? 0 : p * g->sap), po ? po + p : NULL, g->sap, n, runs[r]);
            if (n == 16)
                _mm256_storeu_si256((__m256i *)(buf + (long)i * kp + p / 2), w);
            else
                _mm256_mask_storeu_epi32(buf + (long)i * kp + p / 2, (__mmask8)((1u << (n + 1) / 2) - 1), w);
        }
    }
    return (a_view){(const uint16_t *)buf, NULL, NULL, 2L * kp, 2, 0};
}

/* The same pair by pair: the values of 16 rows at p and p + 1 make 16 words. */
static a_view pack_pairs(const cnn_gemm_args *g, int i0, int mb, int p0, int pc, uint32_t *buf)
{
    const int kp = (pc + 1) / 2;
    const int *ri = g->ri ? g->ri + i0 : NULL;
    int runs[GROUPS];
    find_runs(ri, g->sai, mb, runs);
    for (int k = 0; k < kp; k++) {
        const int p = p0 + 2 * k, has1 = 2 * k + 1 < pc;
        const long o0 = ri ? g->po[p] : (long)i0 * g->sai + (long)p * g->sap;
        const long o1 = !has1 ? 0 : ri ? g->po[p + 1] : o0 + g->sap;
        for (int i = 0, r = 0; i < mb; i += 16, r++) {
            const int n = mb - i < 16 ? mb - i : 16;
            const int *t = ri ? ri + i : NULL;
            const long di = ri ? 0 : i * g->sai;
            _mm512_mask_storeu_epi32(buf + (long)k * MB + i, first_n(n),
                                     pair_group(g, o0 + di, o1 + di, has1, t, g->sai, n, runs[r]));
        }
    }
    return (a_view){(const uint16_t *)buf, NULL, NULL, 2, 2L * MB, 0};
}

/* How the tiles read A over p in [p0, p0 + pc) in place, when they can (else pack_rows or pack_pairs): from
 * a16, where every pair of p lies side by side through the tables (A_IN_BF16), or from the pair image, where
 * every pair lies pair_step apart (A_IN_PAIRS). wo <- the pairs' offsets in BF16 values. */
enum { A_PACKED, A_IN_BF16, A_IN_PAIRS };
static int in_place(const cnn_gemm_args *g, int p0, int pc, int *wo)
{
    if (!g->a16 || !g->ri || pc % 2) return A_PACKED;
    const int *po = g->po + p0;
    int adjacent = 1, paired = g->pairs != NULL;
    for (int k = 0; 2 * k < pc; k++) {
        adjacent &= po[2 * k + 1] - po[2 * k] == 1;
        paired &= po[2 * k + 1] - po[2 * k] == g->pair_step;
    }
    const int how = adjacent ? A_IN_BF16 : paired ? A_IN_PAIRS : A_PACKED;
    for (int k = 0; how != A_PACKED && 2 * k < pc; k++) wo[k] = po[2 * k] * (how == A_IN_PAIRS ? 2 : 1);
    return how;
}

static a_view pack_a(const cnn_gemm_args *g, int i0, int mb, int p0, int pc, int how, const int *wo,
                     uint32_t *buf)
{
    if (how == A_IN_BF16) return (a_view){g->a16, g->ri + i0, wo, 0, 0, 0};
    if (how == A_IN_PAIRS) return (a_view){(const uint16_t *)g->pairs, g->ri + i0, wo, 0, 0, 1};
    return pack_by_rows(g) ? pack_rows(g, i0, mb, p0, pc, buf) : pack_pairs(g, i0, mb, p0, pc, buf);
}

void cnn_bf16_pairs(const float *x0, const float *x1, int n, uint32_t *dst)
{
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = first_n(n - j);
        const __m512 v0 = _mm512_maskz_loadu_ps(m, x0 + j);
        const __m512 v1 = x1 ? _mm512_maskz_loadu_ps(m, x1 + j) : _mm512_setzero_ps();
        _mm512_storeu_si512(dst + j, pairs16(v0, v1));
    }
}

/* B's rows p0 .. p0+pc-1, columns j0 .. j0+w-1 (w <= NR), into pair words: word (k, j) at buf[k * NR + j]. */
static void pack_b(const cnn_gemm_args *g, int p0, int pc, int j0, int w, uint32_t *buf)
{
    for (int k = 0; 2 * k < pc; k++) {
        const float *r0 = g->b + (long)(p0 + 2 * k) * g->ldb + j0;
        cnn_bf16_pairs(r0, 2 * k + 1 < pc ? r0 + g->ldb : NULL, w, buf + (long)k * NR);
    }
}

void cnn_bf16_pack_b(int P, int N, const float *b, long ldb, uint32_t *packed)
{
    const cnn_gemm_args g = {.b = b, .ldb = ldb};
    for (int j0 = 0; j0 < N; j0 += NR)
        pack_b(&g, 0, P, j0, N - j0 < NR ? N - j0 : NR, packed + cnn_bf16_packed_at(P, 0, j0));
}

/* ---------------------------------------------------------------- the tile */

/* The 32 bits at p (two BF16 values; any alignment). */
static inline int word_at(const uint16_t *p)
{
    int w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* One tile as in gemm_avx512.c, over kp pair words: rows [0, mr) x vectors [0, nv) of C, the last vector
 * masked by last. Row i's word k is at r[i] + (in_place ? wo[k] : k * sk) (a_view); B's is bp[k * NR + 16 v].
 * Inlined per (nv, in_place). */
#define TILE_DOT(i)                                                                                          \
    do {                                                                                                     \
        const __m512bh x = (__m512bh)_mm512_set1_epi32(word_at(a##i + q));                                   \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, x, b0);                                                          \
        if (nv > 1) c##i##1 = _mm512_dpbf16_ps(c##i##1, x, b1);                                              \
        if (nv > 2) c##i##2 = _mm512_dpbf16_ps(c##i##2, x, b2);                                              \
        if (nv > 3) c##i##3 = _mm512_dpbf16_ps(c##i##3, x, b3);                                              \
    } while (0)
static inline __attribute__((always_inline)) void bf16_tile(int nv, int in_place, int mr, int kp,
                                                            const uint16_t *const *r, const int *wo, long sk,
                                                            const uint32_t *bp, __mmask16 last, float *c,
                                                            long ldc, int accumulate)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z,
           c23 = z, c30 = z, c31 = z, c32 = z, c33 = z, c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z,
           c52 = z, c53 = z;
    const uint16_t *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (long k = 0, o = 0; k < kp; k++, o += sk) {
        const long q = in_place ? wo[k] : o;
        const uint32_t *b = bp + k * NR;
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = (__m512bh)(nv > 1 ? _mm512_loadu_si512(b + 16) : _mm512_setzero_si512());
        const __m512bh b2 = (__m512bh)(nv > 2 ? _mm512_loadu_si512(b + 32) : _mm512_setzero_si512());
        const __m512bh b3 = (__m512bh)(nv > 3 ? _mm512_loadu_si512(b + 48) : _mm512_setzero_si512());
        CNN_TILE_EACH_ROW(TILE_DOT);
    }
    CNN_TILE_EACH_ROW(TILE_STORE);
}

#define BF16_TILE(nv, in_place)                                                                              \
    bf16_tile(nv, in_place, mr, kp, r, av->wo, av->sk, bp, last, ct, ldc, accumulate)

/* The tiles of mb rows of A against one packed panel of w columns. */
static void panel(const a_view *av, int mb, int kp, const uint32_t *bp, int w, float *c, long ldc,
                  int accumulate)
{
    const int nv = (w + 15) / 16;
    const __mmask16 last = (__mmask16)(0xffffu >> (16 * nv - w));
    for (int i0 = 0; i0 < mb; i0 += MR) {
        const int mr = mb - i0 < MR ? mb - i0 : MR;
        const uint16_t *r[MR];
        for (int i = 0; i < MR; i++) {
            const int row = i0 + (i < mr ? i : mr - 1);
            r[i] = av->base + (av->ri ? (long)av->ri[row] << av->shift : row * av->si);
        }
        float *ct = c + (long)i0 * ldc;
        switch (nv + 4 * (av->wo != NULL)) {
        case 1:
            BF16_TILE(1, 0);
            break;
        case 2:
            BF16_TILE(2, 0);
            break;
        case 3:
            BF16_TILE(3, 0);
            break;
        case 4:
            BF16_TILE(4, 0);
            break;
        case 5:
            BF16_TILE(1, 1);
            break;
        case 6:
            BF16_TILE(2, 1);
            break;
        case 7:
            BF16_TILE(3, 1);
            break;
        default:
            BF16_TILE(4, 1);
            break;
        }
    }
}

/* ---------------------------------------------------------------- the driver */

/* One p block: rows in blocks of MB, each packed once (unless read in place) into the start of buf; B's
 * panels after it, all packed once where they fit there together (the input gradient's products: P is the
 * filters, so a block has few pairs), else once per block of rows; or none, read where the caller packed
 * them (g->b16). */
static void p_block(const cnn_gemm_args *g, int p0, int pc, int accumulate, uint32_t *buf)
{
    const int kp = (pc + 1) / 2, panels = (g->N + NR - 1) / NR;
    const int once = !g->b16 && (long)kp * (MB + (long)panels * NR) <= (long)(MB + NR) * KP;
    uint32_t *bbuf = buf + (once ? (long)MB * kp : (long)MB * KP);
    int wo[KP];
    const int how = in_place(g, p0, pc, wo);
    for (int j = 0; once && j < panels; j++)
        pack_b(g, p0, pc, j * NR, g->N - j * NR < NR ? g->N - j * NR : NR, bbuf + (long)j * kp * NR);
    for (int i0 = 0; i0 < g->M; i0 += MB) {
        const int mb = g->M - i0 < MB ? g->M - i0 : MB;
        const a_view av = pack_a(g, i0, mb, p0, pc, how, wo, buf);
        for (int j = 0; j < panels; j++) {
            const int j0 = j * NR, w = g->N - j0 < NR ? g->N - j0 : NR;
            const uint32_t *bp = g->b16 ? g->b16 + cnn_bf16_packed_at(g->P, p0 / 2, j0)
                                 : once ? bbuf + (long)j * kp * NR
                                        : bbuf;
            if (!g->b16 && !once) pack_b(g, p0, pc, j0, w, bbuf);
            panel(&av, mb, kp, bp, w, g->c + (long)i0 * g->ldc + j0, g->ldc, accumulate);
        }
    }
}

void cnn_gemm_bf16_avx512(const cnn_gemm_args *g)
{
    _Alignas(64) uint32_t buf[(MB + NR) * KP];
    const int P = g->P, blocks = (P + KC - 1) / KC;
    const int kc = blocks ? ((P + blocks - 1) / blocks + 1) / 2 * 2 : 0;
    for (int p0 = 0; p0 < P; p0 += kc)
        p_block(g, p0, P - p0 < kc ? P - p0 : kc, g->accumulate || p0 > 0, buf);
}

void cnn_bf16_round(const float *x, size_t n, uint16_t *y)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i == n) return;
    const __mmask16 m = first_n((int)(n - i));
    _mm256_mask_storeu_epi16(y + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
}

void cnn_bf16_pair_image(const uint16_t *a16, size_t n, long step, uint32_t *pairs)
{
    const size_t end = n > (size_t)step ? n - (size_t)step : 0;
    for (size_t o = 0; o < end; o += 16) {
        const int k = end - o < 16 ? (int)(end - o) : 16;
        const __m256i x0 = a_group16(a16, (long)o, NULL, 1, k, 1),
                      x1 = a_group16(a16, (long)o + step, NULL, 1, k, 1);
        _mm512_mask_storeu_epi32(pairs + o, first_n(k), pairs16_bf16(x0, x1));
    }
}

float cnn_peak_bf16_avx512(long steps)
{
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), y = (__m512bh)_mm512_set1_epi32(0x3a833a83);
    /* different starting values: equal chains would be computed once (they were: one vdpbf16ps a round) */
    __m512 v0 = _mm512_set1_ps(1e-3f), v1 = _mm512_set1_ps(2e-3f), v2 = _mm512_set1_ps(3e-3f),
           v3 = _mm512_set1_ps(4e-3f), v4 = _mm512_set1_ps(5e-3f), v5 = _mm512_set1_ps(6e-3f),
           v6 = _mm512_set1_ps(7e-3f), v7 = _mm512_set1_ps(8e-3f), v8 = _mm512_set1_ps(9e-3f),
           v9 = _mm512_set1_ps(1e-2f), v10 = _mm512_set1_ps(1.1e-2f), v11 = _mm512_set1_ps(1.2e-2f);
    for (long s = 0; s < steps; s++) CNN_PEAK_STEP(_mm512_dpbf16_ps);
    const __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v0, v1), _mm512_add_ps(v2, v3)),
                                   _mm512_add_ps(_mm512_add_ps(v4, v5), _mm512_add_ps(v6, v7)));
    return _mm512_reduce_add_ps(
        _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(v8, v9), _mm512_add_ps(v10, v11))));
}
