/* scikit-learn's classification_report text, and the study's target names. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "metrics/metrics.h"

/* Python pads by characters, not bytes: count UTF-8 lead bytes. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void append_spaces(cnn_strbuf *b, size_t count)
{
    static const char spaces[] = "                                ";
    while (count > 0) {
        size_t m = count < sizeof spaces - 1 ? count : sizeof spaces - 1;
        cnn_strbuf_append(b, spaces, m);
        count -= m;
    }
}

/* Python's "{:>{width}s} " (right-aligned name, then one space). */
static void append_heading(cnn_strbuf *b, const char *name, size_t width)
{
    size_t len = utf8_chars(name);
    append_spaces(b, len < width ? width - len : 0);
    cnn_strbuf_append(b, name, strlen(name));
    cnn_strbuf_append(b, " ", 1);
}

/* Python's "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n". */
static void append_row(cnn_strbuf *b, const char *name, size_t width, const cnn_prf *r, int digits)
{
    append_heading(b, name, width);
    cnn_strbuf_printf(b, " %9.*f %9.*f %9.*f %9" PRId64 "\n", digits, r->precision, digits, r->recall, digits,
                      r->f1, r->support);
}

static int check_names(const char *fn, const char *const *names, int k)
{
    if (!names) return 0;
    for (int c = 0; c < k; c++)
        if (!names[c]) return cnn_fail(CNN_ERR_INVALID, "%s: target_names[%d] is NULL", fn, c);
    return 0;
}

static void write_report(cnn_strbuf *b, const cnn_prf_table *t, int k, const char *const *names, int digits)
{
    const cnn_prf *per = t->per_class, *avg = t->avg;
    const unsigned char *present = t->present;
    char label[16];
    size_t width = strlen("weighted avg");
    if ((size_t)digits > width) width = (size_t)digits;
    for (int c = 0; c < k; c++) {
        if (!present[c]) continue;
        snprintf(label, sizeof label, "%d", c);
        size_t len = utf8_chars(names ? names[c] : label);
        if (len > width) width = len;
    }
    append_heading(b, "", width);
    cnn_strbuf_printf(b, " %9s %9s %9s %9s\n\n", "precision", "recall", "f1-score", "support");
    for (int c = 0; c < k; c++) {
        if (!present[c]) continue;
        snprintf(label, sizeof label, "%d", c);
        append_row(b, names ? names[c] : label, width, &per[c], digits);
    }
    cnn_strbuf_append(b, "\n", 1);
    append_heading(b, "accuracy", width);
    cnn_strbuf_printf(b, " %9s %9s %9.*f %9" PRId64 "\n", "", "", digits, avg[0].f1, avg[0].support);
    append_row(b, "macro avg", width, &avg[1], digits);
    append_row(b, "weighted avg", width, &avg[2], digits);
}

/* Builds the report into b (freed by the caller, also on error). */
static int build_report(const char *fn, const int32_t *y_true, const int32_t *y_pred, int n, int k,
                        const char *const *names, int digits, cnn_strbuf *b)
{
    if (digits < 0 || digits > 17)
        return cnn_fail(CNN_ERR_INVALID, "%s: digits = %d; expected 0..17 (sklearn's default is 2)", fn,
                        digits);
    int rc = cnn_metrics_check_size(fn, n, k, 1);
    if (!rc) rc = check_names(fn, names, k);
    if (rc) return rc;
    cnn_prf_table t;
    rc = cnn_metrics_prf(fn, y_true, y_pred, n, k, &t);
    if (!rc) write_report(b, &t, k, names, digits);
    if (!rc && b->failed) rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for the report text", fn);
    cnn_prf_table_free(&t);
    return rc;
}

int cnn_classification_report(const int32_t *y_true, const int32_t *y_pred, int n, int k,
                              const char *const *target_names, int digits, char *buf, size_t size,
                              size_t *length)
{
    const char *fn = "classification report";
    if (!buf && size) return cnn_fail(CNN_ERR_INVALID, "%s: buf is NULL but size is %zu", fn, size);
    cnn_strbuf b = {0};
    int rc = build_report(fn, y_true, y_pred, n, k, target_names, digits, &b);
    if (!rc) {
        if (length) *length = b.len;
        if (buf && b.len >= size) {
            buf[0] = '\0';
            rc = cnn_fail(CNN_ERR_INVALID, "%s: the report needs %zu bytes; buf holds %zu", fn, b.len + 1,
                          size);
        } else if (buf)
            memcpy(buf, b.data, b.len + 1);
    }
    cnn_strbuf_free(&b);
    return rc;
}

int cnn_classification_report_print(const int32_t *y_true, const int32_t *y_pred, int n, int k,
                                    const char *const *target_names, int digits, FILE *out)
{
    const char *fn = "classification report";
    if (!out) return cnn_fail(CNN_ERR_INVALID, "%s: out is NULL", fn);
    cnn_strbuf b = {0};
    int rc = build_report(fn, y_true, y_pred, n, k, target_names, digits, &b);
    if (!rc && (fwrite(b.data, 1, b.len, out) != b.len || fflush(out) != 0))
        rc = cnn_fail(CNN_ERR_IO, "%s: could not write the report (%zu bytes)", fn, b.len);
    cnn_strbuf_free(&b);
    return rc;
}

int cnn_target_name(int label, const char *class_name, char *buf, size_t size)
{
    const char *fn = "class names";
    if (!class_name) return cnn_fail(CNN_ERR_INVALID, "%s: class_name is NULL", fn);
    if (!buf || !size) return cnn_fail(CNN_ERR_INVALID, "%s: buf is NULL or empty", fn);
    size_t chars = utf8_chars(class_name), pad = chars < 11 ? 11 - chars : 0;
    int head = snprintf(buf, size, "%d - %s", label, class_name);
    size_t need = (size_t)head + pad;
    if (need >= size)
        return cnn_fail(CNN_ERR_INVALID, "%s: \"%d - %s\" needs %zu bytes; buf holds %zu", fn, label,
                        class_name, need + 1, size);
    memset(buf + head, ' ', pad);
    buf[need] = '\0';
    return 0;
}
