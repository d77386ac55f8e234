/* BatchNormalization over the channel axis (Keras 2.15 semantics).
 *
 *   x, y      (rows, c)    rows = n*h*w: every position of every sample is one observation per channel
 *   gamma, beta, moving_mean, moving_variance   (c), Keras's weight order; the moving pair is not trainable
 *   scratch   mean and 1/sqrt(var + eps) of the last forward pass (2c floats; sized per sample because the
 *             plan only offers per-sample scratch)
 *
 * Training (ctx->training and the layer trainable): batch mean and biased variance normalise, and the
 * moving statistics move toward them by 1 - momentum. Otherwise the moving statistics normalise; as in
 * Keras 2, a frozen (trainable=false) BatchNormalization runs in inference mode even while training.
 *
 * Keras takes two different code paths, and both are reproduced:
 *   image input (4-D batch): the fused kernel. The moving variance is updated with the *unbiased* batch
 *     variance (times rows / (rows - 1)) although the normalisation uses the biased one:
 *     moving = (1 - f) * moving + f * batch, f = 1 - momentum.
 *   vector input (2-D batch): tf.nn.moments; biased variance for both, moving -= (moving - batch) * f.
 * (Checked against TensorFlow 2.15.)
 *
 * Per-channel sums run over a fixed split of the rows into at most NCHUNK chunks (in parallel, double
 * accumulators), then add the chunks in order: results do not depend on the thread count.
 *
 * Data-parallel training (ctx->sync, on request): the sums of the batch statistics and of their gradients are
 * totalled over the processes, so every process normalises with the global batch's mean and variance, as one
 * process with the whole batch does (synchronised BatchNorm); without it each process uses its own batch's,
 * as PyTorch DDP does by default. The moving statistics follow the slice that holds the global batch's first
 * sample (ctx->sample == 0; one process: the batch), as DDP keeps rank 0's buffers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "layers/layer.h"

enum { NCHUNK = 64 };

typedef struct bn_cfg {
    int axis, center, scale;
    double momentum, epsilon;
    int gamma, beta, mean, var; /* parameter indices, -1 when absent */
    double rows;                /* the last training forward pass's rows, over all processes when synced */
} bn_cfg;

static int bn_configure(cnn_layer *l, cnn_opts *o)
{
    bn_cfg *c = l->cfg;
    int rc = cnn_opts_int(o, "axis", -1, -1, 3, &c->axis);
    if (!rc) rc = cnn_opts_double(o, "momentum", 0.99, 0.0, 1.0, &c->momentum);
    if (!rc) rc = cnn_opts_double(o, "epsilon", 1e-3, 1e-30, 1e10, &c->epsilon);
    if (!rc) rc = cnn_opts_bool(o, "center", 1, &c->center);
    if (!rc) rc = cnn_opts_bool(o, "scale", 1, &c->scale);
    return rc;
}

static int add_vector(cnn_layer *l, const char *name, int trainable, cnn_init init)
{
    return cnn_layer_add_param(l, name, 1, (int[]){l->in.c}, trainable, init, 0, 0);
}

static int bn_build(cnn_layer *l)
{
    bn_cfg *c = l->cfg;
    const int last = l->in.rank == 3 ? 3 : 1;
    if (c->axis != -1 && c->axis != last)
        return cnn_layer_fail(l, "axis=%d: only the channel axis (-1 or %d) is supported", c->axis, last);
    l->out = l->in;
    c->gamma = c->scale ? add_vector(l, "gamma", 1, CNN_INIT_ONES) : -1;
    c->beta = c->center ? add_vector(l, "beta", 1, CNN_INIT_ZEROS) : -1;
    c->mean = add_vector(l, "moving_mean", 0, CNN_INIT_ZEROS);
    c->var = add_vector(l, "moving_variance", 0, CNN_INIT_ONES);
    if (c->mean < 0 || c->var < 0) return c->var < 0 ? c->var : c->mean;
    l->scratch_per_sample = 2 * (size_t)l->in.c;
    return CNN_OK;
}

/* Workspace: two chunk-partial tables and two totals of doubles, then three float vectors. */
typedef struct bn_work {
    double *part1, *part2, *tot1, *tot2;
    float *k1, *k2, *k3;
} bn_work;

static size_t bn_workspace(const cnn_layer *l, int n)
{
    (void)n;
    const size_t c = (size_t)l->in.c;
    return 2 * (2 * NCHUNK * c + 2 * c) + 3 * c;
}

static bn_work carve(const cnn_layer *l, float *work)
{
    const size_t c = (size_t)l->in.c;
    bn_work w;
    w.part1 = (double *)work;
    w.part2 = w.part1 + NCHUNK * c;
    w.tot1 = w.part2 + NCHUNK * c;
    w.tot2 = w.tot1 + c;
    w.k1 = (float *)(w.tot2 + c);
    w.k2 = w.k1 + c;
    w.k3 = w.k2 + c;
    return w;
}

static size_t rows_of(const cnn_layer *l, int n)
{
    return (size_t)n * l->in.h * l->in.w;
}

static size_t chunk_rows(size_t rows)
{
    return (rows + NCHUNK - 1) / NCHUNK;
}

/* tot[ch] = sum over chunks, in chunk order, of part[k][ch]. */
static void add_chunks(const double *part, double *tot, size_t rows, int C)
{
    const size_t cs = chunk_rows(rows), nk = (rows + cs - 1) / cs;
    for (int ch = 0; ch < C; ch++) tot[ch] = 0.0;
    for (size_t k = 0; k < nk; k++)
        for (int ch = 0; ch < C; ch++) tot[ch] += part[k * C + ch];
}

/* Batch mean (tot1) and biased variance (tot2) per channel; two passes for accuracy. With sync the sums
 * (and the row count, carried in tot2[0] before tot2 is used) are totalled over the processes first.
 * Returns the rows the statistics ran over. */
static double batch_moments(const cnn_ctx *ctx, const float *x, size_t rows, int C, bn_work *w)
{
    const size_t cs = chunk_rows(rows), nk = (rows + cs - 1) / cs;
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (size_t k = 0; k < nk; k++) {
        double *p = w->part1 + k * C;
        const size_t end = (k + 1) * cs < rows ? (k + 1) * cs : rows;
        for (int ch = 0; ch < C; ch++) p[ch] = 0.0;
        for (size_t r = k * cs; r < end; r++)
            for (int ch = 0; ch < C; ch++) p[ch] += x[r * C + ch];
    }
    add_chunks(w->part1, w->tot1, rows, C);
    w->tot2[0] = (double)rows;
    const double total = cnn_layer_sync_sums(ctx, w->tot1, C + 1) ? w->tot2[0] : (double)rows;
    for (int ch = 0; ch < C; ch++) w->tot1[ch] /= total;
    const double *mean = w->tot1;
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (size_t k = 0; k < nk; k++) {
        double *p = w->part2 + k * C;
        const size_t end = (k + 1) * cs < rows ? (k + 1) * cs : rows;
        for (int ch = 0; ch < C; ch++) p[ch] = 0.0;
        for (size_t r = k * cs; r < end; r++)
            for (int ch = 0; ch < C; ch++) {
                const double d = x[r * C + ch] - mean[ch];
                p[ch] += d * d;
            }
    }
    add_chunks(w->part2, w->tot2, rows, C);
    cnn_layer_sync_sums(ctx, w->tot2, C);
    for (int ch = 0; ch < C; ch++) w->tot2[ch] /= total;
    return total;
}

static int batch_mode(const cnn_layer *l, const cnn_ctx *ctx)
{
    return ctx->training && l->trainable;
}

static void update_moving(cnn_layer *l, const bn_work *w, double rows)
{
    const bn_cfg *c = l->cfg;
    float *mm = cnn_layer_param(l, c->mean), *mv = cnn_layer_param(l, c->var);
    const float f = (float)(1.0 - c->momentum);
    const int C = l->in.c;
    if (l->in.rank == 3) {
        const float keep = 1.0f - f, bessel = rows > 1 ? (float)rows / (float)(rows - 1) : 1.0f;
        for (int ch = 0; ch < C; ch++) {
            mm[ch] = keep * mm[ch] + f * (float)w->tot1[ch];
            mv[ch] = keep * mv[ch] + f * (float)w->tot2[ch] * bessel;
        }
    } else {
        for (int ch = 0; ch < C; ch++) {
            mm[ch] -= (mm[ch] - (float)w->tot1[ch]) * f;
            mv[ch] -= (mv[ch] - (float)w->tot2[ch]) * f;
        }
    }
}

static void bn_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    bn_cfg *c = l->cfg;
    const int C = l->in.c;
    const size_t rows = rows_of(l, n);
    const float eps = (float)c->epsilon;
    float *mean = l->scratch, *inv = l->scratch + C;
    bn_work w = carve(l, ctx->work);
    if (batch_mode(l, ctx)) {
        c->rows = batch_moments(ctx, x, rows, C, &w);
        for (int ch = 0; ch < C; ch++) {
            mean[ch] = (float)w.tot1[ch];
            inv[ch] = 1.0f / sqrtf((float)w.tot2[ch] + eps);
        }
        if (ctx->sample == 0) update_moving(l, &w, c->rows);
    } else {
        const float *mm = cnn_layer_param(l, c->mean), *mv = cnn_layer_param(l, c->var);
        for (int ch = 0; ch < C; ch++) {
            mean[ch] = mm[ch];
            inv[ch] = 1.0f / sqrtf(mv[ch] + eps);
        }
    }
    const float *gamma = c->gamma >= 0 ? cnn_layer_param(l, c->gamma) : NULL;
    const float *beta = c->beta >= 0 ? cnn_layer_param(l, c->beta) : NULL;
    for (int ch = 0; ch < C; ch++) {
        w.k1[ch] = gamma ? inv[ch] * gamma[ch] : inv[ch];
        w.k2[ch] = beta ? beta[ch] : 0.0f;
    }
    const float *a = w.k1, *b = w.k2;
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (size_t r = 0; r < rows; r++)
        for (int ch = 0; ch < C; ch++) y[r * C + ch] = (x[r * C + ch] - mean[ch]) * a[ch] + b[ch];
}

/* tot1 = sum of dy, tot2 = sum of dy * xhat per channel, with xhat from the forward pass's statistics. */
static void grad_sums(const cnn_layer *l, const float *x, const float *dy, size_t rows, bn_work *w)
{
    const int C = l->in.c;
    const float *mean = l->scratch, *inv = l->scratch + C;
    const size_t cs = chunk_rows(rows), nk = (rows + cs - 1) / cs;
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (size_t k = 0; k < nk; k++) {
        double *p1 = w->part1 + k * C, *p2 = w->part2 + k * C;
        const size_t end = (k + 1) * cs < rows ? (k + 1) * cs : rows;
        for (int ch = 0; ch < C; ch++) p1[ch] = p2[ch] = 0.0;
        for (size_t r = k * cs; r < end; r++)
            for (int ch = 0; ch < C; ch++) {
                const float g = dy[r * C + ch], xhat = (x[r * C + ch] - mean[ch]) * inv[ch];
                p1[ch] += g;
                p2[ch] += (double)g * xhat;
            }
    }
    add_chunks(w->part1, w->tot1, rows, C);
    add_chunks(w->part2, w->tot2, rows, C);
}

static void bn_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                        float *dx, int n)
{
    (void)y;
    const bn_cfg *c = l->cfg;
    const int C = l->in.c, batch = batch_mode(l, ctx);
    const size_t rows = rows_of(l, n);
    const float *mean = l->scratch, *inv = l->scratch + C;
    bn_work w = carve(l, ctx->work);
    if (batch || l->trainable) grad_sums(l, x, dy, rows, &w);
    if (l->trainable) {
        if (c->gamma >= 0) {
            float *dg = cnn_layer_grad(l, c->gamma);
            for (int ch = 0; ch < C; ch++) dg[ch] = (float)w.tot2[ch];
        }
        if (c->beta >= 0) {
            float *db = cnn_layer_grad(l, c->beta);
            for (int ch = 0; ch < C; ch++) db[ch] = (float)w.tot1[ch];
        }
    }
    if (!ctx->need_dx) return;
    /* Synchronised: dx needs the means over the global batch (the parameter gradients above stay this
     * process's own; the gradient reduction adds them up). tot1 and tot2 are contiguous. */
    const double total = batch && cnn_layer_sync_sums(ctx, w.tot1, 2 * C) ? c->rows : (double)rows;
    /* dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat)); the means vanish with fixed statistics. */
    const float *gamma = c->gamma >= 0 ? cnn_layer_param(l, c->gamma) : NULL;
    for (int ch = 0; ch < C; ch++) {
        w.k1[ch] = gamma ? gamma[ch] * inv[ch] : inv[ch];
        w.k2[ch] = batch ? (float)(w.tot1[ch] / total) : 0.0f;
        w.k3[ch] = batch ? (float)(w.tot2[ch] / total) : 0.0f;
    }
    const float *a = w.k1, *mdy = w.k2, *mdyx = w.k3;
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (size_t r = 0; r < rows; r++)
        for (int ch = 0; ch < C; ch++) {
            const float xhat = (x[r * C + ch] - mean[ch]) * inv[ch];
            dx[r * C + ch] = a[ch] * (dy[r * C + ch] - mdy[ch] - xhat * mdyx[ch]);
        }
}

static void bn_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const bn_cfg *c = l->cfg;
    snprintf(buf, cap, "momentum=%g epsilon=%g", c->momentum, c->epsilon);
}

const cnn_layer_ops cnn_batch_normalization_ops = {
    .type = "BatchNormalization",
    .auto_name = "batch_normalization",
    .cfg_size = sizeof(bn_cfg),
    .configure = bn_configure,
    .build = bn_build,
    .workspace = bn_workspace,
    .forward = bn_forward,
    .backward = bn_backward,
    .describe = bn_describe,
};
