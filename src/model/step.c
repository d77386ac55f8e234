/* The training step, in pieces a user can drive: forward, backward (loss + gradients), update; and compile,
 * which binds the loss and the optimizer to the model's execution state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm_bf16.h"
#include "layers/activation.h"
#include "layers/conv_pool.h"
#include "loss/xent.h"
#include "model/model.h"
#include "model/progress.h"

/* Sparse categorical cross-entropy needs one value per class, as logits: over a softmax output (the model
 * keeps the logits under it) or, with from_logits, the output itself. */
int cnn_model_check_loss(const cnn_model *m, const cnn_loss_config *loss)
{
    const cnn_layer *last = &m->layers[m->nlayers - 1];
    if (loss->kind != CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        return cnn_fail(CNN_ERR_INVALID, "model '%s': unknown loss %d", m->name, (int)loss->kind);
    if (last->out.h != 1 || last->out.w != 1 || m->outputs < 2)
        return cnn_fail(
            CNN_ERR_SHAPE,
            "model '%s': sparse categorical cross-entropy needs one value per class (a vector of >= 2 "
            "values), but the last layer '%s' outputs (%d, %d, %d) per sample",
            m->name, last->name, last->out.h, last->out.w, last->out.c);
    if (!loss->from_logits && !m->fused_softmax)
        return cnn_fail(
            CNN_ERR_INVALID,
            "model '%s': the loss expects probabilities, but the last layer '%s' has activation %s; "
            "end the model in a softmax, or compile the loss with from_logits=True",
            m->name, last->name, cnn_act_name(last->act));
    if (loss->from_logits && last->act != CNN_ACT_LINEAR)
        return cnn_fail(
            CNN_ERR_INVALID,
            "model '%s': from_logits=True expects logits, but the last layer '%s' applies %s; make "
            "it linear, or use the loss on probabilities (from_logits=False)",
            m->name, last->name, cnn_act_name(last->act));
    return CNN_OK;
}

/* The parameter ranges the optimizer updates: trainable tensors of trainable layers. */
int cnn_model_update_ranges(cnn_model *m)
{
    int n = cnn_model_num_tensors(m);
    cnn_range *r = malloc(sizeof *r * (size_t)(n ? n : 1));
    if (!r) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (p->trainable && m->layers[i].trainable) r[k++] = (cnn_range){p->offset, p->size};
        }
    int rc = cnn_optimizer_set_ranges(&m->x.opt, r, k);
    free(r);
    return rc;
}

int cnn_model_compile_loss(cnn_model *m, const cnn_optimizer_config *opt, const cnn_loss_config *loss)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': build it before compile", m->name);
    if (!opt || !loss)
        return cnn_fail(CNN_ERR_INVALID, "model '%s': compile needs an optimizer and a loss", m->name);
    cnn_optimizer_config cfg = *opt; /* opt may point into m->x.opt, which init resets */
    cnn_loss_config lc = *loss;
    m->x.compiled = 0;
    int rc = cnn_model_check_loss(m, &lc);
    if (!rc) rc = cnn_optimizer_init(&m->x.opt, &cfg, m->nparams);
    if (!rc) rc = cnn_model_update_ranges(m);
    if (!rc) m->x.loss = lc;
    m->x.compiled = rc == CNN_OK;
    return rc;
}

int cnn_model_compile(cnn_model *m, const cnn_optimizer_config *opt)
{
    const cnn_loss_config probs = {CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0};
    return cnn_model_compile_loss(m, opt, &probs);
}

double cnn_model_learning_rate(const cnn_model *m)
{
    return m->x.opt.lr;
}

void cnn_model_set_learning_rate(cnn_model *m, double lr)
{
    m->x.opt.lr = lr;
}

long cnn_model_iterations(const cnn_model *m)
{
    return m->x.opt.t;
}

/* Only the model's first layer: it never needs an input gradient, which the fused backward does not give. */
int cnn_model_fused(const cnn_model *m, int i)
{
    return i == 0 && m->nlayers > 1 && !m->x.unfused && cnn_conv_pool_fusable(&m->layers[0], &m->layers[1]);
}

void cnn_model_forward_range(cnn_model *m, int first, int through, int n, int training)
{
    cnn_exec *x = &m->x;
    cnn_ctx ctx = {.training = training,
                   .seed = m->seed,
                   .step = x->rng_step,
                   .sample = x->rng_sample,
                   .sync = training && x->sync.reduce ? &x->sync : NULL,
                   .work = x->work};
    const int was_bf16 = cnn_gemm_bf16_on(); /* the kernels' switch is process-wide: set for this model */
    cnn_gemm_bf16_set(m->bf16);
    for (int i = first; i <= through; i++) {
        cnn_layer *l = &m->layers[i];
        double t0 = x->prof_seconds ? cnn_now() : 0;
        if (i < through && cnn_model_fused(m, i)) /* the pair's time counts as the first layer's */
            cnn_conv_pool_forward(l, &m->layers[i + 1], &ctx, x->acts[i], x->acts[i + 2], n);
        else if (!l->alias)
            l->ops->forward(l, &ctx, x->acts[i], x->acts[i + 1], n);
        if (x->prof_seconds) x->prof_seconds[2 * i] += cnn_now() - t0;
        if (i < through && cnn_model_fused(m, i)) i++;
    }
    cnn_gemm_bf16_set(was_bf16);
}

void cnn_model_forward_from(cnn_model *m, int first, int n, int training)
{
    cnn_exec *x = &m->x;
    cnn_model_forward_range(m, first, m->nlayers - 1, n, training);
    x->prof_forward++;
    if (m->fused_softmax) {
        /* Keep the logits for the loss; the output buffer then holds probabilities. */
        size_t k = (size_t)m->outputs * n;
        memcpy(x->logits, x->acts[m->nlayers], sizeof(float) * k);
        cnn_softmax_rows(x->logits, x->acts[m->nlayers], (size_t)n, (size_t)m->outputs);
    }
    x->last_n = n;
    x->last_first = first;
    x->last_training = training;
}

const float *cnn_model_output(const cnn_model *m)
{
    return m->x.acts[m->nlayers];
}

static const float *loss_logits(const cnn_model *m)
{
    return m->fused_softmax ? m->x.logits : m->x.acts[m->nlayers];
}

double cnn_model_regularization(const cnn_model *m)
{
    double r = 0.0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (p->l1 == 0.0f && p->l2 == 0.0f) continue;
            const float *w = m->params + p->offset;
            double a = 0.0, b = 0.0;
            for (size_t e = 0; e < p->size; e++) {
                a += fabsf(w[e]);
                b += (double)w[e] * w[e];
            }
            r += p->l1 * a + p->l2 * b;
        }
    return r;
}

/* d/dw of l1*|w| + l2*w^2, added to the gradients of trainable regularised kernels. */
static void add_regularization_grads(cnn_model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        if (!m->layers[i].trainable) continue;
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (p->l1 == 0.0f && p->l2 == 0.0f) continue;
            const float *w = m->params + p->offset;
            float *g = m->grads + p->offset;
            const float l1 = p->l1, l2x2 = 2.0f * p->l2;
#pragma omp parallel for simd schedule(static) if (p->size > 32768)
            for (size_t e = 0; e < p->size; e++)
                g[e] += l1 * (float)((w[e] > 0.0f) - (w[e] < 0.0f)) + l2x2 * w[e];
        }
    }
}

/* Index of the first layer whose parameters train: nothing before it needs a backward pass. */
static int first_trained_layer(const cnn_model *m)
{
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].trainable && m->layers[i].nparams) return i;
    return m->nlayers;
}

void cnn_model_score_planned(cnn_model *m, const int32_t *y, int n, double *loss_sum, int *correct)
{
    cnn_xent(loss_logits(m), y, n, m->outputs, 0.0f, loss_sum, correct, NULL);
}

void cnn_model_backward_planned(cnn_model *m, const int32_t *y, double *loss, int *correct)
{
    cnn_exec *x = &m->x;
    const int n = x->last_n;
    double sum = 0.0;
    int hits = 0;
    float *dy = x->dbuf[0];
    /* Data-parallel: scaled by the global batch, so that the processes' gradients add up to its mean. */
    const int count = x->loss_count > 0 ? x->loss_count : n;
    cnn_xent(loss_logits(m), y, n, m->outputs, 1.0f / (float)count, &sum, &hits, dy);
    *loss = sum / n + cnn_model_regularization(m);
    *correct = hits;

    int first = first_trained_layer(m);
    if (first < x->last_first) first = x->last_first;
    cnn_ctx ctx = {.training = 1,
                   .seed = m->seed,
                   .step = x->rng_step,
                   .sample = x->rng_sample,
                   .sync = x->sync.reduce ? &x->sync : NULL,
                   .work = x->work};
    const int was_bf16 = cnn_gemm_bf16_on();
    cnn_gemm_bf16_set(m->bf16);
    for (int i = m->nlayers - 1; i >= first; i--) {
        cnn_layer *l = &m->layers[i];
        if (l->alias) continue; /* the gradient passes through unchanged */
        float *dx = dy == x->dbuf[0] ? x->dbuf[1] : x->dbuf[0];
        ctx.need_dx = i > first;
        double t0 = x->prof_seconds ? cnn_now() : 0;
        /* a fused pair left layer i - 1's output unwritten: both layers' backward run as one */
        const int pair = i - 1 == first && cnn_model_fused(m, i - 1);
        if (pair)
            cnn_conv_pool_backward(&m->layers[i - 1], l, &ctx, x->acts[i - 1], x->acts[i + 1], dy, n);
        else
            l->ops->backward(l, &ctx, x->acts[i], x->acts[i + 1], dy, dx, n);
        if (x->prof_seconds) x->prof_seconds[2 * (i - pair) + 1] += cnn_now() - t0;
        if (pair) break;
        dy = dx;
    }
    cnn_gemm_bf16_set(was_bf16);
    x->prof_backward++;
    /* Once per global batch: the process holding its first sample adds the regularisation gradient. */
    if (x->rng_sample == 0) add_regularization_grads(m);
}

void cnn_model_update_planned(cnn_model *m)
{
    cnn_optimizer_step(&m->x.opt, m->params, m->grads);
    m->x.rng_step++;
}

static int check_labels(const cnn_model *m, const int32_t *y, int n)
{
    if (!y) return cnn_fail(CNN_ERR_INVALID, "model '%s': backward needs labels (y is NULL)", m->name);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->outputs)
            return cnn_fail(CNN_ERR_INVALID, "label %d of sample %d is outside [0, %d) for model '%s'", y[i],
                            i, m->outputs, m->name);
    return CNN_OK;
}

int cnn_model_forward(cnn_model *m, const float *x, int n, int training, float *probs)
{
    if (n < 1) return cnn_fail(CNN_ERR_INVALID, "forward: batch size %d must be >= 1", n);
    if (!x) return cnn_fail(CNN_ERR_INVALID, "forward: the input x is NULL");
    int rc = cnn_model_plan(m, n);
    if (rc) return rc;
    memcpy(m->x.acts[0], x, sizeof(float) * cnn_shape_size(m->input) * n);
    cnn_model_forward_from(m, 0, n, training);
    if (probs) memcpy(probs, cnn_model_output(m), sizeof(float) * (size_t)m->outputs * n);
    return CNN_OK;
}

int cnn_model_backward(cnn_model *m, const int32_t *y, double *loss, int *correct)
{
    if (!m->x.compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before training", m->name);
    if (!m->x.last_n || !m->x.last_training)
        return cnn_fail(CNN_ERR_STATE, "model '%s': backward needs a training forward pass first", m->name);
    int rc = check_labels(m, y, m->x.last_n);
    if (rc) return rc;
    cnn_model_backward_planned(m, y, loss, correct);
    return CNN_OK;
}

int cnn_model_update(cnn_model *m)
{
    if (!m->x.compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before training", m->name);
    cnn_model_update_planned(m);
    return CNN_OK;
}

int cnn_model_train_step(cnn_model *m, const float *x, const int32_t *y, int n, double *loss, int *correct)
{
    int rc = cnn_model_forward(m, x, n, 1, NULL);
    if (!rc) rc = cnn_model_backward(m, y, loss, correct);
    if (!rc) rc = cnn_model_update(m);
    return rc;
}
