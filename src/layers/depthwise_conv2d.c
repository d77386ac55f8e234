/* DepthwiseConv2D: every input channel convolved with its own depth_multiplier filters, Keras semantics.
 *
 *   x        (n, ih, iw, cin)
 *   k        (kh, kw, cin, dm)       Keras "depthwise_kernel"; output channel c*dm + m
 *   b        (cin*dm)
 *   y        (n, oh, ow, cin*dm)
 *   work     (n, kh*kw*cin*dm)       per-image kernel-gradient partial sums (backward only)
 *
 * A depthwise convolution does kh*kw multiply-adds per output value, too few for a GEMM lowering to pay:
 * direct loops over output rows (forward) and input rows (dx) vectorise along the channels instead. */
#include <stdio.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "layers/activation.h"
#include "layers/conv_common.h"
#include "layers/layer.h"

typedef struct dwconv_cfg {
    int dm;
    int use_bias;
    cnn_conv_opts conv;
    cnn_conv_geom g;
} dwconv_cfg;

static int dwconv_configure(cnn_layer *l, cnn_opts *o)
{
    dwconv_cfg *c = l->cfg;
    cnn_first_error e = {0};
    cnn_conv_read_opts(o, &c->conv, &e);
    cnn_first_error_keep(&e, cnn_opts_int(o, "depth_multiplier", 1, 1, 1 << 16, &c->dm));
    cnn_first_error_keep(&e, cnn_opts_bool(o, "use_bias", 1, &c->use_bias));
    cnn_first_error_keep(&e, cnn_layer_read_activation(l, o));
    return cnn_first_error_result(&e);
}

static int dwconv_build(cnn_layer *l)
{
    dwconv_cfg *c = l->cfg;
    int rc = cnn_conv_geometry(l, &c->conv, &c->g);
    if (rc) return rc;
    const cnn_conv_geom *g = &c->g;
    const int taps = g->kh * g->kw, cd = g->cin * c->dm;
    l->out = cnn_shape_hwc(g->oh, g->ow, cd);
    /* Keras's glorot sees the shape (kh, kw, cin, dm): fan_in = kh*kw*cin, fan_out = kh*kw*dm. */
    int k = cnn_layer_add_param(l, "depthwise_kernel", 4, (int[]){g->kh, g->kw, g->cin, c->dm}, 1,
                                CNN_INIT_GLOROT_UNIFORM, taps * g->cin, taps * c->dm);
    if (k < 0) return k;
    if (c->use_bias) {
        int b = cnn_layer_add_param(l, "bias", 1, (int[]){cd}, 1, CNN_INIT_ZEROS, 0, 0);
        if (b < 0) return b;
    }
    l->scratch_per_sample = cnn_act_needs_input(l->act_run) ? cnn_shape_size(l->out) : 0;
    return CNN_OK;
}

static size_t dwconv_workspace(const cnn_layer *l, int n)
{
    const dwconv_cfg *c = l->cfg;
    return (size_t)n * c->g.kh * c->g.kw * c->g.cin * c->dm;
}

static void dwconv_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const dwconv_cfg *c = l->cfg;
    const int cd = c->g.cin * c->dm;
    cnn_dw_forward(&c->g, c->dm, x, cnn_layer_param(l, 0), NULL, y, n);
    cnn_conv_bias_act(l->act_run, y, c->use_bias ? cnn_layer_param(l, 1) : NULL, l->scratch,
                      (size_t)n * cnn_conv_pixels(&c->g), cd);
}

static void dwconv_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                            float *dx, int n)
{
    const dwconv_cfg *c = l->cfg;
    const size_t rows = (size_t)n * cnn_conv_pixels(&c->g);
    const int cd = c->g.cin * c->dm;
    cnn_act_backward(l->act_run, l->scratch, y, dy, rows, (size_t)cd);
    if (l->trainable) {
        cnn_dw_backward_kernel(&c->g, c->dm, x, dy, cnn_layer_grad(l, 0), ctx->work, n);
        if (c->use_bias) cnn_column_sums(dy, cnn_layer_grad(l, 1), rows, cd);
    }
    if (ctx->need_dx) cnn_dw_backward_input(&c->g, c->dm, dy, cnn_layer_param(l, 0), dx, n);
}

static double dwconv_flops(const cnn_layer *l, int n)
{
    const dwconv_cfg *c = l->cfg;
    return 2.0 * n * cnn_conv_pixels(&c->g) * c->g.kh * c->g.kw * c->g.cin * c->dm;
}

static void dwconv_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const dwconv_cfg *c = l->cfg;
    int k = cnn_conv_describe(&c->conv, buf, cap);
    if (k < 0 || (size_t)k >= cap) return;
    snprintf(buf + k, cap - (size_t)k, " x%d %s", c->dm, cnn_act_name(l->act));
}

const cnn_layer_ops cnn_depthwise_conv2d_ops = {
    .type = "DepthwiseConv2D",
    .auto_name = "depthwise_conv2d",
    .positional = {"kernel_size"},
    .cfg_size = sizeof(dwconv_cfg),
    .configure = dwconv_configure,
    .build = dwconv_build,
    .workspace = dwconv_workspace,
    .forward = dwconv_forward,
    .backward = dwconv_backward,
    .describe = dwconv_describe,
    .flops = dwconv_flops,
};
