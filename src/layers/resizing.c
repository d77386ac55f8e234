/* Resizing: scales every image to height x width (Keras 2.15: tf.image.resize, half-pixel centres,
 * no antialiasing, no cropping).
 *
 *   x  (n, h, w, c)
 *   y  (n, height, width, c)
 *
 * With scale = in / out (float, as TensorFlow computes it):
 *   nearest:  source index = min(floor((o + 0.5) * scale), in - 1), so an exact 2x upscale turns every
 *             pixel into a 2x2 block.
 *   bilinear: source coordinate t = (o + 0.5) * scale - 0.5, neighbours max(floor(t), 0) and
 *             min(ceil(t), in - 1), weight t - floor(t); rows and columns interpolate as in TF's kernel.
 * The gradient scatters dy back with the same weights, one image per iteration so sums keep their order. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "layers/layer.h"

typedef struct resize_cfg {
    int height, width;
    int bilinear;
} resize_cfg;

static const char *const g_interp[] = {"nearest", "bilinear"};

static int resize_configure(cnn_layer *l, cnn_opts *o)
{
    resize_cfg *c = l->cfg;
    /* Ask for every key first, so a missing height is not reported as an unknown width. */
    char seen[80];
    cnn_opts_str(o, "width", "", seen, sizeof seen);
    cnn_opts_str(o, "interpolation", "", seen, sizeof seen);
    int rc = cnn_opts_int(o, "height", 0, 1, 1 << 14, &c->height);
    if (!rc) rc = cnn_opts_int(o, "width", 0, 1, 1 << 14, &c->width);
    if (!rc) rc = cnn_opts_enum(o, "interpolation", g_interp, 2, 1, &c->bilinear);
    return rc;
}

static int resize_build(cnn_layer *l)
{
    const resize_cfg *c = l->cfg;
    if (l->in.rank != 3)
        return cnn_layer_fail(l, "needs an image input (height, width, channels), got a vector of %d",
                              l->in.c);
    if ((size_t)c->height * c->width * l->in.c > (1u << 28))
        return cnn_layer_fail(l, "output %d x %d x %d is larger than 2^28 values", c->height, c->width,
                              l->in.c);
    l->out = cnn_shape_hwc(c->height, c->width, l->in.c);
    return CNN_OK;
}

static float scale_of(int in, int out)
{
    return (float)in / (float)out;
}

static int nearest_index(int o, float scale, int in)
{
    int i = (int)floorf(((float)o + 0.5f) * scale);
    return i < in - 1 ? (i > 0 ? i : 0) : in - 1;
}

typedef struct lerp_pt {
    int lo, hi;
    float t; /* weight of hi */
} lerp_pt;

static lerp_pt bilinear_point(int o, float scale, int in)
{
    const float t = ((float)o + 0.5f) * scale - 0.5f, f = floorf(t);
    const int lo = (int)f, hi = (int)ceilf(t);
    return (lerp_pt){lo > 0 ? lo : 0, hi < in - 1 ? hi : in - 1, t - f};
}

static int worth_threads(const cnn_layer *l, int n)
{
    return cnn_shape_size(l->out) * (size_t)n > 32768;
}

static void nearest_forward(const cnn_layer *l, const float *x, float *y, int n)
{
    const int H = l->in.h, W = l->in.w, C = l->in.c, oh = l->out.h, ow = l->out.w;
    const float sh = scale_of(H, oh), sw = scale_of(W, ow);
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int r = 0; r < n * oh; r++) {
        const float *xr = x + ((size_t)(r / oh) * H + nearest_index(r % oh, sh, H)) * W * C;
        float *yr = y + (size_t)r * ow * C;
        for (int j = 0; j < ow; j++)
            memcpy(yr + (size_t)j * C, xr + (size_t)nearest_index(j, sw, W) * C, sizeof(float) * C);
    }
}

static void bilinear_forward(const cnn_layer *l, const float *x, float *y, int n)
{
    const int H = l->in.h, W = l->in.w, C = l->in.c, oh = l->out.h, ow = l->out.w;
    const float sh = scale_of(H, oh), sw = scale_of(W, ow);
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int r = 0; r < n * oh; r++) {
        const lerp_pt py = bilinear_point(r % oh, sh, H);
        const float *xs = x + (size_t)(r / oh) * H * W * C;
        const float *top = xs + (size_t)py.lo * W * C, *bot = xs + (size_t)py.hi * W * C;
        float *yr = y + (size_t)r * ow * C;
        for (int j = 0; j < ow; j++) {
            const lerp_pt px = bilinear_point(j, sw, W);
            const float *tl = top + (size_t)px.lo * C, *tr = top + (size_t)px.hi * C;
            const float *bl = bot + (size_t)px.lo * C, *br = bot + (size_t)px.hi * C;
            for (int ch = 0; ch < C; ch++) {
                const float t = tl[ch] + (tr[ch] - tl[ch]) * px.t;
                const float b = bl[ch] + (br[ch] - bl[ch]) * px.t;
                yr[(size_t)j * C + ch] = t + (b - t) * py.t;
            }
        }
    }
}

static void resize_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const resize_cfg *c = l->cfg;
    if (c->bilinear)
        bilinear_forward(l, x, y, n);
    else
        nearest_forward(l, x, y, n);
}

static void nearest_backward(const cnn_layer *l, const float *dy, float *dx, int s)
{
    const int H = l->in.h, W = l->in.w, C = l->in.c, oh = l->out.h, ow = l->out.w;
    const float sh = scale_of(H, oh), sw = scale_of(W, ow);
    for (int i = 0; i < oh; i++) {
        float *dxr = dx + ((size_t)s * H + nearest_index(i, sh, H)) * W * C;
        const float *dyr = dy + ((size_t)s * oh + i) * ow * C;
        for (int j = 0; j < ow; j++) {
            float *d = dxr + (size_t)nearest_index(j, sw, W) * C;
            for (int ch = 0; ch < C; ch++) d[ch] += dyr[(size_t)j * C + ch];
        }
    }
}

static void bilinear_backward(const cnn_layer *l, const float *dy, float *dx, int s)
{
    const int H = l->in.h, W = l->in.w, C = l->in.c, oh = l->out.h, ow = l->out.w;
    const float sh = scale_of(H, oh), sw = scale_of(W, ow);
    float *dxs = dx + (size_t)s * H * W * C;
    for (int i = 0; i < oh; i++) {
        const lerp_pt py = bilinear_point(i, sh, H);
        float *top = dxs + (size_t)py.lo * W * C, *bot = dxs + (size_t)py.hi * W * C;
        const float *dyr = dy + ((size_t)s * oh + i) * ow * C;
        for (int j = 0; j < ow; j++) {
            const lerp_pt px = bilinear_point(j, sw, W);
            float *tl = top + (size_t)px.lo * C, *tr = top + (size_t)px.hi * C;
            float *bl = bot + (size_t)px.lo * C, *br = bot + (size_t)px.hi * C;
            for (int ch = 0; ch < C; ch++) {
                const float g = dyr[(size_t)j * C + ch];
                const float dt = (1.0f - py.t) * g, db = py.t * g;
                tl[ch] += dt * (1.0f - px.t);
                tr[ch] += dt * px.t;
                bl[ch] += db * (1.0f - px.t);
                br[ch] += db * px.t;
            }
        }
    }
}

static void resize_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                            float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const resize_cfg *c = l->cfg;
    const size_t in_size = cnn_shape_size(l->in);
#pragma omp parallel for schedule(static) if (worth_threads(l, n))
    for (int s = 0; s < n; s++) {
        memset(dx + (size_t)s * in_size, 0, sizeof(float) * in_size);
        if (c->bilinear)
            bilinear_backward(l, dy, dx, s);
        else
            nearest_backward(l, dy, dx, s);
    }
}

static void resize_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const resize_cfg *c = l->cfg;
    snprintf(buf, cap, "%dx%d %s", c->height, c->width, g_interp[c->bilinear]);
}

const cnn_layer_ops cnn_resizing_ops = {
    .type = "Resizing",
    .auto_name = "resizing",
    .positional = {"height", "width"},
    .cfg_size = sizeof(resize_cfg),
    .configure = resize_configure,
    .build = resize_build,
    .forward = resize_forward,
    .backward = resize_backward,
    .describe = resize_describe,
};
