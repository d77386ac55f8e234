/* --precision bf16 (kernels/gemm_bf16.h) where the CPU has AVX512_BF16 (every test is skipped elsewhere,
 * except the refusal, which is then checked the other way round): the BF16 GEMM against a float64 reference
 * over the same BF16-rounded inputs for every way of reading A (row-major, transposed, gathered like a
 * convolution's forward and weight-gradient products) with row, column and p tails and p blocks; bit-identity
 * across thread counts of the GEMM and of whole models trained in bf16; a small model trained in bf16
 * against fp32; the refusals (unknown name, forced avx2 or generic path) and the run record's field. */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"

static float *floats(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

/* Values in [-1, 1] with all 24 mantissa bits used, so that the rounding to BF16 matters. */
static void fill(float *v, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) v[i] = cnn_rng_uniform(29, stream, i) * 2.0f - 1.0f;
}

/* x rounded to BF16 the way vcvtneps2bf16 does: to nearest, ties to even; denormals to zero (none occur in
 * these inputs). Written from the format's definition, not from the kernel. */
static double bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0) return 0.0;
    u = (u + 0x7fffu + (u >> 16 & 1)) & 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* One shape and way of reading A: A_p[i] = a[ri[i] + po[p]] (gathered) or a[i*sai + p*sap]. */
typedef struct product {
    int M, N, P;
    const float *a;
    long sai, sap;
    const int *ri, *po;
    const float *b;
} product;

static double a_at(const product *q, int i, int p)
{
    return bf16(q->a[q->ri ? q->ri[i] + q->po[p] : i * q->sai + p * q->sap]);
}

/* The kernel's C (with c0 added when accumulating) against the sum in float64 of the BF16-rounded
 * products. Each product of two BF16 values is exact in FP32; the kernel rounds only its sums: at most two
 * per pair of p (vdpbf16ps may round after each product), one per p block and one for C's old value, each
 * off by at most 2^-24 of a partial sum no larger than S = c0 + sum |A_p B_p|. So |error| <= (P + 3) 2^-24 S:
 * the bound of any FP32 sum of the same terms (Higham's gamma_n), far below the BF16 rounding itself (2^-9
 * per input), which the reference shares. The measured errors are also printed. */
static void check_product(const product *q, const float *c, const float *c0, const char *what)
{
    double worst = 0;
    for (int i = 0; i < q->M; i++)
        for (int j = 0; j < q->N; j++) {
            double ref = c0 ? c0[(size_t)i * q->N + j] : 0, mag = fabs(ref);
            for (int p = 0; p < q->P; p++) {
                const double t = a_at(q, i, p) * bf16(q->b[(size_t)p * q->N + j]);
                ref += t, mag += fabs(t);
            }
            const double err = fabs(c[(size_t)i * q->N + j] - ref), bound = (q->P + 3) * 0x1p-24 * mag;
            if (err > bound)
                fail_msg("%s %dx%dx%d: C[%d][%d] = %.9g, reference %.9g (bound %.3g)", what, q->M, q->N, q->P,
                         i, j, c[(size_t)i * q->N + j], ref, bound);
            if (mag > 0 && err / mag > worst) worst = err / mag;
        }
    print_message("  %s %dx%dx%d: worst error %.3g x sum|AB| (bound %.3g)\n", what, q->M, q->N, q->P, worst,
                  (q->P + 3) * 0x1p-24);
}

static void run_product(const product *q, float *c, int accumulate)
{
    if (q->ri)
        cnn_gemm_gather(q->M, q->N, q->P, q->a, q->ri, q->po, q->b, q->N, c, q->N, accumulate);
    else
        cnn_gemm(q->M, q->N, q->P, q->a, q->sai, q->sap, q->b, q->N, c, q->N, accumulate);
}

static void check_both(const product *q, const char *what)
{
    const size_t mn = (size_t)q->M * q->N;
    float *c = floats(mn), *c0 = floats(mn);
    fill(c0, mn, 7);
    run_product(q, c, 0);
    check_product(q, c, NULL, what);
    memcpy(c, c0, sizeof(float) * mn);
    run_product(q, c, 1);
    check_product(q, c, c0, what);
    free(c), free(c0);
}

static int skip_without_bf16(void)
{
    if (cnn_bf16_check() == CNN_OK) return 0;
    print_message("  skipped: %s\n", cnn_errmsg());
    return 1;
}

/* Shapes with one and many tiles, row tails (M not a multiple of 6, past the 96-row pack), column tails and
 * several panels, odd P (the last pair half zero) and P past the 512 of a p block. */
static const int SHAPES[][3] = {{1, 1, 1},     {5, 7, 3},     {24, 64, 16}, {25, 65, 17},   {150, 130, 71},
                                {97, 10, 600}, {200, 33, 1030}, {7, 200, 2}, {300, 48, 64}};

static void test_gemm_strided(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    cnn_gemm_bf16_set(1);
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = floats((size_t)M * P), *b = floats((size_t)P * N);
        fill(a, (size_t)M * P, 1);
        fill(b, (size_t)P * N, 2);
        const product rows = {M, N, P, a, P, 1, NULL, NULL, b}, cols = {M, N, P, a, 1, M, NULL, NULL, b};
        check_both(&rows, "row-major A");
        check_both(&cols, "transposed A");
        free(a), free(b);
    }
    cnn_gemm_bf16_set(0);
}

/* The convolution's tables (conv_common.h) for cnt images of h x w x cin, a 3x3 kernel, valid padding: the
 * pixel table (where each output pixel's patch starts) and the tap table (each (ky, kx, c) from there). */
static void conv_tables(int cnt, int h, int w, int cin, int *pix, int *tap)
{
    const int oh = h - 2, ow = w - 2;
    for (int n = 0, k = 0; n < cnt; n++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) pix[k++] = ((n * h + y) * w + x) * cin;
    for (int ky = 0, k = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++)
            for (int c = 0; c < cin; c++) tap[k++] = (ky * w + kx) * cin + c;
}

static void test_gemm_gathered(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    cnn_gemm_bf16_set(1);
    static const int CONVS[][4] = {{2, 9, 9, 32}, {3, 7, 8, 3}, {1, 6, 6, 17}};
    for (size_t t = 0; t < sizeof CONVS / sizeof CONVS[0]; t++) {
        const int cnt = CONVS[t][0], h = CONVS[t][1], w = CONVS[t][2], cin = CONVS[t][3], F = 37;
        const int rows = cnt * (h - 2) * (w - 2), K = 9 * cin;
        float *x = floats((size_t)cnt * h * w * cin), *k = floats((size_t)K * F), *dy = floats((size_t)rows * F);
        int *pix = calloc((size_t)rows, sizeof(int)), *tap = calloc((size_t)K, sizeof(int));
        assert_non_null(pix), assert_non_null(tap);
        fill(x, (size_t)cnt * h * w * cin, 3);
        fill(k, (size_t)K * F, 4);
        fill(dy, (size_t)rows * F, 5);
        conv_tables(cnt, h, w, cin, pix, tap);
        const product fwd = {rows, F, K, x, 0, 0, pix, tap, k}, dw = {K, F, rows, x, 0, 0, tap, pix, dy};
        check_both(&fwd, "patches x W");
        check_both(&dw, "patches^T x dy");
        free(x), free(k), free(dy), free(pix), free(tap);
    }
    cnn_gemm_bf16_set(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_strided),
        cmocka_unit_test(test_gemm_gathered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
