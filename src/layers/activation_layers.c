/* The Keras activation layers: ReLU, LeakyReLU, ELU, Activation and Softmax. Each maps its input
 * element by element (Softmax: over the channel axis of every position), so the shape is unchanged.
 *
 *   x, y  (n, h, w, c)
 *
 * ReLU follows keras.backend.relu: y = min(x if x > threshold else 0, max_value)
 *                                      - negative_slope * max(threshold - x, 0).
 * LeakyReLU's alpha defaults to 0.3 (the layer), unlike activation="leaky_relu" (0.2, tf.nn.leaky_relu).
 * Activation and Softmax reuse layers/activation.c and run l->act_run, so a softmax at the end of the
 * model is left to the loss like a Dense layer's. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "layers/activation.h"
#include "layers/layer.h"

typedef struct act_cfg {
    float max_value; /* ReLU, when has_max */
    int has_max;
    float slope;     /* ReLU negative_slope, LeakyReLU and ELU alpha */
    float threshold; /* ReLU */
} act_cfg;

static int worth_threads(size_t count)
{
    return count > 16384;
}

static int same_shape(cnn_layer *l)
{
    l->out = l->in;
    return CNN_OK;
}

static size_t count_of(const cnn_layer *l, int n)
{
    return cnn_shape_size(l->in) * (size_t)n;
}

/* ---------------------------------------------------------------- ReLU */

/* A number >= 0, or None (Keras's default for max_value). */
static int read_optional(cnn_opts *o, const char *key, float *out, int *present)
{
    char v[40];
    int rc = cnn_opts_str(o, key, "None", v, sizeof v);
    if (rc) return rc;
    *present = strcmp(v, "None") && strcmp(v, "none");
    if (!*present) return CNN_OK;
    double d;
    rc = cnn_opts_double(o, key, 0.0, 0.0, 1e30, &d);
    *out = (float)d;
    return rc;
}

static int relu_configure(cnn_layer *l, cnn_opts *o)
{
    act_cfg *c = l->cfg;
    double slope = 0.0, threshold = 0.0;
    int rc = read_optional(o, "max_value", &c->max_value, &c->has_max);
    if (!rc) rc = cnn_opts_double(o, "negative_slope", 0.0, 0.0, 1e30, &slope);
    if (!rc) rc = cnn_opts_double(o, "threshold", 0.0, 0.0, 1e30, &threshold);
    c->slope = (float)slope;
    c->threshold = (float)threshold;
    return rc;
}

static void relu_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const act_cfg *c = l->cfg;
    const size_t count = count_of(l, n);
    const float thr = c->threshold, slope = c->slope, top = c->has_max ? c->max_value : INFINITY;
#pragma omp parallel for simd schedule(static) if (worth_threads(count))
    for (size_t i = 0; i < count; i++) {
        const float v = x[i], pos = v > thr ? (v < top ? v : top) : 0.0f;
        y[i] = v < thr ? pos - slope * (thr - v) : pos;
    }
}

static void relu_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                          float *dx, int n)
{
    (void)y;
    if (!ctx->need_dx) return;
    const act_cfg *c = l->cfg;
    const size_t count = count_of(l, n);
    const float thr = c->threshold, slope = c->slope, top = c->has_max ? c->max_value : INFINITY;
#pragma omp parallel for simd schedule(static) if (worth_threads(count))
    for (size_t i = 0; i < count; i++) {
        const float v = x[i];
        dx[i] = v > thr ? (v < top ? dy[i] : 0.0f) : (v < thr ? slope * dy[i] : 0.0f);
    }
}

static void relu_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const act_cfg *c = l->cfg;
    if (c->has_max)
        snprintf(buf, cap, "max_value=%g negative_slope=%g threshold=%g", c->max_value, c->slope,
                 c->threshold);
    else
        snprintf(buf, cap, "negative_slope=%g threshold=%g", c->slope, c->threshold);
}

const cnn_layer_ops cnn_relu_ops = {
    .type = "ReLU",
    .auto_name = "re_lu",
    .cfg_size = sizeof(act_cfg),
    .configure = relu_configure,
    .build = same_shape,
    .forward = relu_forward,
    .backward = relu_backward,
    .describe = relu_describe,
};

/* ---------------------------------------------------------------- LeakyReLU and ELU */

static int alpha_configure(cnn_layer *l, cnn_opts *o, double def)
{
    act_cfg *c = l->cfg;
    double a = 0.0;
    int rc = cnn_opts_double(o, "alpha", def, -1e30, 1e30, &a);
    c->slope = (float)a;
    return rc;
}

static int leaky_configure(cnn_layer *l, cnn_opts *o)
{
    return alpha_configure(l, o, 0.3);
}

static void leaky_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const float a = ((const act_cfg *)l->cfg)->slope;
    const size_t count = count_of(l, n);
#pragma omp parallel for simd schedule(static) if (worth_threads(count))
    for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : a * x[i];
}

static void leaky_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                           float *dx, int n)
{
    (void)y;
    if (!ctx->need_dx) return;
    const float a = ((const act_cfg *)l->cfg)->slope;
    const size_t count = count_of(l, n);
#pragma omp parallel for simd schedule(static) if (worth_threads(count))
    for (size_t i = 0; i < count; i++) dx[i] = x[i] > 0.0f ? dy[i] : a * dy[i];
}

static void alpha_describe(const cnn_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "alpha=%g", ((const act_cfg *)l->cfg)->slope);
}

const cnn_layer_ops cnn_leaky_relu_ops = {
    .type = "LeakyReLU",
    .auto_name = "leaky_re_lu",
    .positional = {"alpha"},
    .cfg_size = sizeof(act_cfg),
    .configure = leaky_configure,
    .build = same_shape,
    .forward = leaky_forward,
    .backward = leaky_backward,
    .describe = alpha_describe,
};

static int elu_configure(cnn_layer *l, cnn_opts *o)
{
    return alpha_configure(l, o, 1.0);
}

static void elu_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const float a = ((const act_cfg *)l->cfg)->slope;
    const size_t count = count_of(l, n);
#pragma omp parallel for schedule(static) if (count > 4096)
    for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i]);
}

/* For x <= 0, d/dx alpha * (e^x - 1) = alpha * e^x = y + alpha. */
static void elu_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                         float *dx, int n)
{
    if (!ctx->need_dx) return;
    const float a = ((const act_cfg *)l->cfg)->slope;
    const size_t count = count_of(l, n);
#pragma omp parallel for simd schedule(static) if (worth_threads(count))
    for (size_t i = 0; i < count; i++) dx[i] = x[i] > 0.0f ? dy[i] : (y[i] + a) * dy[i];
}

const cnn_layer_ops cnn_elu_ops = {
    .type = "ELU",
    .auto_name = "elu",
    .cfg_size = sizeof(act_cfg),
    .configure = elu_configure,
    .build = same_shape,
    .forward = elu_forward,
    .backward = elu_backward,
    .describe = alpha_describe,
};

/* ---------------------------------------------------------------- Activation and Softmax */

static int activation_configure(cnn_layer *l, cnn_opts *o)
{
    return cnn_layer_read_activation(l, o);
}

typedef struct softmax_cfg {
    int axis;
} softmax_cfg;

static int softmax_configure(cnn_layer *l, cnn_opts *o)
{
    softmax_cfg *c = l->cfg;
    l->act = l->act_run = CNN_ACT_SOFTMAX;
    return cnn_opts_int(o, "axis", -1, -1, 3, &c->axis);
}

/* Only the last axis: -1, or its number counting the batch axis (3 for images, 1 for vectors). */
static int softmax_build(cnn_layer *l)
{
    const softmax_cfg *c = l->cfg;
    const int last = l->in.rank == 3 ? 3 : 1;
    if (c->axis != -1 && c->axis != last)
        return cnn_layer_fail(l, "axis=%d: only the last axis (-1 or %d) is supported", c->axis, last);
    return same_shape(l);
}

static void table_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const size_t rows = (size_t)n * l->in.h * l->in.w, cols = (size_t)l->in.c;
    memcpy(y, x, sizeof(float) * rows * cols);
    cnn_act_forward(l->act_run, y, rows, cols);
}

static void table_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                           float *dx, int n)
{
    if (!ctx->need_dx) return;
    const size_t rows = (size_t)n * l->in.h * l->in.w, cols = (size_t)l->in.c;
    cnn_act_backward(l->act_run, x, y, dy, rows, cols);
    memcpy(dx, dy, sizeof(float) * rows * cols);
}

static void table_describe(const cnn_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", cnn_act_name(l->act));
}

const cnn_layer_ops cnn_activation_ops = {
    .type = "Activation",
    .auto_name = "activation",
    .positional = {"activation"},
    .configure = activation_configure,
    .build = same_shape,
    .forward = table_forward,
    .backward = table_backward,
    .describe = table_describe,
};

const cnn_layer_ops cnn_softmax_ops = {
    .type = "Softmax",
    .auto_name = "softmax",
    .cfg_size = sizeof(softmax_cfg),
    .configure = softmax_configure,
    .build = softmax_build,
    .forward = table_forward,
    .backward = table_backward,
    .describe = table_describe,
};
