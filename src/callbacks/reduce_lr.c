/* ReduceLROnPlateau, step for step as Keras 2.15 (keras/src/callbacks.py) does it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks/callbacks.h"
#include "callbacks/monitor.h"
#include "core/error.h"

typedef struct rlr_state {
    cnn_callback cb;
    /* settings */
    int monitor, maximize, patience, cooldown;
    double factor, min_delta, min_lr;
    /* per fit */
    double best, last_lr;
    int wait, cooldown_counter, reductions, last_epoch;
    char label[48];
} rlr_state;

static void reset(rlr_state *s)
{
    s->best = s->maximize ? -INFINITY : INFINITY;
    s->wait = s->cooldown_counter = s->reductions = 0;
    s->last_epoch = -1;
    s->last_lr = 0;
}

static int rlr_train_begin(cnn_callback *cb, cnn_model *m)
{
    (void)m;
    reset((rlr_state *)cb);
    return CNN_OK;
}

/* Keras keeps min_delta's sign as given: a negative one makes small worsenings count as improvements. */
static int improves(const rlr_state *s, double current)
{
    return s->maximize ? current > s->best + s->min_delta : current < s->best - s->min_delta;
}

/* The optimizer's lr is a float32 variable in Keras: it is read as float32, multiplied in double (NumPy 1.x
 * promotes float32 * Python float to float64), bounded below by min_lr, and stored back as float32. */
static void reduce(rlr_state *s, cnn_model *m, int epoch)
{
    float old_lr = (float)cnn_model_learning_rate(m);
    if (!(old_lr > (float)s->min_lr)) return; /* at the floor: wait keeps growing, as in Keras */
    double new_lr = (double)old_lr * s->factor;
    if (new_lr < s->min_lr) new_lr = s->min_lr;
    s->last_lr = (double)(float)new_lr;
    cnn_model_set_learning_rate(m, s->last_lr);
    s->last_epoch = epoch;
    s->reductions++;
    s->cooldown_counter = s->cooldown;
    s->wait = 0;
}

static int rlr_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)stop;
    rlr_state *s = (rlr_state *)cb;
    double current;
    if (!cnn_monitor_value(log, s->monitor, &current)) return CNN_OK;
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->wait = 0;
    }
    if (improves(s, current)) {
        s->best = current;
        s->wait = 0;
    } else if (s->cooldown_counter == 0 && ++s->wait >= s->patience) {
        reduce(s, m, log->epoch);
    }
    return CNN_OK;
}

static int read_options(void *state, cnn_opts *o)
{
    rlr_state *s = state;
    int rc = cnn_monitor_options(o, &s->monitor, &s->maximize);
    if (!rc) rc = cnn_opts_double(o, "factor", 0.1, 0.0, HUGE_VAL, &s->factor);
    if (!rc && s->factor >= 1.0)
        rc = cnn_fail(CNN_ERR_INVALID, "ReduceLROnPlateau: factor=%g must be below 1", s->factor);
    if (!rc) rc = cnn_opts_int(o, "patience", 10, 0, 1 << 30, &s->patience);
    if (!rc) rc = cnn_opts_double(o, "min_delta", 1e-4, -HUGE_VAL, HUGE_VAL, &s->min_delta);
    if (!rc) rc = cnn_opts_int(o, "cooldown", 0, 0, 1 << 30, &s->cooldown);
    if (!rc) rc = cnn_opts_double(o, "min_lr", 0.0, 0.0, HUGE_VAL, &s->min_lr);
    return rc;
}

/* ---- resume */

static cnn_state_fields rlr_fields(rlr_state *s)
{
    return (cnn_state_fields){.d = {&s->best, &s->last_lr},
                              .nd = 2,
                              .i = {&s->wait, &s->cooldown_counter, &s->reductions, &s->last_epoch},
                              .ni = 4};
}

static size_t rlr_state_size(const cnn_callback *cb, const cnn_model *m)
{
    (void)m;
    cnn_state_fields f = rlr_fields((rlr_state *)cb);
    return cnn_state_block_size(&f);
}

static void rlr_state_save(const cnn_callback *cb, const cnn_model *m, void *buf)
{
    (void)m;
    cnn_state_fields f = rlr_fields((rlr_state *)cb);
    cnn_state_block_save(&f, buf);
}

static int rlr_state_load(cnn_callback *cb, cnn_model *m, const void *buf, size_t len)
{
    (void)m;
    cnn_state_fields f = rlr_fields((rlr_state *)cb);
    return cnn_state_block_load(&f, buf, len, "ReduceLROnPlateau");
}

cnn_callback *cnn_callback_reduce_lr_on_plateau(const char *options)
{
    static const cnn_callback hooks = {.on_train_begin = rlr_train_begin,
                                       .on_epoch_end = rlr_epoch_end,
                                       .state_size = rlr_state_size,
                                       .state_save = rlr_state_save,
                                       .state_load = rlr_state_load};
    rlr_state *s = cnn_monitor_create("ReduceLROnPlateau", sizeof *s, &hooks, options, read_options);
    if (!s) return NULL;
    reset(s);
    snprintf(s->label, sizeof s->label, "ReduceLROnPlateau(%s)", cnn_monitor_names[s->monitor]);
    s->cb.name = s->label;
    return &s->cb;
}

int cnn_reduce_lr_get_info(const cnn_callback *cb, cnn_reduce_lr_info *info)
{
    const rlr_state *s = cnn_monitor_state(cb, rlr_epoch_end, "a ReduceLROnPlateau");
    if (!s) return CNN_ERR_INVALID;
    *info = (cnn_reduce_lr_info){.best = s->best,
                                 .wait = s->wait,
                                 .cooldown = s->cooldown_counter,
                                 .reductions = s->reductions,
                                 .last_epoch = s->last_epoch,
                                 .last_lr = s->last_lr};
    return CNN_OK;
}

const cnn_callback_kind cnn_reduce_lr_kind = {.type = "ReduceLROnPlateau",
                                              .create = cnn_callback_reduce_lr_on_plateau};
