/* Training history: per-epoch records, saved as CSV and JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/strbuf.h"

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

static void json_array(cnn_strbuf *b, const cnn_history *h, const char *key, size_t field, int last)
{
    cnn_strbuf_printf(b, "  \"%s\": [", key);
    for (int i = 0; i < h->count; i++) {
        double v = *(const double *)((const char *)&h->epochs[i] + field);
        if (!isfinite(v)) /* JSON has no NaN or Infinity (a diverged run has an infinite loss) */
            cnn_strbuf_printf(b, "%snull", i ? ", " : "");
        else
            cnn_strbuf_printf(b, "%s%.9g", i ? ", " : "", v);
    }
    cnn_strbuf_printf(b, "]%s\n", last ? "" : ",");
}

/* The stop reason holds callback names, which may contain quotes. */
static void json_string(cnn_strbuf *b, const char *s)
{
    cnn_strbuf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            cnn_strbuf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            cnn_strbuf_printf(b, "\\u%04x", ch);
        else
            cnn_strbuf_printf(b, "%c", ch);
    }
    cnn_strbuf_printf(b, "\"");
}

int cnn_history_save_json(const cnn_history *h, const char *path)
{
    cnn_strbuf b = {0};
    cnn_strbuf_printf(&b, "{\n  \"epochs\": %d,\n  \"stopped_epoch\": %d,\n  \"stop_reason\": ", h->count,
                      h->stopped_epoch);
    json_string(&b, h->stop_reason);
    cnn_strbuf_printf(&b, ",\n");
    json_array(&b, h, "loss", offsetof(cnn_epoch_log, loss), 0);
    json_array(&b, h, "accuracy", offsetof(cnn_epoch_log, accuracy), 0);
    json_array(&b, h, "val_loss", offsetof(cnn_epoch_log, val_loss), 0);
    json_array(&b, h, "val_accuracy", offsetof(cnn_epoch_log, val_accuracy), 0);
    json_array(&b, h, "lr", offsetof(cnn_epoch_log, lr), 0);
    json_array(&b, h, "seconds", offsetof(cnn_epoch_log, seconds), 0);
    json_array(&b, h, "val_seconds", offsetof(cnn_epoch_log, val_seconds), 1);
    cnn_strbuf_printf(&b, "}\n");
    return finish(&b, path);
}
