/* ModelCheckpoint (Keras 2.15, save_freq "epoch") and the study's CustomModelCheckpoint, which after the
 * parent's work writes the epoch number into a side file whenever the epoch is at least as good as the best.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "callbacks/callbacks.h"
#include "callbacks/monitor.h"
#include "core/error.h"
#include "core/strbuf.h"

typedef struct ckpt_state {
    cnn_callback cb;
    int monitor, maximize, save_best_only, save_weights_only;
    double best; /* kept for the callback's life, as Keras sets it once in __init__ */
    int saved_epoch, saves, epoch_file;
    char label[48];
    const char *filepath, *epoch_path; /* point into text */
    char text[];
} ckpt_state;

/* Keras creates the checkpoint's folder (tf.io.gfile.makedirs) before saving. */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return cnn_fail(CNN_ERR_IO, "%s: path too long", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return CNN_OK;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) && errno != EEXIST)
            return cnn_fail(CNN_ERR_IO, "%s: cannot create folder %s: %s", path, dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0777) && errno != EEXIST)
        return cnn_fail(CNN_ERR_IO, "%s: cannot create folder %s: %s", path, dir, strerror(errno));
    return CNN_OK;
}

static int save_model(ckpt_state *s, cnn_model *m, int epoch)
{
    int rc = make_parent_dirs(s->filepath);
    if (!rc) rc = cnn_model_save(m, s->filepath);
    if (rc) return cnn_fail_context("ModelCheckpoint at epoch %d: ", epoch);
    s->saved_epoch = epoch;
    s->saves++;
    return CNN_OK;
}

/* Python's str(epoch), no newline: the study reads the file back with int(). */
static int write_epoch_file(ckpt_state *s, int epoch)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%d", epoch);
    int rc = make_parent_dirs(s->epoch_path);
    if (!rc) rc = cnn_write_file_atomic(s->epoch_path, text, (size_t)n);
    if (rc) return cnn_fail_context("ModelCheckpoint epoch file at epoch %d: ", epoch);
    s->epoch_file = epoch;
    return CNN_OK;
}

static int ckpt_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)stop;
    ckpt_state *s = (ckpt_state *)cb;
    double current;
    int have = cnn_monitor_value(log, s->monitor, &current), rc = CNN_OK;
    if (!s->save_best_only) {
        rc = save_model(s, m, log->epoch);
    } else if (have && (s->maximize ? current > s->best : current < s->best)) {
        s->best = current;
        rc = save_model(s, m, log->epoch);
    }
    if (rc || !s->epoch_path || !have) return rc;
    /* After the parent updated best, "at least as good" means a new best or an exact tie with it. */
    if (s->maximize ? current >= s->best : current <= s->best) rc = write_epoch_file(s, log->epoch);
    return rc;
}

static int read_options(void *state, cnn_opts *o)
{
    ckpt_state *s = state;
    int rc = cnn_monitor_options(o, &s->monitor, &s->maximize);
    if (!rc) rc = cnn_opts_bool(o, "save_best_only", 0, &s->save_best_only);
    if (!rc) rc = cnn_opts_bool(o, "save_weights_only", 0, &s->save_weights_only);
    if (!rc) rc = cnn_opts_double(o, "initial_value_threshold", NAN, -HUGE_VAL, HUGE_VAL, &s->best);
    if (isnan(s->best)) s->best = s->maximize ? -INFINITY : INFINITY;
    return rc;
}

/* ---- resume */

typedef struct ckpt_saved {
    double best;
    int32_t saved_epoch, saves, epoch_file;
} ckpt_saved;

static size_t ckpt_state_size(const cnn_callback *cb, const cnn_model *m)
{
    (void)cb, (void)m;
    return sizeof(ckpt_saved);
}

static void ckpt_state_save(const cnn_callback *cb, const cnn_model *m, void *buf)
{
    (void)m;
    const ckpt_state *s = (const ckpt_state *)cb;
    ckpt_saved v = {s->best, s->saved_epoch, s->saves, s->epoch_file};
    memcpy(buf, &v, sizeof v);
}

static int ckpt_state_load(cnn_callback *cb, cnn_model *m, const void *buf, size_t len)
{
    (void)m;
    ckpt_state *s = (ckpt_state *)cb;
    ckpt_saved v;
    if (len != sizeof v)
        return cnn_fail(CNN_ERR_FORMAT, "ModelCheckpoint: saved state of %zu bytes; expected %zu", len,
                        sizeof v);
    memcpy(&v, buf, sizeof v);
    s->best = v.best, s->saved_epoch = v.saved_epoch, s->saves = v.saves, s->epoch_file = v.epoch_file;
    return CNN_OK;
}

cnn_callback *cnn_callback_model_checkpoint(const char *filepath, const char *epoch_path, const char *options)
{
    if (!filepath || !*filepath) {
        cnn_fail(CNN_ERR_INVALID, "ModelCheckpoint: no file path");
        return NULL;
    }
    size_t a = strlen(filepath) + 1, b = epoch_path ? strlen(epoch_path) + 1 : 0;
    static const cnn_callback hooks = {.on_epoch_end = ckpt_epoch_end,
                                       .state_size = ckpt_state_size,
                                       .state_save = ckpt_state_save,
                                       .state_load = ckpt_state_load};
    ckpt_state *s = cnn_monitor_create("ModelCheckpoint", sizeof *s + a + b, &hooks, options, read_options);
    if (!s) return NULL;
    memcpy(s->text, filepath, a);
    s->filepath = s->text;
    if (epoch_path) {
        memcpy(s->text + a, epoch_path, b);
        s->epoch_path = s->text + a;
    }
    s->saved_epoch = s->epoch_file = -1;
    snprintf(s->label, sizeof s->label, "ModelCheckpoint(%s)", cnn_monitor_names[s->monitor]);
    s->cb.name = s->label;
    return &s->cb;
}

int cnn_checkpoint_get_info(const cnn_callback *cb, cnn_checkpoint_info *info)
{
    const ckpt_state *s = cnn_monitor_state(cb, ckpt_epoch_end, "a ModelCheckpoint");
    if (!s) return CNN_ERR_INVALID;
    *info = (cnn_checkpoint_info){
        .best = s->best, .saved_epoch = s->saved_epoch, .saves = s->saves, .epoch_file = s->epoch_file};
    return CNN_OK;
}

/* Options text without the keys the constructor consumed itself. */
static void remaining_options(const cnn_opts *o, const char *const *drop, int ndrop, cnn_strbuf *b)
{
    for (int i = 0; i < o->n; i++) {
        int skip = 0;
        for (int j = 0; j < ndrop; j++) skip |= !strcmp(o->items[i].key, drop[j]);
        if (!skip) cnn_strbuf_printf(b, "%s%s=%s", b->len ? ", " : "", o->items[i].key, o->items[i].val);
    }
}

/* From a spec: the study names its files <model>_best_model_<acc|loss>.{keras,epoch}; so do we, in the run's
 * folder. */
static cnn_callback *checkpoint_create(const char *options, const cnn_callback_env *env)
{
    cnn_opts o;
    char monitor[32], file[256], path[4096], epoch_path[4096];
    if (cnn_opts_parse(&o, options, "ModelCheckpoint") ||
        cnn_opts_str(&o, "monitor", "val_loss", monitor, sizeof monitor))
        return NULL;
    char def[160];
    snprintf(def, sizeof def, "%s_best_model_%s", env->model, strstr(monitor, "acc") ? "acc" : "loss");
    if (cnn_opts_str(&o, "filepath", def, file, sizeof file)) return NULL;
    snprintf(path, sizeof path, "%s/%s.cnn", env->out_dir ? env->out_dir : ".", file);
    snprintf(epoch_path, sizeof epoch_path, "%s/%s.epoch", env->out_dir ? env->out_dir : ".", file);
    static const char *const drop[] = {"filepath"};
    cnn_strbuf rest = {0};
    remaining_options(&o, drop, 1, &rest);
    cnn_callback *cb =
        rest.failed ? NULL : cnn_callback_model_checkpoint(path, epoch_path, rest.data ? rest.data : "");
    if (rest.failed) cnn_fail(CNN_ERR_NOMEM, "ModelCheckpoint: out of memory");
    cnn_strbuf_free(&rest);
    return cb;
}

const cnn_callback_kind cnn_checkpoint_kind = {.type = "ModelCheckpoint", .create_in = checkpoint_create};
