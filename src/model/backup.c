/* The fit backup (Keras's BackupAndRestore): everything a fit needs to continue exactly where it stopped. */
#include "model/backup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "io/model_file.h"
#include "model/model.h"

enum { FITS_VERSION = 1 };

static void put_bytes(cnn_strbuf *b, const void *p, size_t n)
{
    cnn_strbuf_append(b, p, n);
}

#define PUT(b, v) put_bytes((b), &(v), sizeof(v))

static void put_history(cnn_strbuf *b, const cnn_history *h)
{
    int32_t count = h->count, stopped = h->stopped_epoch;
    PUT(b, count);
    PUT(b, stopped);
    put_bytes(b, h->stop_reason, sizeof h->stop_reason);
    put_bytes(b, h->epochs, sizeof *h->epochs * (size_t)h->count);
}

/* Each callback's state, preceded by its name and size, so a restore can check it belongs to the same list.
 */
static int put_callbacks(cnn_strbuf *b, const cnn_model *m, const cnn_fit_config *c)
{
    int32_t n = c->num_callbacks;
    PUT(b, n);
    for (int i = 0; i < n; i++) {
        const cnn_callback *cb = c->callbacks[i];
        char name[64] = {0};
        snprintf(name, sizeof name, "%s", cb->name ? cb->name : "");
        uint64_t len = cb->state_size ? cb->state_size(cb, m) : 0;
        put_bytes(b, name, sizeof name);
        PUT(b, len);
        if (!len) continue;
        char *buf = malloc(len);
        if (!buf) return cnn_fail(CNN_ERR_NOMEM, "backup: out of memory");
        cb->state_save(cb, m, buf);
        put_bytes(b, buf, len);
        free(buf);
    }
    return CNN_OK;
}

int cnn_backup_write(const cnn_model *m, const cnn_fit_config *c, const cnn_history *h,
                     const cnn_fit_progress *p)
{
    cnn_strbuf b = {0};
    uint32_t version = FITS_VERSION;
    PUT(&b, version);
    PUT(&b, *p);
    put_history(&b, h);
    int rc = put_callbacks(&b, m, c);
    if (!rc && b.failed) rc = cnn_fail(CNN_ERR_NOMEM, "backup: out of memory");
    cnn_model_extra extra = {"FITS", (uint8_t *)b.data, b.len};
    if (!rc) rc = cnn_model_save_extra(m, c->backup_path, CNN_SAVE_OPTIMIZER, &extra);
    cnn_strbuf_free(&b);
    return rc ? cnn_fail_context("fit backup: ") : CNN_OK;
}

/* ---------------------------------------------------------------- restore */

typedef struct cursor {
    const uint8_t *p;
    size_t len, pos;
    const char *path;
} cursor;

static int take(cursor *k, void *out, size_t n, const char *what)
{
    if (n > k->len - k->pos)
        return cnn_fail(CNN_ERR_FORMAT, "%s: fit state truncated while reading %s", k->path, what);
    memcpy(out, k->p + k->pos, n);
    k->pos += n;
    return CNN_OK;
}

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

static int read_history(cursor *k, cnn_history *h)
{
    int32_t count = 0, stopped = 0;
    int rc = take(k, &count, sizeof count, "the history");
    if (!rc) rc = take(k, &stopped, sizeof stopped, "the history");
    if (!rc) rc = take(k, h->stop_reason, sizeof h->stop_reason, "the stop reason");
    if (rc) return rc;
    if (count < 0 || (size_t)count > (k->len - k->pos) / sizeof(cnn_epoch_log) ||
        h->stop_reason[sizeof h->stop_reason - 1])
        return cnn_fail(CNN_ERR_FORMAT, "%s: fit state: a history of %d epochs does not fit", k->path, count);
    h->epochs = malloc(sizeof *h->epochs * (size_t)(count ? count : 1));
    if (!h->epochs) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    h->count = h->cap = count;
    h->stopped_epoch = stopped;
    return take(k, h->epochs, sizeof *h->epochs * (size_t)count, "the history");
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
static int read_callbacks(cursor *k, cnn_model *m, const cnn_fit_config *c)
{
    int32_t n = 0;
    int rc = take(k, &n, sizeof n, "the callbacks"), j = 0;
    if (!rc && (c->backup_restore_only ? n < c->num_callbacks : n != c->num_callbacks))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the backup holds %d callbacks; this fit has %d", k->path, n,
                        c->num_callbacks);
    for (int i = 0; !rc && i < n; i++) {
        cnn_callback *cb = j < c->num_callbacks ? c->callbacks[j] : NULL;
        char name[64];
        uint64_t len = 0;
        rc = take(k, name, sizeof name, "a callback name");
        if (!rc) rc = take(k, &len, sizeof len, "a callback state size");
        if (rc) break;
        const int fits = cb && same_kind(name, cb->name) && (!len || cb->state_load);
        if (len > k->len - k->pos || (!fits && !c->backup_restore_only))
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: callback %d of the backup ('%.63s') does not fit this fit's '%s'", k->path,
                            i + 1, name, cb && cb->name ? cb->name : "");
        if (fits && len) rc = cb->state_load(cb, m, k->p + k->pos, (size_t)len);
        j += fits;
        k->pos += (size_t)len;
    }
    if (!rc && j < c->num_callbacks)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: this fit's callback '%s' is not in the backup", k->path,
                      c->callbacks[j]->name ? c->callbacks[j]->name : "");
    return rc;
}

static int read_progress(cursor *k, cnn_model *m, const cnn_fit_config *c, cnn_history *h,
                         cnn_fit_progress *p)
{
    uint32_t version = 0;
    int rc = take(k, &version, sizeof version, "the version");
    if (!rc && version != FITS_VERSION)
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: fit state version %u; this cnnlab reads %d", k->path, version,
                      FITS_VERSION);
    if (!rc) rc = take(k, p, sizeof *p, "the progress");
    if (!rc && (p->epoch < 0 || p->batch < 0 || p->seen < 0))
        rc = cnn_fail(CNN_ERR_FORMAT, "%s: fit state: epoch %d, batch %d is not a position", k->path,
                      p->epoch, p->batch);
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
    cursor k = {extra.data, extra.len, 0, c->backup_path};
    if (!rc) rc = read_progress(&k, m, c, h, p);
    free(extra.data);
    cnn_model_free(saved);
    return rc ? cnn_fail_context("resuming from the backup: ") : 1;
}
