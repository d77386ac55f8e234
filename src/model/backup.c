/* The fit backup (Keras's BackupAndRestore): everything a fit needs to continue exactly where it stopped. */
#include "model/backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/bytes.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "io/model_file.h"
#include "model/model.h"

/* FITS, little-endian, field by field (no struct is stored raw: a backup means the same whatever the
 * compiler's padding and the host's byte order):
 *   u32 version
 *   progress: i32 epoch, i32 batch, f64 loss_sum, f64 seconds, i64 correct, i32 seen, i32 stop
 *   history:  i32 count, i32 stopped_epoch, char stop_reason[128], then per epoch i32 epoch and f64 loss,
 *             accuracy, val_loss, val_accuracy, lr, seconds, val_seconds
 *   callbacks: i32 count, then per callback char name[64], u64 length, its state_save bytes */
enum { FITS_VERSION = 2, EPOCH_BYTES = 4 + 7 * 8, NAME_BYTES = 64 };
static const char *const SECTION = "fit state";

static void put_progress(cnn_strbuf *b, const cnn_fit_progress *p)
{
    cnn_put_i32(b, p->epoch);
    cnn_put_i32(b, p->batch);
    cnn_put_f64(b, p->loss_sum);
    cnn_put_f64(b, p->seconds);
    cnn_put_le(b, (uint64_t)p->correct, 8);
    cnn_put_i32(b, p->seen);
    cnn_put_i32(b, p->stop);
}

static void put_history(cnn_strbuf *b, const cnn_history *h)
{
    cnn_put_i32(b, h->count);
    cnn_put_i32(b, h->stopped_epoch);
    cnn_strbuf_append(b, h->stop_reason, sizeof h->stop_reason);
    for (int i = 0; i < h->count; i++) {
        const cnn_epoch_log *e = &h->epochs[i];
        const double v[] = {e->loss, e->accuracy, e->val_loss,   e->val_accuracy,
                            e->lr,   e->seconds,  e->val_seconds};
        cnn_put_i32(b, e->epoch);
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) cnn_put_f64(b, v[k]);
    }
}

/* Each callback's state, preceded by its name and size, so a restore can check it belongs to the same list.
 */
static int put_callbacks(cnn_strbuf *b, const cnn_model *m, const cnn_fit_config *c)
{
    cnn_put_i32(b, c->num_callbacks);
    for (int i = 0; i < c->num_callbacks; i++) {
        const cnn_callback *cb = c->callbacks[i];
        char name[NAME_BYTES] = {0};
        snprintf(name, sizeof name, "%s", cb->name ? cb->name : "");
        uint64_t len = cb->state_size ? cb->state_size(cb, m) : 0;
        cnn_strbuf_append(b, name, sizeof name);
        cnn_put_le(b, len, 8);
        if (!len) continue;
        char *buf = malloc(len);
        if (!buf) return cnn_fail(CNN_ERR_NOMEM, "backup: out of memory");
        cb->state_save(cb, m, buf);
        cnn_strbuf_append(b, buf, len);
        free(buf);
    }
    return CNN_OK;
}

int cnn_backup_write(const cnn_model *m, const cnn_fit_config *c, const cnn_history *h,
                     const cnn_fit_progress *p)
{
    cnn_strbuf b = {0};
    cnn_put_le(&b, FITS_VERSION, 4);
    put_progress(&b, p);
    put_history(&b, h);
    int rc = put_callbacks(&b, m, c);
    if (!rc && b.failed) rc = cnn_fail(CNN_ERR_NOMEM, "backup: out of memory");
    cnn_model_extra extra = {"FITS", (uint8_t *)b.data, b.len};
    if (!rc) rc = cnn_model_save_extra(m, c->backup_path, CNN_SAVE_OPTIMIZER, &extra);
    cnn_strbuf_free(&b);
    return rc ? cnn_fail_context("fit backup: ") : CNN_OK;
}

/* ---------------------------------------------------------------- restore */

/* The backup's weights and optimizer state into m, whose architecture must be the same. */
static int adopt(cnn_model *m, cnn_model *saved, const char *path)
{
    if (saved->nparams != m->nparams || saved->nlayers != m->nlayers || !saved->x.compiled ||
        saved->x.opt.cfg.kind != m->x.opt.cfg.kind)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the backup is of another model or optimizer than model '%s'",
                        path, m->name);
    for (int i = 0; i < m->nlayers; i++)
        if (strcmp(saved->layers[i].name, m->layers[i].name) ||
            saved->layers[i].nparams != m->layers[i].nparams)
            return cnn_fail(CNN_ERR_FORMAT, "%s: the backup's layer %d is '%s'; model '%s' has '%s'", path,
                            i + 1, saved->layers[i].name, m->name, m->layers[i].name);
    size_t bytes = sizeof(float) * m->nparams;
    memcpy(m->params, saved->params, bytes);
    cnn_optimizer *o = &m->x.opt;
    if (o->m) memcpy(o->m, saved->x.opt.m, bytes);
    if (o->v) memcpy(o->v, saved->x.opt.v, bytes);
    o->t = saved->x.opt.t;
    o->lr = saved->x.opt.lr;
    m->x.rng_step = saved->x.rng_step;
    return CNN_OK;
}

static int read_epoch(cnn_bytes_reader *k, cnn_epoch_log *e)
{
    int32_t epoch = 0;
    double v[7] = {0};
    int rc = cnn_take_i32(k, &epoch, SECTION, "a history row");
    for (int i = 0; i < 7 && !rc; i++) rc = cnn_take_f64(k, &v[i], SECTION, "a history row");
    *e = (cnn_epoch_log){.epoch = epoch,
                         .loss = v[0],
                         .accuracy = v[1],
                         .val_loss = v[2],
                         .val_accuracy = v[3],
                         .lr = v[4],
                         .seconds = v[5],
                         .val_seconds = v[6]};
    return rc;
}

static int read_history(cnn_bytes_reader *k, cnn_history *h)
{
    int32_t count = 0, stopped = 0;
    int rc = cnn_take_i32(k, &count, SECTION, "the history");
    if (!rc) rc = cnn_take_i32(k, &stopped, SECTION, "the history");
    if (!rc) rc = cnn_take_bytes(k, h->stop_reason, sizeof h->stop_reason, SECTION, "the stop reason");
    if (rc) return rc;
    if (count < 0 || (size_t)count > (k->len - k->pos) / EPOCH_BYTES ||
        h->stop_reason[sizeof h->stop_reason - 1])
        return cnn_fail(CNN_ERR_FORMAT, "%s: fit state: a history of %d epochs does not fit", k->path, count);
    h->epochs = malloc(sizeof *h->epochs * (size_t)(count ? count : 1));
    if (!h->epochs) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    h->count = h->cap = count;
    h->stopped_epoch = stopped;
    for (int i = 0; i < count && !rc; i++) rc = read_epoch(k, &h->epochs[i]);
    return rc;
}

/* Names may carry results ("EarlyStopping(val_loss), stopped at epoch 7 ..."): compare what precedes them. */
static int same_kind(const char *saved, const char *name)
{
    name = name ? name : "";
    size_t a = strcspn(saved, "("), b = strcspn(name, "(");
    return a == b && !strncmp(saved, name, a);
}

/* The backup's callbacks, in order, into this fit's; with backup_restore_only (a data-parallel rank reading
 * the writer's backup) a saved callback that is not this fit's next one is skipped, since only the writer
 * runs it. Every callback of this fit must be matched. */
static int read_callbacks(cnn_bytes_reader *k, cnn_model *m, const cnn_fit_config *c)
{
    int32_t n = 0;
    int rc = cnn_take_i32(k, &n, SECTION, "the callbacks"), j = 0;
    if (!rc && (c->backup_restore_only ? n < c->num_callbacks : n != c->num_callbacks))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the backup holds %d callbacks; this fit has %d", k->path, n,
                        c->num_callbacks);
    for (int i = 0; !rc && i < n; i++) {
        cnn_callback *cb = j < c->num_callbacks ? c->callbacks[j] : NULL;
        char name[NAME_BYTES];
        uint64_t len = 0;
        rc = cnn_take_bytes(k, name, sizeof name, SECTION, "a callback name");
        if (!rc) rc = cnn_take_le(k, 8, &len, SECTION, "a callback state size");
        if (rc) break;
        name[sizeof name - 1] = '\0';
        const int fits = cb && same_kind(name, cb->name) && (!len || cb->state_load);
        if (len > k->len - k->pos || (!fits && !c->backup_restore_only))
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: callback %d of the backup ('%.63s') does not fit this fit's '%s'", k->path,
                            i + 1, name, cb && cb->name ? cb->name : "");
        /* The callback's message names what it expected; the file is named here. */
        if (fits && len && (rc = cb->state_load(cb, m, k->p + k->pos, (size_t)len)))
            return cnn_fail_context("%s: callback %d ('%s'): ", k->path, i + 1, cb->name ? cb->name : "");
        j += fits;
        k->pos += (size_t)len;
    }
    if (!rc && j < c->num_callbacks)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: this fit's callback '%s' is not in the backup", k->path,
                      c->callbacks[j]->name ? c->callbacks[j]->name : "");
    return rc;
}

static int read_progress(cnn_bytes_reader *k, cnn_fit_progress *p)
{
    int32_t v[4] = {0};
    uint64_t correct = 0;
    int rc = cnn_take_i32(k, &v[0], SECTION, "the progress");
    if (!rc) rc = cnn_take_i32(k, &v[1], SECTION, "the progress");
    if (!rc) rc = cnn_take_f64(k, &p->loss_sum, SECTION, "the progress");
    if (!rc) rc = cnn_take_f64(k, &p->seconds, SECTION, "the progress");
    if (!rc) rc = cnn_take_le(k, 8, &correct, SECTION, "the progress");
    if (!rc) rc = cnn_take_i32(k, &v[2], SECTION, "the progress");
    if (!rc) rc = cnn_take_i32(k, &v[3], SECTION, "the progress");
    p->epoch = v[0], p->batch = v[1], p->correct = (long)correct, p->seen = v[2], p->stop = v[3];
    if (!rc && (p->epoch < 0 || p->batch < 0 || p->seen < 0 || p->correct < 0))
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: fit state: epoch %d, batch %d is not a position", k->path,
                      p->epoch, p->batch);
    return rc;
}

static int read_fit_state(cnn_bytes_reader *k, cnn_model *m, const cnn_fit_config *c, cnn_history *h,
                          cnn_fit_progress *p)
{
    uint64_t version = 0;
    int rc = cnn_take_le(k, 4, &version, SECTION, "the version");
    if (!rc && version != FITS_VERSION)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: fit state version %llu; this cnnlab reads %d", k->path,
                      (unsigned long long)version, FITS_VERSION);
    if (!rc) rc = read_progress(k, p);
    if (!rc) rc = read_history(k, h);
    if (!rc) rc = read_callbacks(k, m, c);
    if (!rc && k->pos != k->len)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: fit state: %zu stray bytes", k->path, k->len - k->pos);
    return rc;
}

int cnn_backup_restore(cnn_model *m, const cnn_fit_config *c, cnn_history *h, cnn_fit_progress *p)
{
    struct stat st;
    if (stat(c->backup_path, &st) && errno == ENOENT) return 0;
    cnn_model_extra extra = {.tag = "FITS"};
    cnn_model *saved = cnn_model_load_extra(c->backup_path, &extra);
    int rc = saved ? CNN_OK : cnn_errcode();
    if (!rc && !extra.data)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: a model file without fit state, not a backup", c->backup_path);
    if (!rc) rc = adopt(m, saved, c->backup_path);
    cnn_bytes_reader k = {extra.data, extra.len, 0, c->backup_path};
    if (!rc) rc = read_fit_state(&k, m, c, h, p);
    free(extra.data);
    cnn_model_free(saved);
    return rc ? cnn_fail_context("resuming from the backup: ") : 1;
}
