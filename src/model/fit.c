/* fit / evaluate / predict over batch sources, built on the planned step (no allocation inside the epoch
 * loop). The callbacks' hooks run around every batch and epoch; the gradient hooks between backward and
 * update. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "model/backup.h"
#include "model/model.h"
#include "model/progress.h"
#include "model/source.h"

cnn_fit_config cnn_fit_default(void)
{
    return (cnn_fit_config){
        .epochs = 1, .batch_size = 32, .shuffle = 1, .seed = 0, .verbose = CNN_VERBOSE_AUTO};
}

int cnn_model_check_dataset(const cnn_model *m, const cnn_dataset *ds, const char *what)
{
    if (!ds || ds->n < 1 || !cnn_dataset_has_pixels(ds) || !ds->y)
        return cnn_fail(CNN_ERR_INVALID, "%s data is empty", what);
    size_t sample = cnn_dataset_sample_size(ds);
    if (sample != cnn_shape_size(m->input))
        return cnn_fail(CNN_ERR_SHAPE, "%s data has samples of %dx%dx%d = %zu values; model '%s' expects %zu",
                        what, ds->h, ds->w, ds->c, sample, m->name, cnn_shape_size(m->input));
    for (int i = 0; i < ds->n; i++)
        if (ds->y[i] < 0 || ds->y[i] >= m->outputs)
            return cnn_fail(CNN_ERR_INVALID, "%s label %d of sample %d is outside [0, %d) of model '%s'",
                            what, ds->y[i], i, m->outputs, m->name);
    return CNN_OK;
}

/* A source's samples must fit the input of the layer they feed. */
static int check_source(const cnn_model *m, const cnn_source *s, int labeled, const char *what)
{
    if (!s || !s->fill || s->batches < 1 || s->batch_size < 1)
        return cnn_fail(CNN_ERR_INVALID, "%s source is missing, has no fill function or no batches", what);
    if (s->first_layer < 0 || s->first_layer >= m->nlayers)
        return cnn_fail(CNN_ERR_INVALID, "%s source '%s' feeds layer %d; model '%s' has %d", what, s->name,
                        s->first_layer, m->name, m->nlayers);
    cnn_shape in = m->layers[s->first_layer].in;
    if ((size_t)s->h * s->w * s->c != cnn_shape_size(in))
        return cnn_fail(CNN_ERR_SHAPE,
                        "%s source '%s' yields %dx%dx%d samples; layer '%s' of model '%s' expects %dx%dx%d",
                        what, s->name, s->h, s->w, s->c, m->layers[s->first_layer].name, m->name, in.h, in.w,
                        in.c);
    if (labeled && !s->labeled)
        return cnn_fail(CNN_ERR_INVALID, "%s source '%s' has no labels", what, s->name);
    return CNN_OK;
}

/* Fills the model's input for the source's layer with batch b of epoch e and checks what came back. */
static int fill_batch(cnn_model *m, cnn_source *s, int epoch, int b, int *n)
{
    cnn_exec *x = &m->x;
    *n = 0;
    int rc = s->fill(s, epoch, b, x->acts[s->first_layer], x->labels, n);
    if (rc)
        return rc < 0 ? rc : cnn_fail(CNN_ERR_INVALID, "source '%s': batch %d failed (%d)", s->name, b, rc);
    if (*n < 1 || *n > s->batch_size)
        return cnn_fail(CNN_ERR_INVALID, "source '%s': batch %d of epoch %d has %d samples; expected 1..%d",
                        s->name, b, epoch + 1, *n, s->batch_size);
    if (!s->labeled) return CNN_OK;
    for (int i = 0; i < *n; i++)
        if (x->labels[i] < 0 || x->labels[i] >= m->outputs)
            return cnn_fail(CNN_ERR_INVALID,
                            "source '%s': batch %d of epoch %d: label %d of sample %d is outside [0, %d)",
                            s->name, b, epoch + 1, x->labels[i], i, m->outputs);
    return CNN_OK;
}

static int epoch_hook(cnn_source *s, int epoch, int end)
{
    int (*hook)(cnn_source *, int) = end ? s->end_epoch : s->begin_epoch;
    return hook ? hook(s, epoch) : CNN_OK;
}

/* Data-parallel training: the totals of {loss x samples, correct, samples} over the processes. */
static int reduce_sums(const cnn_fit_config *c, double *loss_sum, double *correct, double *seen)
{
    if (!c || !c->reduce) return CNN_OK;
    double v[3] = {*loss_sum, *correct, *seen};
    int rc = c->reduce(c->reduce_ctx, v, 3);
    *loss_sum = v[0], *correct = v[1], *seen = v[2];
    return rc;
}

/* Loss and accuracy over epoch 0 of a planned source (inference behaviour); c (may be NULL) reduces. */
static int evaluate_planned(cnn_model *m, cnn_source *s, const cnn_fit_config *c, double *loss, double *acc)
{
    double sum = 0.0;
    int correct = 0, seen = 0, n = 0;
    int rc = epoch_hook(s, 0, 0);
    for (int b = 0; !rc && b < s->batches; b++) {
        rc = fill_batch(m, s, 0, b, &n);
        if (rc) break;
        cnn_model_forward_from(m, s->first_layer, n, 0);
        cnn_model_score_planned(m, m->x.labels, n, &sum, &correct);
        seen += n;
    }
    if (!rc) rc = epoch_hook(s, 0, 1);
    double hits = correct, count = seen;
    if (!rc) rc = reduce_sums(c, &sum, &hits, &count);
    *loss = sum / count + cnn_model_regularization(m);
    *acc = hits / count;
    return rc;
}

int cnn_model_evaluate_source(cnn_model *m, cnn_source *src, double *loss, double *accuracy)
{
    /* An uncompiled model (a loaded one) is scored with the loss it was saved with, else on probabilities. */
    int rc = cnn_model_check_loss(m, &m->x.loss);
    if (!rc) rc = check_source(m, src, 1, "evaluation");
    if (!rc) rc = cnn_model_plan(m, src->batch_size);
    return rc ? rc : evaluate_planned(m, src, NULL, loss, accuracy);
}

int cnn_model_evaluate(cnn_model *m, const cnn_dataset *ds, int batch_size, double *loss, double *accuracy)
{
    if (batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "evaluate: batch_size %d must be >= 1", batch_size);
    int rc = cnn_model_check_dataset(m, ds, "evaluation");
    if (rc) return rc;
    cnn_source *s = cnn_source_dataset_make(ds, batch_size, 0, 0, NULL, "evaluation data");
    if (!s) return cnn_errcode();
    rc = cnn_model_evaluate_source(m, s, loss, accuracy);
    cnn_source_free(s);
    return rc;
}

int cnn_model_predict_source(cnn_model *m, cnn_source *src, float *out)
{
    int rc = check_source(m, src, 0, "prediction");
    if (!rc && !out) rc = cnn_fail(CNN_ERR_INVALID, "predict: out must not be NULL");
    if (!rc) rc = cnn_model_plan(m, src->batch_size);
    if (!rc) rc = epoch_hook(src, 0, 0);
    size_t k = (size_t)m->outputs, done = 0;
    for (int b = 0, n = 0; !rc && b < src->batches; b++) {
        int labeled = src->labeled;
        src->labeled = 0; /* labels are not checked: predict does not use them */
        rc = fill_batch(m, src, 0, b, &n);
        src->labeled = labeled;
        if (rc) break;
        cnn_model_forward_from(m, src->first_layer, n, 0);
        memcpy(out + k * done, cnn_model_output(m), sizeof(float) * k * n);
        done += (size_t)n;
    }
    return rc ? rc : epoch_hook(src, 0, 1);
}

static int history_push(cnn_history *h, const cnn_epoch_log *log)
{
    if (h->count == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        cnn_epoch_log *e = realloc(h->epochs, sizeof *e * (size_t)cap);
        if (!e) return cnn_fail(CNN_ERR_NOMEM, "history: out of memory");
        h->epochs = e;
        h->cap = cap;
    }
    h->epochs[h->count++] = *log;
    return CNN_OK;
}

/* ---------------------------------------------------------------- hooks */

typedef enum {
    HOOK_TRAIN_BEGIN,
    HOOK_EPOCH_BEGIN,
    HOOK_BATCH_BEGIN,
    HOOK_GRADIENTS,
    HOOK_TRAIN_END
} hook_kind;

/* Calls one kind of hook of every callback, in list order; the first error ends the loop. */
static int call_hooks(cnn_model *m, const cnn_fit_config *c, hook_kind kind, int epoch, int batch,
                      const cnn_history *h)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int rc = CNN_OK;
        if (kind == HOOK_TRAIN_BEGIN && cb->on_train_begin) rc = cb->on_train_begin(cb, m);
        if (kind == HOOK_EPOCH_BEGIN && cb->on_epoch_begin) rc = cb->on_epoch_begin(cb, m, epoch);
        if (kind == HOOK_BATCH_BEGIN && cb->on_train_batch_begin)
            rc = cb->on_train_batch_begin(cb, m, epoch, batch);
        if (kind == HOOK_GRADIENTS && cb->on_gradients) rc = cb->on_gradients(cb, m, epoch, batch);
        if (kind == HOOK_TRAIN_END && cb->on_train_end) rc = cb->on_train_end(cb, m, h);
        if (rc) return rc;
    }
    return CNN_OK;
}

/* Appends a stopping callback's name to the history's stop reason. */
static void note_stop(cnn_history *h, const cnn_callback *cb)
{
    size_t len = strlen(h->stop_reason);
    snprintf(h->stop_reason + len, sizeof h->stop_reason - len, "%s%s", len ? "; " : "",
             cb->name ? cb->name : "callback");
}

static int call_batch_end(cnn_model *m, const cnn_fit_config *c, const cnn_batch_log *log, int *stop,
                          cnn_history *h)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int mine = 0;
        int rc = cb->on_train_batch_end ? cb->on_train_batch_end(cb, m, log, &mine) : CNN_OK;
        if (rc) return rc;
        if (mine) note_stop(h, cb), *stop = 1;
    }
    return CNN_OK;
}

/* Each callback gets a stop flag of its own, so that the history names every callback that stopped training
 * (in Keras both EarlyStopping callbacks of the study may fire in the same epoch). */
static int call_epoch_end(cnn_model *m, const cnn_fit_config *c, const cnn_epoch_log *log, int *stop,
                          cnn_history *h)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int mine = 0;
        int rc = cb->on_epoch_end ? cb->on_epoch_end(cb, m, log, &mine) : CNN_OK;
        if (rc) return rc;
        if (mine) note_stop(h, cb), *stop = 1;
    }
    return CNN_OK;
}

/* ---------------------------------------------------------------- the loop */

typedef struct fit_run {
    cnn_model *m;
    cnn_source *train, *val;
    const cnn_fit_config *c;
    cnn_history *h;
    cnn_fit_progress pos; /* the next batch and the epoch's sums so far */
    double last_backup;   /* cnn_now() of the last backup */
    float *slice_sum;     /* batch_slices > 1: the slices' gradients added so far (nparams floats) */
} fit_run;

/* The non-finite guard: a NaN or infinite loss or gradient stops training before the update, so the weights
 * (and every file written from them) stay those of the last good step. */
static int guard_finite(cnn_model *m, int first, int n, int epoch, int b, double loss)
{
    if (isfinite(loss) && cnn_model_grads_finite(m)) return CNN_OK;
    char why[200];
    cnn_model_explain_nonfinite(m, first, n, why, sizeof why);
    return cnn_fail(
        CNN_ERR_NONFINITE,
        "model '%s' diverged in epoch %d, batch %d: the loss is %g; %s (the weights are those before this "
        "batch; a lower learning rate may help)",
        m->name, epoch + 1, b + 1, loss, why);
}

static int backup(fit_run *f)
{
    f->last_backup = cnn_now();
    return f->c->backup_path && !f->c->backup_restore_only ? cnn_backup_write(f->m, f->c, f->h, &f->pos)
                                                           : CNN_OK;
}

/* Adds slice s's gradients to the sum of the slices before it, in the order a reduction over processes in
 * rank order adds them. */
static void add_slice(fit_run *f, int s)
{
    const size_t n = f->m->nparams;
    float *sum = f->slice_sum;
    const float *g = f->m->grads;
    if (s == 0) {
        memcpy(sum, g, sizeof *sum * n);
        return;
    }
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) sum[i] += g[i];
}

/* The batch's gradient as f->c->batch_slices processes compute and add it (cnn_fit_config.batch_slices):
 * each slice is moved to the front of the input (the slices before it are done) and runs on its own. Returns
 * the size of the last slice, the one left in the input. */
static int forward_backward_slices(fit_run *f, int n, double *loss, int *hits)
{
    cnn_model *m = f->m;
    cnn_exec *x = &m->x;
    const int first = f->train->first_layer, k = f->c->batch_slices;
    const size_t sample = cnn_shape_size(m->layers[first].in);
    double sum = 0.0;
    int size = 0;
    *hits = 0;
    for (int s = 0; s < k; s++) {
        const int lo = (int)((long)n * s / k), hi = (int)((long)n * (s + 1) / k);
        size = hi - lo;
        memmove(x->acts[first], x->acts[first] + sample * lo, sizeof(float) * sample * size);
        memmove(x->labels, x->labels + lo, sizeof *x->labels * size);
        cnn_model_set_batch_share(m, lo, n);
        cnn_model_forward_from(m, first, size, 1);
        double l;
        int h;
        cnn_model_backward_planned(m, x->labels, &l, &h);
        sum += l * size, *hits += h;
        add_slice(f, s);
    }
    cnn_model_set_batch_share(m, 0, 0);
    memcpy(m->grads, f->slice_sum, sizeof *m->grads * m->nparams);
    *loss = sum / n;
    return size;
}

/* Forward and backward over the batch of n in acts[first]: at once, or in slices. Returns the samples left in
 * the input (for the non-finite guard's explanation). */
static int forward_backward(fit_run *f, int n, double *loss, int *hits)
{
    cnn_model *m = f->m;
    if (f->slice_sum) return forward_backward_slices(f, n, loss, hits);
    cnn_model_forward_from(m, f->train->first_layer, n, 1);
    cnn_model_backward_planned(m, m->x.labels, loss, hits);
    return n;
}

/* A failed reduction of synchronised batch statistics (cnn_model_set_batch_sync) ends the step. */
static int sync_status(cnn_model *m)
{
    const int rc = m->x.sync.rc;
    m->x.sync.rc = 0;
    if (!rc) return CNN_OK;
    /* The reduction's own error when it reported one (a negative status), else a generic one. */
    return rc < 0 ? rc
                  : cnn_fail(CNN_ERR_IO, "synchronised BatchNorm: the batch-statistics reduction failed (%d)",
                             rc);
}

/* One training step on the next batch; adds its loss and hits to the epoch's sums. */
static int train_batch(fit_run *f, cnn_batch_log *log)
{
    cnn_model *m = f->m;
    cnn_fit_progress *p = &f->pos;
    int n, hits, rc = call_hooks(m, f->c, HOOK_BATCH_BEGIN, p->epoch, p->batch, NULL);
    if (!rc) rc = fill_batch(m, f->train, p->epoch, p->batch, &n);
    if (!rc && f->slice_sum && n < f->c->batch_slices)
        rc = cnn_fail(CNN_ERR_INVALID, "fit: batch %d of epoch %d has %d samples, fewer than the %d slices",
                      p->batch + 1, p->epoch + 1, n, f->c->batch_slices);
    if (rc) return rc;
    double loss;
    const int left = forward_backward(f, n, &loss, &hits);
    rc = sync_status(m);
    if (!rc) rc = call_hooks(m, f->c, HOOK_GRADIENTS, p->epoch, p->batch, NULL);
    if (!rc) rc = guard_finite(m, f->train->first_layer, left, p->epoch, p->batch, loss);
    if (rc) return rc;
    cnn_model_update_planned(m);
    p->loss_sum += loss * n;
    p->correct += hits;
    p->seen += n;
    *log = (cnn_batch_log){.epoch = p->epoch,
                           .batch = p->batch,
                           .size = n,
                           .loss = loss,
                           .accuracy = (double)hits / n,
                           .mean_loss = p->loss_sum / p->seen,
                           .mean_accuracy = (double)p->correct / p->seen};
    p->batch++;
    return CNN_OK;
}

/* The rest of the epoch's training batches (all of them unless resumed inside it); the loss and accuracy are
 * sample-weighted means over the batches, as Keras reports them. */
static int train_epoch(fit_run *f, cnn_progress *bar, cnn_epoch_log *log)
{
    cnn_fit_progress *p = &f->pos;
    const double minutes = f->c->backup_minutes;
    int rc = p->batch ? CNN_OK : epoch_hook(f->train, p->epoch, 0);
    double t0 = cnn_now();
    while (!rc && p->batch < f->train->batches && !p->stop) {
        cnn_batch_log bl;
        rc = train_batch(f, &bl);
        if (!rc) cnn_progress_step(bar, p->batch, bl.mean_loss, bl.mean_accuracy);
        if (!rc) rc = call_batch_end(f->m, f->c, &bl, &p->stop, f->h);
        if (!rc && minutes > 0 && cnn_now() - f->last_backup > 60 * minutes && p->batch < f->train->batches) {
            p->seconds += cnn_now() - t0, t0 = cnn_now();
            rc = backup(f);
        }
    }
    if (!rc) rc = epoch_hook(f->train, p->epoch, 1);
    p->seconds += cnn_now() - t0;
    /* Data-parallel: the totals over the processes (p keeps this process's own sums for a backup). */
    double loss_sum = p->loss_sum, hits = (double)p->correct, count = p->seen;
    if (!rc) rc = reduce_sums(f->c, &loss_sum, &hits, &count);
    log->loss = loss_sum / count;
    log->accuracy = hits / count;
    log->seconds = p->seconds;
    return rc;
}

static int run_epoch(fit_run *f)
{
    cnn_model *m = f->m;
    const cnn_fit_config *c = f->c;
    cnn_fit_progress *p = &f->pos;
    int rc = p->batch ? CNN_OK : call_hooks(m, c, HOOK_EPOCH_BEGIN, p->epoch, 0, NULL);
    if (rc) return rc;
    cnn_epoch_log log = {.epoch = p->epoch, .lr = m->x.opt.lr, .val_loss = NAN, .val_accuracy = NAN};
    cnn_progress bar;
    cnn_progress_begin(&bar, c->out, c->verbose, p->epoch, c->epochs, f->train->batches);
    rc = train_epoch(f, &bar, &log);
    if (!rc && f->val) {
        double t0 = cnn_now();
        rc = evaluate_planned(m, f->val, c, &log.val_loss, &log.val_accuracy);
        log.val_seconds = cnn_now() - t0;
    }
    if (rc) return rc;
    cnn_progress_end(&bar, &log);
    rc = history_push(f->h, &log);
    if (!rc) rc = call_epoch_end(m, c, &log, &p->stop, f->h);
    if (!rc && p->stop) f->h->stopped_epoch = p->epoch;
    *p = (cnn_fit_progress){.epoch = p->epoch + 1, .stop = p->stop};
    return rc ? rc : backup(f);
}

static int validate_config(const cnn_model *m, const cnn_source *train, const cnn_fit_config *c)
{
    if (!m->x.compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before fit", m->name);
    if (c->epochs < 0) return cnn_fail(CNN_ERR_INVALID, "fit: epochs %d must be >= 0", c->epochs);
    if (c->batch_slices < 0 || c->batch_slices > train->batch_size)
        return cnn_fail(CNN_ERR_INVALID, "fit: batch_slices %d must be in [0, %d] (the batch size)",
                        c->batch_slices, train->batch_size);
    if (c->num_callbacks < 0 || (c->num_callbacks && !c->callbacks))
        return cnn_fail(CNN_ERR_INVALID, "fit: %d callbacks but no callback list", c->num_callbacks);
    for (int i = 0; i < c->num_callbacks; i++)
        if (!c->callbacks[i]) return cnn_fail(CNN_ERR_INVALID, "fit: callback %d is NULL", i);
    int rc = check_source(m, train, 1, "training");
    if (!rc && c->validation_source) rc = check_source(m, c->validation_source, 1, "validation");
    return rc;
}

static int fit_planned(fit_run *f)
{
    int b = f->train->batch_size;
    if (f->val && f->val->batch_size > b) b = f->val->batch_size;
    int rc = cnn_model_plan(f->m, b);
    if (rc) return rc;
    if (f->c->batch_slices > 1 && !(f->slice_sum = malloc(sizeof *f->slice_sum * f->m->nparams)))
        return cnn_fail(CNN_ERR_NOMEM, "fit: out of memory for the gradients of %d batch slices",
                        f->c->batch_slices);
    memset(f->h, 0, sizeof *f->h);
    f->h->stopped_epoch = -1;
    f->last_backup = cnn_now();
    rc = call_hooks(f->m, f->c, HOOK_TRAIN_BEGIN, 0, 0, NULL);
    if (!rc && f->c->backup_path && (rc = cnn_backup_restore(f->m, f->c, f->h, &f->pos)) > 0) rc = CNN_OK;
    while (!rc && f->pos.epoch < f->c->epochs && !f->pos.stop) rc = run_epoch(f);
    if (!rc) rc = call_hooks(f->m, f->c, HOOK_TRAIN_END, 0, 0, f->h);
    return rc;
}

int cnn_model_fit_source(cnn_model *m, cnn_source *train, const cnn_fit_config *cfg, cnn_history *hist)
{
    cnn_fit_config c = cfg ? *cfg : cnn_fit_default();
    int rc = validate_config(m, train, &c);
    if (!rc && !hist) rc = cnn_fail(CNN_ERR_INVALID, "fit: the history pointer is NULL");
    if (rc) return rc;
    cnn_source *own_val = NULL;
    if (!c.validation_source && c.validation) {
        rc = cnn_model_check_dataset(m, c.validation, "validation");
        /* Validation runs in batches of the training batch size, as Keras's validation_batch_size does. */
        if (!rc && !(own_val = cnn_source_dataset_make(c.validation, train->batch_size, 0, 0, NULL,
                                                       "validation data")))
            rc = cnn_errcode();
        if (!rc) rc = check_source(m, own_val, 1, "validation");
    }
    fit_run f = {.m = m,
                 .train = train,
                 .val = c.validation_source ? c.validation_source : own_val,
                 .c = &c,
                 .h = hist};
    if (!rc) rc = fit_planned(&f);
    free(f.slice_sum);
    cnn_source_free(own_val);
    return rc;
}

int cnn_model_fit(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *cfg, cnn_history *hist)
{
    cnn_fit_config c = cfg ? *cfg : cnn_fit_default();
    if (!m->x.compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before fit", m->name);
    if (c.batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "fit: batch_size %d must be >= 1", c.batch_size);
    int rc = cnn_model_check_dataset(m, train, "training");
    if (!rc && c.validation && !c.validation_source)
        rc = cnn_model_check_dataset(m, c.validation, "validation");
    if (rc) return rc;
    cnn_source *s = cnn_source_dataset_make(train, c.batch_size, c.shuffle, c.seed, NULL, "training data");
    if (!s) return cnn_errcode();
    rc = cnn_model_fit_source(m, s, &c, hist);
    cnn_source_free(s);
    return rc;
}
