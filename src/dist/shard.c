/* Data-parallel sharding of batches: rank r of N reads only its contiguous slice of every global batch, in
 * the order one process would read them, so that N ranks together see exactly one process's batches. */
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
