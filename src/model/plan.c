/* Activation memory, planned once per batch size: one arena holds the input batch, every layer's output
 * (aliases share their input's), the scratch layers keep between forward and backward, two ping-pong
 * gradient buffers and one workspace shared by all layers. A training step allocates nothing. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

enum { ALIGN_FLOATS = 16 }; /* 64-byte alignment for every sub-buffer */

static size_t round_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* Values per sample entering layer i. */
static size_t in_size(const cnn_model *m, int i)
{
    return cnn_shape_size(i ? m->layers[i - 1].out : m->input);
}

/* The two gradient buffers' sizes for batches of n: backward (step.c) starts with the loss gradient in
 * dbuf[0] and writes each non-alias layer's input gradient into the other buffer, layer 0's never (nothing
 * needs it). Sizing each buffer for the gradients that land in it, as if every layer trained, covers any
 * first trained layer or cached prefix, and halves the smaller buffer for a network whose largest
 * activations alternate (Model_2_s2: 49 and 12 MB instead of 2 x 49). */
static void plan_grads(const cnn_model *m, int n, size_t grad[2])
{
    int cur = 0;
    grad[0] = (size_t)m->outputs * n, grad[1] = 0;
    for (int i = m->nlayers - 1; i > 0; i--) {
        if (m->layers[i].alias) continue;
        cur = !cur;
        size_t dx = in_size(m, i) * n;
        if (dx > grad[cur]) grad[cur] = dx;
    }
}

/* Floats the arena needs for batches of n, with the gradient buffers' and the workspace's sizes. */
static size_t plan_size(const cnn_model *m, int n, size_t grad[2], size_t *work_max)
{
    size_t total = round_up(cnn_shape_size(m->input) * n);
    *work_max = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        if (!l->alias) total += round_up(cnn_shape_size(l->out) * n);
        total += round_up(l->scratch_per_sample * n);
        if (l->ops->workspace) {
            size_t w = l->ops->workspace(l, n);
            if (w > *work_max) *work_max = w;
        }
    }
    plan_grads(m, n, grad);
    return total + round_up(grad[0]) + round_up(grad[1]) + round_up(*work_max) +
           2 * round_up((size_t)m->outputs * n);
}

int cnn_model_plan(cnn_model *m, int n)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "model '%s' is not built", m->name);
    if (n <= m->x.plan_batch) return CNN_OK;
    size_t grad[2], work_max;
    size_t total = plan_size(m, n, grad, &work_max);
    float *arena = aligned_alloc(64, sizeof(float) * total);
    float **acts = calloc((size_t)m->nlayers + 1, sizeof *acts);
    if (!arena || !acts) {
        free(arena);
        free(acts);
        return cnn_fail(CNN_ERR_NOMEM, "model '%s': out of memory for a batch of %d (%zu MiB)", m->name, n,
                        sizeof(float) * total >> 20);
    }
    memset(arena, 0, sizeof(float) * total);
    free(m->x.arena);
    free(m->x.acts);
    m->x.arena = arena;
    m->x.acts = acts;

    float *p = arena;
    acts[0] = p;
    p += round_up(cnn_shape_size(m->input) * n);
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = &m->layers[i];
        if (l->alias) {
            acts[i + 1] = acts[i];
        } else {
            acts[i + 1] = p;
            p += round_up(cnn_shape_size(l->out) * n);
        }
        l->scratch = l->scratch_per_sample ? p : NULL;
        p += round_up(l->scratch_per_sample * n);
    }
    m->x.dbuf[0] = p;
    p += round_up(grad[0]);
    m->x.dbuf[1] = p;
    p += round_up(grad[1]);
    m->x.work = p;
    p += round_up(work_max);
    m->x.logits = p;
    p += round_up((size_t)m->outputs * n);
    m->x.labels = (int32_t *)p; /* int32 and float have the same size and alignment here */
    m->x.plan_batch = n;
    return CNN_OK;
}
