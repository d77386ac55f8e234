/* Tensor access: a model's parameter and state tensors by index or by Keras-style name, as views into the
 * model's contiguous buffers. Weight import and export, histograms and gradient reductions go through it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

int cnn_model_num_tensors(const cnn_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) n += m->layers[i].nparams;
    return n;
}

static void describe(cnn_model *m, int layer, int j, cnn_tensor *t)
{
    const cnn_layer *l = &m->layers[layer];
    const cnn_param *p = &l->params[j];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s/%s", l->name, p->name);
    t->layer = layer;
    t->rank = p->rank;
    memcpy(t->dim, p->dim, sizeof t->dim);
    t->size = p->size;
    t->data = m->params + p->offset;
    t->grad = p->trainable ? m->grads + p->offset : NULL;
    t->trainable = p->trainable && l->trainable;
}

int cnn_model_tensor(cnn_model *m, int i, cnn_tensor *t)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': build it before reading its tensors", m->name);
    int k = i;
    for (int layer = 0; k >= 0 && layer < m->nlayers; layer++) {
        if (k < m->layers[layer].nparams) {
            describe(m, layer, k, t);
            return CNN_OK;
        }
        k -= m->layers[layer].nparams;
    }
    return cnn_fail(CNN_ERR_INVALID, "model '%s' has %d tensors; index %d is out of range", m->name,
                    cnn_model_num_tensors(m), i);
}

int cnn_model_find_tensor(cnn_model *m, const char *name, cnn_tensor *t)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': build it before reading its tensors", m->name);
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (slash) {
        size_t len = (size_t)(slash - name);
        for (int i = 0; i < m->nlayers; i++) {
            const cnn_layer *l = &m->layers[i];
            if (strlen(l->name) != len || strncmp(l->name, name, len)) continue;
            for (int j = 0; j < l->nparams; j++)
                if (!strcmp(l->params[j].name, slash + 1)) {
                    describe(m, i, j, t);
                    return CNN_OK;
                }
        }
    }
    return cnn_fail(CNN_ERR_INVALID,
                    "model '%s' has no tensor named '%s' (names are layer/weight, e.g. '%s/%s')", m->name,
                    name ? name : "(null)", m->nlayers ? m->layers[0].name : "dense",
                    m->nlayers && m->layers[0].nparams ? m->layers[0].params[0].name : "kernel");
}

/* The first element of p[0..n) that is NaN or infinite, or -1. */
static long first_nonfinite(const float *p, size_t n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += p[i] - p[i]; /* 0 for finite values, NaN otherwise */
    if (acc == 0.0f) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return (long)i;
    return -1;
}

int cnn_model_check_finite(const cnn_model *m, const char *context)
{
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            long at = first_nonfinite(m->params + p->offset, p->size);
            if (at >= 0)
                return cnn_fail(CNN_ERR_NONFINITE,
                                "%s: tensor '%s/%s' holds %g at index %ld (weights must be finite)", context,
                                m->layers[i].name, p->name, m->params[p->offset + (size_t)at], at);
        }
    return CNN_OK;
}

int cnn_model_grads_finite(const cnn_model *m)
{
    const cnn_optimizer *o = &m->x.opt;
    for (int i = 0; i < o->nranges; i++)
        if (first_nonfinite(m->grads + o->ranges[i].offset, o->ranges[i].size) >= 0) return 0;
    return 1;
}

/* Names the first layer, in forward order, whose output or gradient is not finite. */
int cnn_model_explain_nonfinite(const cnn_model *m, int first, int n, char *buf, size_t cap)
{
    for (int i = first; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        if (cnn_model_fused(m, i)) continue; /* its output was not written */
        if (first_nonfinite(m->x.acts[i + 1], cnn_shape_size(l->out) * (size_t)n) >= 0)
            return snprintf(buf, cap, "the output of layer '%s' (%s) is the first that is not finite",
                            l->name, l->ops->type);
    }
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (p->trainable && first_nonfinite(m->grads + p->offset, p->size) >= 0)
                return snprintf(buf, cap, "the gradient of '%s/%s' is the first that is not finite",
                                m->layers[i].name, p->name);
        }
    return snprintf(buf, cap, "every output and gradient is finite");
}
