/* The training step, in pieces a user can drive: forward, backward (loss + gradients), update. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "layers/activation.h"
#include "loss/xent.h"
#include "model/model.h"
#include "model/progress.h"

/* The loss needs logits: a softmax last layer runs linear (see cnn_model_build) and the model applies the
 * softmax itself after keeping the logits; a linear last layer already produces logits (Keras's
 * from_logits=True). */
static int setup_loss(cnn_model *m)
{
    cnn_layer *last = &m->layers[m->nlayers - 1];
    if (last->act != CNN_ACT_SOFTMAX && last->act != CNN_ACT_LINEAR)
        return cnn_fail(CNN_ERR_INVALID,
                        "model '%s': the last layer '%s' must use activation softmax (or linear for logits) "
                        "for sparse categorical cross-entropy, not %s",
                        m->name, last->name, cnn_act_name(last->act));
    if (m->classes < 2)
        return cnn_fail(CNN_ERR_SHAPE,
                        "model '%s': the last layer '%s' has %d output; a classifier needs >= 2", m->name,
                        last->name, m->classes);
    return CNN_OK;
}

static int setup_ranges(cnn_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) n += m->layers[i].nparams;
    cnn_range *r = malloc(sizeof *r * (size_t)(n ? n : 1));
    if (!r) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (p->trainable && m->layers[i].trainable) r[k++] = (cnn_range){p->offset, p->size};
        }
    int rc = cnn_optimizer_set_ranges(&m->opt, r, k);
    free(r);
    return rc;
}

int cnn_model_compile(cnn_model *m, const cnn_optimizer_config *opt)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': build it before compile", m->name);
    cnn_optimizer_config cfg = *opt; /* opt may point into m->opt, which init resets */
    int rc = setup_loss(m);
    if (!rc) rc = cnn_optimizer_init(&m->opt, &cfg, m->nparams);
    if (!rc) rc = setup_ranges(m);
    m->compiled = rc == CNN_OK;
    return rc;
}

double cnn_model_learning_rate(const cnn_model *m)
{
    return m->opt.lr;
}

void cnn_model_set_learning_rate(cnn_model *m, double lr)
{
    m->opt.lr = lr;
}

void cnn_model_forward_planned(cnn_model *m, int n, int training)
{
    cnn_ctx ctx = {.training = training, .seed = m->seed, .step = m->step, .work = m->work};
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = &m->layers[i];
        double t0 = m->prof_seconds ? cnn_now() : 0;
        if (!l->alias) l->ops->forward(l, &ctx, m->acts[i], m->acts[i + 1], n);
        if (m->prof_seconds) m->prof_seconds[2 * i] += cnn_now() - t0;
    }
    m->prof_forward++;
    /* Keep the logits for the loss; the output buffer then holds probabilities. */
    size_t k = (size_t)m->classes * n;
    memcpy(m->logits, m->acts[m->nlayers], sizeof(float) * k);
    cnn_softmax_rows(m->logits, m->acts[m->nlayers], (size_t)n, (size_t)m->classes);
    m->last_n = n;
    m->last_training = training;
}

const float *cnn_model_output(const cnn_model *m)
{
    return m->acts[m->nlayers];
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
    cnn_xent(m->logits, y, n, m->classes, 0.0f, loss_sum, correct, NULL);
}

void cnn_model_backward_planned(cnn_model *m, const int32_t *y, double *loss, int *correct)
{
    const int n = m->last_n;
    double sum = 0.0;
    int hits = 0;
    float *dy = m->dbuf[0];
    cnn_xent(m->logits, y, n, m->classes, 1.0f / (float)n, &sum, &hits, dy);
    *loss = sum / n + cnn_model_regularization(m);
    *correct = hits;

    const int first = first_trained_layer(m);
    cnn_ctx ctx = {.training = 1, .seed = m->seed, .step = m->step, .work = m->work};
    for (int i = m->nlayers - 1; i >= first; i--) {
        cnn_layer *l = &m->layers[i];
        if (l->alias) continue; /* the gradient passes through unchanged */
        float *dx = dy == m->dbuf[0] ? m->dbuf[1] : m->dbuf[0];
        ctx.need_dx = i > first;
        double t0 = m->prof_seconds ? cnn_now() : 0;
        l->ops->backward(l, &ctx, m->acts[i], m->acts[i + 1], dy, dx, n);
        if (m->prof_seconds) m->prof_seconds[2 * i + 1] += cnn_now() - t0;
        dy = dx;
    }
    m->prof_backward++;
    add_regularization_grads(m);
}

static int check_labels(const cnn_model *m, const int32_t *y, int n)
{
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->classes)
            return cnn_fail(CNN_ERR_INVALID, "label %d of sample %d is outside [0, %d) for model '%s'", y[i],
                            i, m->classes, m->name);
    return CNN_OK;
}

int cnn_model_forward(cnn_model *m, const float *x, int n, int training, float *probs)
{
    if (n < 1) return cnn_fail(CNN_ERR_INVALID, "forward: batch size %d must be >= 1", n);
    int rc = cnn_model_plan(m, n);
    if (rc) return rc;
    memcpy(m->acts[0], x, sizeof(float) * cnn_shape_size(m->input) * n);
    cnn_model_forward_planned(m, n, training);
    if (probs) memcpy(probs, cnn_model_output(m), sizeof(float) * (size_t)m->classes * n);
    return CNN_OK;
}

int cnn_model_backward(cnn_model *m, const int32_t *y, double *loss, int *correct)
{
    if (!m->compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before training", m->name);
    if (!m->last_n || !m->last_training)
        return cnn_fail(CNN_ERR_STATE, "model '%s': backward needs a training forward pass first", m->name);
    int rc = check_labels(m, y, m->last_n);
    if (rc) return rc;
    cnn_model_backward_planned(m, y, loss, correct);
    return CNN_OK;
}

int cnn_model_update(cnn_model *m)
{
    if (!m->compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before training", m->name);
    cnn_optimizer_step(&m->opt, m->params, m->grads);
    m->step++;
    return CNN_OK;
}

int cnn_model_train_step(cnn_model *m, const float *x, const int32_t *y, int n, double *loss, int *correct)
{
    int rc = cnn_model_forward(m, x, n, 1, NULL);
    if (!rc) rc = cnn_model_backward(m, y, loss, correct);
    if (!rc) rc = cnn_model_update(m);
    return rc;
}
