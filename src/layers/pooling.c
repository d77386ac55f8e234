/* MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D (Keras/TensorFlow semantics).
 *
 *   x  (n, h, w, c)
 *   y  (n, oh, ow, c)        valid: o = floor((i - k) / s) + 1;  same: o = ceil(i / s)
 *   scratch (max only): one int32 per output element, the argmax's offset inside its sample's input
 *
 * "same" pads (o - 1) * s + k - i in total, the smaller half at the top/left as TensorFlow does. Padded
 * positions never take part: max pooling ignores them and average pooling divides by the number of real
 * elements in the window. Max pooling ties go to the first maximum in row-major window order (TF's CPU
 * kernel), and the gradient goes to that element only.
 *
 * Backward scatters into dx one sample per iteration, so overlapping windows add up in a fixed order. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "kernels/loops.h"
#include "layers/conv_pool.h"
#include "layers/layer.h"

typedef struct pool_cfg {
    int k[2], s[2];
    int same;
    int pad_top, pad_left; /* set by build */
} pool_cfg;

static const char *const g_padding[] = {"valid", "same"};

/* Keras's strides=None means strides = pool_size. */
static int read_strides(cnn_opts *o, const int pool[2], int out[2])
{
    char v[16];
    int rc = cnn_opts_str(o, "strides", "None", v, sizeof v);
    if (rc) return rc;
    if (!strcmp(v, "None") || !strcmp(v, "none")) {
        out[0] = pool[0], out[1] = pool[1];
        return CNN_OK;
    }
    return cnn_opts_pair(o, "strides", 1, 1, 4096, out);
}

static int pool_configure(cnn_layer *l, cnn_opts *o)
{
    pool_cfg *c = l->cfg;
    int rc = cnn_opts_pair(o, "pool_size", 2, 1, 4096, c->k);
    if (!rc) rc = read_strides(o, c->k, c->s);
    if (!rc) rc = cnn_opts_enum(o, "padding", g_padding, 2, 0, &c->same);
    return rc;
}

/* Output length along one axis and the padding before the first element. */
static int pool_axis(int in, int k, int s, int same, int *pad_before)
{
    if (!same) {
        *pad_before = 0;
        return in < k ? 0 : (in - k) / s + 1;
    }
    int out = (in + s - 1) / s;
    int total = (out - 1) * s + k - in;
    *pad_before = total > 0 ? total / 2 : 0;
    return out;
}

static int image_input(cnn_layer *l)
{
    if (l->in.rank != 3)
        return cnn_layer_fail(l, "needs an image input (height, width, channels), got a vector of %d",
                              l->in.c);
    return CNN_OK;
}

static int pool_build(cnn_layer *l)
{
    pool_cfg *c = l->cfg;
    int rc = image_input(l);
    if (rc) return rc;
    int oh = pool_axis(l->in.h, c->k[0], c->s[0], c->same, &c->pad_top);
    int ow = pool_axis(l->in.w, c->k[1], c->s[1], c->same, &c->pad_left);
    if (oh < 1 || ow < 1)
        return cnn_layer_fail(l, "pool_size (%d, %d) is larger than the input (%d, %d) with padding 'valid'",
                              c->k[0], c->k[1], l->in.h, l->in.w);
    l->out = cnn_shape_hwc(oh, ow, l->in.c);
    return CNN_OK;
}

static int max_build(cnn_layer *l)
{
    int rc = pool_build(l);
    l->scratch_per_sample = cnn_shape_size(l->out); /* argmax offsets, int32 in float-sized slots */
    return rc;
}

/* The window of output (i, j) clipped to the input: rows [*h0, *h1), columns [*w0, *w1). */
static void window(const cnn_layer *l, int i, int j, int *h0, int *h1, int *w0, int *w1)
{
    const pool_cfg *c = l->cfg;
    int a = i * c->s[0] - c->pad_top, b = j * c->s[1] - c->pad_left;
    *h0 = a > 0 ? a : 0;
    *w0 = b > 0 ? b : 0;
    *h1 = a + c->k[0] < l->in.h ? a + c->k[0] : l->in.h;
    *w1 = b + c->k[1] < l->in.w ? b + c->k[1] : l->in.w;
}

extern const cnn_layer_ops cnn_max_pooling2d_ops;

int cnn_max_pool_tiles(const cnn_layer *l, int *kh, int *kw)
{
    const pool_cfg *c = l->cfg;
    if (l->ops != &cnn_max_pooling2d_ops || c->same || c->s[0] != c->k[0] || c->s[1] != c->k[1]) return 0;
    *kh = c->k[0], *kw = c->k[1];
    return 1;
}

static int worth_threads(const cnn_layer *l, int n)
{
    return cnn_shape_size(l->in) * (size_t)n > 32768;
}

static void max_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const pool_cfg *c = l->cfg;
    const int oh = l->out.h, ow = l->out.w, C = l->in.c, W = l->in.w;
    const size_t in_size = cnn_shape_size(l->in);
    int32_t *arg = (int32_t *)l->scratch;
    const cnn_loops *loops = cnn_loops_current();
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int r = 0; r < n * oh; r++) {
        int h0, h1, w0, w1;
        window(l, r % oh, 0, &h0, &h1, &w0, &w1);
        const size_t o = (size_t)r * ow * C;
        loops->max_row(x + (size_t)(r / oh) * in_size, W, C, h0, h1, ow, c->k[1], c->s[1], c->pad_left, y + o,
                       arg + o);
    }
}

static void max_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                         float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const size_t in_size = cnn_shape_size(l->in), out_size = cnn_shape_size(l->out);
    const int32_t *arg = (const int32_t *)l->scratch;
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int s = 0; s < n; s++) {
        float *dxs = dx + (size_t)s * in_size;
        memset(dxs, 0, sizeof(float) * in_size);
        const float *dys = dy + (size_t)s * out_size;
        const int32_t *as = arg + (size_t)s * out_size;
        for (size_t e = 0; e < out_size; e++) dxs[as[e]] += dys[e];
    }
}

static void avg_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const int oh = l->out.h, ow = l->out.w, C = l->in.c, W = l->in.w;
    const size_t in_size = cnn_shape_size(l->in);
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int r = 0; r < n * oh; r++) {
        const float *xs = x + (size_t)(r / oh) * in_size;
        for (int j = 0; j < ow; j++) {
            int h0, h1, w0, w1;
            window(l, r % oh, j, &h0, &h1, &w0, &w1);
            float *yo = y + ((size_t)r * ow + j) * C;
            for (int ch = 0; ch < C; ch++) yo[ch] = 0.0f;
            for (int p = h0; p < h1; p++)
                for (int q = w0; q < w1; q++)
                    for (int ch = 0; ch < C; ch++) yo[ch] += xs[(p * W + q) * C + ch];
            const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
            for (int ch = 0; ch < C; ch++) yo[ch] *= inv;
        }
    }
}

static void avg_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                         float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const int oh = l->out.h, ow = l->out.w, C = l->in.c, W = l->in.w;
    const size_t in_size = cnn_shape_size(l->in), out_size = cnn_shape_size(l->out);
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int s = 0; s < n; s++) {
        float *dxs = dx + (size_t)s * in_size;
        memset(dxs, 0, sizeof(float) * in_size);
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int h0, h1, w0, w1;
                window(l, i, j, &h0, &h1, &w0, &w1);
                const float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                const float *g = dy + (size_t)s * out_size + ((size_t)i * ow + j) * C;
                for (int p = h0; p < h1; p++)
                    for (int q = w0; q < w1; q++)
                        for (int ch = 0; ch < C; ch++) dxs[(p * W + q) * C + ch] += g[ch] * inv;
            }
    }
}

static void pool_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const pool_cfg *c = l->cfg;
    snprintf(buf, cap, "pool=(%d,%d) strides=(%d,%d) %s", c->k[0], c->k[1], c->s[0], c->s[1],
             g_padding[c->same]);
}

const cnn_layer_ops cnn_max_pooling2d_ops = {
    .type = "MaxPooling2D",
    .auto_name = "max_pooling2d",
    .positional = {"pool_size"},
    .cfg_size = sizeof(pool_cfg),
    .configure = pool_configure,
    .build = max_build,
    .forward = max_forward,
    .backward = max_backward,
    .describe = pool_describe,
};

const cnn_layer_ops cnn_average_pooling2d_ops = {
    .type = "AveragePooling2D",
    .auto_name = "average_pooling2d",
    .positional = {"pool_size"},
    .cfg_size = sizeof(pool_cfg),
    .configure = pool_configure,
    .build = pool_build,
    .forward = avg_forward,
    .backward = avg_backward,
    .describe = pool_describe,
};

/* ---------------------------------------------------------------- GlobalAveragePooling2D
 *   x (n, h, w, c) -> y (n, c), or (n, 1, 1, c) with keepdims=true */

typedef struct gap_cfg {
    int keepdims;
} gap_cfg;

static int gap_configure(cnn_layer *l, cnn_opts *o)
{
    gap_cfg *c = l->cfg;
    return cnn_opts_bool(o, "keepdims", 0, &c->keepdims);
}

static int gap_build(cnn_layer *l)
{
    const gap_cfg *c = l->cfg;
    int rc = image_input(l);
    if (rc) return rc;
    l->out = c->keepdims ? cnn_shape_hwc(1, 1, l->in.c) : cnn_shape_vec(l->in.c);
    return CNN_OK;
}

static void gap_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const int C = l->in.c, hw = l->in.h * l->in.w;
    const float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * hw * C;
        float *ys = y + (size_t)s * C;
        for (int ch = 0; ch < C; ch++) ys[ch] = 0.0f;
        for (int p = 0; p < hw; p++)
            for (int ch = 0; ch < C; ch++) ys[ch] += xs[(size_t)p * C + ch];
        for (int ch = 0; ch < C; ch++) ys[ch] *= inv;
    }
}

static void gap_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                         float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const int C = l->in.c, hw = l->in.h * l->in.w;
    const float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int s = 0; s < n; s++)
        for (int p = 0; p < hw; p++)
            for (int ch = 0; ch < C; ch++) dx[((size_t)s * hw + p) * C + ch] = dy[(size_t)s * C + ch] * inv;
}

const cnn_layer_ops cnn_global_average_pooling2d_ops = {
    .type = "GlobalAveragePooling2D",
    .auto_name = "global_average_pooling2d",
    .cfg_size = sizeof(gap_cfg),
    .configure = gap_configure,
    .build = gap_build,
    .forward = gap_forward,
    .backward = gap_backward,
};
