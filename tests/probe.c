#include "probe.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "util.h"

float *probe_floats(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

void probe_fill(float *v, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) v[i] = cnn_rng_uniform(11, stream, i) * 2.0f - 1.0f;
}

void probe_open(probe *p, const char *type, const char *options, int h, int w, int c, int n)
{
    memset(p, 0, sizeof *p);
    p->m = cnn_model_create("probe", h, w, c);
    assert_non_null(p->m);
    if (cnn_model_add(p->m, type, options) || cnn_model_build(p->m, 5))
        fail_msg("%s(%s): %s", type, options, cnn_errmsg());
    p->l = &p->m->layers[0];
    p->l->act_run = p->l->act; /* the layer applies even a softmax (the model leaves that to the loss) */
    p->n = n;
    p->nx = cnn_shape_size(p->l->in) * n;
    p->ny = cnn_shape_size(p->l->out) * n;
    p->x = probe_floats(p->nx), p->dx = probe_floats(p->nx);
    p->y = probe_floats(p->ny), p->dy = probe_floats(p->ny);
    p->work = probe_floats(p->l->ops->workspace ? p->l->ops->workspace(p->l, n) : 0);
    p->scratch = probe_floats(p->l->scratch_per_sample * n);
    p->l->scratch = p->l->scratch_per_sample ? p->scratch : NULL;
    probe_fill(p->m->params, p->m->nparams, 1);
    probe_fill(p->x, p->nx, 2);
}

void probe_forward(probe *p)
{
    cnn_ctx ctx = {.training = 1, .work = p->work, .need_dx = 1};
    p->l->ops->forward(p->l, &ctx, p->x, p->y, p->n);
}

void probe_step(probe *p, int need_dx)
{
    probe_forward(p);
    probe_fill(p->dy, p->ny, 3);
    memset(p->m->grads, 0, sizeof(float) * p->m->nparams);
    cnn_ctx ctx = {.training = 1, .work = p->work, .need_dx = need_dx};
    p->l->ops->backward(p->l, &ctx, p->x, p->y, p->dy, p->dx, p->n);
}

void probe_close(probe *p)
{
    free(p->x), free(p->y), free(p->dy), free(p->dx), free(p->work), free(p->scratch);
    cnn_model_free(p->m);
}

void probe_assert_without_dx_and_frozen(const char *type, const char *options, int h, int w, int c, int n)
{
    probe with, without, frozen;
    probe_open(&with, type, options, h, w, c, n);
    probe_step(&with, 1);
    probe_open(&without, type, options, h, w, c, n);
    probe_step(&without, 0);
    assert_memory_equal(with.m->grads, without.m->grads, sizeof(float) * with.m->nparams);
    probe_open(&frozen, type, options, h, w, c, n);
    frozen.l->trainable = 0;
    probe_step(&frozen, 1);
    assert_memory_equal(with.dx, frozen.dx, sizeof(float) * with.nx);
    for (size_t j = 0; j < frozen.m->nparams; j++) assert_true(frozen.m->grads[j] == 0.0f);
    probe_close(&with);
    probe_close(&without);
    probe_close(&frozen);
}

void probe_assert_threads_bit_identical(const char *type, const char *options, int h, int w, int c, int n,
                                        int across)
{
    const int keep = cnn_get_threads();
    probe one, two;
    cnn_set_threads(across ? 1 : 2);
    probe_open(&one, type, options, h, w, c, n);
    probe_step(&one, 1);
    cnn_set_threads(2);
    probe_open(&two, type, options, h, w, c, n);
    probe_step(&two, 1);
    assert_memory_equal(one.y, two.y, sizeof(float) * one.ny);
    assert_memory_equal(one.dx, two.dx, sizeof(float) * one.nx);
    assert_memory_equal(one.m->grads, two.m->grads, sizeof(float) * one.m->nparams);
    assert_memory_equal(one.scratch, two.scratch, sizeof(float) * one.l->scratch_per_sample * one.n);
    probe_close(&one);
    probe_close(&two);
    cnn_set_threads(keep);
}
