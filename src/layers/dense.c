/* Dense: y = f(x W + b) on the last axis, for every one of the h*w positions of the input
 * (Keras semantics: a Dense on a 28x28x1 image maps each pixel's channels).
 *
 *   x  (n*rows, in)      rows = h*w of the input (1 for vectors)
 *   W  (in, units)       Keras kernel layout
 *   b  (units)
 *   y  (n*rows, units)
 *   Wt (units, in)       W transposed, in the workspace: the GEMM reads its B operand row-major only
 *
 * The three products (y = x W, dW = x^T dy, dx = dy W^T) run on cnn_gemm_parallel, which splits the rows of
 * its output into fixed blocks and sums every element over its inner dimension in a fixed order: results are
 * bit-identical for any thread count, on every kernel path. */
#include <string.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
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
    const int rc = cnn_isa_check(); /* an unusable CNNLAB_ISA fails here, before any kernel runs */
    if (rc) return rc;
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

/* W^T for the input gradient; the same for every batch size. */
static size_t dense_workspace(const cnn_layer *l, int n)
{
    (void)n;
    const dense_cfg *c = l->cfg;
    return (size_t)l->in.c * c->units;
}

typedef struct dense_epilogue {
    const cnn_layer *l;
    float *y;
} dense_epilogue;

/* Rows [first, first + count) of y, just computed: add the bias, keep the pre-activation when backward needs
 * it, activate (softmax works per row, so a block of whole rows is enough). */
static void forward_rows(void *arg, int first, int count)
{
    const dense_epilogue *e = arg;
    const cnn_layer *l = e->l;
    const dense_cfg *c = l->cfg;
    const int units = c->units;
    float *y = e->y + (size_t)first * units;
    if (c->use_bias) {
        const float *b = cnn_layer_param(l, 1);
        for (int r = 0; r < count; r++)
            for (int j = 0; j < units; j++) y[(size_t)r * units + j] += b[j];
    }
    if (l->scratch) memcpy(l->scratch + (size_t)first * units, y, sizeof(float) * (size_t)count * units);
    cnn_act_forward(l->act_run, y, (size_t)count, (size_t)units);
}

static void dense_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    dense_cfg *c = l->cfg;
    const int rows = n * l->in.h * l->in.w, in = l->in.c, units = c->units;
    dense_epilogue e = {l, y};
    cnn_gemm_parallel(rows, units, in, x, in, 1, cnn_layer_param(l, 0), units, y, units, 0, forward_rows, &e);
}

typedef struct dense_transpose {
    const float *w;
    float *wt;
    int in, units;
} dense_transpose;

/* Rows [first, first + count) of W (in, units) into columns of wt (units, in), 16 columns of W at a time so
 * that the reads and the writes both stay within a few cache lines. */
static void transpose_rows(void *arg, int first, int count)
{
    enum { T = 16 };
    const dense_transpose *t = arg;
    for (int u0 = 0; u0 < t->units; u0 += T) {
        const int u1 = u0 + T < t->units ? u0 + T : t->units;
        for (int i = first; i < first + count; i++)
            for (int u = u0; u < u1; u++) t->wt[(size_t)u * t->in + i] = t->w[(size_t)i * t->units + u];
    }
}

static void dense_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                           float *dx, int n)
{
    dense_cfg *c = l->cfg;
    const int rows = n * l->in.h * l->in.w, in = l->in.c, units = c->units;
    /* dx = dy W^T reads W^T row-major; the rows of W are transposed by the threads that compute the same rows
     * of dW, without a parallel region of their own. */
    dense_transpose t = {cnn_layer_param(l, 0), ctx->work, in, units};
    cnn_act_backward(l->act_run, l->scratch, y, dy, (size_t)rows, (size_t)units);
    if (l->trainable) {
        /* dW (in, units): A_p[i] = x[p][i] (x read transposed), B_p = dy[p]; each element sums over the batch
         * in order. */
        cnn_gemm_parallel(in, units, rows, x, 1, in, dy, units, cnn_layer_grad(l, 0), units, 0,
                          ctx->need_dx ? transpose_rows : NULL, &t);
        if (c->use_bias) cnn_column_sums(dy, cnn_layer_grad(l, 1), (size_t)rows, units);
    } else if (ctx->need_dx) {
        const int block = cnn_gemm_block_rows(units, rows), blocks = (in + block - 1) / block;
#pragma omp parallel for schedule(static) if ((size_t)in * units > 65536)
        for (int k = 0; k < blocks; k++)
            transpose_rows(&t, k * block, in - k * block < block ? in - k * block : block);
    }
    if (ctx->need_dx) cnn_gemm_parallel(rows, in, units, dy, units, 1, ctx->work, in, dx, in, 0, NULL, NULL);
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
    .positional = {"units"},
    .cfg_size = sizeof(dense_cfg),
    .configure = dense_configure,
    .build = dense_build,
    .workspace = dense_workspace,
    .forward = dense_forward,
    .backward = dense_backward,
    .describe = dense_describe,
    .flops = dense_flops,
    .gemm_shape = dense_gemm_shape,
};
