/* Conv2D, DepthwiseConv2D, SeparableConv2D: forward values against naive reference convolutions written
 * from Keras's rules, finite-difference gradient checks, Keras's output shapes and padding split, build
 * errors, chunked lowering, thread-count independence, and the study's parameter counts. */
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/winograd.h"
#include "layers/conv_common.h"
#include "model/model.h"
#include "probe.h"
#include "util.h"

/* Relu cases use inputs where no pre-activation lies within the finite-difference step of 0 (a kink there
 * breaks the central difference, not the layer); the same configurations pass with tanh. */
static const double TOL = 2e-3;

/* ---------------------------------------------------------------- naive references */

typedef struct ref_geom {
    int ih, iw, cin, kh, kw, sh, sw, dh, dw, same;
    int oh, ow, pt, pl;
} ref_geom;

/* Keras conv_output_length and TensorFlow's padding split, spelled out independently of conv_common.c. */
static void ref_axis(int in, int k, int s, int d, int same, int *out, int *pad)
{
    int keff = (k - 1) * d + 1;
    if (same) {
        *out = (in + s - 1) / s;
        int total = (*out - 1) * s + keff - in;
        *pad = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - keff + 1 + s - 1) / s;
        *pad = 0;
    }
}

static void ref_finish(ref_geom *g)
{
    ref_axis(g->ih, g->kh, g->sh, g->dh, g->same, &g->oh, &g->pt);
    ref_axis(g->iw, g->kw, g->sw, g->dw, g->same, &g->ow, &g->pl);
}

/* The input value read by output (oy, ox) at tap (ky, kx), or 0 in the padding. */
static float ref_tap(const ref_geom *g, const float *img, int oy, int ox, int ky, int kx, int c)
{
    int iy = oy * g->sh - g->pt + ky * g->dh, ix = ox * g->sw - g->pl + kx * g->dw;
    if (iy < 0 || iy >= g->ih || ix < 0 || ix >= g->iw) return 0.0f;
    return img[(iy * g->iw + ix) * g->cin + c];
}

static float ref_act(const char *act, double v)
{
    return !strcmp(act, "relu") && v < 0 ? 0.0f : (float)v;
}

static void ref_conv2d(const ref_geom *g, const float *x, int n, const float *k, const float *b, int cout,
                       const char *act, float *y)
{
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int f = 0; f < cout; f++) {
                    double s = b ? b[f] : 0.0;
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++)
                            for (int c = 0; c < g->cin; c++)
                                s += (double)ref_tap(g, x + i * g->ih * g->iw * g->cin, oy, ox, ky, kx, c) *
                                     k[((ky * g->kw + kx) * g->cin + c) * cout + f];
                    y[((i * g->oh + oy) * g->ow + ox) * cout + f] = ref_act(act, s);
                }
}

static void ref_depthwise(const ref_geom *g, const float *x, int n, const float *k, const float *b, int dm,
                          const char *act, float *y)
{
    const int cd = g->cin * dm;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++)
                for (int c = 0; c < g->cin; c++)
                    for (int m = 0; m < dm; m++) {
                        double s = b ? b[c * dm + m] : 0.0;
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++)
                                s += (double)ref_tap(g, x + i * g->ih * g->iw * g->cin, oy, ox, ky, kx, c) *
                                     k[((ky * g->kw + kx) * g->cin + c) * dm + m];
                        y[((i * g->oh + oy) * g->ow + ox) * cd + c * dm + m] = ref_act(act, s);
                    }
}

static void assert_close(const float *a, const float *b, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * (1.0 + fabs((double)b[i]))))
            fail_msg("%s: value %zu is %.7g, expected %.7g", what, i, a[i], b[i]);
}

/* ---------------------------------------------------------------- forward values */

typedef struct conv_case {
    int h, w, c, n;
    int kh, kw, sh, sw, dh, dw, same, filters, bias;
    const char *act;
} conv_case;

static void check_conv2d_case(const conv_case *t)
{
    char opts[200];
    snprintf(
        opts, sizeof opts,
        "filters=%d, kernel_size=(%d,%d), strides=(%d,%d), dilation_rate=(%d,%d), padding=%s, use_bias=%s, "
        "activation=%s",
        t->filters, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->same ? "same" : "valid",
        t->bias ? "true" : "false", t->act);
    probe p;
    probe_open(&p, "Conv2D", opts, t->h, t->w, t->c, t->n);
    ref_geom g = {t->h, t->w, t->c, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->same, 0, 0, 0, 0};
    ref_finish(&g);
    assert_int_equal(p.l->out.h, g.oh);
    assert_int_equal(p.l->out.w, g.ow);
    assert_int_equal(p.l->out.c, t->filters);
    float *want = probe_floats(p.ny);
    ref_conv2d(&g, p.x, t->n, cnn_layer_param(p.l, 0), t->bias ? cnn_layer_param(p.l, 1) : NULL, t->filters,
               t->act, want);
    probe_forward(&p);
    assert_close(p.y, want, p.ny, 1e-5, opts);
    free(want);
    probe_close(&p);
}

static void test_conv2d_forward_matches_reference(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {5, 5, 1, 2, 3, 3, 1, 1, 1, 1, 0, 4, 1, "relu"},
        {6, 7, 3, 2, 3, 3, 1, 1, 1, 1, 1, 5, 1, "linear"},
        {7, 7, 2, 1, 3, 3, 2, 2, 1, 1, 1, 3, 1, "relu"},
        {8, 8, 2, 2, 3, 3, 2, 2, 1, 1, 1, 3, 0, "linear"},
        {6, 6, 2, 2, 2, 2, 1, 1, 1, 1, 1, 3, 1, "linear"},
        {9, 8, 2, 2, 4, 2, 3, 3, 1, 1, 1, 2, 1, "relu"},
        {9, 10, 3, 2, 3, 2, 3, 2, 1, 1, 0, 4, 1, "relu"},
        {9, 9, 2, 2, 3, 3, 1, 1, 2, 2, 1, 3, 1, "linear"},
        {9, 9, 2, 2, 3, 2, 1, 1, 2, 1, 0, 3, 1, "linear"},
        {5, 6, 4, 3, 1, 1, 1, 1, 1, 1, 0, 3, 1, "relu"},
        {5, 6, 4, 2, 1, 1, 2, 2, 1, 1, 1, 3, 1, "linear"},
        {4, 4, 1, 1, 4, 4, 1, 1, 1, 1, 0, 2, 1, "linear"},
        {3, 5, 20, 2, 1, 1, 1, 1, 1, 1, 0, 6, 1, "relu"},
        {28, 28, 1, 3, 3, 3, 1, 1, 1, 1, 1, 32, 1, "relu"},
        /* deep layers (CNN_CONV_DEEP_CIN input channels or more: packed kernels): VGG16's block5 at 32x32,
         * a column tail in the last 64-column panel, an input channel count that is no multiple of 16 */
        {2, 2, 256, 3, 3, 3, 1, 1, 1, 1, 1, 70, 1, "relu"},
        {4, 3, 260, 2, 3, 3, 1, 1, 1, 1, 0, 64, 0, "linear"},
    };
    /* The direct algorithm, within 1e-5 of (1 + |y|): Winograd's layers among these (the last two) round
     * differently, within its own bound relative to the sum of |terms| (test_winograd). */
    cnn_wino_allow(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv2d_case(&cases[i]);
    cnn_wino_allow(-1);
}

/* Kernel 2x2, padding same, stride 1: TensorFlow pads 0 rows above / columns left and 1 below / right.
 * x = [[1, 2], [3, 4]], k = [[1, 10], [100, 1000]] gives y = [[4321, 402], [43, 4]]
 * (padding at the top/left instead would give 1000 at the top left). */
static void test_conv2d_even_kernel_same_pads_bottom_right(void **state)
{
    (void)state;
    probe p;
    probe_open(&p, "Conv2D", "filters=1, kernel_size=2, padding=same", 2, 2, 1, 1);
    const float x[] = {1, 2, 3, 4}, k[] = {1, 10, 100, 1000}, want[] = {4321, 402, 43, 4};
    memcpy(p.x, x, sizeof x);
    memcpy(cnn_layer_param(p.l, 0), k, sizeof k);
    cnn_layer_param(p.l, 1)[0] = 0.0f;
    probe_forward(&p);
    assert_int_equal(p.l->out.h, 2);
    assert_int_equal(p.l->out.w, 2);
    for (int i = 0; i < 4; i++) assert_float_equal(p.y[i], want[i], 0.0f);
    probe_close(&p);
}

/* Stride 2, kernel 3, padding same on a 4x4 input: out 2x2, total padding 1, all of it after the input, so
 * output (0,0) sums x[0..2][0..2] and output (1,1) sums x[2..3][2..3]. */
static void test_conv2d_stride2_same_odd_padding(void **state)
{
    (void)state;
    probe p;
    probe_open(&p, "Conv2D", "filters=1, kernel_size=3, strides=2, padding=same, use_bias=false", 4, 4, 1, 1);
    for (int i = 0; i < 16; i++) p.x[i] = (float)(1 << (i % 8)) + (i >= 8 ? 1000.0f : 0.0f);
    for (int i = 0; i < 9; i++) cnn_layer_param(p.l, 0)[i] = 1.0f;
    probe_forward(&p);
    assert_int_equal(p.l->out.h, 2);
    float s00 = 0, s11 = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) s00 += p.x[r * 4 + c];
    for (int r = 2; r < 4; r++)
        for (int c = 2; c < 4; c++) s11 += p.x[r * 4 + c];
    assert_float_equal(p.y[0], s00, 0.0f);
    assert_float_equal(p.y[3], s11, 0.0f);
    probe_close(&p);
}

static void test_depthwise_and_separable_forward(void **state)
{
    (void)state;
    const struct {
        int h, w, c, n, k, s, same, dm;
        const char *act;
    } cases[] = {{6, 6, 3, 2, 3, 1, 1, 1, "relu"},
                 {7, 6, 2, 2, 3, 2, 1, 3, "linear"},
                 {8, 8, 2, 1, 2, 3, 0, 2, "relu"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char opts[160];
        ref_geom g = {cases[i].h, cases[i].w, cases[i].c,    cases[i].k, cases[i].k, cases[i].s, cases[i].s,
                      1,          1,          cases[i].same, 0,          0,          0,          0};
        ref_finish(&g);
        const int cd = cases[i].c * cases[i].dm, n = cases[i].n;
        snprintf(opts, sizeof opts,
                 "kernel_size=%d, strides=%d, padding=%s, depth_multiplier=%d, activation=%s", cases[i].k,
                 cases[i].s, cases[i].same ? "same" : "valid", cases[i].dm, cases[i].act);
        probe p;
        probe_open(&p, "DepthwiseConv2D", opts, cases[i].h, cases[i].w, cases[i].c, n);
        float *want = probe_floats(p.ny);
        ref_depthwise(&g, p.x, n, cnn_layer_param(p.l, 0), cnn_layer_param(p.l, 1), cases[i].dm, cases[i].act,
                      want);
        probe_forward(&p);
        assert_close(p.y, want, p.ny, 1e-5, opts);
        free(want);
        probe_close(&p);

        /* Separable = depthwise without bias, then a 1x1 convolution with bias and activation. */
        char sopts[200];
        snprintf(sopts, sizeof sopts, "filters=4, %s", opts);
        probe_open(&p, "SeparableConv2D", sopts, cases[i].h, cases[i].w, cases[i].c, n);
        size_t nt = (size_t)n * g.oh * g.ow * cd;
        float *t = probe_floats(nt);
        want = probe_floats(p.ny);
        ref_depthwise(&g, p.x, n, cnn_layer_param(p.l, 0), NULL, cases[i].dm, "linear", t);
        ref_geom pg = {g.oh, g.ow, cd, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
        ref_finish(&pg);
        ref_conv2d(&pg, t, n, cnn_layer_param(p.l, 1), cnn_layer_param(p.l, 2), 4, cases[i].act, want);
        probe_forward(&p);
        assert_close(p.y, want, p.ny, 1e-5, sopts);
        free(t);
        free(want);
        probe_close(&p);
    }
}

/* The lowering GEMMs against a double-precision reference: row and column tails of every width (masked
 * vectors), long sums split into blocks, both ways of reading A and reading it through offset tables, and
 * accumulation into C. */
static void test_conv_gemm(void **state)
{
    (void)state;
    const int shapes[][3] = {{1, 1, 1},    {5, 7, 3},    {6, 16, 9},    {7, 17, 10},    {13, 33, 288},
                             {12, 48, 64}, {11, 64, 31}, {19, 65, 577}, {6, 130, 1100}, {25, 200, 2}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], N = shapes[t][1], P = shapes[t][2];
        float *a = probe_floats((size_t)M * P), *b = probe_floats((size_t)P * N),
              *c = probe_floats((size_t)M * N), *c0 = probe_floats((size_t)M * N);
        probe_fill(a, (size_t)M * P, 4);
        probe_fill(b, (size_t)P * N, 5);
        probe_fill(c0, (size_t)M * N, 6);
        for (int trans = 0; trans < 2; trans++)
            for (int acc = 0; acc < 2; acc++) {
                /* A (M x P) row-major, or stored transposed (P x M) */
                const long sai = trans ? 1 : P, sap = trans ? M : 1;
                memcpy(c, c0, sizeof(float) * (size_t)M * N);
                cnn_gemm(M, N, P, a, sai, sap, b, N, c, N, acc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = acc ? c0[i * N + j] : 0.0;
                        for (int p = 0; p < P; p++) s += (double)a[i * sai + p * sap] * b[p * N + j];
                        if (fabs(c[i * N + j] - s) > 1e-4 * (1.0 + fabs(s)))
                            fail_msg("gemm %dx%dx%d trans %d acc %d: C[%d][%d] = %g, expected %g", M, N, P,
                                     trans, acc, i, j, c[i * N + j], s);
                    }
            }
        /* gathered through offset tables: A_p[i] = a[ri[i] + po[p]] */
        int *ri = calloc((size_t)M, sizeof(int)), *po = calloc((size_t)P, sizeof(int));
        assert_non_null(ri);
        assert_non_null(po);
        for (int i = 0; i < M; i++) ri[i] = (int)cnn_rng_below(9, 1, (uint64_t)i, (uint32_t)P);
        for (int p = 0; p < P; p++) po[p] = (int)cnn_rng_below(9, 2, (uint64_t)p, (uint32_t)(M * P - P + 1));
        for (int acc = 0; acc < 2; acc++) {
            memcpy(c, c0, sizeof(float) * (size_t)M * N);
            cnn_gemm_gather(M, N, P, a, ri, po, b, N, c, N, acc);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = acc ? c0[i * N + j] : 0.0;
                    for (int p = 0; p < P; p++) s += (double)a[ri[i] + po[p]] * b[p * N + j];
                    if (fabs(c[i * N + j] - s) > 1e-4 * (1.0 + fabs(s)))
                        fail_msg("gathered gemm %dx%dx%d acc %d: C[%d][%d] = %g, expected %g", M, N, P, acc,
                                 i, j, c[i * N + j], s);
                }
        }
        free(ri), free(po);
        free(a), free(b), free(c), free(c0);
    }
}

/* ---------------------------------------------------------------- gradient checks */

static void test_conv2d_gradients(void **state)
{
    (void)state;
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, activation=relu", 5, 5, 1, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, activation=relu", 5, 5, 2, 1, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, padding=same", 6, 6, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, padding=same, activation=relu", 7, 7, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=2, padding=same", 5, 6, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=4, padding=same, activation=relu", 6, 5, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, strides=2, padding=same, activation=relu", 7, 7, 2,
                    2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, strides=2, padding=same", 8, 8, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, strides=2", 8, 7, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=2, strides=3, padding=same", 8, 7, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, strides=3, activation=relu", 10, 9, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=(3,2), strides=(2,1), padding=same", 7, 6, 3, 2, 1,
                    TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=(1,3), activation=relu", 5, 6, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, dilation_rate=2, padding=same", 7, 7, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, use_bias=false, activation=relu", 5, 5, 2, 2, 1,
                    TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=1, activation=relu", 4, 5, 3, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=1, strides=2", 5, 5, 3, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=1, activation=relu", 3, 4, 20, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, padding=same, activation=gelu", 5, 5, 2, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, padding=same, activation=tanh", 5, 5, 2, 2, 1, TOL);
    /* frozen: dx only, as a convolution of dy with the flipped kernel (32 or more input channels, stride 1)
     * or by col2im (the others) */
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, padding=same, activation=tanh, trainable=false", 5,
                    5, 32, 2, 1, TOL);
    gc_assert_layer("Conv2D", "filters=4, kernel_size=(3,2), activation=relu, trainable=false", 6, 5, 33, 1,
                    1, TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=4, padding=same, trainable=false", 6, 5, 32, 1, 1, TOL);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, strides=2, padding=same, trainable=false", 7, 7, 2,
                    2, 1, TOL);
    /* deep (packed kernels; dx as a convolution, trainable or not) */
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, padding=same, activation=tanh", 2, 2, 256, 2, 1,
                    TOL);
    gc_assert_layer("Conv2D", "filters=2, kernel_size=3, padding=same, trainable=false", 3, 2, 257, 2, 1,
                    TOL);
}

static void test_depthwise_gradients(void **state)
{
    (void)state;
    gc_assert_layer("DepthwiseConv2D", "kernel_size=3, activation=relu", 5, 5, 3, 2, 1, TOL);
    gc_assert_layer("DepthwiseConv2D", "kernel_size=3, depth_multiplier=3, padding=same", 5, 6, 2, 2, 1, TOL);
    gc_assert_layer("DepthwiseConv2D", "kernel_size=2, depth_multiplier=3, padding=same, activation=relu", 6,
                    6, 2, 1, 1, TOL);
    gc_assert_layer("DepthwiseConv2D", "kernel_size=3, strides=2, padding=same, use_bias=false", 7, 8, 2, 2,
                    1, TOL);
    gc_assert_layer("DepthwiseConv2D", "kernel_size=(3,2), strides=3, depth_multiplier=2", 9, 8, 2, 2, 1,
                    TOL);
}

static void test_separable_gradients(void **state)
{
    (void)state;
    gc_assert_layer("SeparableConv2D", "filters=3, kernel_size=3", 5, 5, 2, 2, 1, TOL);
    gc_assert_layer("SeparableConv2D", "filters=3, kernel_size=3, activation=relu", 7, 7, 3, 2, 1, TOL);
    gc_assert_layer("SeparableConv2D",
                    "filters=3, kernel_size=3, depth_multiplier=3, padding=same, activation=relu", 6, 6, 3, 2,
                    1, TOL);
    gc_assert_layer("SeparableConv2D", "filters=2, kernel_size=2, strides=2, padding=same, use_bias=false", 7,
                    7, 2, 1, 1, TOL);
    gc_assert_layer("SeparableConv2D", "filters=2, kernel_size=3, strides=3, depth_multiplier=2", 8, 9, 2, 2,
                    1, TOL);
}

/* A 3x3 kernel, stride 1, padding same on a square image: the shape of most of the study's convolutions. */
static cnn_conv_geom same3x3(int size, int cin)
{
    return (cnn_conv_geom){.ih = size,
                           .iw = size,
                           .cin = cin,
                           .kh = 3,
                           .kw = 3,
                           .sh = 1,
                           .sw = 1,
                           .dh = 1,
                           .dw = 1,
                           .oh = size,
                           .ow = size,
                           .pt = 1,
                           .pl = 1};
}

/* The batch split: units of contiguous images covering the batch, chunks within the budget, a workspace that
 * never shrinks as the batch grows (the plan is made for the largest batch). */
static void test_batch_plan(void **state)
{
    (void)state;
    cnn_conv_geom g = same3x3(14, 32);
    size_t last = 0;
    for (int n = 1; n <= 600; n++) {
        cnn_conv_plan p = cnn_conv_plan_for(&g, 64, n);
        assert_true(p.units >= 1 && p.units <= CNN_CONV_UNITS && p.units <= n);
        assert_true(p.chunk >= 1 && p.cols * sizeof(float) <= CNN_CONV_BUDGET);
        assert_int_equal(p.partial, 288 * 64 + 64);
        assert_true(cnn_conv_plan_floats(&p) >= last);
        last = cnn_conv_plan_floats(&p);
        int next = 0;
        for (int u = 0; u < p.units; u++) {
            int first, count;
            cnn_conv_unit_range(&p, u, n, &first, &count);
            assert_int_equal(first, next);
            assert_true(count >= 1);
            next = first + count;
        }
        assert_int_equal(next, n);
    }
    /* 512 images: 32 units of 16, lowered 3 at a time (one image lowers to 196 * 288 floats and outputs
     * 196 * 64: 270 KiB in the 1 MiB budget) */
    cnn_conv_plan p = cnn_conv_plan_for(&g, 64, 512);
    assert_int_equal(p.units, 32);
    assert_int_equal(p.chunk, 3);
    /* huge kernels (VGG16 block5): fewer units, so that the gradient partials stay within their budget, but
     * still enough to keep several threads busy */
    g = same3x3(3, 512);
    p = cnn_conv_plan_for(&g, 512, 512);
    assert_true(p.units * p.partial * sizeof(float) <= CNN_CONV_PARTIAL_BUDGET && p.units >= 8);
    /* images larger than the chunk budget (VGG16 block1 at 56x56): one image per chunk, fewer units */
    g = same3x3(56, 64);
    p = cnn_conv_plan_for(&g, 64, 512);
    assert_int_equal(p.chunk, 1);
    assert_true(p.units * p.cols * sizeof(float) <= CNN_CONV_COLS_BUDGET && p.units >= 8);
    g.kh = g.kw = 1;
    p = cnn_conv_plan_for(&g, 64, 512);
    assert_int_equal(p.cols, 0); /* pointwise: no lowering */
    /* deep layers: VGG16's block5 at 32x32 (2x2 pixels, 512 channels), batch 64: GEMMs of at least
     * CNN_CONV_MIN_ROWS rows where the padded images and outputs fit the budget (25 images of 4 rows), not 32
     * units of 2 images */
    g = same3x3(2, 512);
    p = cnn_conv_plan_for(&g, 512, 64);
    assert_int_equal(p.units, 2);
    assert_int_equal(p.chunk, 25);
    /* block4 (4x4): 8 units of 8 images of 16 rows */
    g = same3x3(4, 512);
    p = cnn_conv_plan_for(&g, 512, 64);
    assert_int_equal(p.units, 8);
    assert_int_equal(p.chunk, 8);
    /* below CNN_CONV_DEEP_CIN channels the plan stays as the study's small models had it */
    g = same3x3(2, CNN_CONV_DEEP_CIN - 1);
    p = cnn_conv_plan_for(&g, 256, 64);
    assert_int_equal(p.units, 32);
    assert_int_equal(p.chunk, 2);
    /* and a deep layer's plan still never shrinks as the batch grows */
    g = same3x3(4, 256);
    last = 0;
    for (int n = 1; n <= 600; n++) {
        p = cnn_conv_plan_for(&g, 512, n);
        assert_true(p.units >= 1 && p.units <= n && p.chunk >= 1);
        assert_true(cnn_conv_plan_floats(&p) >= last);
        last = cnn_conv_plan_floats(&p);
    }
}

/* A tiny lowering budget forces one image per chunk: the chunked forward, the chunk-by-chunk accumulation of
 * the gradients inside a unit and the per-chunk col2im must agree with the run that lowers a unit at once and
 * with the finite differences; both for the GEMM path and for the thin-K loops. */
static void test_conv2d_chunked_lowering(void **state)
{
    (void)state;
    const struct {
        const char *opts;
        int c, gradcheck;
    } cases[] = {{"filters=4, kernel_size=3, strides=2, padding=same, activation=relu", 3, 1}, /* gathered */
                 {"filters=5, kernel_size=3, padding=same, activation=tanh", 1, 1},
                 {"filters=20, kernel_size=3, padding=same, activation=relu", 1, 0}, /* thin loops */
                 {"filters=6, kernel_size=3, activation=relu", 4, 1}}; /* valid: no padded copy */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        probe whole, chunked;
        probe_open(&whole, "Conv2D", cases[i].opts, 9, 8, cases[i].c, 70);
        probe_step(&whole, 1);
        cnn_conv_set_budget(1);
        probe_open(&chunked, "Conv2D", cases[i].opts, 9, 8, cases[i].c, 70);
        probe_step(&chunked, 1);
        if (cases[i].gradcheck) gc_assert_layer("Conv2D", cases[i].opts, 7, 7, cases[i].c, 3, 1, TOL);
        cnn_conv_set_budget(0);
        assert_int_equal(cnn_conv_get_budget(), CNN_CONV_BUDGET);
        assert_close(chunked.y, whole.y, whole.ny, 1e-6, "chunked forward");
        assert_close(chunked.dx, whole.dx, whole.nx, 1e-6, "chunked dx");
        assert_close(chunked.m->grads, whole.m->grads, whole.m->nparams, 1e-5, "chunked parameter gradients");
        probe_close(&whole);
        probe_close(&chunked);
    }
}

/* The first trained layer runs backward without dx (ctx.need_dx = 0), which takes other branches (the thin
 * loops then keep dy untouched): the parameter gradients must be the same. Frozen layers give dx only, by the
 * same col2im here (fewer than 32 input channels; frozen layers with more convolve dy instead, to within
 * rounding of this dx: test_conv_frozen). */
static void test_backward_without_dx_and_frozen(void **state)
{
    (void)state;
    const struct {
        const char *type, *opts;
        int c;
    } layers[] = {
        {"Conv2D", "filters=20, kernel_size=3, padding=same, activation=relu", 1}, /* thin loops */
        {"Conv2D", "filters=8, kernel_size=3, padding=same, activation=relu", 3},  /* gathered, padded */
        {"Conv2D", "filters=8, kernel_size=3, strides=2, activation=relu", 3},     /* gathered, in place */
        {"Conv2D", "filters=8, kernel_size=1, activation=relu", 20},               /* pointwise */
        {"Conv2D", "filters=8, kernel_size=3, activation=gelu", 3},                /* kept pre-activation */
        {"DepthwiseConv2D", "kernel_size=3, depth_multiplier=2, activation=relu", 3},
        {"SeparableConv2D", "filters=5, kernel_size=3, depth_multiplier=2, activation=relu", 3},
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        probe_assert_without_dx_and_frozen(layers[i].type, layers[i].opts, 9, 8, layers[i].c, 37);
}

/* The convolutions give bit-identical results for 1 and 2 threads on every kernel path this CPU has (the
 * batch split, the GEMMs' row blocks and every sum order are fixed). */
static void test_threads_bit_identical(void **state)
{
    (void)state;
    const struct {
        const char *type, *opts;
    } layers[] = {
        {"Conv2D", "filters=32, kernel_size=3, padding=same, activation=relu"},
        {"Conv2D", "filters=8, kernel_size=3, strides=2, activation=relu"},
        {"DepthwiseConv2D", "kernel_size=3, depth_multiplier=2, padding=same, activation=relu"},
        {"SeparableConv2D", "filters=8, kernel_size=3, depth_multiplier=3, strides=2, padding=same"},
    };
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
            probe_assert_threads_bit_identical(layers[i].type, layers[i].opts, 14, 14, 16, 45, 1);
        /* deep layers (packed kernels, dx as a convolution), trainable and frozen: block5 at 32x32 and 56x56
         */
        probe_assert_threads_bit_identical(
            "Conv2D", "filters=70, kernel_size=3, padding=same, activation=relu", 2, 2, 256, 45, 1);
        probe_assert_threads_bit_identical(
            "Conv2D", "filters=64, kernel_size=3, padding=same, activation=relu, trainable=false", 3, 3, 256,
            45, 1);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* ---------------------------------------------------------------- shapes, parameters, errors */

static void assert_out_shape(const char *type, const char *opts, int h, int w, int c, int oh, int ow, int oc)
{
    cnn_model *m = cnn_model_create("shape", h, w, c);
    if (cnn_model_add(m, type, opts) || cnn_model_build(m, 1))
        fail_msg("%s(%s): %s", type, opts, cnn_errmsg());
    const cnn_shape s = m->layers[0].out;
    if (s.h != oh || s.w != ow || s.c != oc)
        fail_msg("%s(%s) on %dx%dx%d: output %dx%dx%d, expected %dx%dx%d", type, opts, h, w, c, s.h, s.w, s.c,
                 oh, ow, oc);
    cnn_model_free(m);
}

static void test_output_shapes_follow_keras(void **state)
{
    (void)state;
    assert_out_shape("Conv2D", "filters=32, kernel_size=3, strides=2, padding=same", 28, 28, 1, 14, 14, 32);
    assert_out_shape("Conv2D", "filters=64, kernel_size=3", 7, 7, 64, 5, 5, 64);
    assert_out_shape("Conv2D", "filters=32, kernel_size=3, padding=same", 28, 28, 1, 28, 28, 32);
    assert_out_shape("Conv2D", "filters=8, kernel_size=3, strides=2", 28, 28, 1, 13, 13, 8);
    assert_out_shape("Conv2D", "filters=8, kernel_size=3, strides=2", 7, 8, 1, 3, 3, 8);
    assert_out_shape("Conv2D", "filters=8, kernel_size=3, strides=3, padding=same", 7, 8, 1, 3, 3, 8);
    assert_out_shape("Conv2D", "filters=8, kernel_size=(5,3), strides=(1,2)", 9, 9, 2, 5, 4, 8);
    assert_out_shape("Conv2D", "filters=4, kernel_size=3, dilation_rate=2", 9, 9, 2, 5, 5, 4);
    assert_out_shape("DepthwiseConv2D", "kernel_size=3, depth_multiplier=3, padding=same", 56, 56, 3, 56, 56,
                     9);
    assert_out_shape("SeparableConv2D", "filters=3, kernel_size=3, depth_multiplier=3, padding=same", 56, 56,
                     3, 56, 56, 3);

    int o, pad;
    const int axis[][6] = {/* in, k, s, same, out, pad_before */
                           {28, 3, 2, 1, 14, 0}, {5, 3, 2, 1, 3, 1}, {6, 3, 2, 1, 3, 0}, {4, 2, 1, 1, 4, 0},
                           {7, 4, 1, 1, 7, 1},   {7, 3, 1, 0, 5, 0}, {8, 3, 3, 0, 2, 0}, {1, 5, 1, 1, 1, 2}};
    for (size_t i = 0; i < sizeof axis / sizeof axis[0]; i++) {
        assert_int_equal(cnn_conv_out_len(axis[i][0], axis[i][1], axis[i][2], 1, axis[i][3], &o, &pad), 0);
        assert_int_equal(o, axis[i][4]);
        assert_int_equal(pad, axis[i][5]);
    }
    assert_int_equal(cnn_conv_out_len(3, 5, 1, 1, CNN_PAD_VALID, &o, &pad), -1);
    assert_int_equal(cnn_conv_out_len(5, 3, 1, 2, CNN_PAD_VALID, &o, &pad), 0); /* dilated kernel spans 5 */
    assert_int_equal(o, 1);
}

static void test_parameters_and_init(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("p", 28, 28, 1);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=32, kernel_size=3, activation=relu"), 0);
    assert_int_equal(cnn_model_add(m, "DepthwiseConv2D", "kernel_size=3, depth_multiplier=3, use_bias=false"),
                     0);
    assert_int_equal(cnn_model_add(m, "SeparableConv2D", "filters=5, kernel_size=3, depth_multiplier=2"), 0);
    assert_int_equal(cnn_model_build(m, 42), 0);
    const cnn_layer *c = &m->layers[0], *d = &m->layers[1], *s = &m->layers[2];
    assert_string_equal(c->name, "conv2d");
    assert_string_equal(d->name, "depthwise_conv2d");
    assert_string_equal(s->name, "separable_conv2d");
    assert_int_equal(c->nparams, 2);
    assert_string_equal(c->params[0].name, "kernel");
    assert_int_equal(c->params[0].dim[0], 3);
    assert_int_equal(c->params[0].dim[2], 1);
    assert_int_equal(c->params[0].dim[3], 32);
    assert_int_equal(c->params[0].fan_in, 9);
    assert_int_equal(c->params[0].fan_out, 288);
    assert_int_equal(d->nparams, 1);
    assert_string_equal(d->params[0].name, "depthwise_kernel");
    assert_int_equal(d->params[0].size, 3 * 3 * 32 * 3);
    assert_int_equal(d->params[0].fan_in, 9 * 32);
    assert_int_equal(d->params[0].fan_out, 9 * 3);
    assert_int_equal(s->nparams, 3);
    assert_string_equal(s->params[1].name, "pointwise_kernel");
    assert_int_equal(s->params[1].dim[2], 96 * 2);
    assert_int_equal(s->params[1].fan_in, 192);
    assert_int_equal(s->params[1].fan_out, 5);
    assert_int_equal(cnn_model_num_params(m, 0), 320 + 864 + (9 * 96 * 2 + 192 * 5 + 5));

    /* glorot_uniform over the whole range with fan_in = kh*kw*cin, fan_out = kh*kw*cout; zero bias */
    const float *w = cnn_layer_param(c, 0), limit = sqrtf(6.0f / (9 + 288));
    float lo = 1, hi = -1;
    for (int i = 0; i < 288; i++) lo = fminf(lo, w[i]), hi = fmaxf(hi, w[i]);
    assert_true(lo >= -limit && hi <= limit && hi > 0.9f * limit && lo < -0.9f * limit);
    for (int i = 0; i < 32; i++) assert_true(cnn_layer_param(c, 1)[i] == 0.0f);
    cnn_model_free(m);
}

static void test_regularizer_reaches_kernel(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("reg", 13, 13, 32);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=64, kernel_size=3, kernel_regularizer=l2(0.001)"),
                     0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_float_equal(m->layers[0].params[0].l2, 0.001f, 0.0f);
    assert_float_equal(m->layers[0].params[1].l2, 0.0f, 0.0f);
    cnn_model_free(m);
}

static void test_build_errors(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("err", 3, 3, 1);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=4, kernel_size=5, name=too_big"), 0);
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_SHAPE, "too_big");
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_SHAPE, "does not fit the 3x3 input");
    cnn_model_free(m);

    m = cnn_model_create("err", 3, 3, 1);
    tu_assert_error(cnn_model_add(m, "Conv2D", "kernel_size=3"), CNN_ERR_INVALID,
                    "missing required option 'filters'");
    tu_assert_error(cnn_model_add(m, "Conv2D", "filters=3"), CNN_ERR_INVALID, "'kernel_size'");
    tu_assert_error(cnn_model_add(m, "Conv2D", "filters=3, kernel_size=3, padding=full"), CNN_ERR_INVALID,
                    "valid, same");
    tu_assert_error(cnn_model_add(m, "Conv2D", "filters=3, kernel_size=3, strides=0"), CNN_ERR_INVALID,
                    "strides");
    tu_assert_error(cnn_model_add(m, "Conv2D", "filters=3, kernel_size=3, strides=2, dilation_rate=2"),
                    CNN_ERR_INVALID, "dilation_rate");
    tu_assert_error(cnn_model_add(m, "Conv2D", "filters=3, kernel_sise=3"), CNN_ERR_INVALID, "kernel_size");
    tu_assert_error(cnn_model_add(m, "SeparableConv2D", "kernel_size=3"), CNN_ERR_INVALID, "'filters'");
    tu_assert_error(cnn_model_add(m, "DepthwiseConv2D", "kernel_size=3, depth_multiplier=0"), CNN_ERR_INVALID,
                    "depth_multiplier");
    assert_int_equal(cnn_model_add(m, "DepthwiseConv2D", "kernel_size=(2,4), name=wide"), 0);
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_SHAPE, "wide");
    cnn_model_free(m);

    m = cnn_model_create("vec", 1, 1, 16);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=2, kernel_size=1, name=on_vector"), 0);
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_SHAPE, "on_vector");
    cnn_model_free(m);
}

/* The study's CNNs (spec 4.2, 4.3), built from the same layers as the cnnlab recipes. */
static size_t study_params(int same)
{
    cnn_model *m = cnn_model_create(same ? "Model_2_s2" : "Model_2", 28, 28, 1);
    const char *pad = same ? ", padding=same" : "";
    char c1[96], c2[96];
    snprintf(c1, sizeof c1, "filters=32, kernel_size=3, activation=relu%s", pad);
    snprintf(c2, sizeof c2, "filters=64, kernel_size=3, activation=relu%s", pad);
    const char *layers[][2] = {{"Conv2D", c1},
                               {"MaxPooling2D", same ? "pool_size=2, strides=2" : "pool_size=2"},
                               {"Conv2D", c2},
                               {"MaxPooling2D", same ? "pool_size=2, strides=2" : "pool_size=2"},
                               {"Conv2D", "filters=64, kernel_size=3, activation=relu"},
                               {"Flatten", ""},
                               {"Dense", "units=128, activation=relu"},
                               {"Dense", "units=10, activation=softmax"}};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (cnn_model_add(m, layers[i][0], layers[i][1])) fail_msg("%s: %s", layers[i][0], cnn_errmsg());
    if (cnn_model_build(m, 1)) fail_msg("build: %s", cnn_errmsg());
    assert_int_equal(m->layers[5].out.c, same ? 1600 : 576);
    size_t n = cnn_model_num_params(m, 0);
    cnn_model_free(m);
    return n;
}

static void test_study_parameter_counts(void **state)
{
    (void)state;
    assert_int_equal(study_params(0), 130890);
    assert_int_equal(study_params(1), 261962);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_forward_matches_reference),
        cmocka_unit_test(test_conv2d_even_kernel_same_pads_bottom_right),
        cmocka_unit_test(test_conv2d_stride2_same_odd_padding),
        cmocka_unit_test(test_depthwise_and_separable_forward),
        cmocka_unit_test(test_conv_gemm),
        cmocka_unit_test(test_conv2d_gradients),
        cmocka_unit_test(test_depthwise_gradients),
        cmocka_unit_test(test_separable_gradients),
        cmocka_unit_test(test_batch_plan),
        cmocka_unit_test(test_conv2d_chunked_lowering),
        cmocka_unit_test(test_backward_without_dx_and_frozen),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_output_shapes_follow_keras),
        cmocka_unit_test(test_parameters_and_init),
        cmocka_unit_test(test_regularizer_reaches_kernel),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_study_parameter_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
