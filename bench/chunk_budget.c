/* The conv lowering budget (docs/benchmarks.md, "Layout and batching"): Model_2_s2's training time per epoch
 * at one thread for each per-thread chunk budget, the budgets interleaved in every repeat so machine noise
 * hits all alike; prints the median of the repeats as a table row.
 *
 *   make && build/bench/chunk_budget [batches] [repeats]
 *
 * Each measurement trains `batches` batches of 512 (default 24) from a freshly built model, since a model's
 * workspaces are planned under the budget in force when it is built, and scales the time to the 118 batches
 * of an epoch. It calls the library's internal cnn_conv_set_budget (a static link sees it).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnnlab.h"
#include "layers/conv_common.h"

enum { B = 512, EPOCH_BATCHES = 118, MAX_REPEATS = 15 };
static const size_t budgets_kib[] = {256, 512, 1024, 2048, 8192, 65536};
enum { NB = sizeof budgets_kib / sizeof budgets_kib[0] };

static double epoch_seconds(const cnn_spec *spec, const cnn_dataset *train, int batches)
{
    cnn_model *m = cnn_spec_build_model(spec, 1);
    float *x = malloc(sizeof(float) * 784 * B); /* one batch as floats (the set holds bytes) */
    if (!m || !x) return cnn_model_free(m), free(x), -1;
    double loss, t0 = 0, s = -1;
    int correct, rc = 0;
    for (int b = 0; !rc && b <= batches; b++) {
        rc = cnn_dataset_images(train, B * b, B, x);
        if (b == 1) t0 = omp_get_wtime(); /* the first step plans and warms up */
        if (!rc) rc = cnn_model_train_step(m, x, train->y + B * b, B, &loss, &correct);
    }
    if (!rc) s = (omp_get_wtime() - t0) * EPOCH_BATCHES / batches;
    cnn_model_free(m);
    free(x);
    return s;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? atoi(argv[1]) : 24, repeats = argc > 2 ? atoi(argv[2]) : 3;
    cnn_dataset train, test;
    cnn_spec *spec = cnn_spec_load("models/seed/Model_2_s2.spec");
    if (!spec || cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &train, &test))
        return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
    if (batches < 1 || (batches + 1) * B > train.n || repeats < 1 || repeats > MAX_REPEATS)
        return fprintf(stderr, "usage: chunk_budget [batches 1..%d] [repeats 1..%d]\n", train.n / B - 1,
                       MAX_REPEATS), 2;
    cnn_set_threads(1);
    double t[NB][MAX_REPEATS];
    for (int r = 0; r < repeats; r++)
        for (int i = 0; i < NB; i++) {
            cnn_conv_set_budget(budgets_kib[i] << 10);
            if ((t[i][r] = epoch_seconds(spec, &train, batches)) < 0)
                return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
            printf("RAW budget_kib=%zu repeat=%d epoch_s=%.2f\n", budgets_kib[i], r, t[i][r]);
        }
    printf("| chunk budget |");
    for (int i = 0; i < NB; i++) printf(" %zu KiB |", budgets_kib[i]);
    printf("\n|---|");
    for (int i = 0; i < NB; i++) printf("---:|");
    printf("\n| training s / epoch (1 thread) |");
    for (int i = 0; i < NB; i++) {
        qsort(t[i], (size_t)repeats, sizeof(double), cmp);
        printf(" %.2f |", t[i][repeats / 2]);
    }
    printf("\n");
    cnn_spec_free(spec);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    return 0;
}
