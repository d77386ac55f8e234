/* The run record: what one training run produced, kept in one structure and saved as one JSON file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "model/history.h"
#include "model/model.h"

void cnn_run_init(cnn_run *r, const char *model)
{
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", model ? model : "");
    r->history.stopped_epoch = -1;
    snprintf(r->precision, sizeof r->precision, "fp32");
    r->best_epoch = r->best_val_loss_epoch = r->best_val_accuracy_epoch = -1;
    r->test_loss = r->test_accuracy = r->roc_auc_ovo = r->roc_auc_ovr = NAN;
}

static void free_test(cnn_run *r)
{
    free(r->confusion);
    free(r->y_true);
    free(r->y_pred);
    free(r->probs);
    r->confusion = NULL, r->y_true = r->y_pred = NULL, r->probs = NULL;
    r->evaluated = 0;
}

void cnn_run_free(cnn_run *r)
{
    if (!r) return;
    cnn_history_free(&r->history);
    free_test(r);
}

/* Spec 3.8: le = the last best-val_loss epoch, ta = the last best-val_accuracy epoch (ties rewrite the
 * study's checkpoint epoch file); best = ta when ta != 0 and ta - le > 10 - 5, else le. */
void cnn_run_summarize(cnn_run *r)
{
    const cnn_history *h = &r->history;
    int le = -1, ta = -1;
    double secs = 0, all = 0;
    for (int i = 0; i < h->count; i++) {
        const cnn_epoch_log *e = &h->epochs[i];
        if (!isnan(e->val_loss) && (le < 0 || e->val_loss <= h->epochs[le].val_loss)) le = i;
        if (!isnan(e->val_accuracy) && (ta < 0 || e->val_accuracy >= h->epochs[ta].val_accuracy)) ta = i;
        secs += e->seconds;
        all += e->seconds + e->val_seconds;
    }
    r->best_val_loss_epoch = le;
    r->best_val_accuracy_epoch = ta;
    r->best_epoch = ta > 0 && le >= 0 && ta - le > 10 - 5 ? ta : le;
    r->seconds_per_epoch = h->count ? secs / h->count : 0;
    r->images_per_second = secs > 0 ? (double)r->train_images * h->count / secs : 0;
    r->total_seconds = all;
}

static int alloc_test(cnn_run *r, int n, int k)
{
    free_test(r);
    r->confusion = calloc((size_t)k * k, sizeof *r->confusion);
    r->y_true = malloc(sizeof *r->y_true * (size_t)n);
    r->y_pred = malloc(sizeof *r->y_pred * (size_t)n);
    r->probs = malloc(sizeof *r->probs * (size_t)n * k);
    if (r->confusion && r->y_true && r->y_pred && r->probs) return CNN_OK;
    free_test(r);
    return cnn_fail(CNN_ERR_NOMEM, "run '%s': out of memory for %d test predictions", r->model, n);
}

/* The figures that follow from the predictions r->probs of n samples labelled y. */
static int finish_test(cnn_run *r, const int32_t *y, int n, int k)
{
    int rc = cnn_argmax_rows(r->probs, n, k, r->y_pred);
    if (!rc) memcpy(r->y_true, y, sizeof *r->y_true * (size_t)n);
    if (!rc) rc = cnn_confusion_matrix(r->y_true, r->y_pred, n, k, r->confusion);
    if (rc) return free_test(r), rc;
    r->n_test = n, r->classes = k, r->evaluated = 1;
    /* A class missing from the test labels leaves ROC-AUC undefined, as in sklearn. */
    r->roc_auc_ovo = r->roc_auc_ovr = NAN;
    if (cnn_roc_auc_ovo(r->y_true, r->probs, n, k, &r->roc_auc_ovo) == CNN_OK)
        cnn_roc_auc_ovr(r->y_true, r->probs, n, k, &r->roc_auc_ovr);
    cnn_clear_error();
    return CNN_OK;
}

int cnn_run_evaluate(cnn_run *r, cnn_model *m, const cnn_dataset *test, int batch_size)
{
    int k = cnn_model_num_outputs(m), n = test ? test->n : 0;
    int rc = cnn_model_evaluate(m, test, batch_size, &r->test_loss, &r->test_accuracy);
    if (!rc) rc = alloc_test(r, n, k);
    if (!rc) rc = cnn_model_predict_dataset(m, test, batch_size, r->probs);
    return rc ? (free_test(r), rc) : finish_test(r, test->y, n, k);
}

int cnn_run_evaluate_source(cnn_run *r, cnn_model *m, cnn_source *test, const int32_t *labels, int n)
{
    if (!test || !labels || n < 1)
        return cnn_fail(CNN_ERR_INVALID,
                        "run '%s': evaluating needs a source and the labels of its %d samples", r->model, n);
    if (test->samples != n)
        return cnn_fail(CNN_ERR_SHAPE, "run '%s': the test source holds %d samples, the labels %d", r->model,
                        test->samples, n);
    int k = cnn_model_num_outputs(m);
    int rc = cnn_model_evaluate_source(m, test, &r->test_loss, &r->test_accuracy);
    if (!rc) rc = alloc_test(r, n, k);
    if (!rc) rc = cnn_model_predict_source(m, test, r->probs);
    return rc ? (free_test(r), rc) : finish_test(r, labels, n, k);
}

/* ---------------------------------------------------------------- JSON */

static void write_test(cnn_json_writer *w, const cnn_run *r)
{
    if (!r->evaluated) {
        cnn_jw_string(w, "test", "not evaluated");
        return;
    }
    size_t n = (size_t)r->n_test, k = (size_t)r->classes;
    cnn_jw_object(w, "test");
    cnn_jw_int(w, "n", r->n_test);
    cnn_jw_int(w, "classes", r->classes);
    cnn_jw_number(w, "loss", r->test_loss);
    cnn_jw_number(w, "accuracy", r->test_accuracy);
    cnn_jw_number(w, "roc_auc_ovo", r->roc_auc_ovo);
    cnn_jw_number(w, "roc_auc_ovr", r->roc_auc_ovr);
    cnn_jw_int64s(w, "confusion", r->confusion, k * k);
    cnn_jw_ints(w, "y_true", r->y_true, n);
    cnn_jw_ints(w, "y_pred", r->y_pred, n);
    cnn_jw_floats(w, "probs", r->probs, n * k);
    cnn_jw_end(w);
}

static int known_precision(const char *p)
{
    return !strcmp(p, "fp32") || !strcmp(p, "bf16");
}

int cnn_run_save(const cnn_run *r, const char *path)
{
    /* A record its own reader would refuse must not be written (cnn_run_init sets fp32). */
    if (!known_precision(r->precision))
        return cnn_fail(CNN_ERR_INVALID, "%s: run record of '%s': precision '%s' is not fp32 or bf16", path,
                        r->model, r->precision);
    cnn_strbuf b = {0};
    cnn_json_writer w;
    cnn_jw_init(&w, &b);
    cnn_jw_object(&w, NULL);
    cnn_jw_string(&w, "format", "cnnlab run record");
    cnn_jw_int(&w, "version", 1);
    cnn_jw_string(&w, "model", r->model);
    cnn_jw_string(&w, "weights", r->weights);
    cnn_jw_int(&w, "seed", (int64_t)r->seed);
    cnn_jw_int(&w, "threads", r->threads);
    cnn_jw_int(&w, "batch_size", r->batch_size);
    cnn_jw_int(&w, "train_images", r->train_images);
    cnn_jw_string(&w, "precision", r->precision);
    cnn_jw_object(&w, "history");
    cnn_history_write(&w, &r->history, 1);
    cnn_jw_end(&w);
    cnn_jw_int(&w, "best_epoch", r->best_epoch);
    cnn_jw_int(&w, "best_val_loss_epoch", r->best_val_loss_epoch);
    cnn_jw_int(&w, "best_val_accuracy_epoch", r->best_val_accuracy_epoch);
    cnn_jw_number(&w, "seconds_per_epoch", r->seconds_per_epoch);
    cnn_jw_number(&w, "images_per_second", r->images_per_second);
    cnn_jw_number(&w, "total_seconds", r->total_seconds);
    write_test(&w, r);
    cnn_jw_end(&w);
    int rc = b.failed ? cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path)
                      : cnn_write_file_atomic(path, b.data, b.len);
    cnn_strbuf_free(&b);
    return rc;
}

const char *cnn_run_stop_reason(const cnn_run *r)
{
    return r->history.stop_reason[0] ? r->history.stop_reason : "reached the last epoch";
}

const char *cnn_run_base_label(const cnn_run *r)
{
    return strstr(r->weights, CNN_RUN_RANDOM_BASE) ? " [random base, NOT ImageNet]" : "";
}

int cnn_run_save_metrics(const cnn_run *r, const char *path)
{
    cnn_strbuf b = {0};
    cnn_json_writer w;
    cnn_jw_init(&w, &b);
    cnn_jw_object(&w, NULL);
    cnn_jw_string(&w, "model", r->model);
    cnn_jw_string(&w, "weights", r->weights);
    cnn_jw_float(&w, "test_accuracy", r->test_accuracy);
    cnn_jw_float(&w, "test_loss", r->test_loss);
    cnn_jw_float(&w, "roc_auc_ovo", r->roc_auc_ovo);
    cnn_jw_float(&w, "roc_auc_ovr", r->roc_auc_ovr);
    cnn_jw_int(&w, "epochs", r->history.count);
    cnn_jw_int(&w, "best_epoch", r->best_epoch);
    cnn_jw_float(&w, "seconds_per_epoch", r->seconds_per_epoch);
    cnn_jw_float(&w, "images_per_second", r->images_per_second);
    cnn_jw_float(&w, "total_seconds", r->total_seconds);
    cnn_jw_string(&w, "stop_reason", cnn_run_stop_reason(r));
    cnn_jw_end(&w);
    int rc = b.failed ? cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path)
                      : cnn_write_file_atomic(path, b.data, b.len);
    cnn_strbuf_free(&b);
    return rc;
}

/* ---- reading: every field checked, the first bad one named */

typedef struct reader {
    const cnn_json *obj;
    const char *path;
    int rc;
} reader;

static const cnn_json *field(reader *rd, const char *key, cnn_json_type type)
{
    if (rd->rc) return NULL;
    const cnn_json *v = cnn_json_get(rd->obj, key);
    if (v && (v->type == type || (type == CNN_JSON_NUMBER && v->type == CNN_JSON_NULL))) return v;
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field '%s' is %s; expected %s", rd->path, key,
                      v ? "of another type" : "missing", names[type]);
    return NULL;
}

static double get_num(reader *rd, const char *key)
{
    const cnn_json *v = field(rd, key, CNN_JSON_NUMBER);
    return v ? v->number : NAN;
}

static int get_int(reader *rd, const char *key, double lo, double hi)
{
    double v = get_num(rd, key);
    if (!rd->rc && !(v >= lo && v <= hi && v == floor(v)))
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field '%s' = %g is not an integer in [%g, %g]", rd->path, key,
                          v, lo, hi);
    return rd->rc ? 0 : (int)v;
}

static void get_str(reader *rd, const char *key, char *out, size_t cap)
{
    const cnn_json *v = field(rd, key, CNN_JSON_STRING);
    if (v && strlen(v->string) >= cap)
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field '%s' is longer than %zu bytes", rd->path, key, cap - 1);
    if (!rd->rc) snprintf(out, cap, "%s", v->string);
}

/* An array of exactly n numbers within [lo, hi], each passed to put(i, value). */
static const cnn_json *get_array(reader *rd, const char *key, size_t n, double lo, double hi)
{
    const cnn_json *a = field(rd, key, CNN_JSON_ARRAY);
    if (a && (size_t)a->count != n)
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field '%s' has %d values; expected %zu", rd->path, key,
                          a->count, n);
    for (size_t i = 0; !rd->rc && i < n; i++)
        if (a->items[i].type != CNN_JSON_NUMBER || !(a->items[i].number >= lo && a->items[i].number <= hi))
            rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field '%s': value %zu is not a number in [%g, %g]",
                              rd->path, key, i, lo, hi);
    return rd->rc ? NULL : a;
}

static void read_test(reader *rd, cnn_run *r)
{
    int n = get_int(rd, "n", 1, 1e8), k = get_int(rd, "classes", 1, 1e4);
    r->test_loss = get_num(rd, "loss");
    r->test_accuracy = get_num(rd, "accuracy");
    r->roc_auc_ovo = get_num(rd, "roc_auc_ovo");
    r->roc_auc_ovr = get_num(rd, "roc_auc_ovr");
    if (rd->rc || (rd->rc = alloc_test(r, n, k))) return;
    const cnn_json *cm = get_array(rd, "confusion", (size_t)k * k, 0, n);
    const cnn_json *yt = get_array(rd, "y_true", (size_t)n, 0, k - 1);
    const cnn_json *yp = get_array(rd, "y_pred", (size_t)n, 0, k - 1);
    const cnn_json *p = get_array(rd, "probs", (size_t)n * k, -INFINITY, INFINITY);
    if (rd->rc) return;
    for (size_t i = 0; i < (size_t)k * k; i++) r->confusion[i] = (int64_t)cm->items[i].number;
    for (int i = 0; i < n; i++)
        r->y_true[i] = (int32_t)yt->items[i].number, r->y_pred[i] = (int32_t)yp->items[i].number;
    for (size_t i = 0; i < (size_t)n * k; i++) r->probs[i] = (float)p->items[i].number;
    r->n_test = n, r->classes = k, r->evaluated = 1;
}

/* "precision": fp32 or bf16; records written before it existed are fp32. */
static void read_precision(reader *rd, cnn_run *r)
{
    if (rd->rc || !cnn_json_get(rd->obj, "precision")) return;
    get_str(rd, "precision", r->precision, sizeof r->precision);
    if (!rd->rc && !known_precision(r->precision))
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field 'precision' is '%s'; expected fp32 or bf16", rd->path,
                          r->precision);
}

static void read_run(reader *rd, cnn_run *r)
{
    char format[32];
    get_str(rd, "format", format, sizeof format);
    if (!rd->rc && strcmp(format, "cnnlab run record"))
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: not a cnnlab run record (format '%s')", rd->path, format);
    if (get_int(rd, "version", 1, 1) != 1) return;
    get_str(rd, "model", r->model, sizeof r->model);
    get_str(rd, "weights", r->weights, sizeof r->weights);
    r->seed = (uint64_t)get_num(rd, "seed");
    r->threads = get_int(rd, "threads", 0, 1 << 20);
    r->batch_size = get_int(rd, "batch_size", 0, 1 << 30);
    r->train_images = get_int(rd, "train_images", 0, 2147483647.0);
    read_precision(rd, r);
    const cnn_json *h = field(rd, "history", CNN_JSON_OBJECT);
    if (h && (rd->rc = cnn_history_read(h, &r->history, rd->path))) return;
    int last = r->history.count - 1;
    r->best_epoch = get_int(rd, "best_epoch", -1, last);
    r->best_val_loss_epoch = get_int(rd, "best_val_loss_epoch", -1, last);
    r->best_val_accuracy_epoch = get_int(rd, "best_val_accuracy_epoch", -1, last);
    r->seconds_per_epoch = get_num(rd, "seconds_per_epoch");
    r->images_per_second = get_num(rd, "images_per_second");
    r->total_seconds = get_num(rd, "total_seconds");
    const cnn_json *t = rd->rc ? NULL : cnn_json_get(rd->obj, "test");
    if (t && t->type == CNN_JSON_OBJECT) {
        reader sub = {t, rd->path, 0};
        read_test(&sub, r);
        rd->rc = sub.rc;
    } else if (!rd->rc && !(t && t->type == CNN_JSON_STRING)) {
        rd->rc = cnn_fail(CNN_ERR_FORMAT, "%s: field 'test' is missing; expected an object", rd->path);
    }
}

int cnn_run_load(cnn_run *r, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    cnn_run_init(r, "");
    int rc = cnn_read_file(path, &text, &len, 1u << 30);
    if (rc) return rc;
    cnn_json *root = cnn_json_parse(text, len, path);
    free(text);
    if (!root) return cnn_errcode();
    reader rd = {root, path, 0};
    if (root->type != CNN_JSON_OBJECT) rd.rc = cnn_fail(CNN_ERR_FORMAT, "%s: expected a JSON object", path);
    if (!rd.rc) read_run(&rd, r);
    cnn_json_free(root);
    if (rd.rc) cnn_run_free(r), cnn_run_init(r, "");
    return rd.rc;
}
