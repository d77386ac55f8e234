/* The callbacks: section of a spec, turned into callback objects in file order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/opts.h"
#include "core/strbuf.h"
#include "spec/spec.h"

/* Options text without the keys the spec layer consumed itself. */
static void remaining_options(const cnn_opts *o, const char *const *drop, int ndrop, cnn_strbuf *b)
{
    for (int i = 0; i < o->n; i++) {
        int skip = 0;
        for (int j = 0; j < ndrop; j++) skip |= !strcmp(o->items[i].key, drop[j]);
        if (!skip) cnn_strbuf_printf(b, "%s%s=%s", b->len ? ", " : "", o->items[i].key, o->items[i].val);
    }
}

/* ModelCheckpoint: the study names its files <model>_best_model_<acc|loss>.{keras,epoch}; so do we, in
 * out_dir. */
static cnn_callback *make_checkpoint(const cnn_spec *s, const spec_call *c, const char *out_dir)
{
    cnn_opts o;
    char monitor[32], file[256], path[4096], epoch_path[4096];
    if (cnn_opts_parse(&o, c->args, "ModelCheckpoint") ||
        cnn_opts_str(&o, "monitor", "val_loss", monitor, sizeof monitor))
        return NULL;
    char def[160];
    snprintf(def, sizeof def, "%s_best_model_%s", s->name, strstr(monitor, "acc") ? "acc" : "loss");
    if (cnn_opts_str(&o, "filepath", def, file, sizeof file)) return NULL;
    snprintf(path, sizeof path, "%s/%s.cnn", out_dir ? out_dir : ".", file);
    snprintf(epoch_path, sizeof epoch_path, "%s/%s.epoch", out_dir ? out_dir : ".", file);
    static const char *const drop[] = {"filepath"};
    cnn_strbuf rest = {0};
    remaining_options(&o, drop, 1, &rest);
    cnn_callback *cb =
        rest.failed ? NULL : cnn_callback_model_checkpoint(path, epoch_path, rest.data ? rest.data : "");
    cnn_strbuf_free(&rest);
    return cb;
}

static int schedule_params(cnn_opts *o, int kind, const cnn_spec *s, void *params, size_t *size)
{
    cnn_spec_fit fit;
    cnn_spec_fit_settings(s, &fit);
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
            rc = cnn_opts_int(o, "decay_steps", fit.epochs > 0 ? fit.epochs : 1, 1, 1000000, &p->decay_steps);
        if (!rc) rc = cnn_opts_double(o, "alpha", 0, 0, 1, &p->alpha);
        if (!rc) rc = cnn_opts_int(o, "warmup_steps", 0, 0, 1000000, &p->warmup_steps);
        if (!rc) rc = cnn_opts_double(o, "warmup_target", 0, 0, 1e3, &p->warmup_target);
        *size = sizeof *p;
    } else {
        double max_lr;
        int total;
        rc = cnn_opts_double(o, "max_lr", 0.01, 1e-12, 1e3, &max_lr);
        if (!rc) rc = cnn_opts_int(o, "total_epochs", fit.epochs > 0 ? fit.epochs : 1, 1, 1000000, &total);
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

/* LearningRateScheduler("step", thresh=7, lr=0.001) | ("exp", thresh=k) | ("cosine", ...) | ("one_cycle",
 * ...) */
static cnn_callback *make_scheduler(const cnn_spec *s, const spec_call *c)
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
    if (cnn_opts_parse(&o, c->args, "LearningRateScheduler") ||
        cnn_opts_enum(&o, "schedule", kinds, 4, 0, &kind) || schedule_params(&o, kind, s, &params, &size) ||
        cnn_opts_finish(&o))
        return NULL;
    return cnn_callback_lr_scheduler(fns[kind], &params, size);
}

static cnn_callback *make_callback(const cnn_spec *s, const spec_call *c, const char *out_dir)
{
    if (!strcmp(c->name, "EarlyStopping")) return cnn_callback_early_stopping(c->args);
    if (!strcmp(c->name, "ReduceLROnPlateau")) return cnn_callback_reduce_lr_on_plateau(c->args);
    if (!strcmp(c->name, "ModelCheckpoint")) return make_checkpoint(s, c, out_dir);
    if (!strcmp(c->name, "LearningRateScheduler")) return make_scheduler(s, c);
    static const char *const known[] = {"EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint",
                                        "LearningRateScheduler"};
    for (int i = 0; i < 4; i++)
        if (cnn_edit_distance(c->name, known[i]) <= 3) {
            cnn_fail(CNN_ERR_FORMAT, "unknown callback '%s' (did you mean '%s'?)", c->name, known[i]);
            return NULL;
        }
    cnn_fail(CNN_ERR_FORMAT,
             "unknown callback '%s' (known: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, "
             "LearningRateScheduler)",
             c->name);
    return NULL;
}

int cnn_spec_callbacks(const cnn_spec *s, const char *out_dir, cnn_callback ***callbacks, int *count)
{
    *callbacks = NULL;
    *count = 0;
    cnn_callback **list = calloc((size_t)s->ncallbacks + 1, sizeof *list);
    if (!list) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->ncallbacks; i++) {
        list[i] = make_callback(s, &s->callbacks[i], out_dir);
        if (!list[i]) {
            int rc = cnn_spec_fail_call(s, &s->callbacks[i]);
            for (int j = 0; j < i; j++) cnn_callback_free(list[j]);
            free(list);
            return rc;
        }
    }
    *callbacks = list;
    *count = s->ncallbacks;
    return CNN_OK;
}
