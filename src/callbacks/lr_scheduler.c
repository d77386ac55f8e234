/* LearningRateScheduler and the study's two schedules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks/callbacks.h"
#include "core/error.h"
#include "core/opts.h"

typedef struct scheduler_state {
    cnn_callback cb;
    cnn_schedule_fn fn;
    size_t size;
    max_align_t params[]; /* the schedule's parameters, copied */
} scheduler_state;

void cnn_callback_free(cnn_callback *cb)
{
    /* Every constructor allocates the callback as the first member of its state block. */
    if (cb && cb->destroy) cb->destroy(cb);
    free(cb);
}

static int scheduler_epoch_begin(cnn_callback *cb, cnn_model *m, int epoch)
{
    scheduler_state *s = (scheduler_state *)cb;
    double lr = s->fn(epoch, cnn_model_learning_rate(m), s->params);
    if (!(lr > 0) || !isfinite(lr))
        return cnn_fail(CNN_ERR_INVALID, "LearningRateScheduler: schedule returned lr %g at epoch %d", lr,
                        epoch);
    cnn_model_set_learning_rate(m, lr);
    return CNN_OK;
}

cnn_callback *cnn_callback_lr_scheduler(cnn_schedule_fn schedule, const void *params, size_t params_size)
{
    if (!schedule) {
        cnn_fail(CNN_ERR_INVALID, "LearningRateScheduler: no schedule function");
        return NULL;
    }
    scheduler_state *s = calloc(1, sizeof *s + params_size);
    if (!s) {
        cnn_fail(CNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cb.name = "LearningRateScheduler";
    s->cb.on_epoch_begin = scheduler_epoch_begin;
    s->fn = schedule;
    s->size = params_size;
    if (params_size) memcpy(s->params, params, params_size);
    return &s->cb;
}

double cnn_schedule_step(int epoch, double lr, const void *params)
{
    const cnn_step_schedule *p = params;
    return epoch < p->thresh ? lr : (double)(float)p->lr_after;
}

double cnn_schedule_exp(int epoch, double lr, const void *params)
{
    int thresh = *(const int *)params;
    return epoch < thresh ? lr : (double)((float)lr * expf(-0.1f));
}

static int schedule_params(cnn_opts *o, int kind, const cnn_callback_env *env, void *params, size_t *size)
{
    int rc = CNN_OK;
    if (kind == 0) {
        cnn_step_schedule *p = params;
        rc = cnn_opts_int(o, "thresh", 7, 0, 1000000, &p->thresh);
        if (!rc) rc = cnn_opts_double(o, "lr", 0.001, 1e-12, 1e3, &p->lr_after);
        *size = sizeof *p;
    } else if (kind == 1) {
        int *thresh = params;
        rc = cnn_opts_int(o, "thresh", 0, 0, 1000000, thresh);
        *size = sizeof *thresh;
    } else if (kind == 2) {
        cnn_cosine_schedule *p = params;
        rc = cnn_opts_double(o, "initial_lr", 0.001, 1e-12, 1e3, &p->initial_lr);
        if (!rc)
            rc = cnn_opts_int(o, "decay_steps", env->epochs > 0 ? env->epochs : 1, 1, 1000000,
                              &p->decay_steps);
        if (!rc) rc = cnn_opts_double(o, "alpha", 0, 0, 1, &p->alpha);
        if (!rc) rc = cnn_opts_int(o, "warmup_steps", 0, 0, 1000000, &p->warmup_steps);
        if (!rc) rc = cnn_opts_double(o, "warmup_target", 0, 0, 1e3, &p->warmup_target);
        *size = sizeof *p;
    } else {
        double max_lr;
        int total;
        rc = cnn_opts_double(o, "max_lr", 0.01, 1e-12, 1e3, &max_lr);
        if (!rc) rc = cnn_opts_int(o, "total_epochs", env->epochs > 0 ? env->epochs : 1, 1, 1000000, &total);
        cnn_one_cycle_schedule *p = params;
        if (!rc) *p = cnn_one_cycle_default(max_lr, total);
        if (!rc) rc = cnn_opts_double(o, "pct_start", p->pct_start, 0, 1, &p->pct_start);
        if (!rc) rc = cnn_opts_double(o, "div_factor", p->div_factor, 1e-6, 1e9, &p->div_factor);
        if (!rc)
            rc =
                cnn_opts_double(o, "final_div_factor", p->final_div_factor, 1e-6, 1e12, &p->final_div_factor);
        if (!rc) rc = cnn_opts_bool(o, "three_phase", 0, &p->three_phase);
        *size = sizeof *p;
    }
    return rc;
}

/* From a spec: LearningRateScheduler("step", thresh=7, lr=0.001) | ("exp", thresh=k) | ("cosine", ...) |
 * ("one_cycle", ...); the schedules' lengths default to the fit's epochs. */
static cnn_callback *scheduler_create(const char *options, const cnn_callback_env *env)
{
    static const char *const kinds[] = {"step", "exp", "cosine", "one_cycle"};
    static const cnn_schedule_fn fns[] = {cnn_schedule_step, cnn_schedule_exp, cnn_schedule_cosine,
                                          cnn_schedule_one_cycle};
    union {
        cnn_step_schedule step;
        int thresh;
        cnn_cosine_schedule cosine;
        cnn_one_cycle_schedule one_cycle;
    } params;
    memset(&params, 0, sizeof params);
    cnn_opts o;
    int kind;
    size_t size = 0;
    if (cnn_opts_parse(&o, options, "LearningRateScheduler") ||
        cnn_opts_enum(&o, "schedule", kinds, 4, 0, &kind) || schedule_params(&o, kind, env, &params, &size) ||
        cnn_opts_finish(&o))
        return NULL;
    return cnn_callback_lr_scheduler(fns[kind], &params, size);
}

const cnn_callback_kind cnn_lr_scheduler_kind = {
    .type = "LearningRateScheduler", .positional = {"schedule"}, .create_in = scheduler_create};
