/* Conv2D: y = f(conv(x, W) + b), Keras semantics (NHWC, padding valid|same with TensorFlow's split of odd
 * padding, strides, dilation_rate).
 *
 *   x     (n, ih, iw, cin)
 *   W     (kh, kw, cin, filters)   Keras kernel layout = a (K, filters) matrix, K = kh*kw*cin
 *   b     (filters)
 *   y     (n, oh, ow, filters)     = (n*P, filters), P = oh*ow
 *   work  per unit: cols (chunk*P, K), the lowered patches of a chunk of images (conv_common.h),
 *         then K*filters + filters partial sums of dW and db
 *
 * The convolution is a GEMM per chunk of images: y_chunk = cols_chunk W. The batch is split into units of
 * images (cnn_conv_plan_for); one thread lowers, multiplies, adds the bias and applies the activation for a
 * unit, chunk by chunk, so the patches never leave that core's cache and the threads never wait for each
 * other inside a layer. A chunk keeps the patch matrix within a budget: a whole batch of VGG-sized images
 * would lower to gigabytes.
 * Backward lowers x again instead of keeping the patches from forward: im2col costs a fraction of the GEMMs,
 * and keeping P*K floats per sample would multiply the activation memory by K.
 *   dW  = sum over units of (sum over the unit's chunks of cols^T dy), added in unit order
 *   db  = the same for the column sums of dy
 *   dx  = col2im(dy W^T), chunk by chunk into the chunk's own images
 * A 1x1 stride-1 kernel needs no lowering: x already is the (n*P, cin) matrix. Kernels with few taps
 * (K <= SMALL_K, e.g. a 3x3 on a gray image) use plain loops: BLAS is slow at such a thin inner dimension. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "layers/activation.h"
#include "layers/conv_common.h"
#include "layers/layer.h"

typedef struct conv2d_cfg {
    int filters;
    int use_bias;
    float l1, l2;
    cnn_conv_opts conv;
    cnn_conv_geom g;
} conv2d_cfg;

static int conv2d_configure(cnn_layer *l, cnn_opts *o)
{
    conv2d_cfg *c = l->cfg;
    cnn_first_error e = {0};
    cnn_first_error_keep(&e, cnn_opts_int(o, "filters", 0, 1, 1 << 20, &c->filters));
    cnn_conv_read_opts(o, &c->conv, &e);
    cnn_first_error_keep(&e, cnn_opts_bool(o, "use_bias", 1, &c->use_bias));
    cnn_first_error_keep(&e, cnn_layer_read_activation(l, o));
    cnn_first_error_keep(&e, cnn_layer_read_regularizer(o, &c->l1, &c->l2));
    return cnn_first_error_result(&e);
}

static int conv2d_build(cnn_layer *l)
{
    conv2d_cfg *c = l->cfg;
    int rc = cnn_conv_geometry(l, &c->conv, &c->g);
    if (rc) return rc;
    const cnn_conv_geom *g = &c->g;
    const int taps = g->kh * g->kw;
    l->out = cnn_shape_hwc(g->oh, g->ow, c->filters);
    int k = cnn_layer_add_param(l, "kernel", 4, (int[]){g->kh, g->kw, g->cin, c->filters}, 1,
                                CNN_INIT_GLOROT_UNIFORM, taps * g->cin, taps * c->filters);
    if (k < 0) return k;
    l->params[k].l1 = c->l1;
    l->params[k].l2 = c->l2;
    if (c->use_bias) {
        int b = cnn_layer_add_param(l, "bias", 1, (int[]){c->filters}, 1, CNN_INIT_ZEROS, 0, 0);
        if (b < 0) return b;
    }
    /* GELU's derivative needs the pre-activation, kept per sample. */
    l->scratch_per_sample = cnn_act_needs_input(l->act_run) ? cnn_shape_size(l->out) : 0;
    return CNN_OK;
}

enum { SMALL_K = 16 };

static size_t conv2d_workspace(const cnn_layer *l, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_plan p = cnn_conv_plan_for(&c->g, c->filters, n);
    return cnn_conv_plan_floats(&p);
}

/* y (rows, F) = a (rows, K) W (K, F) + b, for a thin K: each output row stays in L1 while the K taps are
 * added to it. */
static void small_k_forward(int rows, int K, int F, const float *a, const float *w, const float *b, float *y)
{
    for (int r = 0; r < rows; r++) {
        float *restrict yr = y + (size_t)r * F;
        const float *ar = a + (size_t)r * K;
        for (int f = 0; f < F; f++) yr[f] = b ? b[f] : 0.0f;
        for (int k = 0; k < K; k++) {
            const float av = ar[k], *restrict wk = w + (size_t)k * F;
            for (int f = 0; f < F; f++) yr[f] += av * wk[f];
        }
    }
}

/* dw (K, F) += a^T dy over rows, for a thin K: dw stays in L1. */
static void small_k_weight_grad(int rows, int K, int F, const float *a, const float *dy, float *dw)
{
    for (int r = 0; r < rows; r++) {
        const float *ar = a + (size_t)r * K, *restrict dr = dy + (size_t)r * F;
        for (int k = 0; k < K; k++) {
            const float av = ar[k];
            float *restrict dk = dw + (size_t)k * F;
            for (int f = 0; f < F; f++) dk[f] += av * dr[f];
        }
    }
}

/* y_chunk (rows, F) = act(a W + b), a = the chunk's patches or, pointwise, its input. */
static void forward_chunk(const cnn_layer *l, const float *a, int rows, float *y, float *z)
{
    const conv2d_cfg *c = l->cfg;
    const int F = c->filters, K = (int)cnn_conv_k(&c->g);
    const float *w = cnn_layer_param(l, 0), *b = c->use_bias ? cnn_layer_param(l, 1) : NULL;
    if (K <= SMALL_K) {
        small_k_forward(rows, K, F, a, w, b, y);
        b = NULL;
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, F, K, 1.0f, a, K, w, F, 0.0f, y, F);
    }
    cnn_conv_bias_act(l->act_run, y, b, z, (size_t)rows, F);
}

static void conv2d_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_conv_pixels(g) * c->filters;
    const cnn_conv_plan p = cnn_conv_plan_for(g, c->filters, n);
    const int P = (int)cnn_conv_pixels(g), pointwise = cnn_conv_is_pointwise(g);
#pragma omp parallel for schedule(static) if (p.units > 1 && cnn_conv_blas_nests())
    for (int u = 0; u < p.units; u++) {
        float *cols = ctx->work + (size_t)u * p.cols;
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        for (int i0 = first; i0 < first + count; i0 += p.chunk) {
            const int cnt = first + count - i0 < p.chunk ? first + count - i0 : p.chunk;
            const float *xc = x + (size_t)i0 * in_img;
            if (!pointwise) cnn_im2col(g, xc, cnt, cols);
            forward_chunk(l, pointwise ? xc : cols, cnt * P, y + (size_t)i0 * out_img,
                          l->scratch ? l->scratch + (size_t)i0 * out_img : NULL);
        }
    }
}

/* acc[j] (+)= sum over rows of dy[r][j]. */
static void add_column_sums(const float *dy, int rows, int F, float *acc)
{
    for (int r = 0; r < rows; r++) {
        const float *restrict d = dy + (size_t)r * F;
        for (int j = 0; j < F; j++) acc[j] += d[j];
    }
}

typedef struct chunk_io {
    const float *x, *y, *z; /* input, output, pre-activation (NULL unless kept) */
    float *dy, *dx;
    int cnt; /* images */
} chunk_io;

/* One chunk of backward: activation gradient, then the unit's dW/db partials (pw, pb), then dx. */
static void backward_chunk(const cnn_layer *l, int need_dx, const chunk_io *io, float *cols, float *pw,
                           float *pb, int first_chunk)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, K = (int)cnn_conv_k(g), rows = io->cnt * (int)cnn_conv_pixels(g);
    const int pointwise = cnn_conv_is_pointwise(g);
    cnn_act_backward(l->act_run, io->z, io->y, io->dy, (size_t)rows, (size_t)F);
    if (l->trainable) {
        if (pb) add_column_sums(io->dy, rows, F, pb);
        const float *a = pointwise ? io->x : cols;
        if (!pointwise) cnn_im2col(g, io->x, io->cnt, cols);
        if (K <= SMALL_K)
            small_k_weight_grad(rows, K, F, a, io->dy, pw);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, F, rows, 1.0f, a, K, io->dy, F,
                        first_chunk ? 0.0f : 1.0f, pw, F);
    }
    if (need_dx) {
        float *dcols = pointwise ? io->dx : cols;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, K, F, 1.0f, io->dy, F,
                    cnn_layer_param(l, 0), F, 0.0f, dcols, K);
        if (!pointwise) cnn_col2im(g, dcols, io->cnt, io->dx);
    }
}

static void conv2d_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                            float *dx, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_conv_pixels(g) * c->filters;
    const cnn_conv_plan p = cnn_conv_plan_for(g, c->filters, n);
    const size_t kf = cnn_conv_k(g) * c->filters;
    float *partials = ctx->work + (size_t)p.units * p.cols;
#pragma omp parallel for schedule(static) if (p.units > 1 && cnn_conv_blas_nests())
    for (int u = 0; u < p.units; u++) {
        float *cols = ctx->work + (size_t)u * p.cols, *pw = partials + (size_t)u * p.partial;
        float *pb = c->use_bias ? pw + kf : NULL;
        /* The small-K kernel and the bias sums accumulate from zero; the GEMM overwrites on the first chunk.
         */
        memset(pw, 0, sizeof(float) * p.partial);
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        for (int i0 = first; i0 < first + count; i0 += p.chunk) {
            const size_t o = (size_t)i0 * out_img;
            const chunk_io io = {.x = x + (size_t)i0 * in_img,
                                 .y = y + o,
                                 .z = l->scratch ? l->scratch + o : NULL,
                                 .dy = dy + o,
                                 .dx = dx + (size_t)i0 * in_img,
                                 .cnt = first + count - i0 < p.chunk ? first + count - i0 : p.chunk};
            backward_chunk(l, ctx->need_dx, &io, cols, pw, pb, i0 == first);
        }
    }
    if (l->trainable) {
        cnn_conv_sum_partials(partials, p.partial, p.units, kf, cnn_layer_grad(l, 0));
        if (c->use_bias)
            cnn_conv_sum_partials(partials + kf, p.partial, p.units, c->filters, cnn_layer_grad(l, 1));
    }
}

static void conv2d_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const conv2d_cfg *c = l->cfg;
    int k = snprintf(buf, cap, "filters=%d ", c->filters);
    if (k < 0 || (size_t)k >= cap) return;
    int j = cnn_conv_describe(&c->conv, buf + k, cap - (size_t)k);
    if (j < 0 || (size_t)(k + j) >= cap) return;
    snprintf(buf + k + j, cap - (size_t)(k + j), " %s", cnn_act_name(l->act));
}

const cnn_layer_ops cnn_conv2d_ops = {
    .type = "Conv2D",
    .auto_name = "conv2d",
    .cfg_size = sizeof(conv2d_cfg),
    .configure = conv2d_configure,
    .build = conv2d_build,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
};
