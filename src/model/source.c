/* Batch sources: the in-memory dataset (optionally through a per-sample transform) and Keras-style
 * sequences. fit, evaluate and predict see only the cnn_source interface. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/source.h"

void cnn_source_free(cnn_source *s)
{
    if (s && s->destroy) s->destroy(s);
}

double cnn_random_uniform(uint64_t seed, int epoch, int index, int k)
{
    uint64_t stream = cnn_rng_stream(CNN_STREAM_AUGMENT, ((uint64_t)(uint32_t)epoch << 32) | (uint32_t)index);
    return (double)(cnn_rng_bits(seed, stream, (uint64_t)(uint32_t)k) >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------- dataset (and transform) */

typedef struct dataset_state {
    cnn_source base;
    const cnn_dataset *ds;
    int shuffle;
    uint64_t seed;
    int32_t *order;    /* sample order of order_epoch */
    int order_epoch;   /* -1: none yet */
    cnn_transform t;   /* apply NULL: plain copies */
    cnn_dataset owned; /* freed with the source (cached features) */
    float *in;         /* a transform's float input, one sample per batch slot (for a set held as bytes) */
    int rank, ranks, global_batch; /* data-parallel share of every batch (ranks 0: the whole batch) */
} dataset_state;

static void dataset_destroy(cnn_source *s)
{
    dataset_state *d = s->state;
    free(d->order);
    free(d->in);
    cnn_dataset_free(&d->owned);
    free(d);
}

/* The epoch's order: the identity, shuffled from (seed, epoch) as fit has always shuffled. */
static void dataset_order(dataset_state *d, int epoch)
{
    if (d->order_epoch == epoch) return;
    for (int i = 0; i < d->ds->n; i++) d->order[i] = i;
    if (d->shuffle)
        cnn_rng_shuffle(d->seed, cnn_rng_stream(CNN_STREAM_SHUFFLE, (uint64_t)epoch), d->order, d->ds->n);
    d->order_epoch = epoch;
}

static void gather(const dataset_state *d, const int32_t *idx, int n, float *x, int32_t *y)
{
    const cnn_dataset *ds = d->ds;
    size_t sample = cnn_dataset_sample_size(ds);
#pragma omp parallel for schedule(static) if (n * sample > 65536)
    for (int i = 0; i < n; i++) cnn_dataset_sample(ds, (size_t)idx[i], x + sample * i);
    for (int i = 0; i < n; i++) y[i] = ds->y[idx[i]];
}

/* Every sample through the transform, in parallel: each draw depends on (seed, epoch, index) only. A set held
 * as bytes is converted sample by sample into the source's input slots first. */
static void transform(const dataset_state *d, int epoch, const int32_t *idx, int n, float *x, int32_t *y)
{
    const cnn_dataset *ds = d->ds;
    const cnn_source *s = &d->base;
    size_t in = cnn_dataset_sample_size(ds), out = (size_t)s->h * s->w * s->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *src = ds->x ? ds->x + in * idx[i] : d->in + in * i;
        if (!ds->x) cnn_dataset_sample(ds, (size_t)idx[i], d->in + in * i);
        d->t.apply(d->t.ctx, src, ds->h, ds->w, ds->c, x + out * i, d->seed, epoch, idx[i]);
    }
    for (int i = 0; i < n; i++) y[i] = ds->y[idx[i]];
}

static int dataset_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    dataset_state *d = s->state;
    if (batch < 0 || batch >= s->batches)
        return cnn_fail(CNN_ERR_INVALID, "source '%s': batch %d is outside [0, %d)", s->name, batch,
                        s->batches);
    dataset_order(d, epoch);
    int start = batch * s->batch_size;
    *n = d->ds->n - start < s->batch_size ? d->ds->n - start : s->batch_size;
    if (d->ranks && cnn_shard_range(d->ds->n, d->global_batch, batch, d->rank, d->ranks, &start, n, NULL))
        return cnn_errcode();
    if (d->t.apply)
        transform(d, epoch, d->order + start, *n, x, y);
    else
        gather(d, d->order + start, *n, x, y);
    return CNN_OK;
}

static int check_dataset(const cnn_dataset *ds, int batch_size, const char *what)
{
    if (!ds || ds->n < 1 || !cnn_dataset_has_pixels(ds) || !ds->y || ds->h < 1 || ds->w < 1 || ds->c < 1)
        return cnn_fail(CNN_ERR_INVALID, "%s: the dataset is empty or has no images or labels", what);
    if (batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "%s: batch_size %d must be >= 1", what, batch_size);
    return CNN_OK;
}

cnn_source *cnn_source_dataset_make(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                    const cnn_transform *t, const char *name)
{
    if (check_dataset(ds, batch_size, name)) return NULL;
    int slots = batch_size < ds->n ? batch_size : ds->n;
    dataset_state *d = calloc(1, sizeof *d);
    if (d) d->order = malloc(sizeof *d->order * (size_t)ds->n);
    if (d && t && !ds->x) d->in = malloc(sizeof(float) * cnn_dataset_sample_size(ds) * (size_t)slots);
    if (!d || !d->order || (t && !ds->x && !d->in)) {
        if (d) free(d->order);
        free(d);
        cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %d samples", name, ds->n);
        return NULL;
    }
    d->ds = ds, d->shuffle = shuffle, d->seed = seed, d->order_epoch = -1;
    if (t) d->t = *t;
    cnn_source *s = &d->base;
    s->name = name, s->state = d, s->labeled = 1;
    s->h = t && t->out_h ? t->out_h : ds->h;
    s->w = t && t->out_w ? t->out_w : ds->w;
    s->c = t && t->out_c ? t->out_c : ds->c;
    s->batch_size = slots;
    s->batches = (ds->n + s->batch_size - 1) / s->batch_size;
    s->samples = ds->n;
    s->fill = dataset_fill;
    s->destroy = dataset_destroy;
    return s;
}

cnn_source *cnn_source_dataset(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed)
{
    return cnn_source_dataset_make(ds, batch_size, shuffle, seed, NULL, "dataset");
}

cnn_source *cnn_source_transform(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                 const cnn_transform *t)
{
    if (!t || !t->apply || t->out_h < 0 || t->out_w < 0 || t->out_c < 0) {
        cnn_fail(CNN_ERR_INVALID, "transform source: the transform needs an apply function and shape >= 0");
        return NULL;
    }
    return cnn_source_dataset_make(ds, batch_size, shuffle, seed, t, "transform");
}

void cnn_source_dataset_set_shard(cnn_source *s, int global_batch, int rank, int ranks, int local_batch)
{
    dataset_state *d = s->state;
    d->global_batch = global_batch, d->rank = rank, d->ranks = ranks;
    s->batch_size = local_batch;
}

cnn_source *cnn_source_owned_dataset(cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                     const char *name)
{
    cnn_source *s = cnn_source_dataset_make(ds, batch_size, shuffle, seed, NULL, name);
    if (!s) return NULL;
    dataset_state *d = s->state;
    d->owned = *ds;
    d->ds = &d->owned;
    memset(ds, 0, sizeof *ds);
    return s;
}

/* ---------------------------------------------------------------- sequence */

typedef struct sequence_state {
    cnn_source base;
    cnn_sequence_fn get;
    void *ctx;
    int shuffle, memoize;
    uint64_t seed;
    int32_t *order; /* batch order of order_epoch */
    int order_epoch;
    float *xs; /* memoised batches: batches x batch_size samples */
    int32_t *ys;
    int *sizes; /* 0: not built yet */
} sequence_state;

static void sequence_destroy(cnn_source *s)
{
    sequence_state *q = s->state;
    free(q->order);
    free(q->xs);
    free(q->ys);
    free(q->sizes);
    free(q);
}

static int sequence_get(cnn_source *s, int index, float *x, int32_t *y, int *n)
{
    sequence_state *q = s->state;
    *n = 0;
    int rc = q->get(q->ctx, index, x, y, n);
    if (rc) return rc < 0 ? rc : cnn_fail(CNN_ERR_INVALID, "sequence: batch %d failed (%d)", index, rc);
    if (*n < 1 || *n > s->batch_size)
        return cnn_fail(CNN_ERR_INVALID, "sequence: batch %d has %d samples; expected 1..%d", index, *n,
                        s->batch_size);
    return CNN_OK;
}

static int sequence_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    sequence_state *q = s->state;
    if (batch < 0 || batch >= s->batches)
        return cnn_fail(CNN_ERR_INVALID, "sequence: batch %d is outside [0, %d)", batch, s->batches);
    if (q->order_epoch != epoch) {
        for (int i = 0; i < s->batches; i++) q->order[i] = i;
        if (q->shuffle)
            cnn_rng_shuffle(q->seed, cnn_rng_stream(CNN_STREAM_SHUFFLE, (uint64_t)epoch), q->order,
                            s->batches);
        q->order_epoch = epoch;
    }
    int index = q->order[batch];
    if (!q->memoize) return sequence_get(s, index, x, y, n);
    size_t sample = (size_t)s->h * s->w * s->c, at = (size_t)index * s->batch_size;
    if (!q->sizes[index]) {
        int rc = sequence_get(s, index, q->xs + at * sample, q->ys + at, &q->sizes[index]);
        if (rc) return rc;
    }
    *n = q->sizes[index];
    memcpy(x, q->xs + at * sample, sizeof(float) * sample * (size_t)*n);
    memcpy(y, q->ys + at, sizeof(int32_t) * (size_t)*n);
    return CNN_OK;
}

static int sequence_alloc(sequence_state *q, int batches, size_t floats)
{
    q->order = malloc(sizeof *q->order * (size_t)batches);
    if (!q->order) return -1;
    if (!q->memoize) return 0;
    q->xs = malloc(sizeof *q->xs * floats);
    q->ys = malloc(sizeof *q->ys * (size_t)batches * q->base.batch_size);
    q->sizes = calloc((size_t)batches, sizeof *q->sizes);
    return q->xs && q->ys && q->sizes ? 0 : -1;
}

cnn_source *cnn_source_sequence(int batches, int batch_size, int h, int w, int c, cnn_sequence_fn get,
                                void *ctx, int shuffle, uint64_t seed, int memoize)
{
    if (batches < 1 || batch_size < 1 || h < 1 || w < 1 || c < 1 || !get ||
        (size_t)h * w * c * batch_size > ((size_t)1 << 31)) {
        cnn_fail(CNN_ERR_INVALID,
                 "sequence: needs batches >= 1, batch_size >= 1, a positive sample shape and a "
                 "get function (got %d batches of %d, %dx%dx%d)",
                 batches, batch_size, h, w, c);
        return NULL;
    }
    sequence_state *q = calloc(1, sizeof *q);
    if (!q) return cnn_fail(CNN_ERR_NOMEM, "sequence: out of memory"), NULL;
    cnn_source *s = &q->base;
    *s = (cnn_source){.name = "sequence",
                      .state = q,
                      .h = h,
                      .w = w,
                      .c = c,
                      .batches = batches,
                      .batch_size = batch_size,
                      .samples = batches * batch_size,
                      .labeled = 1,
                      .fill = sequence_fill,
                      .destroy = sequence_destroy};
    q->get = get, q->ctx = ctx, q->shuffle = shuffle, q->seed = seed, q->memoize = memoize,
    q->order_epoch = -1;
    if (sequence_alloc(q, batches, (size_t)batches * batch_size * h * w * c)) {
        sequence_destroy(s);
        cnn_fail(CNN_ERR_NOMEM, "sequence: out of memory for %d batches of %d", batches, batch_size);
        return NULL;
    }
    return s;
}
