#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/model.h"
#include "util.h"

typedef struct gc_bufs {
    float *x, *y, *dy, *dx, *r, *work, *scratch;
    size_t nx, ny;
} gc_bufs;

static float *alloc_floats(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

/* Inputs away from 0 by at least 0.05, so kinks (relu, max pooling ties) are not straddled by eps. */
static void fill_random(float *v, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) {
        float u = cnn_rng_uniform(7, stream, i) * 2.0f - 1.0f;
        v[i] = u >= 0 ? 0.05f + u : u - 0.05f;
    }
}

static double objective(cnn_layer *l, gc_bufs *b, int n, int training)
{
    cnn_ctx ctx = {.training = training, .seed = 3, .step = 11, .work = b->work, .need_dx = 1};
    l->ops->forward(l, &ctx, b->x, l->alias ? b->x : b->y, n);
    const float *y = l->alias ? b->x : b->y;
    double s = 0.0;
    for (size_t i = 0; i < b->ny; i++) s += (double)b->r[i] * y[i];
    return s;
}

static double rel_err(const double *a, const double *num, size_t n)
{
    double d = 0, na = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        d += (a[i] - num[i]) * (a[i] - num[i]);
        na += a[i] * a[i];
        nn += num[i] * num[i];
    }
    double scale = fmax(fmax(sqrt(na), sqrt(nn)), 1e-6);
    return sqrt(d) / scale;
}

/* Central differences of objective() with respect to v[0..n), compared with analytic[0..n). */
static double check_values(cnn_layer *l, gc_bufs *b, int n, int training, float *v, const float *analytic,
                           size_t count, int *checked)
{
    double *a = malloc(sizeof(double) * count), *num = malloc(sizeof(double) * count);
    assert_non_null(a);
    assert_non_null(num);
    for (size_t i = 0; i < count; i++) {
        float keep = v[i];
        float eps = fmaxf(1e-3f, 1e-3f * fabsf(keep));
        v[i] = keep + eps;
        double up = objective(l, b, n, training);
        v[i] = keep - eps;
        double down = objective(l, b, n, training);
        v[i] = keep;
        num[i] = (up - down) / (2.0 * eps);
        a[i] = analytic[i];
        ++*checked;
    }
    double e = rel_err(a, num, count);
    free(a);
    free(num);
    return e;
}

gc_result gc_check_layer(const char *type, const char *options, int h, int w, int c, int n, int training)
{
    gc_result res = {0};
    cnn_model *m = cnn_model_create("gradcheck", h, w, c);
    assert_non_null(m);
    if (cnn_model_add(m, type, options) || cnn_model_build(m, 5))
        fail_msg("%s(%s): %s", type, options, cnn_errmsg());
    cnn_layer *l = &m->layers[0];
    l->act_run = l->act; /* check the layer's own activation, softmax included */
    fill_random(m->params, m->nparams, 99);
    gc_bufs b = {.nx = cnn_shape_size(l->in) * n, .ny = cnn_shape_size(l->out) * n};
    b.x = alloc_floats(b.nx);
    b.dx = alloc_floats(b.nx);
    b.y = alloc_floats(b.ny);
    b.dy = alloc_floats(b.ny);
    b.r = alloc_floats(b.ny);
    b.work = alloc_floats(l->ops->workspace ? l->ops->workspace(l, n) : 0);
    b.scratch = alloc_floats(l->scratch_per_sample * n);
    l->scratch = l->scratch_per_sample ? b.scratch : NULL;
    fill_random(b.x, b.nx, 1);
    fill_random(b.r, b.ny, 2);

    objective(l, &b, n, training);
    memcpy(b.dy, b.r, sizeof(float) * b.ny);
    cnn_ctx ctx = {.training = training, .seed = 3, .step = 11, .work = b.work, .need_dx = 1};
    l->ops->backward(l, &ctx, b.x, l->alias ? b.x : b.y, b.dy, l->alias ? b.dy : b.dx, n);
    if (l->alias) memcpy(b.dx, b.dy, sizeof(float) * b.nx);
    float *grads = alloc_floats(m->nparams);
    memcpy(grads, m->grads, sizeof(float) * m->nparams);

    res.dx_err = check_values(l, &b, n, training, b.x, b.dx, b.nx, &res.checked_dx);
    res.trainable = (int)cnn_model_num_params(m, 1);
    for (int j = 0; j < l->nparams; j++) {
        const cnn_param *p = &l->params[j];
        if (!p->trainable || !l->trainable) continue; /* a frozen layer (trainable=false) gives dx only */
        double e = check_values(l, &b, n, training, m->params + p->offset, grads + p->offset, p->size,
                                &res.checked_params);
        res.dparam_err = fmax(res.dparam_err, e);
    }
    free(grads);
    free(b.x), free(b.dx), free(b.y), free(b.dy), free(b.r), free(b.work), free(b.scratch);
    cnn_model_free(m);
    return res;
}

void gc_assert_layer(const char *type, const char *options, int h, int w, int c, int n, int training,
                     double tol)
{
    gc_result r = gc_check_layer(type, options, h, w, c, n, training);
    if (r.checked_dx != h * w * c * n || r.checked_params != r.trainable)
        fail_msg("%s(%s): compared %d inputs of %d and %d parameters of %d", type, options, r.checked_dx,
                 h * w * c * n, r.checked_params, r.trainable);
    if (!(r.dx_err < tol) || !(r.dparam_err < tol))
        fail_msg("%s(%s) on %dx%dx%d, batch %d: dx error %.3g, parameter error %.3g (tolerance %.3g)", type,
                 options, h, w, c, n, r.dx_err, r.dparam_err, tol);
}
