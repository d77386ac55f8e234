/* Training history: per-epoch records, saved as CSV and JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "model/history.h"

void cnn_history_free(cnn_history *h)
{
    if (!h) return;
    free(h->epochs);
    memset(h, 0, sizeof *h);
}

static int finish(cnn_strbuf *b, const char *path)
{
    int rc = b->failed ? cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path)
                       : cnn_write_file_atomic(path, b->data, b->len);
    cnn_strbuf_free(b);
    return rc;
}

/* %.9g round-trips a float; NaN (no validation) is written empty in CSV and null in JSON. */
static void csv_num(cnn_strbuf *b, double v, const char *sep)
{
    if (isnan(v))
        cnn_strbuf_printf(b, "%s", sep);
    else
        cnn_strbuf_printf(b, "%.9g%s", v, sep);
}

int cnn_history_save_csv(const cnn_history *h, const char *path)
{
    cnn_strbuf b = {0};
    cnn_strbuf_printf(&b, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,val_seconds\n");
    for (int i = 0; i < h->count; i++) {
        const cnn_epoch_log *e = &h->epochs[i];
        cnn_strbuf_printf(&b, "%d,", e->epoch);
        csv_num(&b, e->loss, ",");
        csv_num(&b, e->accuracy, ",");
        csv_num(&b, e->val_loss, ",");
        csv_num(&b, e->val_accuracy, ",");
        csv_num(&b, e->lr, ",");
        csv_num(&b, e->seconds, ",");
        csv_num(&b, e->val_seconds, "\n");
    }
    return finish(&b, path);
}

static const struct {
    const char *key;
    size_t field;
} history_fields[] = {
    {"loss", offsetof(cnn_epoch_log, loss)},
    {"accuracy", offsetof(cnn_epoch_log, accuracy)},
    {"val_loss", offsetof(cnn_epoch_log, val_loss)},
    {"val_accuracy", offsetof(cnn_epoch_log, val_accuracy)},
    {"lr", offsetof(cnn_epoch_log, lr)},
    {"seconds", offsetof(cnn_epoch_log, seconds)},
    {"val_seconds", offsetof(cnn_epoch_log, val_seconds)},
};
enum { HISTORY_FIELDS = sizeof history_fields / sizeof history_fields[0] };

static double field_value(const cnn_epoch_log *e, int f)
{
    return *(const double *)((const char *)e + history_fields[f].field);
}

/* The history's members, into the object w is writing; exact writes %.17g (run records), else %.9g. */
void cnn_history_write(cnn_json_writer *w, const cnn_history *h, int exact)
{
    cnn_jw_int(w, "epochs", h->count);
    cnn_jw_int(w, "stopped_epoch", h->stopped_epoch);
    cnn_jw_string(w, "stop_reason", h->stop_reason);
    for (int f = 0; f < HISTORY_FIELDS; f++) {
        cnn_jw_array(w, history_fields[f].key);
        for (int i = 0; i < h->count; i++)
            (exact ? cnn_jw_number : cnn_jw_float)(w, NULL, field_value(&h->epochs[i], f));
        cnn_jw_end(w);
    }
}

static int fail_field(const char *origin, const char *key, const char *what)
{
    return cnn_fail(CNN_ERR_FORMAT, "%s: history field '%s' %s", origin, key, what);
}

/* Reads what cnn_history_write wrote (null is NaN). */
int cnn_history_read(const cnn_json *obj, cnn_history *h, const char *origin)
{
    memset(h, 0, sizeof *h);
    const cnn_json *n = cnn_json_get(obj, "epochs"), *stop = cnn_json_get(obj, "stopped_epoch"),
                   *why = cnn_json_get(obj, "stop_reason");
    if (!n || n->type != CNN_JSON_NUMBER || n->number < 0 || n->number > 1e7 || n->number != (int)n->number)
        return fail_field(origin, "epochs", "is missing or not a count");
    if (!stop || stop->type != CNN_JSON_NUMBER || stop->number < -1 ||
        stop->number >= n->number + (n->number == 0))
        return fail_field(origin, "stopped_epoch", "is missing or outside -1..epochs-1");
    if (!why || why->type != CNN_JSON_STRING || strlen(why->string) >= sizeof h->stop_reason)
        return fail_field(origin, "stop_reason", "is missing, not a string or too long");
    int count = (int)n->number;
    h->epochs = calloc((size_t)(count ? count : 1), sizeof *h->epochs);
    if (!h->epochs) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", origin);
    h->count = h->cap = count;
    h->stopped_epoch = (int)stop->number;
    snprintf(h->stop_reason, sizeof h->stop_reason, "%s", why->string);
    for (int f = 0; f < HISTORY_FIELDS; f++) {
        const cnn_json *a = cnn_json_get(obj, history_fields[f].key);
        if (!a || a->type != CNN_JSON_ARRAY || a->count != count)
            return cnn_history_free(h),
                   fail_field(origin, history_fields[f].key, "is missing or has the wrong length");
        for (int i = 0; i < count; i++) {
            const cnn_json *v = &a->items[i];
            if (v->type != CNN_JSON_NUMBER && v->type != CNN_JSON_NULL)
                return cnn_history_free(h), fail_field(origin, history_fields[f].key, "holds a non-number");
            *(double *)((char *)&h->epochs[i] + history_fields[f].field) = v->number;
        }
    }
    for (int i = 0; i < count; i++) h->epochs[i].epoch = i;
    return CNN_OK;
}

int cnn_history_save_json(const cnn_history *h, const char *path)
{
    cnn_strbuf b = {0};
    cnn_json_writer w;
    cnn_jw_init(&w, &b);
    cnn_jw_object(&w, NULL);
    cnn_history_write(&w, h, 0);
    cnn_jw_end(&w);
    return finish(&b, path);
}
