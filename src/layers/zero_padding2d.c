/* ZeroPadding2D: rows and columns of zeros around each image (Keras semantics).
 *
 *   x  (n, h, w, c)
 *   y  (n, top + h + bottom, left + w + right, c)
 *
 * padding=2 pads 2 everywhere, padding=(1,2) pads 1 above and below and 2 left and right, and
 * padding=((1,0),(2,3)) gives (top, bottom) and (left, right). The gradient is dy cropped back. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "layers/layer.h"

typedef struct zpad_cfg {
    int top, bottom, left, right;
} zpad_cfg;

enum { MAX_PAD = 1 << 16 };

/* 1 when the whole of s was read by the sscanf that stored its length in *end. */
static int parsed_all(const char *s, int end)
{
    return end > 0 && s[end] == '\0';
}

static int zpad_configure(cnn_layer *l, cnn_opts *o)
{
    zpad_cfg *c = l->cfg;
    char v[80];
    int rc = cnn_opts_str(o, "padding", "1", v, sizeof v);
    if (rc) return rc;
    int a, b, d, e, end = 0;
    if (sscanf(v, " ( ( %d , %d ) , ( %d , %d ) ) %n", &a, &b, &d, &e, &end) == 4 && parsed_all(v, end)) {
        *c = (zpad_cfg){a, b, d, e};
    } else if (end = 0, sscanf(v, " ( %d , %d ) %n", &a, &b, &end) == 2 && parsed_all(v, end)) {
        *c = (zpad_cfg){a, a, b, b};
    } else if (end = 0, sscanf(v, " %d %n", &a, &end) == 1 && parsed_all(v, end)) {
        *c = (zpad_cfg){a, a, a, a};
    } else {
        return cnn_fail(
            CNN_ERR_INVALID,
            "%s: padding=%s: expected an integer, (rows, columns) or ((top, bottom), (left, right))",
            o->context, v);
    }
    if (c->top < 0 || c->bottom < 0 || c->left < 0 || c->right < 0 || c->top > MAX_PAD ||
        c->bottom > MAX_PAD || c->left > MAX_PAD || c->right > MAX_PAD)
        return cnn_fail(CNN_ERR_INVALID, "%s: padding=%s: every amount must be in [0, %d]", o->context, v,
                        MAX_PAD);
    return CNN_OK;
}

static int zpad_build(cnn_layer *l)
{
    const zpad_cfg *c = l->cfg;
    if (l->in.rank != 3)
        return cnn_layer_fail(l, "needs an image input (height, width, channels), got a vector of %d",
                              l->in.c);
    l->out = cnn_shape_hwc(c->top + l->in.h + c->bottom, c->left + l->in.w + c->right, l->in.c);
    return CNN_OK;
}

static void zpad_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const zpad_cfg *c = l->cfg;
    const int oh = l->out.h, h = l->in.h;
    const size_t row_in = (size_t)l->in.w * l->in.c, row_out = (size_t)l->out.w * l->out.c;
    const size_t lead = (size_t)c->left * l->in.c, trail = (size_t)c->right * l->in.c;
#pragma omp parallel for schedule(static) if (cnn_shape_size(l->out) * (size_t)n > 65536)
    for (int r = 0; r < n * oh; r++) {
        float *yr = y + (size_t)r * row_out;
        const int i = r % oh - c->top;
        if (i < 0 || i >= h) {
            memset(yr, 0, sizeof(float) * row_out);
            continue;
        }
        memset(yr, 0, sizeof(float) * lead);
        memcpy(yr + lead, x + ((size_t)(r / oh) * h + i) * row_in, sizeof(float) * row_in);
        memset(yr + lead + row_in, 0, sizeof(float) * trail);
    }
}

static void zpad_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                          float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const zpad_cfg *c = l->cfg;
    const int oh = l->out.h, h = l->in.h;
    const size_t row_in = (size_t)l->in.w * l->in.c, row_out = (size_t)l->out.w * l->out.c;
    const size_t lead = (size_t)c->left * l->in.c;
#pragma omp parallel for schedule(static) if (cnn_shape_size(l->in) * (size_t)n > 65536)
    for (int r = 0; r < n * h; r++) {
        const size_t src = ((size_t)(r / h) * oh + c->top + r % h) * row_out + lead;
        memcpy(dx + (size_t)r * row_in, dy + src, sizeof(float) * row_in);
    }
}

static void zpad_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const zpad_cfg *c = l->cfg;
    snprintf(buf, cap, "padding=((%d,%d),(%d,%d))", c->top, c->bottom, c->left, c->right);
}

const cnn_layer_ops cnn_zero_padding2d_ops = {
    .type = "ZeroPadding2D",
    .auto_name = "zero_padding2d",
    .positional = {"padding"},
    .cfg_size = sizeof(zpad_cfg),
    .configure = zpad_configure,
    .build = zpad_build,
    .forward = zpad_forward,
    .backward = zpad_backward,
    .describe = zpad_describe,
};
