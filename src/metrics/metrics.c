/* Label metrics: argmax, accuracy, confusion matrix, precision / recall / F1 (scikit-learn 1.2). */
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int cnn_metrics_check_size(const char *fn, int n, int k, int min_k)
{
    if (n < 1) return cnn_fail(CNN_ERR_INVALID, "%s: n = %d samples; need at least 1", fn, n);
    if (k < min_k) return cnn_fail(CNN_ERR_INVALID, "%s: k = %d classes; need at least %d", fn, k, min_k);
    return 0;
}

int cnn_metrics_check_labels(const char *fn, const char *what, const int32_t *labels, int n, int k)
{
    if (!labels) return cnn_fail(CNN_ERR_INVALID, "%s: %s is NULL", fn, what);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return cnn_fail(CNN_ERR_INVALID, "%s: %s[%d] = %d is not a class label 0..%d", fn, what, i,
                            (int)labels[i], k - 1);
    return 0;
}

int cnn_metrics_check_scores(const char *fn, const char *what, const float *scores, int n, int k)
{
    if (!scores) return cnn_fail(CNN_ERR_INVALID, "%s: %s is NULL", fn, what);
    size_t total = (size_t)n * (size_t)k;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(scores[i]))
            return cnn_fail(CNN_ERR_INVALID, "%s: %s of sample %zu, class %zu is %s", fn, what, i / (size_t)k,
                            i % (size_t)k, isnan(scores[i]) ? "NaN" : "infinite");
    return 0;
}

/* numpy's pairwise_sum: 8 interleaved partial sums per block of at most 128, halves above. */
double cnn_metrics_sum(const double *a, size_t n)
{
    if (n < 8) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        memcpy(r, a, sizeof r);
        size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t half = n / 2;
    half -= half % 8;
    return cnn_metrics_sum(a, half) + cnn_metrics_sum(a + half, n - half);
}

int64_t cnn_metrics_count(const int32_t *y_true, const int32_t *y_pred, int n, int k, int64_t *tp,
                          int64_t *pred, int64_t *truth)
{
    memset(tp, 0, (size_t)k * sizeof *tp);
    memset(pred, 0, (size_t)k * sizeof *pred);
    memset(truth, 0, (size_t)k * sizeof *truth);
    int64_t correct = 0;
    for (int i = 0; i < n; i++) {
        truth[y_true[i]]++;
        pred[y_pred[i]]++;
        if (y_true[i] == y_pred[i]) tp[y_true[i]]++, correct++;
    }
    return correct;
}

static int check_pair(const char *fn, const int32_t *y_true, const int32_t *y_pred, int n, int k)
{
    int rc = cnn_metrics_check_size(fn, n, k, 1);
    if (!rc) rc = cnn_metrics_check_labels(fn, "y_true", y_true, n, k);
    if (!rc) rc = cnn_metrics_check_labels(fn, "y_pred", y_pred, n, k);
    return rc;
}

int cnn_argmax_rows(const float *scores, int n, int k, int32_t *pred)
{
    const char *fn = "predicted classes";
    int rc = cnn_metrics_check_size(fn, n, k, 1);
    if (!rc) rc = cnn_metrics_check_scores(fn, "score", scores, n, k);
    if (rc) return rc;
    if (!pred) return cnn_fail(CNN_ERR_INVALID, "%s: pred is NULL", fn);
    for (int i = 0; i < n; i++) {
        const float *row = scores + (size_t)i * (size_t)k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (row[c] > row[best]) best = c; /* strict: a tie keeps the first index */
        pred[i] = best;
    }
    return 0;
}

int cnn_accuracy(const int32_t *y_true, const int32_t *y_pred, int n, int k, double *accuracy)
{
    int rc = check_pair("accuracy", y_true, y_pred, n, k);
    if (rc) return rc;
    if (!accuracy) return cnn_fail(CNN_ERR_INVALID, "accuracy: accuracy is NULL");
    int64_t correct = 0;
    for (int i = 0; i < n; i++) correct += y_true[i] == y_pred[i];
    *accuracy = (double)correct / (double)n;
    return 0;
}

int cnn_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, int n, int k, int64_t *cm)
{
    int rc = check_pair("confusion matrix", y_true, y_pred, n, k);
    if (rc) return rc;
    if (!cm) return cnn_fail(CNN_ERR_INVALID, "confusion matrix: cm is NULL");
    memset(cm, 0, (size_t)k * (size_t)k * sizeof *cm);
    for (int i = 0; i < n; i++) cm[(size_t)y_true[i] * (size_t)k + (size_t)y_pred[i]]++;
    return 0;
}

/* sklearn's _prf_divide (0/0 -> 0) and its F-score expression, operation for operation. */
static cnn_prf prf_of(int64_t tp, int64_t pred, int64_t truth)
{
    cnn_prf r;
    r.precision = pred ? (double)tp / (double)pred : 0.0;
    r.recall = truth ? (double)tp / (double)truth : 0.0;
    double denom = r.precision + r.recall;
    if (denom == 0.0) denom = 1.0;
    r.f1 = 2.0 * r.precision * r.recall / denom;
    r.support = truth;
    return r;
}

/* Macro (weights NULL: np.mean) or weighted (np.average with weights) average of the present classes,
 * with vals as scratch of m doubles. */
static void average(const cnn_prf *per, const unsigned char *present, const int64_t *weights, int k, int m,
                    int64_t n, double *vals, cnn_prf *out)
{
    double wsum = 0.0;
    for (int c = 0; c < k; c++)
        if (present[c] && weights) wsum += (double)weights[c];
    double denom = weights ? wsum : (double)m;
    for (int field = 0; field < 3; field++) {
        int j = 0;
        for (int c = 0; c < k; c++) {
            if (!present[c]) continue;
            double v = field == 0 ? per[c].precision : field == 1 ? per[c].recall : per[c].f1;
            vals[j++] = weights ? v * (double)weights[c] : v;
        }
        double avg = cnn_metrics_sum(vals, (size_t)m) / denom;
        if (field == 0)
            out->precision = avg;
        else if (field == 1)
            out->recall = avg;
        else
            out->f1 = avg;
    }
    out->support = n;
}

int cnn_metrics_prf(const char *fn, const int32_t *y_true, const int32_t *y_pred, int n, int k,
                    cnn_prf_table *t)
{
    memset(t, 0, sizeof *t);
    int rc = check_pair(fn, y_true, y_pred, n, k);
    if (rc) return rc;
    t->per_class = malloc((size_t)k * sizeof *t->per_class);
    t->present = malloc((size_t)k);
    int64_t *counts = malloc(3 * (size_t)k * sizeof *counts);
    double *vals = malloc((size_t)k * sizeof *vals);
    if (!t->per_class || !t->present || !counts || !vals) {
        free(counts);
        free(vals);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %d classes", fn, k);
    }
    int64_t *tp = counts, *pred = counts + k, *truth = counts + 2 * k;
    int64_t correct = cnn_metrics_count(y_true, y_pred, n, k, tp, pred, truth);
    int m = 0;
    for (int c = 0; c < k; c++) {
        t->per_class[c] = prf_of(tp[c], pred[c], truth[c]);
        t->present[c] = truth[c] > 0 || pred[c] > 0;
        m += t->present[c];
    }
    t->avg[0] = prf_of(correct, n, n); /* micro: every sample is one prediction and one truth */
    average(t->per_class, t->present, NULL, k, m, n, vals, &t->avg[1]);
    average(t->per_class, t->present, truth, k, m, n, vals, &t->avg[2]);
    free(counts);
    free(vals);
    return 0;
}

void cnn_prf_table_free(cnn_prf_table *t)
{
    free(t->per_class);
    free(t->present);
    memset(t, 0, sizeof *t);
}

int cnn_classification_metrics(const int32_t *y_true, const int32_t *y_pred, int n, int k, cnn_prf *per_class,
                               cnn_prf *macro, cnn_prf *weighted)
{
    cnn_prf_table t;
    int rc = cnn_metrics_prf("classification metrics", y_true, y_pred, n, k, &t);
    if (!rc) {
        if (per_class) memcpy(per_class, t.per_class, (size_t)k * sizeof *per_class);
        if (macro) *macro = t.avg[1];
        if (weighted) *weighted = t.avg[2];
    }
    cnn_prf_table_free(&t);
    return rc;
}
