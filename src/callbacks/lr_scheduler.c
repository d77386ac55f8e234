/* LearningRateScheduler and the study's two schedules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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
