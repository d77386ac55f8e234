/* What augmentation adds to training: per batch of 512 Fashion-MNIST images, the time of the Keras-style
 * random augmentation (every option on), of the study's transform, and of one Model_2_s2 training step, taken
 * interleaved on the same batches so machine noise hits all three alike.
 *
 *   make && build/bench/augment_cost [threads] [batches]
 *
 * Online augmentation runs once per sample per epoch, so its share of a step is its share of the epoch; the
 * study's generator makes its augmented batches once per run (memoised), so its cost is paid in epoch 1 only.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnnlab.h"

enum { B = 512 };

static cnn_augment all_options(void)
{
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 10, a.width_shift_range = 0.1, a.height_shift_range = 0.1, a.shear_range = 5;
    a.zoom_range[0] = 0.9, a.zoom_range[1] = 1.1, a.horizontal_flip = 1, a.fill_mode = CNN_FILL_NEAREST;
    a.crop_padding = 2, a.erasing_p = 0.5;
    return a;
}

static void keras_batch(const cnn_transform *t, const float *x, float *out, int first)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++)
        t->apply(t->ctx, x + 784 * (size_t)i, 28, 28, 1, out + 784 * (size_t)i, 1, 0, first + i);
}

static void study_batch(const float *x, float *out, int first)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        double s;
        int tx, ty, angle;
        cnn_augment_study_draw(1, 0, first + i, &s, &tx, &ty, &angle);
        cnn_augment_study(x + 784 * (size_t)i, out + 784 * (size_t)i, 28, 28, s, tx, ty, angle);
    }
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, batches = argc > 2 ? atoi(argv[2]) : 12;
    cnn_dataset train, test;
    cnn_spec *spec = cnn_spec_load("models/seed/Model_2_s2.spec");
    if (!spec || cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &train, &test))
        return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
    cnn_set_threads(threads);
    cnn_model *m = cnn_spec_build_model(spec, 1);
    float *out = malloc(sizeof(float) * 784 * B), *x = malloc(sizeof(float) * 784 * B);
    if (!m || !out || !x || batches < 3 || batches * B > train.n) return fprintf(stderr, "setup failed\n"), 1;
    cnn_augment a = all_options();
    cnn_transform t = cnn_augment_transform(&a);
    double keras = 0, study = 0, step = 0;
    for (int b = 0; b < batches; b++) {
        cnn_dataset_images(&train, B * b, B, x);
        double t0 = omp_get_wtime();
        keras_batch(&t, x, out, b * B);
        double t1 = omp_get_wtime();
        study_batch(x, out, b * B);
        double t2 = omp_get_wtime(), loss;
        int correct;
        cnn_model_train_step(m, out, train.y + B * b, B, &loss, &correct);
        double t3 = omp_get_wtime();
        if (b >= 2) keras += t1 - t0, study += t2 - t1, step += t3 - t2; /* the first two warm up */
    }
    int n = batches - 2;
    printf("per batch of %d, %d threads, %d batches: Keras-style augmentation %.1f ms (%.1f%% of a step), "
           "study transform %.1f ms (%.1f%%), Model_2_s2 training step %.1f ms\n",
           B, threads, n, 1e3 * keras / n, 100 * keras / step, 1e3 * study / n, 100 * study / step,
           1e3 * step / n);
    free(out);
    free(x);
    cnn_model_free(m);
    cnn_spec_free(spec);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    return 0;
}
