/* fit / evaluate / predict, built on the planned step (no allocation inside the epoch loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/progress.h"

cnn_fit_config cnn_fit_default(void)
{
    return (cnn_fit_config){
        .epochs = 1, .batch_size = 32, .shuffle = 1, .seed = 0, .verbose = CNN_VERBOSE_AUTO};
}

static int check_data(const cnn_model *m, const cnn_dataset *ds, const char *what)
{
    if (!ds || ds->n < 1 || !ds->x || !ds->y) return cnn_fail(CNN_ERR_INVALID, "%s data is empty", what);
    size_t sample = (size_t)ds->h * ds->w * ds->c;
    if (sample != cnn_shape_size(m->input))
        return cnn_fail(CNN_ERR_SHAPE, "%s data has samples of %dx%dx%d = %zu values; model '%s' expects %zu",
                        what, ds->h, ds->w, ds->c, sample, m->name, cnn_shape_size(m->input));
    for (int i = 0; i < ds->n; i++)
        if (ds->y[i] < 0 || ds->y[i] >= m->classes)
            return cnn_fail(CNN_ERR_INVALID, "%s label %d of sample %d is outside [0, %d) of model '%s'",
                            what, ds->y[i], i, m->classes, m->name);
    return CNN_OK;
}

/* Copies samples idx[0..n) of ds into the model's input batch and label buffer. */
static void gather(cnn_model *m, const cnn_dataset *ds, const int32_t *idx, int n)
{
    size_t sample = cnn_shape_size(m->input);
#pragma omp parallel for schedule(static) if (n * sample > 65536)
    for (int i = 0; i < n; i++) {
        int k = idx ? idx[i] : i;
        memcpy(m->acts[0] + sample * i, ds->x + sample * k, sizeof(float) * sample);
        m->labels[i] = ds->y[k];
    }
}

static void evaluate_planned(cnn_model *m, const cnn_dataset *ds, int batch, double *loss, double *acc)
{
    size_t sample = cnn_shape_size(m->input);
    double sum = 0.0;
    int correct = 0;
    for (int s = 0; s < ds->n; s += batch) {
        int n = ds->n - s < batch ? ds->n - s : batch;
        memcpy(m->acts[0], ds->x + sample * s, sizeof(float) * sample * n);
        cnn_model_forward_planned(m, n, 0);
        cnn_model_score_planned(m, ds->y + s, n, &sum, &correct);
    }
    *loss = sum / ds->n + cnn_model_regularization(m);
    *acc = (double)correct / ds->n;
}

int cnn_model_evaluate(cnn_model *m, const cnn_dataset *ds, int batch_size, double *loss, double *accuracy)
{
    if (batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "evaluate: batch_size %d must be >= 1", batch_size);
    int rc = check_data(m, ds, "evaluation");
    if (!rc) rc = cnn_model_plan(m, batch_size < ds->n ? batch_size : ds->n);
    if (rc) return rc;
    evaluate_planned(m, ds, m->plan_batch < batch_size ? m->plan_batch : batch_size, loss, accuracy);
    return CNN_OK;
}

int cnn_model_predict(cnn_model *m, const float *x, int n, int batch_size, float *probs)
{
    if (n < 1 || batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "predict: n and batch_size must be >= 1");
    int b = batch_size < n ? batch_size : n;
    int rc = cnn_model_plan(m, b);
    if (rc) return rc;
    size_t sample = cnn_shape_size(m->input), k = (size_t)m->classes;
    for (int s = 0; s < n; s += b) {
        int cnt = n - s < b ? n - s : b;
        memcpy(m->acts[0], x + sample * s, sizeof(float) * sample * cnt);
        cnn_model_forward_planned(m, cnt, 0);
        memcpy(probs + k * s, cnn_model_output(m), sizeof(float) * k * cnt);
    }
    return CNN_OK;
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

static int validate_config(const cnn_model *m, const cnn_dataset *train, const cnn_fit_config *c)
{
    if (!m->compiled) return cnn_fail(CNN_ERR_STATE, "model '%s': compile it before fit", m->name);
    if (c->epochs < 0) return cnn_fail(CNN_ERR_INVALID, "fit: epochs %d must be >= 0", c->epochs);
    if (c->batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "fit: batch_size %d must be >= 1", c->batch_size);
    int rc = check_data(m, train, "training");
    if (!rc && c->validation) rc = check_data(m, c->validation, "validation");
    return rc;
}

/* One pass over the training data in shuffled batches; the loss and accuracy are sample-weighted means over
 * the batches, as Keras reports them. */
static void train_epoch(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *c, int32_t *order,
                        int epoch, cnn_progress *bar, cnn_epoch_log *log)
{
    for (int i = 0; i < train->n; i++) order[i] = i;
    if (c->shuffle)
        cnn_rng_shuffle(c->seed, cnn_rng_stream(CNN_STREAM_SHUFFLE, (uint64_t)epoch), order, train->n);
    double loss_sum = 0.0;
    long correct = 0;
    int seen = 0, step = 0;
    for (int s = 0; s < train->n; s += c->batch_size) {
        int n = train->n - s < c->batch_size ? train->n - s : c->batch_size;
        gather(m, train, order + s, n);
        cnn_model_forward_planned(m, n, 1);
        double loss;
        int hits;
        cnn_model_backward_planned(m, m->labels, &loss, &hits);
        cnn_optimizer_step(&m->opt, m->params, m->grads);
        m->step++;
        loss_sum += loss * n;
        correct += hits;
        seen += n;
        cnn_progress_step(bar, ++step, loss_sum / seen, (double)correct / seen);
    }
    log->loss = loss_sum / seen;
    log->accuracy = (double)correct / seen;
}

static int call_epoch_begin(cnn_model *m, const cnn_fit_config *c, int epoch)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int rc = cb->on_epoch_begin ? cb->on_epoch_begin(cb, m, epoch) : CNN_OK;
        if (rc) return rc;
    }
    return CNN_OK;
}

/* Each callback gets a stop flag of its own, so that the history names every callback that stopped training
 * (in Keras both EarlyStopping callbacks of the study may fire in the same epoch); the reason is their names.
 */
static int call_epoch_end(cnn_model *m, const cnn_fit_config *c, const cnn_epoch_log *log, int *stop,
                          cnn_history *h)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int mine = 0;
        int rc = cb->on_epoch_end ? cb->on_epoch_end(cb, m, log, &mine) : CNN_OK;
        if (rc) return rc;
        if (!mine) continue;
        size_t len = strlen(h->stop_reason);
        snprintf(h->stop_reason + len, sizeof h->stop_reason - len, "%s%s", len ? "; " : "",
                 cb->name ? cb->name : "callback");
        *stop = 1;
    }
    return CNN_OK;
}

static int call_train_hook(cnn_model *m, const cnn_fit_config *c, const cnn_history *h, int end)
{
    for (int i = 0; i < c->num_callbacks; i++) {
        cnn_callback *cb = c->callbacks[i];
        int rc = CNN_OK;
        if (!end && cb->on_train_begin) rc = cb->on_train_begin(cb, m);
        if (end && cb->on_train_end) rc = cb->on_train_end(cb, m, h);
        if (rc) return rc;
    }
    return CNN_OK;
}

static int run_epochs(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *c, int32_t *order,
                      cnn_history *h)
{
    int steps = (train->n + c->batch_size - 1) / c->batch_size;
    int rc = call_train_hook(m, c, h, 0);
    for (int epoch = 0; !rc && epoch < c->epochs; epoch++) {
        rc = call_epoch_begin(m, c, epoch);
        if (rc) break;
        cnn_epoch_log log = {.epoch = epoch, .lr = m->opt.lr, .val_loss = NAN, .val_accuracy = NAN};
        cnn_progress bar;
        cnn_progress_begin(&bar, c->out, c->verbose, epoch, c->epochs, steps);
        double t0 = cnn_now();
        train_epoch(m, train, c, order, epoch, &bar, &log);
        log.seconds = cnn_now() - t0;
        if (c->validation) {
            t0 = cnn_now();
            evaluate_planned(m, c->validation, m->plan_batch, &log.val_loss, &log.val_accuracy);
            log.val_seconds = cnn_now() - t0;
        }
        cnn_progress_end(&bar, &log);
        int stop = 0;
        rc = history_push(h, &log);
        if (!rc) rc = call_epoch_end(m, c, &log, &stop, h);
        if (!rc && stop) {
            h->stopped_epoch = epoch;
            break;
        }
    }
    if (!rc) rc = call_train_hook(m, c, h, 1);
    return rc;
}

int cnn_model_fit(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *cfg, cnn_history *hist)
{
    cnn_fit_config c = cfg ? *cfg : cnn_fit_default();
    int rc = validate_config(m, train, &c);
    if (!rc) rc = cnn_model_plan(m, c.batch_size < train->n ? c.batch_size : train->n);
    if (rc) return rc;
    if (c.batch_size > train->n) c.batch_size = train->n;
    int32_t *order = malloc(sizeof *order * (size_t)train->n);
    if (!order) return cnn_fail(CNN_ERR_NOMEM, "fit: out of memory");
    memset(hist, 0, sizeof *hist);
    hist->stopped_epoch = -1;
    rc = run_epochs(m, train, &c, order, hist);
    free(order);
    return rc;
}
