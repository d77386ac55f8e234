/* Helpers shared by the metrics files (argument checks, numpy-ordered sums). */
#ifndef CNN_METRICS_METRICS_H
#define CNN_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cnnlab.h"

/* Checks n >= 1 and k >= min_k; fn names the public function in the message. */
int cnn_metrics_check_size(const char *fn, int n, int k, int min_k);
/* Checks that labels is not NULL and every label lies in 0..k-1; what names the array ("y_true"). */
int cnn_metrics_check_labels(const char *fn, const char *what, const int32_t *labels, int n, int k);
/* Checks that scores (n rows of k) is not NULL and holds no NaN or infinity. */
int cnn_metrics_check_scores(const char *fn, const char *what, const float *scores, int n, int k);

/* Sum in numpy's pairwise order (np.sum / np.mean of a float64 array), so that averages match
 * scikit-learn to the last bit rather than to a rounding error. */
double cnn_metrics_sum(const double *a, size_t n);

/* Counts per class (arrays of k, zeroed here): true positives, predictions, true samples (support).
 * Returns the number of correct predictions. The labels must have been checked. */
int64_t cnn_metrics_count(const int32_t *y_true, const int32_t *y_pred, int n, int k, int64_t *tp,
                          int64_t *pred, int64_t *truth);

/* scikit-learn's precision_recall_fscore_support over labels 0..k-1. */
typedef struct cnn_prf_table {
    cnn_prf *per_class;     /* k entries, for every class */
    unsigned char *present; /* k flags: the class occurs in y_true or y_pred (sklearn's labels=None) */
    cnn_prf avg[3]; /* micro (the report's accuracy line), macro and weighted over the present classes */
} cnn_prf_table;
/* Checks its arguments (fn names the public function), allocates t's arrays and fills t. Release t with
 * cnn_prf_table_free, also after a failure. */
int cnn_metrics_prf(const char *fn, const int32_t *y_true, const int32_t *y_pred, int n, int k,
                    cnn_prf_table *t);
void cnn_prf_table_free(cnn_prf_table *t);

#endif
