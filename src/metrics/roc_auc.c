/* ROC-AUC as the Mann-Whitney statistic: binary, one-vs-one (Hand & Till) and one-vs-rest macro.
 *
 * For a score column a, sorted once, one walk over the tie groups gives, for every other class b,
 * u2[a][b] = 2 * #(sample of a scored above a sample of b) + #(tied such pairs), an exact integer. Then
 *   AUC(a vs b, column a) = u2[a][b] / (2 n_a n_b)           (the pair terms of one-vs-one), and
 *   AUC(a vs rest)        = sum_b u2[a][b] / (2 n_a (n - n_a)) (U is additive over disjoint negatives).
 * So every AUC costs one sort per column: O(k n log n) in all, and the counts do not depend on the
 * thread count or on the order of tied scores. The trapezoidal ROC area that scikit-learn integrates
 * equals this statistic, so the two agree up to scikit-learn's rounding. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "metrics/metrics.h"

typedef struct scored {
    float score;
    int32_t label;
} scored;

static int by_score(const void *pa, const void *pb)
{
    float a = ((const scored *)pa)->score, b = ((const scored *)pb)->score;
    return (a > b) - (a < b);
}

/* Fills u2[0..k) for positive class a from scores[i * stride] (buf: scratch of n). */
static void column_counts(const float *scores, size_t stride, const int32_t *y, int n, int k, int a,
                          int64_t n_a, scored *buf, int64_t *u2)
{
    for (int i = 0; i < n; i++) buf[i] = (scored){scores[(size_t)i * stride], y[i]};
    qsort(buf, (size_t)n, sizeof *buf, by_score);
    memset(u2, 0, (size_t)k * sizeof *u2);
    int64_t pos_below = 0;
    for (int i = 0; i < n;) {
        int j = i;
        int64_t pos_tied = 0;
        for (; j < n && buf[j].score == buf[i].score; j++) pos_tied += buf[j].label == a;
        int64_t pos_above = n_a - pos_below - pos_tied;
        for (int t = i; t < j; t++)
            if (buf[t].label != a) u2[buf[t].label] += 2 * pos_above + pos_tied;
        pos_below += pos_tied;
        i = j;
    }
}

/* Checks the arguments and counts the samples of every class, which must all occur. */
static int check_multiclass(const char *fn, const int32_t *y, const float *scores, int n, int k, double *auc,
                            int64_t *count)
{
    int rc = cnn_metrics_check_size(fn, n, k, 2);
    if (!rc) rc = cnn_metrics_check_labels(fn, "y_true", y, n, k);
    if (!rc) rc = cnn_metrics_check_scores(fn, "score", scores, n, k);
    if (rc) return rc;
    if (!auc) return cnn_fail(CNN_ERR_INVALID, "%s: auc is NULL", fn);
    memset(count, 0, (size_t)k * sizeof *count);
    for (int i = 0; i < n; i++) count[y[i]]++;
    for (int c = 0; c < k; c++)
        if (!count[c])
            return cnn_fail(CNN_ERR_INVALID,
                            "%s: class %d has no samples in y_true; ROC-AUC needs samples of all %d classes "
                            "(scikit-learn raises as well)",
                            fn, c, k);
    return 0;
}

/* u2 (k x k) for every column, one column per thread at a time; each column writes only its own row. */
static int all_counts(const char *fn, const int32_t *y, const float *scores, int n, int k,
                      const int64_t *count, int64_t *u2)
{
    int failed = 0;
#pragma omp parallel if ((int64_t)n * k >= 32768)
    {
        scored *buf = malloc((size_t)n * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int a = 0; a < k; a++)
            if (buf)
                column_counts(scores + a, (size_t)k, y, n, k, a, count[a], buf, u2 + (size_t)a * (size_t)k);
        free(buf);
    }
    if (failed) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory sorting %d scores", fn, n);
    return 0;
}

/* Shared driver: ovo selects the pair average, otherwise one-vs-rest. */
static int multiclass_auc(const char *fn, const int32_t *y, const float *scores, int n, int k, int ovo,
                          double *auc)
{
    size_t kk = (size_t)k * (size_t)k, terms = ovo ? kk / 2 : (size_t)k;
    int64_t *count = malloc((size_t)k * sizeof *count), *u2 = malloc(kk * sizeof *u2);
    double *vals = malloc(terms * sizeof *vals);
    int rc = 0;
    if (!count || !u2 || !vals) rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %d classes", fn, k);
    if (!rc) rc = check_multiclass(fn, y, scores, n, k, auc, count);
    if (!rc) rc = all_counts(fn, y, scores, n, k, count, u2);
    if (!rc) {
        size_t m = 0;
        for (int a = 0; a < k; a++) {
            const int64_t *row = u2 + (size_t)a * (size_t)k;
            if (!ovo) {
                int64_t sum = 0;
                for (int b = 0; b < k; b++) sum += row[b];
                vals[m++] = (double)sum / (2.0 * (double)(count[a] * (n - count[a])));
                continue;
            }
            for (int b = a + 1; b < k; b++) { /* itertools.combinations order, as scikit-learn */
                double denom = 2.0 * (double)(count[a] * count[b]);
                double auc_a = (double)row[b] / denom,
                       auc_b = (double)u2[(size_t)b * (size_t)k + (size_t)a] / denom;
                vals[m++] = (auc_a + auc_b) / 2;
            }
        }
        *auc = cnn_metrics_sum(vals, m) / (double)m;
    }
    free(count);
    free(u2);
    free(vals);
    return rc;
}

int cnn_roc_auc_ovo(const int32_t *y_true, const float *scores, int n, int k, double *auc)
{
    return multiclass_auc("ROC-AUC (one-vs-one)", y_true, scores, n, k, 1, auc);
}

int cnn_roc_auc_ovr(const int32_t *y_true, const float *scores, int n, int k, double *auc)
{
    return multiclass_auc("ROC-AUC (one-vs-rest)", y_true, scores, n, k, 0, auc);
}

int cnn_roc_auc_binary(const int32_t *y_true, const float *score, int n, double *auc)
{
    const char *fn = "ROC-AUC";
    int rc = cnn_metrics_check_size(fn, n, 2, 2);
    if (!rc) rc = cnn_metrics_check_labels(fn, "y_true", y_true, n, 2);
    if (!rc) rc = cnn_metrics_check_scores(fn, "score", score, n, 1);
    if (rc) return rc;
    if (!auc) return cnn_fail(CNN_ERR_INVALID, "%s: auc is NULL", fn);
    int64_t n_pos = 0;
    for (int i = 0; i < n; i++) n_pos += y_true[i];
    if (n_pos == 0 || n_pos == n)
        return cnn_fail(CNN_ERR_INVALID, "%s: only class %d is present in y_true; ROC-AUC is not defined", fn,
                        n_pos ? 1 : 0);
    scored *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory sorting %d scores", fn, n);
    int64_t u2[2];
    column_counts(score, 1, y_true, n, 2, 1, n_pos, buf, u2);
    free(buf);
    *auc = (double)u2[0] / (2.0 * (double)(n_pos * (n - n_pos)));
    return 0;
}
