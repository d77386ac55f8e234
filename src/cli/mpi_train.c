/* Data-parallel training on MPI ranks: every rank holds the whole model and reads only its slice of every
 * global batch (cnn_source_dataset_shard); between backward and update the gradients are summed over the
 * ranks, each weighted by its share of the batch, so every rank applies the one-process mean gradient and the
 * replicas stay identical. Epoch and validation sums are reduced inside fit (cnn_fit_config.reduce), so every
 * callback decides the same on every rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/mpi.h"

typedef struct dist_state {
    int samples, batch_size, batches, rank, ranks; /* the global epoch: samples in batches of batch_size */
    int started;                                   /* the ranks were checked to start from the same step */
    double wait_seconds, allreduce_seconds;        /* waiting for the slowest rank; the allreduce itself */
    float *partials; /* more than 2 ranks: every rank's segment of a run (nparams + ranks floats) */
    int *counts;     /* more than 2 ranks: 4 x ranks message counts and displacements */
} dist_state;

/* Sums one contiguous run over more than 2 ranks in rank order, ((g0 + g1) + g2) + ..., as one process adds
 * its batch slices (cnn_fit_config.batch_slices), whatever association Open MPI's allreduce would choose:
 * each rank sums its 1/N segment of every rank's run, then the segments are gathered (the traffic of a
 * ring allreduce). */
static int reduce_ordered(dist_state *d, float *g, size_t n)
{
    const int N = d->ranks, me = d->rank;
    int *cnt = d->counts, *dsp = cnt + N, *rcnt = dsp + N, *rdsp = rcnt + N;
    for (int j = 0; j < N; j++) {
        const long lo = (long)(n * j / N), hi = (long)(n * (j + 1) / N);
        cnt[j] = (int)(hi - lo), dsp[j] = (int)lo;
    }
    const int mine = cnt[me];
    for (int i = 0; i < N; i++) rcnt[i] = mine, rdsp[i] = i * mine;
    if (MPI_Alltoallv(g, cnt, dsp, MPI_FLOAT, d->partials, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return CNN_ERR_IO;
    float *out = g + dsp[me];
    memcpy(out, d->partials, sizeof *out * (size_t)mine);
    for (int i = 1; i < N; i++)
        for (int k = 0; k < mine; k++) out[k] += d->partials[(size_t)i * mine + k];
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, g, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD) == MPI_SUCCESS
               ? CNN_OK
               : CNN_ERR_IO;
}

/* Sums one contiguous run of gradients over the ranks. Two ranks add a + b whatever the algorithm (the sum
 * commutes), so Open MPI's allreduce is already in rank order. */
static int reduce_run(dist_state *d, float *g, size_t n)
{
    if (d->ranks > 2) return reduce_ordered(d, g, n);
    return MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS
               ? CNN_OK
               : CNN_ERR_IO;
}

/* Runs of trainable tensors closer than this many values are sent as one message (the gap, BatchNorm moving
 * statistics for instance, is summed along and never read); a frozen base between them is not sent. */
enum { MERGE_GAP = 4096 };

/* Sums the gradients of the tensors the optimizer updates now, in as few contiguous runs of the gradient
 * buffer as possible: a frozen VGG16 base (14.7M values) never crosses the network. The runs are found
 * again every step, since a callback may freeze or unfreeze layers. */
static int reduce_trainable(dist_state *d, cnn_model *m)
{
    float *run = NULL;
    size_t len = 0;
    int rc = CNN_OK;
    for (int i = 0; !rc && i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        if (cnn_model_tensor(m, i, &t) != CNN_OK || !t.trainable || !t.grad) continue;
        if (run && t.grad >= run + len && t.grad <= run + len + MERGE_GAP) {
            len = (size_t)(t.grad - run) + t.size;
            continue;
        }
        if (run) rc = reduce_run(d, run, len);
        run = t.grad, len = t.size;
    }
    return !rc && run ? reduce_run(d, run, len) : rc;
}

/* Each rank's loss gradient is scaled by the global batch (cnn_model_set_batch_share), so the sum is the mean
 * gradient of the whole batch: one process's gradient up to summation order, and bit for bit that of one
 * process computing the batch in as many slices (cnn_fit_config.batch_slices), since with two ranks the
 * allreduce adds the same two partial sums. */
static int on_gradients(cnn_callback *cb, cnn_model *m, int epoch, int batch)
{
    (void)epoch, (void)batch;
    dist_state *d = cb->state;
    /* The barrier separates waiting for the slowest rank (imbalance, a noisy machine) from communication. */
    double t0 = MPI_Wtime();
    MPI_Barrier(MPI_COMM_WORLD);
    double t1 = MPI_Wtime();
    int rc = reduce_trainable(d, m);
    d->wait_seconds += t1 - t0;
    d->allreduce_seconds += MPI_Wtime() - t1;
    return rc;
}

/* A resumed run: every rank must have found rank 0's backup (a run folder that not every node sees would let
 * some ranks start afresh). */
static int same_start(dist_state *d, cnn_model *m)
{
    long it = cnn_model_iterations(m), lo, hi;
    MPI_Allreduce(&it, &lo, 1, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&it, &hi, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
        cli_mpi_abort("the ranks start from different steps: every rank must see the run folder's backup.cnn "
                      "(put the run folder on a file system that every node shares)");
    d->started = 1;
    return CNN_OK;
}

/* Dropout masks are counted from the global batch's first sample, as one process counts them; the loss
 * gradient is scaled by the global batch's size. */
static int on_batch_begin(cnn_callback *cb, cnn_model *m, int epoch, int batch)
{
    (void)epoch;
    dist_state *d = cb->state;
    int start, local, total;
    if (cnn_shard_range(d->samples, d->batch_size, batch, d->rank, d->ranks, &start, &local, &total))
        return cnn_errcode();
    cnn_model_set_batch_share(m, start - batch * d->batch_size, total);
    return d->started ? CNN_OK : same_start(d, m);
}

/* State tensors (BatchNorm moving statistics) follow each rank's own batches; as PyTorch DDP broadcasts its
 * buffers, rank 0's are copied to every rank, so evaluation and the saved model are the same everywhere. */
static void share_state(cnn_model *m)
{
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        if (cnn_model_tensor(m, i, &t) == CNN_OK && !t.grad)
            MPI_Bcast(t.data, (int)t.size, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}

static int on_batch_end(cnn_callback *cb, cnn_model *m, const cnn_batch_log *log, int *stop)
{
    (void)stop;
    const dist_state *d = cb->state;
    if (log->batch == d->batches - 1) share_state(m);
    return CNN_OK;
}

/* FNV-1a of every parameter and state value: equal on all ranks while the replicas agree. */
static uint64_t params_hash(cnn_model *m)
{
    const unsigned char *p = (const unsigned char *)cnn_model_params(m);
    size_t n = cnn_model_num_params(m, 0) * sizeof(float);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* A cheap guard that the ranks hold the same model (they would drift apart silently otherwise). */
static int on_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)cb, (void)stop;
    uint64_t h = params_hash(m), lo, hi;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    char what[96];
    snprintf(what, sizeof what, "data-parallel training: the ranks' models differ after epoch %d",
             log->epoch + 1);
    if (lo != hi) cli_mpi_abort(what);
    return CNN_OK;
}

/* fit's sums (and synchronised BatchNorm's) over the ranks: reduced on rank 0 and broadcast, so every rank
 * holds the same bits (an allreduce need not give every rank the same rounding). */
static int reduce_sums(void *ctx, double *v, int n)
{
    (void)ctx;
    int ok = MPI_Reduce(cli_par->rank == 0 ? MPI_IN_PLACE : v, v, n, MPI_DOUBLE, MPI_SUM, 0,
                        MPI_COMM_WORLD) == MPI_SUCCESS &&
             MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD) == MPI_SUCCESS;
    if (!ok) cli_mpi_abort("data-parallel reduce: MPI failed"); /* the other ranks would wait forever */
    return CNN_OK;
}

/* The training passes' time and the allreduce's share of it, on rank 0. */
static void print_share(const dist_state *d, const cnn_history *h)
{
    double pass = 0;
    for (int i = 0; i < h->count; i++) pass += h->epochs[i].seconds;
    if (cli_par->rank == 0 && pass > 0)
        printf(
            "MPI: %d ranks, %.3f s of training: gradient allreduce %.3f s (%.1f%%), waiting for the slowest "
            "rank %.3f s (%.1f%%)\n",
            d->ranks, pass, d->allreduce_seconds, 100 * d->allreduce_seconds / pass, d->wait_seconds,
            100 * d->wait_seconds / pass);
}

static int fit_sharded(cnn_model *m, const cnn_fit_config *fc, cnn_source *train, cnn_source *val,
                       dist_state *d, cnn_history *h)
{
    cnn_callback sync = {.name = "data-parallel",
                         .state = d,
                         .on_train_batch_begin = on_batch_begin,
                         .on_gradients = on_gradients,
                         .on_train_batch_end = on_batch_end,
                         .on_epoch_end = on_epoch_end};
    cnn_callback **all = calloc((size_t)fc->num_callbacks + 1, sizeof *all);
    if (!all) cli_mpi_abort("data-parallel fit: out of memory");
    /* First, so that every later gradient hook (clipping, checks) sees the reduced gradients. */
    all[0] = &sync;
    int n = 1;
    for (int i = 0; i < fc->num_callbacks; i++) {
        cnn_checkpoint_info info;
        /* Checkpoints are files, rank 0's alone; they decide nothing, so the ranks still agree. */
        if (cli_par->rank == 0 || cnn_checkpoint_get_info(fc->callbacks[i], &info) != CNN_OK)
            all[n++] = fc->callbacks[i];
    }
    cnn_fit_config c = *fc;
    c.callbacks = all, c.num_callbacks = n;
    c.validation_source = val;
    c.reduce = reduce_sums;
    int rc = cnn_model_fit_source(m, train, &c, h);
    free(all);
    cnn_model_set_batch_share(m, 0, 0);
    cnn_model_set_batch_sync(m, NULL, NULL);
    if (!rc) share_state(m);
    return rc;
}

/* Cached features: every rank's block of prefix outputs to every rank (in place, blocks as in
 * cnn_source_features_shard). */
static int gather_features(void *ctx, float *feats, size_t per_sample, int n)
{
    (void)ctx;
    const int ranks = cli_par->ranks;
    if ((double)per_sample * n > 2147483647.0)
        cli_mpi_abort("cached features: more than 2^31 floats to share");
    int *counts = malloc(sizeof *counts * 2 * (size_t)ranks);
    if (!counts) cli_mpi_abort("cached features: out of memory");
    int *displs = counts + ranks;
    for (int r = 0; r < ranks; r++) {
        long lo = (long)n * r / ranks, hi = (long)n * (r + 1) / ranks;
        counts[r] = (int)((hi - lo) * (long)per_sample), displs[r] = (int)(lo * (long)per_sample);
    }
    int ok = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, feats, counts, displs, MPI_FLOAT, MPI_COMM_WORLD) ==
             MPI_SUCCESS;
    free(counts);
    if (!ok) cli_mpi_abort("cached features: MPI_Allgatherv failed");
    return CNN_OK;
}

/* This rank's share of every batch of ds: of the images, or of the cached outputs of layers [0, cached). */
static cnn_source *shard(cnn_model *m, const cnn_dataset *ds, int batch, int shuffle, uint64_t seed,
                         int cached, double *seconds)
{
    const cnn_feature_share share = {cli_par->rank, cli_par->ranks, gather_features, NULL};
    return cached ? cnn_source_features_shard(m, cached - 1, ds, batch, shuffle, seed, &share, seconds)
                  : cnn_source_dataset_shard(ds, batch, shuffle, seed, cli_par->rank, cli_par->ranks);
}

int cli_mpi_fit(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *fc, const cli_fit_job *job,
                cnn_history *h)
{
    const cli_parallel *p = cli_par;
    const int global = train->n < fc->batch_size ? train->n : fc->batch_size, cached = job->cached;
    /* Rank 0 has cleaned the run folder (an old backup) before any rank looks for a backup to resume. */
    MPI_Barrier(MPI_COMM_WORLD);
    double t_train = 0, t_val = 0;
    cnn_source *tr =
        job->train ? job->train : shard(m, train, global, fc->shuffle, fc->seed, cached, &t_train);
    /* An augmenting source's epoch is its own (the study's generator: twice the images). */
    dist_state d = {.samples = job->train ? job->train->samples : train->n,
                    .batch_size = global,
                    .rank = p->rank,
                    .ranks = p->ranks};
    cnn_source *val = NULL;
    int rc = tr ? CNN_OK : cnn_errcode();
    /* Validation in batches of the training batch size, as one process validates, split the same way. */
    if (!rc && fc->validation && !(val = shard(m, fc->validation, global, 0, 0, cached, &t_val)))
        rc = cnn_errcode();
    if (!rc && cached) cli_say_cached(job->log, job->quiet, m, cached, t_train, t_val, p->ranks);
    /* The rank-order reduction's buffers, allocated once (none inside a step). */
    if (!rc && p->ranks > 2 &&
        (!(d.partials = malloc(sizeof *d.partials * (cnn_model_num_params(m, 0) + (size_t)p->ranks))) ||
         !(d.counts = malloc(sizeof *d.counts * 4 * (size_t)p->ranks))))
        cli_mpi_abort("data-parallel fit: out of memory for the gradient reduction");
    if (!rc) {
        d.batches = tr->batches;
        if (job->sync_bn) cnn_model_set_batch_sync(m, reduce_sums, NULL);
        /* Past this point the ranks wait on each other: an error on one must end them all. */
        if (fit_sharded(m, fc, tr, val, &d, h)) cli_mpi_abort(cnn_errmsg());
        print_share(&d, h);
    }
    if (tr != job->train) cnn_source_free(tr);
    cnn_source_free(val);
    free(d.partials);
    free(d.counts);
    return rc;
}

/* ---------------------------------------------------------------- the test set, split */

/* Gathers every rank's class scores into run->probs on rank 0 and fills the record's test figures there. */
static int gather_test(cnn_run *run, const cnn_dataset *test, const float *probs, int k, double sums[3])
{
    int ranks = cli_par->ranks, *counts = malloc(sizeof *counts * 2 * (size_t)ranks), rc = CNN_OK;
    if (!counts) cli_mpi_abort("test evaluation: out of memory");
    int *displs = counts + ranks;
    for (int r = 0; r < ranks; r++) {
        long lo = (long)test->n * r / ranks, hi = (long)test->n * (r + 1) / ranks;
        counts[r] = (int)(hi - lo) * k, displs[r] = (int)lo * k;
    }
    int ok = cli_par->rank == 0 && (run->probs = malloc(sizeof *run->probs * (size_t)test->n * k)) &&
             (run->y_true = malloc(sizeof *run->y_true * (size_t)test->n)) &&
             (run->y_pred = malloc(sizeof *run->y_pred * (size_t)test->n)) &&
             (run->confusion = calloc((size_t)k * k, sizeof *run->confusion));
    if (cli_par->any(cli_par->rank == 0 && !ok)) cli_mpi_abort("test evaluation: out of memory");
    MPI_Gatherv(probs, counts[cli_par->rank], MPI_FLOAT, run->probs, counts, displs, MPI_FLOAT, 0,
                MPI_COMM_WORLD);
    free(counts);
    if (cli_par->rank) return CNN_OK;
    run->n_test = test->n, run->classes = k, run->evaluated = 1;
    run->test_loss = sums[0] / sums[2], run->test_accuracy = sums[1] / sums[2];
    memcpy(run->y_true, test->y, sizeof *run->y_true * (size_t)test->n);
    rc = cnn_argmax_rows(run->probs, test->n, k, run->y_pred);
    if (!rc) rc = cnn_confusion_matrix(run->y_true, run->y_pred, test->n, k, run->confusion);
    /* A class missing from the test labels leaves ROC-AUC undefined, as in sklearn. */
    run->roc_auc_ovo = run->roc_auc_ovr = NAN;
    if (!rc && cnn_roc_auc_ovo(run->y_true, run->probs, test->n, k, &run->roc_auc_ovo) == CNN_OK)
        cnn_roc_auc_ovr(run->y_true, run->probs, test->n, k, &run->roc_auc_ovr);
    return rc;
}

/* Each rank scores a contiguous block of the test set; the loss and hit sums and the class scores are
 * combined on rank 0, which alone holds the record's test figures. */
int cli_mpi_evaluate(cnn_run *run, cnn_model *m, const cnn_dataset *test, int batch_size)
{
    const cli_parallel *p = cli_par;
    if (test->n < p->ranks) cli_mpi_abort("the test set has fewer images than there are ranks");
    int lo = (int)((long)test->n * p->rank / p->ranks), hi = (int)((long)test->n * (p->rank + 1) / p->ranks);
    int k = cnn_model_num_outputs(m);
    cnn_dataset part = {0};
    double loss = 0, acc = 0;
    float *probs = malloc(sizeof *probs * (size_t)(hi - lo) * k);
    if (!probs) cli_mpi_abort("test evaluation: out of memory");
    int rc = cnn_dataset_slice(test, lo, hi - lo, &part);
    if (!rc) rc = cnn_model_evaluate(m, &part, batch_size, &loss, &acc);
    if (!rc) rc = cnn_model_predict_dataset(m, &part, batch_size, probs);
    if (cli_par->any(rc != 0)) cli_mpi_abort(rc ? cnn_errmsg() : "test evaluation failed on another rank");
    /* The mean loss of each block already holds the regularisation term once per sample. */
    double sums[3] = {loss * part.n, round(acc * part.n), part.n};
    reduce_sums(NULL, sums, 3);
    rc = gather_test(run, test, probs, k, sums);
    free(probs);
    cnn_dataset_free(&part);
    return rc;
}
