/* Data-parallel sharding of batches: rank r of N reads only its contiguous slice of every global batch, in
 * the order one process would read them, so that N ranks together see exactly one process's batches. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "model/source.h"

int cnn_shard_range(int n, int batch_size, int batch, int rank, int ranks, int *start, int *count, int *total)
{
    if (n < 1 || batch_size < 1 || ranks < 1 || rank < 0 || rank >= ranks || batch < 0 ||
        (long)batch * batch_size >= n)
        return cnn_fail(CNN_ERR_INVALID,
                        "shard: batch %d of %d samples in batches of %d, rank %d of %d is out of range",
                        batch, n, batch_size, rank, ranks);
    long first = (long)batch * batch_size;
    long size = n - first < batch_size ? n - first : batch_size;
    /* floor(size * r / N) splits any size into shares that differ by at most one sample. */
    long lo = size * rank / ranks, hi = size * (rank + 1) / ranks;
    *start = (int)(first + lo);
    *count = (int)(hi - lo);
    if (total) *total = (int)size;
    return CNN_OK;
}

cnn_source *cnn_source_dataset_shard(const cnn_dataset *ds, int batch_size, int shuffle, uint64_t seed,
                                     int rank, int ranks)
{
    if (ranks < 1 || rank < 0 || rank >= ranks) {
        cnn_fail(CNN_ERR_INVALID, "shard: rank %d of %d ranks is out of range", rank, ranks);
        return NULL;
    }
    cnn_source *s = cnn_source_dataset_make(ds, batch_size, shuffle, seed, NULL, "dataset shard");
    if (s && cnn_source_make_shard(s, ds->n, rank, ranks)) {
        cnn_source_free(s);
        return NULL;
    }
    return s;
}

int cnn_source_make_shard(cnn_source *s, int n, int rank, int ranks)
{
    int global = s->batch_size, last = n - (s->batches - 1) * global;
    if (last < ranks)
        return cnn_fail(
            CNN_ERR_INVALID,
            "shard: the last batch (%d of %d) has %d samples, fewer than the %d ranks; change the batch size "
            "or the number of images",
            s->batches, s->batches, last, ranks);
    cnn_source_dataset_set_shard(s, global, rank, ranks, (global + ranks - 1) / ranks);
    return CNN_OK;
}

void cnn_model_set_batch_share(cnn_model *m, int first, int total)
{
    m->x.rng_sample = first > 0 ? (uint64_t)first : 0;
    m->x.loss_count = total > 0 ? total : 0;
}

void cnn_model_set_batch_sync(cnn_model *m, int (*reduce)(void *ctx, double *sums, int count), void *ctx)
{
    m->x.sync = (cnn_batch_sync){.reduce = reduce, .ctx = ctx};
}

/* ---------------------------------------------------------------- any source, cut after it fills */

typedef struct slice_state {
    cnn_source *inner;
    int rank, ranks;
    float *x; /* one whole batch of inner: inner->batch_size samples */
    int32_t *y;
} slice_state;

static void slice_destroy(cnn_source *s)
{
    slice_state *q = s->state;
    cnn_source_free(q->inner);
    free(q->x);
    free(q->y);
    free(q);
    free(s);
}

static int slice_begin(cnn_source *s, int epoch)
{
    cnn_source *in = ((slice_state *)s->state)->inner;
    return in->begin_epoch ? in->begin_epoch(in, epoch) : CNN_OK;
}

static int slice_end(cnn_source *s, int epoch)
{
    cnn_source *in = ((slice_state *)s->state)->inner;
    return in->end_epoch ? in->end_epoch(in, epoch) : CNN_OK;
}

/* The whole batch, then this rank's slice of it: the slice that cnn_shard_range gives every rank, which the
 * data-parallel fit also assumes when it scales the loss (cnn_model_set_batch_share). */
static int slice_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    slice_state *q = s->state;
    cnn_source *in = q->inner;
    int got, start, count, total;
    int rc = in->fill(in, epoch, batch, q->x, q->y, &got);
    if (!rc)
        rc = cnn_shard_range(in->samples, in->batch_size, batch, q->rank, q->ranks, &start, &count, &total);
    if (rc) return rc;
    if (got != total)
        return cnn_fail(
            CNN_ERR_INVALID,
            "shard of source '%s': batch %d of epoch %d has %d samples, expected %d (data-parallel "
            "training needs every batch but the last to hold %d)",
            in->name, batch + 1, epoch + 1, got, total, in->batch_size);
    const size_t sample = (size_t)s->h * s->w * s->c, lo = (size_t)(start - batch * in->batch_size);
    memcpy(x, q->x + sample * lo, sizeof *x * sample * (size_t)count);
    if (in->labeled) memcpy(y, q->y + lo, sizeof *y * (size_t)count);
    *n = count;
    return CNN_OK;
}

/* The source's geometry as cnn_shard_range reads it: full batches, then a last one of 1 .. batch_size, with
 * at least one sample for every rank. */
static int check_slices(const cnn_source *in, int rank, int ranks)
{
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return cnn_fail(CNN_ERR_INVALID, "shard: rank %d of %d ranks is out of range", rank, ranks);
    if (!in->fill || in->batches < 1 || in->batch_size < 1 || in->h < 1 || in->w < 1 || in->c < 1)
        return cnn_fail(CNN_ERR_INVALID, "shard of source '%s': no fill function, batches or sample shape",
                        in->name);
    long last = in->samples - (long)(in->batches - 1) * in->batch_size;
    if (last < 1 || last > in->batch_size)
        return cnn_fail(CNN_ERR_INVALID,
                        "shard of source '%s': %d samples do not make %d batches of at most %d", in->name,
                        in->samples, in->batches, in->batch_size);
    if (last < ranks)
        return cnn_fail(CNN_ERR_INVALID,
                        "shard of source '%s': the last batch has %ld samples, fewer than the %d ranks",
                        in->name, last, ranks);
    return CNN_OK;
}

cnn_source *cnn_source_shard(cnn_source *inner, int rank, int ranks)
{
    if (!inner) return NULL;
    if (check_slices(inner, rank, ranks)) return cnn_source_free(inner), NULL;
    const size_t floats = (size_t)inner->batch_size * inner->h * inner->w * inner->c;
    slice_state *q = calloc(1, sizeof *q);
    cnn_source *s = malloc(sizeof *s);
    if (q) q->x = malloc(sizeof *q->x * floats), q->y = malloc(sizeof *q->y * (size_t)inner->batch_size);
    if (!q || !s || !q->x || !q->y) {
        if (q) free(q->x), free(q->y);
        free(q), free(s);
        cnn_fail(CNN_ERR_NOMEM, "shard of source '%s': out of memory for a batch of %d samples", inner->name,
                 inner->batch_size);
        return cnn_source_free(inner), NULL;
    }
    *q = (slice_state){inner, rank, ranks, q->x, q->y};
    *s = *inner;
    s->name = "shard", s->state = q;
    s->batch_size = (inner->batch_size + ranks - 1) / ranks;
    s->begin_epoch = slice_begin, s->fill = slice_fill, s->end_epoch = slice_end, s->destroy = slice_destroy;
    return s;
}
