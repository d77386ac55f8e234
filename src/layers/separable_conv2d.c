/* SeparableConv2D: a depthwise convolution (no bias, no activation) followed by a 1x1 convolution with bias
 * and activation, Keras semantics.
 *
 *   x        (n, ih, iw, cin)
 *   dk       (kh, kw, cin, dm)           Keras "depthwise_kernel"
 *   pk       (1, 1, cin*dm, filters)     Keras "pointwise_kernel" = a (cd, filters) matrix, cd = cin*dm
 *   b        (filters)
 *   t        (n*P, cd)                   the depthwise output, P = oh*ow (in the workspace)
 *   y        (n*P, filters)              = f(t pk + b)
 *   work     t, then n * kh*kw*cd kernel-gradient partial sums, then pk^T (filters, cd)
 *
 * Backward recomputes t from x (cheap: kh*kw multiply-adds per value) rather than keeping it per sample,
 * then reuses its space for dt = dy pk^T once dpk = t^T dy is taken. The three pointwise products run on
 * cnn_gemm_parallel (fixed row blocks, fixed sums): bit-identical for any thread count. */
#include <stdio.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "layers/activation.h"
#include "layers/conv_common.h"
#include "layers/layer.h"

typedef struct sepconv_cfg {
    int filters;
    int dm;
    int use_bias;
    cnn_conv_opts conv;
    cnn_conv_geom g;
} sepconv_cfg;

enum { P_DEPTH = 0, P_POINT = 1, P_BIAS = 2 };

static int sepconv_configure(cnn_layer *l, cnn_opts *o)
{
    sepconv_cfg *c = l->cfg;
    cnn_first_error e = {0};
    cnn_first_error_keep(&e, cnn_opts_int(o, "filters", 0, 1, 1 << 20, &c->filters));
    cnn_conv_read_opts(o, &c->conv, &e);
    cnn_first_error_keep(&e, cnn_opts_int(o, "depth_multiplier", 1, 1, 1 << 16, &c->dm));
    cnn_first_error_keep(&e, cnn_opts_bool(o, "use_bias", 1, &c->use_bias));
    cnn_first_error_keep(&e, cnn_layer_read_activation(l, o));
    return cnn_first_error_result(&e);
}

static int sepconv_build(cnn_layer *l)
{
    sepconv_cfg *c = l->cfg;
    int rc = cnn_isa_check(); /* an unusable CNNLAB_ISA fails here, before any kernel runs */
    if (!rc) rc = cnn_conv_geometry(l, &c->conv, &c->g);
    if (rc) return rc;
    const cnn_conv_geom *g = &c->g;
    const int taps = g->kh * g->kw, cd = g->cin * c->dm;
    l->out = cnn_shape_hwc(g->oh, g->ow, c->filters);
    /* Keras's glorot fans of each tensor's own shape (receptive field x last two axes). */
    int k = cnn_layer_add_param(l, "depthwise_kernel", 4, (int[]){g->kh, g->kw, g->cin, c->dm}, 1,
                                CNN_INIT_GLOROT_UNIFORM, taps * g->cin, taps * c->dm);
    if (k < 0) return k;
    k = cnn_layer_add_param(l, "pointwise_kernel", 4, (int[]){1, 1, cd, c->filters}, 1,
                            CNN_INIT_GLOROT_UNIFORM, cd, c->filters);
    if (k < 0) return k;
    if (c->use_bias) {
        int b = cnn_layer_add_param(l, "bias", 1, (int[]){c->filters}, 1, CNN_INIT_ZEROS, 0, 0);
        if (b < 0) return b;
    }
    l->scratch_per_sample = cnn_act_needs_input(l->act_run) ? cnn_shape_size(l->out) : 0;
    return CNN_OK;
}

static size_t sepconv_t_size(const sepconv_cfg *c, int n)
{
    return (size_t)n * cnn_conv_pixels(&c->g) * c->g.cin * c->dm;
}

static size_t sepconv_partial_size(const sepconv_cfg *c, int n)
{
    return (size_t)n * c->g.kh * c->g.kw * c->g.cin * c->dm;
}

static size_t sepconv_workspace(const cnn_layer *l, int n)
{
    const sepconv_cfg *c = l->cfg;
    return sepconv_t_size(c, n) + sepconv_partial_size(c, n) + (size_t)c->g.cin * c->dm * c->filters;
}

typedef struct sepconv_epilogue {
    const cnn_layer *l;
    float *y;
} sepconv_epilogue;

/* Rows [first, first + count) of y, just computed by the pointwise GEMM: bias and activation (keeping the
 * pre-activation when backward needs it) while they are in cache. */
static void forward_rows(void *arg, int first, int count)
{
    const sepconv_epilogue *e = arg;
    const cnn_layer *l = e->l;
    const sepconv_cfg *c = l->cfg;
    const size_t o = (size_t)first * c->filters;
    cnn_conv_bias_act(l->act_run, e->y + o, c->use_bias ? cnn_layer_param(l, P_BIAS) : NULL,
                      l->scratch ? l->scratch + o : NULL, (size_t)count, c->filters);
}

static void sepconv_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    const sepconv_cfg *c = l->cfg;
    const int rows = n * (int)cnn_conv_pixels(&c->g), cd = c->g.cin * c->dm, F = c->filters;
    float *t = ctx->work;
    sepconv_epilogue e = {l, y};
    cnn_dw_forward(&c->g, c->dm, x, cnn_layer_param(l, P_DEPTH), NULL, t, n);
    cnn_gemm_parallel(rows, F, cd, t, cd, 1, cnn_layer_param(l, P_POINT), F, y, F, 0, forward_rows, &e);
}

/* pkt (F, cd) = pk^T, so that dt = dy pk^T reads its B operand row-major. */
static void transpose_pointwise(const float *pk, int cd, int F, float *pkt)
{
    for (int k = 0; k < cd; k++)
        for (int f = 0; f < F; f++) pkt[(size_t)f * cd + k] = pk[(size_t)k * F + f];
}

static void sepconv_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                             float *dx, int n)
{
    const sepconv_cfg *c = l->cfg;
    const int rows = n * (int)cnn_conv_pixels(&c->g), cd = c->g.cin * c->dm, F = c->filters;
    float *t = ctx->work, *partial = t + sepconv_t_size(c, n), *pkt = partial + sepconv_partial_size(c, n);
    cnn_act_backward(l->act_run, l->scratch, y, dy, (size_t)rows, (size_t)F);
    if (l->trainable) {
        /* dpk (cd, F) = t^T dy: A = t read transposed; every element sums over the batch in order. */
        cnn_dw_forward(&c->g, c->dm, x, cnn_layer_param(l, P_DEPTH), NULL, t, n);
        cnn_gemm_parallel(cd, F, rows, t, 1, cd, dy, F, cnn_layer_grad(l, P_POINT), F, 0, NULL, NULL);
        if (c->use_bias) cnn_column_sums(dy, cnn_layer_grad(l, P_BIAS), (size_t)rows, F);
    }
    if (!l->trainable && !ctx->need_dx) return;
    /* dt overwrites t, which is no longer needed. */
    transpose_pointwise(cnn_layer_param(l, P_POINT), cd, F, pkt);
    cnn_gemm_parallel(rows, cd, F, dy, F, 1, pkt, cd, t, cd, 0, NULL, NULL);
    if (l->trainable) cnn_dw_backward_kernel(&c->g, c->dm, x, t, cnn_layer_grad(l, P_DEPTH), partial, n);
    if (ctx->need_dx) cnn_dw_backward_input(&c->g, c->dm, t, cnn_layer_param(l, P_DEPTH), dx, n);
}

/* The pointwise GEMM: (n*P, filters, cin*dm). */
static void sepconv_gemm_shape(const cnn_layer *l, int n, int mnk[3])
{
    const sepconv_cfg *c = l->cfg;
    mnk[0] = n * (int)cnn_conv_pixels(&c->g);
    mnk[1] = c->filters;
    mnk[2] = c->g.cin * c->dm;
}

static double sepconv_flops(const cnn_layer *l, int n)
{
    const sepconv_cfg *c = l->cfg;
    int mnk[3];
    sepconv_gemm_shape(l, n, mnk);
    return 2.0 * mnk[0] * mnk[2] * (c->g.kh * c->g.kw + c->filters);
}

static void sepconv_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const sepconv_cfg *c = l->cfg;
    int k = snprintf(buf, cap, "filters=%d ", c->filters);
    if (k < 0 || (size_t)k >= cap) return;
    int j = cnn_conv_describe(&c->conv, buf + k, cap - (size_t)k);
    if (j < 0 || (size_t)(k + j) >= cap) return;
    snprintf(buf + k + j, cap - (size_t)(k + j), " x%d %s", c->dm, cnn_act_name(l->act));
}

const cnn_layer_ops cnn_separable_conv2d_ops = {
    .type = "SeparableConv2D",
    .auto_name = "separable_conv2d",
    .positional = {"filters"},
    .cfg_size = sizeof(sepconv_cfg),
    .configure = sepconv_configure,
    .build = sepconv_build,
    .workspace = sepconv_workspace,
    .forward = sepconv_forward,
    .backward = sepconv_backward,
    .describe = sepconv_describe,
    .flops = sepconv_flops,
    .gemm_shape = sepconv_gemm_shape,
};
