/* cnnlab's side of bench/run.sh --vgg: images per second of a VGG16 base, forward (inference) or one
 * training step, on fixed pseudo-random inputs, through the public API only.
 *
 *   make && build/bench/vgg_speed SPEC forward|train BATCH STEPS THREADS
 *
 * SPEC is one of the bench/vgg/ specs (the same network bench/torch_ref.py and bench/keras_ref.py build). One
 * untimed warm-up step (the first touch of the buffers), then STEPS timed steps; the result is
 * the median step's rate, so one step slowed by another process on a shared machine does not decide it;
 * images_cpu_s divides the images by the CPU seconds the process used (all threads), which other processes
 * on the machine move much less than the wall time. The last line is machine-readable:
 *   RESULT framework=cnnlab mode=M size=S batch=B steps=N images_s=... images_s_max=... images_cpu_s=...
 *          isa=... threads=T
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnlab.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One step: an inference forward pass, or forward + backward + Adam update. */
static int step(cnn_model *m, const float *x, const int32_t *y, int n, int train)
{
    if (!train) return cnn_model_forward(m, x, n, 0, NULL);
    double loss;
    int correct;
    return cnn_model_train_step(m, x, y, n, &loss, &correct);
}

/* secs[s]: wall seconds of timed step s; *cpu: CPU seconds of the process (every thread) over all of them. */
static int run(cnn_model *m, int n, int size, int steps, int train, double *secs, double *cpu)
{
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)size);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    if (!x || !y) return free(x), free(y), fprintf(stderr, "vgg_speed: out of memory\n"), -1;
    /* inputs in [0, 1) like the scaled images, labels spread over the classes */
    for (size_t i = 0; i < (size_t)n * (size_t)size; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; i < n; i++) y[i] = i % cnn_model_num_outputs(m);
    int rc = step(m, x, y, n, train);
    const double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int s = 0; !rc && s < steps; s++) {
        double t0 = clock_s(CLOCK_MONOTONIC);
        rc = step(m, x, y, n, train);
        secs[s] = clock_s(CLOCK_MONOTONIC) - t0;
    }
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (rc) fprintf(stderr, "vgg_speed: %s\n", cnn_errmsg());
    free(x), free(y);
    return rc;
}

static int positive(const char *what, const char *v)
{
    char *end;
    long r = strtol(v, &end, 10);
    if (*end || r < 1 || r > 100000)
        return fprintf(stderr, "vgg_speed: %s must be 1..100000, not '%s'\n", what, v), -1;
    return (int)r;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[2], "forward") && strcmp(argv[2], "train")))
        return fprintf(stderr, "usage: vgg_speed SPEC forward|train BATCH STEPS THREADS\n"), 2;
    int train = !strcmp(argv[2], "train"), n = positive("BATCH", argv[3]);
    int steps = positive("STEPS", argv[4]), threads = positive("THREADS", argv[5]);
    if (n < 0 || steps < 0 || threads < 0) return 2;
    cnn_set_threads(threads);
    cnn_spec *s = cnn_spec_load(argv[1]);
    cnn_model *m = s ? cnn_spec_build_model(s, 1) : NULL;
    if (!m) return fprintf(stderr, "vgg_speed: %s\n", cnn_errmsg()), cnn_spec_free(s), 1;
    int h, w, c;
    cnn_spec_input_shape(s, &h, &w, &c);
    double *secs = malloc(sizeof(double) * (size_t)steps);
    double cpu = 0;
    int rc = secs ? run(m, n, h * w * c, steps, train, secs, &cpu) : -1;
    if (!rc) {
        qsort(secs, (size_t)steps, sizeof(double), cmp_double);
        double med = steps % 2 ? secs[steps / 2] : (secs[steps / 2 - 1] + secs[steps / 2]) / 2;
        printf("RESULT framework=cnnlab mode=%s size=%d batch=%d steps=%d images_s=%.2f images_s_max=%.2f "
               "images_cpu_s=%.2f isa=%s threads=%d\n",
               argv[2], h, n, steps, n / med, n / secs[0], (double)n * steps / cpu, cnn_isa_name(),
               cnn_get_threads());
    }
    free(secs);
    cnn_model_free(m);
    cnn_spec_free(s);
    return rc ? 1 : 0;
}
