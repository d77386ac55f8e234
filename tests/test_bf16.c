/* --precision bf16 (kernels/gemm_bf16.h) where the CPU has AVX512_BF16 (every test is skipped elsewhere,
 * except the refusal, which is then checked the other way round): the BF16 GEMM against a float64 reference
 * over the same BF16-rounded inputs for every way of reading A (row-major, transposed, gathered like a
 * convolution's forward and weight-gradient products) with row, column and p tails and p blocks; the same
 * products from images rounded to BF16 once, and with B rounded and paired once, bit for bit against the
 * per-use rounding; bit-identity
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
#include "layers/conv_common.h"

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
    float *c = tu_floats(mn), *c0 = tu_floats(mn);
    tu_fill_uniform(c0, mn, 29, 7);
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
static const int SHAPES[][3] = {{1, 1, 1},     {5, 7, 3},       {24, 64, 16}, {25, 65, 17}, {150, 130, 71},
                                {97, 10, 600}, {200, 33, 1030}, {7, 200, 2},  {300, 48, 64}};

static void test_gemm_strided(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    cnn_gemm_bf16_set(1);
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = tu_floats((size_t)M * P), *b = tu_floats((size_t)P * N);
        tu_fill_uniform(a, (size_t)M * P, 29, 1);
        tu_fill_uniform(b, (size_t)P * N, 29, 2);
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
        float *x = tu_floats((size_t)cnt * h * w * cin), *k = tu_floats((size_t)K * F),
              *dy = tu_floats((size_t)rows * F);
        int *pix = calloc((size_t)rows, sizeof(int)), *tap = calloc((size_t)K, sizeof(int));
        assert_non_null(pix), assert_non_null(tap);
        tu_fill_uniform(x, (size_t)cnt * h * w * cin, 29, 3);
        tu_fill_uniform(k, (size_t)K * F, 29, 4);
        tu_fill_uniform(dy, (size_t)rows * F, 29, 5);
        conv_tables(cnt, h, w, cin, pix, tap);
        const product fwd = {rows, F, K, x, 0, 0, pix, tap, k}, dw = {K, F, rows, x, 0, 0, tap, pix, dy};
        check_both(&fwd, "patches x W");
        check_both(&dw, "patches^T x dy");
        free(x), free(k), free(dy), free(pix), free(tap);
    }
    cnn_gemm_bf16_set(0);
}

/* cnn_bf16_round and cnn_bf16_pair_image against bf16() above, bit for bit: ties (both ways), signs,
 * lengths with a tail past the last 16, and nothing written past the end. */
static uint16_t bf16_bits(float x)
{
    const float r = (float)bf16(x);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    return (uint16_t)(u >> 16);
}

static void test_round_once(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    enum { N = 77, STEP = 5 };
    float x[N];
    tu_fill_uniform(x, N, 29, 8);
    for (int i = 0; i < 8; i++) { /* exact ties between two BF16 values: to even, up and down */
        uint32_t u = 0x3f800000u + ((uint32_t)i << 16) + 0x8000u;
        memcpy(&x[i], &u, sizeof u);
        x[i + 8] = -x[i];
    }
    for (int n = 0; n <= N; n += (n < 20 ? 1 : 19)) {
        uint16_t y[N + 1];
        uint32_t pairs[N + 1];
        memset(y, 0xab, sizeof y), memset(pairs, 0xab, sizeof pairs);
        cnn_bf16_round(x, (size_t)n, y);
        cnn_bf16_pair_image(y, (size_t)n, STEP, pairs);
        for (int i = 0; i < n; i++) assert_int_equal(y[i], bf16_bits(x[i]));
        assert_int_equal(y[n], 0xabab);
        for (int o = 0; o + STEP < n; o++)
            assert_int_equal(pairs[o], bf16_bits(x[o]) | (uint32_t)bf16_bits(x[o + STEP]) << 16);
        assert_int_equal(pairs[n > STEP ? n - STEP : 0], 0xababababu);
    }
}

/* B rounded and paired once (cnn_bf16_pack_b, cnn_gemm_gather_bf16_paired) against the products that round
 * B per call: the same bits, for every shape above (several panels of B, p blocks, odd P), with A rounded
 * beforehand and read through tables (in place where P is even), accumulating or not. */
static void test_gemm_paired(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    cnn_gemm_bf16_set(1);
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = tu_floats((size_t)M * P), *b = tu_floats((size_t)P * N), *want = tu_floats((size_t)M * N),
              *got = tu_floats((size_t)M * N);
        uint16_t *a16 = calloc((size_t)M * P, sizeof(uint16_t));
        uint32_t *b16 = calloc(cnn_bf16_packed_words(P, N), sizeof(uint32_t));
        int *ri = calloc((size_t)M, sizeof(int)), *po = calloc((size_t)P, sizeof(int));
        assert_non_null(a16), assert_non_null(b16), assert_non_null(ri), assert_non_null(po);
        tu_fill_uniform(a, (size_t)M * P, 29, 10), tu_fill_uniform(b, (size_t)P * N, 29, 11);
        for (int i = 0; i < M; i++) ri[i] = i * P;
        for (int p = 0; p < P; p++) po[p] = p;
        cnn_bf16_round(a, (size_t)M * P, a16);
        cnn_bf16_pack_b(P, N, b, N, b16);
        const cnn_bf16_images h = {a16, NULL, 0};
        for (int acc = 0; acc < 2; acc++) {
            tu_fill_uniform(want, (size_t)M * N, 29, 12), memcpy(got, want, sizeof(float) * M * N);
            cnn_gemm_gather_bf16(M, N, P, &h, ri, po, b, N, want, N, acc);
            cnn_gemm_gather_bf16_paired(M, N, P, &h, ri, po, b16, got, N, acc);
            if (memcmp(want, got, sizeof(float) * M * N))
                fail_msg("paired B differs from B rounded per call (%d x %d x %d, accumulate %d)", M, N, P,
                         acc);
        }
        free(a), free(b), free(want), free(got), free(a16), free(b16), free(ri), free(po);
    }
    cnn_gemm_bf16_set(0);
}

/* An ih x iw x cin input read by a kh x kw kernel at stride s (both axes), no dilation, to oh x ow pixels,
 * padded by pt rows above and pl columns to the left. */
static cnn_conv_geom geom(int ih, int iw, int cin, int kh, int kw, int s, int oh, int ow, int pt, int pl)
{
    cnn_conv_geom g = {0};
    g.ih = ih, g.iw = iw, g.cin = cin, g.kh = kh, g.kw = kw, g.sh = g.sw = s, g.dh = g.dw = 1;
    g.oh = oh, g.ow = ow, g.pt = pt, g.pl = pl;
    return g;
}

/* cnn_conv_pad_bf16 (padding and rounding in one pass) against cnn_conv_pad then bf16(): the same bits,
 * zeros included, for a "same" and an asymmetric, strided geometry. */
static void test_pad_bf16(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    const cnn_conv_geom GEOMS[] = {geom(5, 4, 3, 3, 3, 1, 5, 4, 1, 1), geom(6, 7, 2, 3, 2, 2, 3, 4, 0, 1)};
    for (size_t t = 0; t < sizeof GEOMS / sizeof GEOMS[0]; t++) {
        const cnn_conv_geom *g = &GEOMS[t];
        int hp, wp;
        cnn_conv_padded_size(g, &hp, &wp);
        const size_t nx = (size_t)2 * g->ih * g->iw * g->cin, np = (size_t)2 * hp * wp * g->cin;
        float *x = tu_floats(nx), *xp = tu_floats(np);
        uint16_t *x16 = calloc(np, sizeof(uint16_t));
        assert_non_null(x16);
        tu_fill_uniform(x, nx, 29, 9);
        cnn_conv_pad(g, x, 2, xp);
        cnn_conv_pad_bf16(g, x, 2, x16);
        for (size_t i = 0; i < np; i++) assert_int_equal(x16[i], bf16_bits(xp[i]));
        free(x), free(xp), free(x16);
    }
}

/* The gathered products from images rounded once (cnn_gemm_gather_bf16, with and without their pair image;
 * the packed-B variant) against the same products from the FP32 images, which the kernel rounds at every
 * use: the same bits, for even channel counts (pairs read in place), odd ones (K odd: the last pair half
 * zero, packed), output rows of odd width (some pixel pairs span two rows: those p blocks are packed), and
 * p split into several blocks (K = 576; dW over 600 pixels). */
static void same_bits(const float *want, const float *got, size_t n, const char *what, const int *conv)
{
    if (memcmp(want, got, sizeof(float) * n))
        fail_msg("%s differs from the per-use rounding (%d images %dx%d, %d channels)", what, conv[0],
                 conv[1], conv[2], conv[3]);
}

static void check_rounded_once(const int *conv)
{
    const int cnt = conv[0], h = conv[1], w = conv[2], cin = conv[3], F = 37, ow = w - 2;
    const int rows = cnt * (h - 2) * ow, K = 9 * cin;
    const size_t nx = (size_t)cnt * h * w * cin, nc = (size_t)(rows > K ? rows : K) * F;
    float *x = tu_floats(nx), *k = tu_floats((size_t)K * F), *dy = tu_floats((size_t)rows * F),
          *kp = tu_floats(cnn_gemm_packed_floats(K, F)), *want = tu_floats(nc), *got = tu_floats(nc);
    uint16_t *x16 = calloc(nx, sizeof(uint16_t));
    uint32_t *pairs = calloc(nx, sizeof(uint32_t));
    int *pix = calloc((size_t)rows, sizeof(int)), *tap = calloc((size_t)K, sizeof(int));
    assert_non_null(x16), assert_non_null(pairs), assert_non_null(pix), assert_non_null(tap);
    tu_fill_uniform(x, nx, 29, 3), tu_fill_uniform(k, (size_t)K * F, 29, 4);
    tu_fill_uniform(dy, (size_t)rows * F, 29, 5);
    conv_tables(cnt, h, w, cin, pix, tap);
    cnn_bf16_round(x, nx, x16);
    cnn_bf16_pair_image(x16, nx, cin, pairs);
    const cnn_bf16_images once = {x16, NULL, 0}, paired = {x16, pairs, cin};
    cnn_gemm_pack_b(K, F, k, F, kp);
    for (int acc = 0; acc < 2; acc++) {
        tu_fill_uniform(want, (size_t)rows * F, 29, 6), memcpy(got, want, sizeof(float) * rows * F);
        cnn_gemm_gather(rows, F, K, x, pix, tap, k, F, want, F, acc);
        cnn_gemm_gather_bf16(rows, F, K, &once, pix, tap, k, F, got, F, acc);
        same_bits(want, got, (size_t)rows * F, "patches x W", conv);
        tu_fill_uniform(got, (size_t)rows * F, 29, 6);
        cnn_gemm_gather_packed_bf16(rows, F, K, &once, pix, tap, kp, got, F, acc);
        same_bits(want, got, (size_t)rows * F, "patches x packed W", conv);
        for (int with_pairs = 0; with_pairs < 2; with_pairs++) {
            tu_fill_uniform(want, (size_t)K * F, 29, 7), memcpy(got, want, sizeof(float) * K * F);
            cnn_gemm_gather(K, F, rows, x, tap, pix, dy, F, want, F, acc);
            cnn_gemm_gather_bf16(K, F, rows, with_pairs ? &paired : &once, tap, pix, dy, F, got, F, acc);
            same_bits(want, got, (size_t)K * F, with_pairs ? "patches^T x dy (pair image)" : "patches^T x dy",
                      conv);
        }
    }
    free(x), free(k), free(dy), free(kp), free(want), free(got), free(x16), free(pairs), free(pix), free(tap);
}

static void test_gemm_rounded_once(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    cnn_gemm_bf16_set(1);
    static const int CONVS[][4] = {{2, 10, 10, 32}, {2, 9, 9, 32},  {3, 7, 8, 3}, {1, 6, 6, 17},
                                   {1, 12, 12, 64}, {6, 12, 12, 8}, {1, 5, 4, 2}};
    for (size_t t = 0; t < sizeof CONVS / sizeof CONVS[0]; t++) check_rounded_once(CONVS[t]);
    cnn_gemm_bf16_set(0);
}

/* ---------------------------------------------------------------- whole models */

/* Every layer whose products run on the GEMM: gathered convolutions (padded, strided), a separable one's
 * pointwise product, Dense on the way out; and a thin first convolution that stays FP32. */
static const char *const CONV_SPEC =
    "model: small_conv\n"
    "input: (16, 16, 1)\n"
    "layers:\n"
    "    Conv2D(8, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
    "    Conv2D(16, kernel_size=3, strides=2, activation=\"relu\")\n"
    "    SeparableConv2D(24, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
    "    MaxPooling2D(2, strides=2)\n"
    "    Flatten()\n"
    "    Dense(32, activation=\"relu\")\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\n";

/* n images of 10 classes: class k is its own random pattern under more than twice as much noise. */
static void make_data(int n, uint64_t stream, float *x, int32_t *y)
{
    for (int i = 0; i < n; i++) {
        y[i] = i % 10;
        for (int p = 0; p < 256; p++)
            x[(size_t)i * 256 + p] = 0.3f * cnn_rng_uniform(3, (uint64_t)y[i], (uint64_t)p) +
                                     0.7f * cnn_rng_uniform(4, stream, (uint64_t)i * 256 + p);
    }
}

/* The parameters after `steps` steps on a fixed batch of n (precision p, `threads` threads); *acc: the
 * accuracy on 500 other images after them. */
static float *train_spec(const char *spec, const char *p, int n, int steps, int threads, size_t *count,
                         double *acc)
{
    cnn_set_threads(threads);
    cnn_spec *s = cnn_spec_parse(spec, "small_conv.spec");
    cnn_model *m = s ? cnn_spec_build_model(s, 1) : NULL;
    assert_non_null(m);
    assert_int_equal(cnn_model_set_precision(m, p), 0);
    assert_string_equal(cnn_model_precision(m), p);
    float *x = calloc((size_t)n * 256, sizeof(float)), *tx = calloc(500 * 256, sizeof(float));
    int32_t *y = calloc((size_t)n, sizeof(int32_t)), *ty = calloc(500, sizeof(int32_t));
    assert_non_null(x), assert_non_null(y), assert_non_null(tx), assert_non_null(ty);
    make_data(n, 1, x, y);
    make_data(500, 2, tx, ty);
    for (int k = 0; k < steps; k++) {
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(m, x, y, n, &loss, &correct), 0);
        assert_true(isfinite(loss));
    }
    cnn_dataset test = {.x = tx, .y = ty, .n = 500, .h = 16, .w = 16, .c = 1, .num_classes = 10};
    double loss;
    assert_int_equal(cnn_model_evaluate(m, &test, 100, &loss, acc), 0);
    *count = cnn_model_num_params(m, 0);
    float *w = malloc(sizeof(float) * *count);
    assert_non_null(w);
    memcpy(w, cnn_model_params(m), sizeof(float) * *count);
    cnn_model_free(m);
    cnn_spec_free(s);
    free(x), free(y), free(tx), free(ty);
    return w;
}

static float *train(const char *p, int n, int steps, int threads, size_t *count, double *acc)
{
    return train_spec(CONV_SPEC, p, n, steps, threads, count, acc);
}

/* bf16 with 1 and 2 threads: the same bytes; and not those of fp32 (the BF16 kernels did run). */
static void test_model_threads(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    const int keep = cnn_get_threads();
    size_t n1, n2, n3;
    double acc;
    float *one = train("bf16", 70, 3, 1, &n1, &acc), *two = train("bf16", 70, 3, 2, &n2, &acc),
          *fp32 = train("fp32", 70, 3, 2, &n3, &acc);
    assert_int_equal(n1, n2);
    if (memcmp(one, two, sizeof(float) * n1)) fail_msg("bf16: parameters differ between 1 and 2 threads");
    assert_true(memcmp(one, fp32, sizeof(float) * n1) != 0);
    free(one), free(two), free(fp32);
    cnn_set_threads(keep);
}

/* Trainable convolutions over 32 channels at stride 1, whose input gradient runs in bf16 as a convolution
 * (conv2d.c, dx_conv) where fp32 uses col2im: with 1 and 2 threads the same bytes; and the first layer,
 * trained only through those input gradients, moves its kernel as in fp32: Adam's first steps move each
 * weight by about the learning rate in the sign of its gradient, so the two moves point the same way
 * (measured cosine printed; input gradients that were wrong, e.g. from a kernel flipped the wrong way, would
 * leave the two unrelated, near 0). */
static const char *const WIDE_SPEC = "model: wide_conv\n"
                                     "input: (16, 16, 1)\n"
                                     "layers:\n"
                                     "    Conv2D(32, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
                                     "    Conv2D(32, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
                                     "    Conv2D(16, kernel_size=3, activation=\"relu\")\n"
                                     "    MaxPooling2D(2, strides=2)\n"
                                     "    Flatten()\n"
                                     "    Dense(10, activation=\"softmax\")\n"
                                     "optimizer: Adam(learning_rate=0.001)\n";

static void test_dx_conv(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    const int keep = cnn_get_threads();
    size_t n0, n1, n2, n3;
    double acc;
    float *w0 = train_spec(WIDE_SPEC, "fp32", 70, 0, 1, &n0, &acc),
          *one = train_spec(WIDE_SPEC, "bf16", 70, 2, 1, &n1, &acc),
          *two = train_spec(WIDE_SPEC, "bf16", 70, 2, 2, &n2, &acc),
          *fp32 = train_spec(WIDE_SPEC, "fp32", 70, 2, 2, &n3, &acc);
    assert_int_equal(n1, n2);
    if (memcmp(one, two, sizeof(float) * n1)) fail_msg("bf16: parameters differ between 1 and 2 threads");
    double dot = 0, a2 = 0, b2 = 0;
    for (int i = 0; i < 9 * 32; i++) { /* the first kernel: 3 x 3 x 1 x 32 */
        const double a = one[i] - w0[i], b = fp32[i] - w0[i];
        dot += a * b, a2 += a * a, b2 += b * b;
    }
    const double cosine = dot / sqrt(a2 * b2);
    print_message("  first kernel's move, bf16 against fp32: cosine %.4f\n", cosine);
    assert_true(cosine > 0.9);
    free(w0), free(one), free(two), free(fp32);
    cnn_set_threads(keep);
}

/* 40 steps on 300 noisy images in both precisions: the same accuracy on 500 unseen ones within 3 points
 * (measured: 72.0% in fp32, 73.0% in bf16), both far above chance (10%). A BF16 product that paired the
 * wrong values, or dropped a pair, would not learn the patterns at all. */
static void test_training_close(void **state)
{
    (void)state;
    if (skip_without_bf16()) skip();
    const int keep = cnn_get_threads();
    size_t n1, n2;
    double a16, a32;
    float *w16 = train("bf16", 300, 40, 2, &n1, &a16), *w32 = train("fp32", 300, 40, 2, &n2, &a32);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n1; i++) diff += fabs(w16[i] - w32[i]), norm += fabs(w32[i]);
    print_message("  accuracy fp32 %.2f%%, bf16 %.2f%%; weights apart by %.3g of their size\n", 100 * a32,
                  100 * a16, diff / norm);
    assert_true(a32 > 0.5 && a16 > 0.5);
    assert_true(fabs(a16 - a32) <= 0.03);
    free(w16), free(w32);
    cnn_set_threads(keep);
}

/* What is refused, and how: an unknown name; bf16 on the avx2 or generic path; bf16 on a CPU without
 * AVX512_BF16 (only where the CPU lacks it). A refusal leaves the model's precision as it was. */
static void test_refusals(void **state)
{
    (void)state;
    tu_assert_error(cnn_precision_check("fp16"), CNN_ERR_INVALID,
                    "unknown precision 'fp16' (expected fp32 or bf16)");
    tu_assert_error(cnn_precision_check(NULL), CNN_ERR_INVALID, "expected fp32 or bf16");
    assert_int_equal(cnn_precision_check("fp32"), 0);
    cnn_spec *s = cnn_spec_parse(CONV_SPEC, "small_conv.spec");
    cnn_model *m = s ? cnn_spec_build_model(s, 1) : NULL;
    assert_non_null(m);
    assert_string_equal(cnn_model_precision(m), "fp32");
    if (!cnn_bf16_supported()) {
        tu_assert_error(cnn_model_set_precision(m, "bf16"), CNN_ERR_INVALID, "needs a CPU with AVX512_BF16");
    } else {
        static const char *const NARROW[] = {"avx2", "generic"};
        for (int k = 0; k < 2; k++) {
            if (cnn_set_isa(NARROW[k])) continue;
            tu_assert_error(cnn_model_set_precision(m, "bf16"), CNN_ERR_INVALID, "avx512 kernel path only");
            tu_assert_error(cnn_precision_check("bf16"), CNN_ERR_INVALID, NARROW[k]);
            assert_string_equal(cnn_model_precision(m), "fp32");
        }
        assert_int_equal(cnn_set_isa("avx512"), 0);
        assert_int_equal(cnn_model_set_precision(m, "bf16"), 0);
        tu_assert_error(cnn_model_set_precision(m, "int8"), CNN_ERR_INVALID, "unknown precision 'int8'");
        assert_string_equal(cnn_model_precision(m), "bf16");
        assert_int_equal(cnn_model_set_precision(m, "fp32"), 0);
        assert_string_equal(cnn_model_precision(m), "fp32");
    }
    tu_assert_error(cnn_model_set_precision(NULL, "fp32"), CNN_ERR_INVALID, "NULL model");
    assert_int_equal(cnn_set_isa(NULL), 0);
    cnn_model_free(m);
    cnn_spec_free(s);
}

/* The run record keeps the precision; older records (without the field) read as fp32; another value is
 * refused. */
static void test_run_record(void **state)
{
    (void)state;
    cnn_run r, back;
    cnn_run_init(&r, "m");
    assert_string_equal(r.precision, "fp32");
    snprintf(r.precision, sizeof r.precision, "bf16");
    const char *path = tu_path("run.json");
    assert_int_equal(cnn_run_save(&r, path), 0);
    assert_int_equal(cnn_run_load(&back, path), 0);
    assert_string_equal(back.precision, "bf16");
    cnn_run_free(&back);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[8192];
    const size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *at = strstr(text, "\"bf16\"");
    assert_non_null(at);
    memcpy(at, "\"fp16\"", 6);
    tu_write(path, text, len);
    tu_assert_error(cnn_run_load(&back, path), CNN_ERR_FORMAT,
                    "field 'precision' is 'fp16'; expected fp32 or bf16");
    char *field = strstr(text, "\"precision\"");
    assert_non_null(field);
    memcpy(field, "\"precisioX\"", 11);
    tu_write(path, text, len);
    assert_int_equal(cnn_run_load(&back, path), 0);
    assert_string_equal(back.precision, "fp32");
    cnn_run_free(&back);
    cnn_run_free(&r);
}

/* A spec's fit: precision= (fp32 when absent; another name is refused when the spec is read). */
static void test_spec_option(void **state)
{
    (void)state;
    static const char *const HEAD =
        "model: m\ninput: (4, 4, 1)\nlayers:\n    Flatten()\n    Dense(2, activation=\"softmax\")\n";
    char text[256];
    cnn_spec_fit f;
    snprintf(text, sizeof text, "%sfit: epochs=2, precision=\"bf16\"\n", HEAD);
    cnn_spec *s = cnn_spec_parse(text, "bf16.spec");
    assert_non_null(s);
    cnn_spec_fit_settings(s, &f);
    assert_string_equal(f.precision, "bf16");
    cnn_spec_free(s);
    snprintf(text, sizeof text, "%sfit: epochs=2\n", HEAD);
    assert_non_null(s = cnn_spec_parse(text, "fp32.spec"));
    cnn_spec_fit_settings(s, &f);
    assert_string_equal(f.precision, "fp32");
    cnn_spec_free(s);
    snprintf(text, sizeof text, "%sfit: precision=\"fp16\"\n", HEAD);
    assert_null(cnn_spec_parse(text, "fp16.spec"));
    assert_non_null(strstr(cnn_errmsg(), "precision"));
    print_message("  %s\n", cnn_errmsg());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_strided),      cmocka_unit_test(test_gemm_gathered),
        cmocka_unit_test(test_round_once),        cmocka_unit_test(test_pad_bf16),
        cmocka_unit_test(test_gemm_rounded_once), cmocka_unit_test(test_model_threads),
        cmocka_unit_test(test_dx_conv),           cmocka_unit_test(test_training_close),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_run_record),
        cmocka_unit_test(test_spec_option),       cmocka_unit_test(test_gemm_paired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
