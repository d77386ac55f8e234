/* Dense: y = f(x W + b) on the last axis, for every one of the h*w positions of the input
 * (Keras semantics: a Dense on a 28x28x1 image maps each pixel's channels).
 *
 *   x  (n*rows, in)      rows = h*w of the input (1 for vectors)
 *   W  (in, units)       Keras kernel layout
 *   b  (units)
 *   y  (n*rows, units)
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "layers/activation.h"
#include "layers/layer.h"

typedef struct dense_cfg {
    int units;
    int use_bias;
    float l1, l2;
} dense_cfg;

static int dense_configure(cnn_layer *l, cnn_opts *o)
{
    dense_cfg *c = l->cfg;
    int rc = cnn_opts_int(o, "units", 0, 1, 1 << 24, &c->units);
    if (!rc) rc = cnn_opts_bool(o, "use_bias", 1, &c->use_bias);
    if (!rc) rc = cnn_layer_read_activation(l, o);
    if (!rc) rc = cnn_layer_read_regularizer(o, &c->l1, &c->l2);
    return rc;
}

static int dense_build(cnn_layer *l)
{
    dense_cfg *c = l->cfg;
    int in = l->in.c;
    l->out = l->in;
    l->out.c = c->units;
    int k =
        cnn_layer_add_param(l, "kernel", 2, (int[]){in, c->units}, 1, CNN_INIT_GLOROT_UNIFORM, in, c->units);
    if (k < 0) return k;
    l->params[k].l1 = c->l1;
    l->params[k].l2 = c->l2;
    if (c->use_bias) {
        int b = cnn_layer_add_param(l, "bias", 1, (int[]){c->units}, 1, CNN_INIT_ZEROS, 0, 0);
        if (b < 0) return b;
    }
    /* GELU's derivative needs the pre-activation, kept per sample. */
    l->scratch_per_sample = cnn_act_needs_input(l->act_run) ? cnn_shape_size(l->out) : 0;
    return CNN_OK;
}

static void dense_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    dense_cfg *c = l->cfg;
    const int rows = n * l->in.h * l->in.w, in = l->in.c, units = c->units;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, units, in, 1.0f, x, in,
                cnn_layer_param(l, 0), units, 0.0f, y, units);
    if (c->use_bias) {
        const float *b = cnn_layer_param(l, 1);
#pragma omp parallel for schedule(static) if ((size_t)rows * units > 16384)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < units; j++) y[(size_t)r * units + j] += b[j];
    }
    if (l->scratch) memcpy(l->scratch, y, sizeof(float) * (size_t)rows * units);
    cnn_act_forward(l->act_run, y, (size_t)rows, (size_t)units);
}

/* db[j] = sum over rows of dy[r][j]; columns are split between threads so the sum order is fixed. */
static void column_sums(const float *dy, float *db, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 16384)
    for (int j = 0; j < cols; j++) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++) s += dy[(size_t)r * cols + j];
        db[j] = s;
    }
}

static void dense_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                           float *dx, int n)
{
    dense_cfg *c = l->cfg;
    const int rows = n * l->in.h * l->in.w, in = l->in.c, units = c->units;
    cnn_act_backward(l->act_run, l->scratch, y, dy, (size_t)rows, (size_t)units);
    if (l->trainable) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, units, rows, 1.0f, x, in, dy, units, 0.0f,
                    cnn_layer_grad(l, 0), units);
        if (c->use_bias) column_sums(dy, cnn_layer_grad(l, 1), rows, units);
    }
    if (ctx->need_dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, units, 1.0f, dy, units,
                    cnn_layer_param(l, 0), units, 0.0f, dx, in);
}

static void dense_gemm_shape(const cnn_layer *l, int n, int mnk[3])
{
    const dense_cfg *c = l->cfg;
    mnk[0] = n * l->in.h * l->in.w;
    mnk[1] = c->units;
    mnk[2] = l->in.c;
}

static double dense_flops(const cnn_layer *l, int n)
{
    int mnk[3];
    dense_gemm_shape(l, n, mnk);
    return 2.0 * mnk[0] * mnk[1] * mnk[2];
}

static void dense_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const dense_cfg *c = l->cfg;
    snprintf(buf, cap, "units=%d %s", c->units, cnn_act_name(l->act));
}

const cnn_layer_ops cnn_dense_ops = {
    .type = "Dense",
    .auto_name = "dense",
    .cfg_size = sizeof(dense_cfg),
    .configure = dense_configure,
    .build = dense_build,
    .forward = dense_forward,
    .backward = dense_backward,
    .describe = dense_describe,
    .flops = dense_flops,
    .gemm_shape = dense_gemm_shape,
};
