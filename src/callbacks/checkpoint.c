/* ModelCheckpoint (Keras 2.15, save_freq "epoch") and the study's CustomModelCheckpoint, which after the
 * parent's work writes the epoch number into a side file whenever the epoch is at least as good as the best.
 * That number rides in the checkpoint file itself (its CKPT record); the side file is a copy of it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "callbacks/callbacks.h"
#include "callbacks/monitor.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/strbuf.h"
#include "io/model_file.h"

/* What a checkpoint file records about itself (its CKPT section), so that the weights and their epoch are
 * written in one atomic step: a kill can no longer leave a model file beside an epoch file that names another
 * epoch. The epoch file is only a human-readable copy of `copy_epoch`, written after the model file and never
 * read back. */
typedef struct ckpt_record {
    int32_t saved_epoch; /* epoch of the weights in the file */
    int32_t copy_epoch;  /* last epoch at least as good as the best (the epoch file's number), -1 if none */
    int32_t saves;       /* model files written by this callback, this one included */
    double best;
} ckpt_record;

typedef struct ckpt_state {
    cnn_callback cb;
    int monitor, maximize, save_best_only, save_weights_only;
    ckpt_record r;  /* best is kept for the callback's life, as Keras sets it once in __init__ */
    int last_epoch; /* the last epoch this callback saw (resume: the file may be one epoch ahead of it) */
    int redo_epoch; /* after a resume: the epoch whose save the file already holds (not counted twice) */
    char label[48];
    const char *filepath, *epoch_path; /* point into text */
    char text[];
} ckpt_state;

enum { CKPT_VERSION = 1 };
static const char CKPT_TAG[5] = "CKPT";

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

/* CKPT: u32 version, u32 monitor, i32 saved_epoch, i32 copy_epoch, i32 saves, f64 best (little-endian). */
static void put_record(cnn_strbuf *b, int monitor, const ckpt_record *r)
{
    cnn_put_le(b, CKPT_VERSION, 4);
    cnn_put_le(b, (uint32_t)monitor, 4);
    cnn_put_i32(b, r->saved_epoch);
    cnn_put_i32(b, r->copy_epoch);
    cnn_put_i32(b, r->saves);
    cnn_put_f64(b, r->best);
}

static int parse_record(const cnn_model_extra *x, const char *path, int *monitor, ckpt_record *r)
{
    if (!x->data) return cnn_fail(CNN_ERR_FORMAT, "%s: a model file without a checkpoint record", path);
    cnn_bytes_reader k = {x->data, x->len, 0, path};
    const char *sec = "checkpoint record";
    uint64_t version = 0, mon = 0;
    int rc = cnn_take_le(&k, 4, &version, sec, "the version");
    if (!rc && version != CKPT_VERSION)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: checkpoint record version %llu; this cnnlab reads %d", path,
                      (unsigned long long)version, CKPT_VERSION);
    if (!rc) rc = cnn_take_le(&k, 4, &mon, sec, "the monitor");
    if (!rc) rc = cnn_take_i32(&k, &r->saved_epoch, sec, "the epoch");
    if (!rc) rc = cnn_take_i32(&k, &r->copy_epoch, sec, "the copied epoch");
    if (!rc) rc = cnn_take_i32(&k, &r->saves, sec, "the save count");
    if (!rc) rc = cnn_take_f64(&k, &r->best, sec, "the best value");
    if (!rc &&
        (mon >= MON_COUNT || r->saved_epoch < 0 || r->copy_epoch < -1 || r->saves < 1 || k.pos != k.len))
        rc = cnn_fail(CNN_ERR_FORMAT,
                      "%s: checkpoint record is invalid (monitor %llu, epoch %d, copied epoch %d, %d saves, "
                      "%zu bytes)",
                      path, (unsigned long long)mon, r->saved_epoch, r->copy_epoch, r->saves, k.len);
    *monitor = (int)mon;
    return rc;
}

/* Writes m to the checkpoint file with the record r. */
static int write_checkpoint(const ckpt_state *s, const cnn_model *m, const ckpt_record *r)
{
    cnn_strbuf b = {0};
    put_record(&b, s->monitor, r);
    cnn_model_extra x = {.data = (uint8_t *)b.data, .len = b.len};
    memcpy(x.tag, CKPT_TAG, sizeof x.tag);
    int rc = b.failed ? cnn_fail(CNN_ERR_NOMEM, "out of memory") : make_parent_dirs(s->filepath);
    if (!rc) rc = cnn_model_save_extra(m, s->filepath, 0, &x);
    cnn_strbuf_free(&b);
    return rc;
}

static cnn_model *load_checkpoint(const char *path, int *monitor, ckpt_record *r)
{
    cnn_model_extra x = {0};
    memcpy(x.tag, CKPT_TAG, sizeof x.tag);
    cnn_model *m = cnn_model_load_extra(path, &x);
    if (m && parse_record(&x, path, monitor, r)) cnn_model_free(m), m = NULL;
    free(x.data);
    return m;
}

/* An exact tie with the best moves the epoch file's number without a save: the record in the model file
 * moves with it (the file is rewritten with its own weights). */
static int rewrite_record(const ckpt_state *s, const ckpt_record *r)
{
    int monitor;
    ckpt_record old;
    cnn_model *held = load_checkpoint(s->filepath, &monitor, &old);
    if (!held) return cnn_errcode();
    int rc = old.saved_epoch == r->saved_epoch
                 ? write_checkpoint(s, held, r)
                 : cnn_fail(CNN_ERR_STATE, "%s holds epoch %d; this ModelCheckpoint wrote epoch %d there",
                            s->filepath, old.saved_epoch, r->saved_epoch);
    cnn_model_free(held);
    return rc;
}

/* The human-readable copy: Python's str(epoch), no newline (the study reads the file back with int()). */
static int write_epoch_copy(const ckpt_state *s, int epoch)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%d", epoch);
    int rc = make_parent_dirs(s->epoch_path);
    return rc ? rc : cnn_write_file_atomic(s->epoch_path, text, (size_t)n);
}

static int better(const ckpt_state *s, double current)
{
    return s->maximize ? current > s->r.best : current < s->r.best;
}

static int ckpt_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)stop;
    ckpt_state *s = (ckpt_state *)cb;
    double current;
    int have = cnn_monitor_value(log, s->monitor, &current), epoch = log->epoch;
    ckpt_record r = s->r;
    int save = !s->save_best_only || (have && better(s, current));
    if (save && s->save_best_only) r.best = current;
    /* After the parent updated best, "at least as good" means a new best or an exact tie with it. */
    int copy = s->epoch_path && have && (s->maximize ? current >= r.best : current <= r.best);
    if (save) r.saved_epoch = epoch, r.saves += epoch != s->redo_epoch;
    if (copy) r.copy_epoch = epoch;
    int rc = CNN_OK;
    if (save)
        rc = write_checkpoint(s, m, &r);
    else if (copy && r.saved_epoch >= 0)
        rc = rewrite_record(s, &r);
    if (!rc && copy) rc = write_epoch_copy(s, epoch);
    if (rc) return cnn_fail_context("ModelCheckpoint at epoch %d: ", epoch);
    s->r = r, s->last_epoch = epoch, s->redo_epoch = -1;
    return CNN_OK;
}

static int read_options(void *state, cnn_opts *o)
{
    ckpt_state *s = state;
    int rc = cnn_monitor_options(o, &s->monitor, &s->maximize);
    if (!rc) rc = cnn_opts_bool(o, "save_best_only", 0, &s->save_best_only);
    if (!rc) rc = cnn_opts_bool(o, "save_weights_only", 0, &s->save_weights_only);
    if (!rc) rc = cnn_opts_double(o, "initial_value_threshold", NAN, -HUGE_VAL, HUGE_VAL, &s->r.best);
    if (isnan(s->r.best)) s->r.best = s->maximize ? -INFINITY : INFINITY;
    return rc;
}

/* ---- resume: the backup holds the record as of its epoch; the checkpoint file holds its own, which is the
 * one read back. The file may be one epoch ahead (killed after the checkpoint, before the epoch's backup):
 * that epoch is redone, and its save is then not counted again. */

/* The state block: the record as of the backup, and the last epoch seen. */
static cnn_state_fields ckpt_fields(ckpt_state *s)
{
    return (cnn_state_fields){.d = {&s->r.best},
                              .nd = 1,
                              .i = {&s->r.saved_epoch, &s->r.saves, &s->r.copy_epoch, &s->last_epoch},
                              .ni = 4};
}

static size_t ckpt_state_size(const cnn_callback *cb, const cnn_model *m)
{
    (void)m;
    cnn_state_fields f = ckpt_fields((ckpt_state *)cb);
    return cnn_state_block_size(&f);
}

static void ckpt_state_save(const cnn_callback *cb, const cnn_model *m, void *buf)
{
    (void)m;
    cnn_state_fields f = ckpt_fields((ckpt_state *)cb);
    cnn_state_block_save(&f, buf);
}

/* The checkpoint file's own record, checked against what the backup knew (v): the same save, or one made in
 * the epoch that is about to be redone. */
static int adopt_file_record(ckpt_state *s, const ckpt_record *v)
{
    int monitor;
    ckpt_record r;
    cnn_model *held = load_checkpoint(s->filepath, &monitor, &r);
    if (!held) return cnn_fail_context("ModelCheckpoint: resuming: ");
    cnn_model_free(held);
    int ahead = r.saved_epoch == s->last_epoch + 1;
    if (monitor != s->monitor || (r.saved_epoch != v->saved_epoch && !ahead)) {
        char known[48] = "none";
        if (v->saved_epoch >= 0) snprintf(known, sizeof known, "epoch %d", v->saved_epoch);
        return cnn_fail(CNN_ERR_FORMAT,
                        "ModelCheckpoint: %s holds a %s checkpoint of epoch %d, but the backup recorded %s "
                        "(of %s; the fit resumes after epoch %d): a file of another run?",
                        s->filepath, cnn_monitor_names[monitor], r.saved_epoch, known,
                        cnn_monitor_names[s->monitor], s->last_epoch);
    }
    s->r = r;
    s->redo_epoch = r.saved_epoch != v->saved_epoch ? r.saved_epoch : -1;
    return CNN_OK;
}

static int ckpt_state_load(cnn_callback *cb, cnn_model *m, const void *buf, size_t len)
{
    (void)m;
    ckpt_state *s = (ckpt_state *)cb;
    cnn_state_fields f = ckpt_fields(s);
    if (cnn_state_block_load(&f, buf, len, "ModelCheckpoint")) return cnn_errcode();
    const ckpt_record known = s->r; /* what the backup recorded */
    s->redo_epoch = -1;
    struct stat st;
    if (known.saved_epoch < 0 && stat(s->filepath, &st)) return CNN_OK; /* nothing saved yet */
    int rc = adopt_file_record(s, &known);
    /* The copy may lag the record (killed between the two writes): bring it up to date now. */
    if (!rc && s->epoch_path && s->r.copy_epoch >= 0) rc = write_epoch_copy(s, s->r.copy_epoch);
    return rc;
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
    s->r.saved_epoch = s->r.copy_epoch = -1;
    s->last_epoch = s->redo_epoch = -1;
    snprintf(s->label, sizeof s->label, "ModelCheckpoint(%s)", cnn_monitor_names[s->monitor]);
    s->cb.name = s->label;
    return &s->cb;
}

int cnn_checkpoint_get_info(const cnn_callback *cb, cnn_checkpoint_info *info)
{
    const ckpt_state *s = cnn_monitor_state(cb, ckpt_epoch_end, "a ModelCheckpoint");
    if (!s) return CNN_ERR_INVALID;
    *info = (cnn_checkpoint_info){.best = s->r.best,
                                  .saved_epoch = s->r.saved_epoch,
                                  .saves = s->r.saves,
                                  .epoch_file = s->r.copy_epoch};
    return CNN_OK;
}

int cnn_checkpoint_read(const char *path, cnn_checkpoint_info *info)
{
    int monitor;
    ckpt_record r;
    cnn_model *held = load_checkpoint(path, &monitor, &r);
    if (!held) return cnn_errcode();
    cnn_model_free(held);
    *info = (cnn_checkpoint_info){
        .best = r.best, .saved_epoch = r.saved_epoch, .saves = r.saves, .epoch_file = r.copy_epoch};
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
