/* EarlyStopping, step for step as Keras 2.15 (keras/src/callbacks.py) does it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks/callbacks.h"
#include "callbacks/monitor.h"
#include "core/error.h"

typedef struct es_state {
    cnn_callback cb;
    /* settings */
    int monitor, maximize, patience, start_from_epoch, restore;
    double min_delta; /* |min_delta|, applied against the direction of improvement */
    double baseline;  /* NaN: none */
    /* per fit */
    double best;
    int wait, best_epoch, stopped_epoch, restored_epoch;
    float *snapshot; /* restore_best_weights: all parameters at snapshot_epoch */
    size_t nsnapshot;
    int snapshot_epoch; /* -1: no copy taken yet (Keras's best_weights is None) */
    char label[96];     /* the callback's name */
} es_state;

/* Keras: monitor_op(current - min_delta, reference) with min_delta negated when minimising. */
static int improves(const es_state *s, double current, double reference)
{
    return s->maximize ? current - s->min_delta > reference : current + s->min_delta < reference;
}

static void set_label(es_state *s)
{
    int n = snprintf(s->label, sizeof s->label, "EarlyStopping(%s)", cnn_monitor_names[s->monitor]);
    if (s->stopped_epoch < 0) return;
    size_t k = (size_t)n, cap = sizeof s->label;
    if (s->best_epoch >= 0)
        k += (size_t)snprintf(s->label + k, cap - k, " best epoch %d", s->best_epoch);
    else
        k += (size_t)snprintf(s->label + k, cap - k, " no improvement");
    if (s->restored_epoch >= 0) snprintf(s->label + k, cap - k, ", restored epoch %d", s->restored_epoch);
}

static void reset(es_state *s)
{
    s->wait = 0;
    s->best = s->maximize ? -INFINITY : INFINITY;
    s->best_epoch = s->stopped_epoch = s->restored_epoch = s->snapshot_epoch = -1;
    set_label(s);
}

static int es_train_begin(cnn_callback *cb, cnn_model *m)
{
    es_state *s = (es_state *)cb;
    reset(s);
    if (!s->restore) return CNN_OK;
    size_t n = cnn_model_num_params(m, 0);
    if (s->snapshot && s->nsnapshot == n) return CNN_OK; /* kept from a fit that failed */
    free(s->snapshot);
    s->snapshot = malloc(sizeof(float) * (n ? n : 1));
    s->nsnapshot = s->snapshot ? n : 0;
    if (!s->snapshot)
        return cnn_fail(CNN_ERR_NOMEM, "EarlyStopping: out of memory for a copy of %zu parameters", n);
    return CNN_OK;
}

static void es_destroy(cnn_callback *cb)
{
    es_state *s = (es_state *)cb;
    free(s->snapshot);
    s->snapshot = NULL;
    s->nsnapshot = 0;
}

static int es_train_end(cnn_callback *cb, cnn_model *m, const cnn_history *h)
{
    (void)m;
    (void)h;
    es_destroy(cb);
    return CNN_OK;
}

static int take_snapshot(es_state *s, cnn_model *m, int epoch)
{
    if (!s->snapshot || s->nsnapshot != cnn_model_num_params(m, 0))
        return cnn_fail(CNN_ERR_STATE, "EarlyStopping: on_train_begin was not called for this model");
    memcpy(s->snapshot, cnn_model_params(m), sizeof(float) * s->nsnapshot);
    s->snapshot_epoch = epoch;
    return CNN_OK;
}

static int es_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    es_state *s = (es_state *)cb;
    double current;
    int epoch = log->epoch;
    if (!cnn_monitor_value(log, s->monitor, &current) || epoch < s->start_from_epoch) return CNN_OK;
    int improved = improves(s, current, s->best);
    /* Keras copies the weights at the first tracked epoch (in case nothing ever improves) and at each
     * improvement; one copy serves both when they coincide. */
    if (s->restore && (improved || s->snapshot_epoch < 0)) {
        int rc = take_snapshot(s, m, epoch);
        if (rc) return rc;
    }
    s->wait++;
    if (improved) {
        s->best = current;
        s->best_epoch = epoch;
        if (isnan(s->baseline) || improves(s, current, s->baseline)) s->wait = 0;
        return CNN_OK; /* Keras checks patience only on epochs without improvement */
    }
    if (s->wait >= s->patience && epoch > 0) {
        s->stopped_epoch = epoch;
        *stop = 1;
        if (s->restore && s->snapshot_epoch >= 0) {
            memcpy(cnn_model_params(m), s->snapshot, sizeof(float) * s->nsnapshot);
            s->restored_epoch = s->snapshot_epoch;
        }
        set_label(s);
    }
    return CNN_OK;
}

static int read_options(void *state, cnn_opts *o)
{
    es_state *s = state;
    int rc = cnn_monitor_options(o, &s->monitor, &s->maximize);
    if (!rc) rc = cnn_opts_double(o, "min_delta", 0.0, -HUGE_VAL, HUGE_VAL, &s->min_delta);
    if (!rc) rc = cnn_opts_int(o, "patience", 0, 0, 1 << 30, &s->patience);
    if (!rc) rc = cnn_opts_double(o, "baseline", NAN, -HUGE_VAL, HUGE_VAL, &s->baseline);
    if (!rc) rc = cnn_opts_bool(o, "restore_best_weights", 0, &s->restore);
    if (!rc) rc = cnn_opts_int(o, "start_from_epoch", 0, 0, 1 << 30, &s->start_from_epoch);
    s->min_delta = fabs(s->min_delta);
    return rc;
}

/* ---- resume: the per-fit state, and the best weights when restore_best_weights holds a copy */

static cnn_state_fields es_fields(es_state *s)
{
    return (cnn_state_fields){
        .d = {&s->best},
        .nd = 1,
        .i = {&s->wait, &s->best_epoch, &s->stopped_epoch, &s->restored_epoch, &s->snapshot_epoch},
        .ni = 5};
}

/* The block, then the copy of the best weights when one was taken (float32 as the host holds them: little-
 * endian, as in model files). */
static size_t es_state_size(const cnn_callback *cb, const cnn_model *m)
{
    (void)m;
    es_state *s = (es_state *)cb;
    cnn_state_fields f = es_fields(s);
    return cnn_state_block_size(&f) + (s->snapshot_epoch >= 0 ? sizeof(float) * s->nsnapshot : 0);
}

static void es_state_save(const cnn_callback *cb, const cnn_model *m, void *buf)
{
    (void)m;
    es_state *s = (es_state *)cb;
    cnn_state_fields f = es_fields(s);
    cnn_state_block_save(&f, buf);
    if (s->snapshot_epoch >= 0)
        memcpy((char *)buf + cnn_state_block_size(&f), s->snapshot, sizeof(float) * s->nsnapshot);
}

static int es_state_load(cnn_callback *cb, cnn_model *m, const void *buf, size_t len)
{
    (void)m;
    es_state *s = (es_state *)cb, saved = *s;
    cnn_state_fields f = es_fields(s);
    size_t head = cnn_state_block_size(&f);
    int rc = cnn_state_block_load(&f, buf, len < head ? len : head, "EarlyStopping");
    size_t copy = s->snapshot_epoch >= 0 ? sizeof(float) * s->nsnapshot : 0;
    if (!rc && (len != head + copy || (copy && !s->snapshot)))
        rc = cnn_fail(CNN_ERR_FORMAT, "EarlyStopping: saved state of %zu bytes; expected %zu", len,
                      head + copy);
    if (rc) {
        *s = saved; /* nothing changes when the state is refused */
        return rc;
    }
    if (copy) memcpy(s->snapshot, (const char *)buf + head, copy);
    set_label(s);
    return CNN_OK;
}

cnn_callback *cnn_callback_early_stopping(const char *options)
{
    static const cnn_callback hooks = {.on_train_begin = es_train_begin,
                                       .on_epoch_end = es_epoch_end,
                                       .on_train_end = es_train_end,
                                       .destroy = es_destroy,
                                       .state_size = es_state_size,
                                       .state_save = es_state_save,
                                       .state_load = es_state_load};
    es_state *s = cnn_monitor_create("EarlyStopping", sizeof *s, &hooks, options, read_options);
    if (!s) return NULL;
    reset(s);
    s->cb.name = s->label;
    return &s->cb;
}

int cnn_early_stopping_get_info(const cnn_callback *cb, cnn_early_stopping_info *info)
{
    const es_state *s = cnn_monitor_state(cb, es_epoch_end, "an EarlyStopping");
    if (!s) return CNN_ERR_INVALID;
    *info = (cnn_early_stopping_info){.best = s->best,
                                      .best_epoch = s->best_epoch,
                                      .wait = s->wait,
                                      .stopped_epoch = s->stopped_epoch,
                                      .restored_epoch = s->restored_epoch};
    return CNN_OK;
}

const cnn_callback_kind cnn_early_stopping_kind = {.type = "EarlyStopping",
                                                   .create = cnn_callback_early_stopping};
