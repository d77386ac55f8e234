/* The study's generator DataImageGenerator_batch (spec §5.2) as a batch source: a memoised, shuffled sequence
 * whose first half of batches are the original images and whose second half are the study's transform of
 * them, made once and reused every epoch. */
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/error.h"
#include "data/dataset.h"

typedef struct study_gen {
    const cnn_dataset *ds;
    int batch_size, half, augmented_only;
    uint64_t seed;
} study_gen;

/* Augments count images from src into dst, in parallel; image i of batch j draws from (seed, j, first + i).
 * Each image gets two slots of scratch: its pixels as floats, and the transform's own. */
static int augment_batch(const study_gen *g, int batch, int first, int count, float *dst)
{
    const cnn_dataset *ds = g->ds;
    size_t px = (size_t)ds->h * (size_t)ds->w;
    float *scratch = malloc(sizeof(float) * 2 * px * (size_t)count);
    if (!scratch) return cnn_fail(CNN_ERR_NOMEM, "study generator: no memory to augment batch %d", batch);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; i++) {
        double s;
        int tx, ty, angle;
        float *in = scratch + 2 * px * (size_t)i;
        cnn_augment_study_draw(g->seed, batch, first + i, &s, &tx, &ty, &angle);
        cnn_dataset_sample(ds, (size_t)(first + i), in);
        aug_study_transform(in, dst + px * (size_t)i, in + px, ds->h, ds->w, s, tx, ty, angle);
    }
    free(scratch);
    return CNN_OK;
}

/* The sequence's batch getter: the study's __getitem__. */
static int study_batch(void *ctx, int index, float *x, int32_t *y, int *n)
{
    const study_gen *g = ctx;
    int augmented = g->augmented_only || index >= g->half;
    int first = (index % g->half) * g->batch_size;
    int count = g->ds->n - first < g->batch_size ? g->ds->n - first : g->batch_size;
    memcpy(y, g->ds->y + first, sizeof *y * (size_t)count);
    *n = count;
    if (augmented) return augment_batch(g, index, first, count, x);
    return cnn_dataset_images(g->ds, first, count, x);
}

/* The owning wrapper: forwards every call to the inner source. */
typedef struct owning {
    cnn_source *inner;
    void *owned;
} owning;

static int own_begin(cnn_source *s, int epoch)
{
    cnn_source *q = ((owning *)s->state)->inner;
    return q->begin_epoch ? q->begin_epoch(q, epoch) : CNN_OK;
}

static int own_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    cnn_source *q = ((owning *)s->state)->inner;
    return q->fill(q, epoch, batch, x, y, n);
}

static int own_end(cnn_source *s, int epoch)
{
    cnn_source *q = ((owning *)s->state)->inner;
    return q->end_epoch ? q->end_epoch(q, epoch) : CNN_OK;
}

static void own_destroy(cnn_source *s)
{
    owning *o = s->state;
    cnn_source_free(o->inner);
    free(o->owned);
    free(o);
    free(s);
}

cnn_source *aug_source_owning(cnn_source *inner, void *owned)
{
    owning *o = malloc(sizeof *o);
    cnn_source *s = malloc(sizeof *s);
    if (!o || !s) {
        free(o), free(s);
        cnn_source_free(inner);
        cnn_fail(CNN_ERR_NOMEM, "source '%s': out of memory", inner->name);
        return NULL;
    }
    *o = (owning){inner, owned};
    *s = *inner;
    s->state = o;
    s->begin_epoch = own_begin, s->fill = own_fill, s->end_epoch = own_end, s->destroy = own_destroy;
    return s;
}

static int check_args(const cnn_dataset *ds, int batch_size)
{
    if (!ds || !cnn_dataset_has_pixels(ds) || !ds->y || ds->n < 1)
        return cnn_fail(CNN_ERR_INVALID, "study generator: no training images");
    if (ds->c != 1)
        return cnn_fail(CNN_ERR_INVALID, "study generator: expected one-channel images, got %d channels",
                        ds->c);
    if (batch_size < 1 || batch_size > ds->n)
        return cnn_fail(CNN_ERR_INVALID, "study generator: batch_size %d must be 1 .. %d (the images)",
                        batch_size, ds->n);
    return CNN_OK;
}

cnn_source *cnn_source_study_augment(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                     int augmented_only)
{
    if (check_args(ds, batch_size)) return NULL;
    /* Spec §5.2: L = ceil(2N / B) batches, H = floor(L / 2) of them original. */
    long batches = (2L * ds->n + batch_size - 1) / batch_size;
    study_gen *g = malloc(sizeof *g);
    if (!g) {
        cnn_fail(CNN_ERR_NOMEM, "study generator: out of memory");
        return NULL;
    }
    *g = (study_gen){.ds = ds,
                     .batch_size = batch_size,
                     .half = (int)(batches / 2),
                     .augmented_only = augmented_only,
                     .seed = seed};
    cnn_source *seq =
        cnn_source_sequence((int)batches, batch_size, ds->h, ds->w, 1, study_batch, g, shuffle, seed, 1);
    cnn_source *s = seq ? aug_source_owning(seq, g) : NULL;
    if (!s) {
        free(g);
        return NULL;
    }
    s->name = augmented_only ? "study generator (augmented only)" : "study generator";
    return s;
}
