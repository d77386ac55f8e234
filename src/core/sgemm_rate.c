/* The reference a layer's speed is judged against: a bare sgemm of the same shape, same threads, same run. */
#include <cblas.h>
#include <stdlib.h>

#include "cnnlab.h"
#include "core/time.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cnn_sgemm_gflops(int m, int n, int k, int reps)
{
    if (m < 1 || n < 1 || k < 1 || reps < 1 || reps > 1000) return -1;
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    double rate = -1;
    if (a && b && c && t) {
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
        for (int r = -1; r < reps; r++) {
            double t0 = cnn_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            if (r >= 0) t[r] = cnn_now() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        rate = 2.0 * m * n * k / t[reps / 2] * 1e-9;
    }
    free(a), free(b), free(c), free(t);
    return rate;
}
