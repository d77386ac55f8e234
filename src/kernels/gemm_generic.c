/* The portable GEMM kernel: C for any CPU (compiled for the library's baseline), and the reference the tests
 * hold the vector kernels to, bit for bit. The AVX2 and AVX-512 kernels sum each element's products in
 * ascending p with fused multiply-adds (one rounding per step); this kernel computes the same fused
 * multiply-adds without FMA instructions, so that every path trains the same model.
 *
 * A fused multiply-add c + a*b of floats, exactly rounded once, from double arithmetic:
 *  - the product of two floats (24-bit significands) is exact in a double (53 bits);
 *  - the double sum s = d + c is rounded once; its error e is recovered exactly (Knuth's two-sum);
 *  - rounding s to float directly could round twice (s may sit exactly halfway between two floats while the
 *    exact sum did not), so s is first rounded to odd: when e != 0 and s's last bit is even, s moves one unit
 *    towards the exact sum. A double rounded to odd (53 >= 24 + 2 bits) rounds to the float nearest the exact
 *    sum, ties included (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
 * Products and sums of infinities and NaNs come out as the FMA gives them (e is then NaN: no adjustment).
 *
 * The price: about 30 instructions per two multiply-adds, where the AVX2 kernel does sixteen in one; on one
 * Zen 4 core 1.4-1.7 GFLOP/s at 512x256x784 (thread CPU time, loaded machine) against 24-30 for the former
 * portable kernel, which rounded each product before adding it and so trained a different model (Model_1,
 * 3 epochs: 86.02% against 85.68%). Skipping the correction where the double sum is no tie between floats
 * (the only case where rounding twice errs) gained 10% at best: exact ties are common (1 sum in 10^4), and
 * keeping each step's inputs for a redo spilled registers. Tiles of 6 rows x 4 columns in GNU C vectors of
 * 2 doubles (SSE2 on x86-64); B's panel is converted to doubles once per p block. */
#include <string.h>

#include "kernels/gemm_kernels.h"

enum { MR = CNN_GEMM_MR, NR = 4 }; /* tile rows, tile columns */

typedef double vd2 __attribute__((vector_size(16)));
typedef long long vl2 __attribute__((vector_size(16)));
typedef float vf2 __attribute__((vector_size(8)));

/* RN_float(x * b + c) for float values x, b, c held as doubles, exactly. */
static inline __attribute__((always_inline)) vd2 fused(vd2 x, vd2 b, vd2 c)
{
    const vd2 d = x * b, s = d + c, t = s - d, e = (d - (s - t)) + (c - t);
    vl2 bits, ebits;
    memcpy(&bits, &s, sizeof bits);
    memcpy(&ebits, &e, sizeof ebits);
    /* inexact (e != 0, not NaN) and even: one unit up in magnitude when e has s's sign, else down */
    const vl2 move = ((e < 0) | (e > 0)) & ((bits & 1) == 0);
    bits += move & (((ebits ^ bits) < 0) | 1);
    vd2 odd;
    memcpy(&odd, &bits, sizeof odd);
    return __builtin_convertvector(__builtin_convertvector(odd, vf2), vd2);
}

#define TILE_STEP(i)                                                                                         \
    do {                                                                                                     \
        const double s = a##i[q];                                                                            \
        const vd2 x = {s, s};                                                                                \
        c##i##0 = fused(x, b0, c##i##0);                                                                     \
        c##i##1 = fused(x, b1, c##i##1);                                                                     \
    } while (0)
#define TILE_STORE(i)                                                                                        \
    do {                                                                                                     \
        if (i < mr) {                                                                                        \
            const double out[NR] = {c##i##0 [0], c##i##0 [1], c##i##1 [0], c##i##1 [1]};                     \
            float *ci = c + (i)*ldc;                                                                         \
            for (int j = 0; j < w; j++) ci[j] = accumulate ? (float)out[j] + ci[j] : (float)out[j];          \
        }                                                                                                    \
    } while (0)

/* One tile: rows [0, mr) x columns [0, w) of C over p in [0, P), row i of A from r[i] (its p-th value at
 * r[i][p * sap], or r[i][po[p]] when gathered), B from the panel (NR doubles a row). */
static inline __attribute__((always_inline)) void gemm_tile(int w, int gathered, int mr, int P,
                                                            const float *const *r, long sap, const int *po,
                                                            const vd2 *panel, float *c, long ldc,
                                                            int accumulate)
{
    const vd2 z = {0, 0};
    vd2 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
        c51 = z;
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (long p = 0, o = 0; p < P; p++, o += sap) {
        const long q = gathered ? po[p] : o;
        const vd2 b0 = panel[2 * p], b1 = panel[2 * p + 1];
        CNN_TILE_EACH_ROW(TILE_STEP);
    }
    CNN_TILE_EACH_ROW(TILE_STORE);
}

/* panel (P x NR doubles) <- columns [j0, j0 + w) of B, zeros after them. */
static void pack_panel(const cnn_gemm_args *g, int j0, int w, vd2 *panel)
{
    for (int p = 0; p < g->P; p++) {
        const float *bp = g->b + p * g->ldb + j0;
        double v[NR];
        for (int j = 0; j < NR; j++) v[j] = j < w ? bp[j] : 0.0;
        memcpy(panel + 2 * p, v, sizeof v);
    }
}

/* All tiles of one p block: panels of 4 columns (converted once), 6 rows at a time. */
void cnn_gemm_block_generic(const cnn_gemm_args *g)
{
    vd2 panel[CNN_GEMM_KC * NR / 2];
    for (int j0 = 0; j0 < g->N; j0 += NR) {
        const int w = g->N - j0 < NR ? g->N - j0 : NR;
        pack_panel(g, j0, w, panel);
        for (int i0 = 0; i0 < g->M; i0 += MR) {
            const int mr = g->M - i0 < MR ? g->M - i0 : MR;
            const float *r[MR];
            cnn_gemm_tile_rows(g, i0, mr, r);
            float *ct = g->c + (long)i0 * g->ldc + j0;
            if (g->po)
                gemm_tile(w, 1, mr, g->P, r, g->sap, g->po, panel, ct, g->ldc, g->accumulate);
            else
                gemm_tile(w, 0, mr, g->P, r, g->sap, g->po, panel, ct, g->ldc, g->accumulate);
        }
    }
}

/* The portable path's multiply-add, as the GEMM does it. */
#define FUSED(v, a, b) fused(a, b, v)

float cnn_peak_generic(long steps)
{
    const vd2 x = {0.999, 0.999}, y = {1e-3, 1e-3};
    /* different starting values: equal chains would be computed once */
    vd2 v0 = y, v1 = 2 * y, v2 = 3 * y, v3 = 4 * y, v4 = 5 * y, v5 = 6 * y, v6 = 7 * y, v7 = 8 * y,
        v8 = 9 * y, v9 = 10 * y, v10 = 11 * y, v11 = 12 * y;
    for (long s = 0; s < steps; s++) CNN_PEAK_STEP(FUSED);
    const vd2 t = v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11;
    return (float)t[0];
}
