/* Winograd against the direct algorithm on VGG16's 3x3 layers (layers/conv2d.c, kernels/winograd.h): one
 * core's forward and backward time per layer shape for a batch, in thread CPU time (so that other processes
 * on a shared machine move the figures less), on the kernel path in use (CNNLAB_ISA forces one). Backward is
 * a frozen layer's (dx only, as VGG16's blocks 1-4 behind a trainable layer) and a trainable layer's (dW
 * direct on both, plus dx). The measurements behind conv2d.c's choice of layers: Winograd is forced on every
 * shape here (cnn_wino_allow(2)), also those its rule leaves direct (listed last).
 *
 *   make && build/bench/winograd_layers [--bf16] [repeats] [batch] [size...]
 *
 * --bf16: both algorithms with the products in BF16 (--precision bf16; CPUs with AVX512_BF16).
 * size: VGG16's input side (32 and 56 by default); each time is the best of `repeats` (default 3) calls.
 * It calls the library's internal functions (a static link sees them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnlab.h"
#include "core/rng.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"
#include "kernels/winograd.h"
#include "model/model.h"

static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct buffers {
    float *x, *y, *dy, *dx, *work;
} buffers;

static float *randoms(size_t n, uint64_t stream)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    if (v)
        for (size_t i = 0; i < n; i++) v[i] = cnn_rng_uniform(3, stream, i) - 0.5f;
    return v;
}

/* Best forward, frozen backward and trainable backward seconds of layer l over n images. */
static void measure(cnn_layer *l, const buffers *b, int n, int repeats, double t[3])
{
    t[0] = t[1] = t[2] = 1e30;
    for (int r = 0; r < repeats; r++)
        for (int k = 0; k < 3; k++) {
            cnn_ctx ctx = {.training = 1, .work = b->work, .need_dx = 1};
            l->trainable = k == 2;
            const double t0 = thread_seconds();
            if (k == 0)
                l->ops->forward(l, &ctx, b->x, b->y, n);
            else
                l->ops->backward(l, &ctx, b->x, b->y, b->dy, b->dx, n);
            const double s = thread_seconds() - t0;
            if (s < t[k]) t[k] = s;
        }
}

/* One shape: both algorithms, one line. */
static int run_shape(int size, int cin, int cout, int n, int repeats)
{
    char opts[96];
    snprintf(opts, sizeof opts, "filters=%d, kernel_size=3, padding=same, activation=relu", cout);
    cnn_model *m = cnn_model_create("wino", size, size, cin);
    if (!m || cnn_model_add(m, "Conv2D", opts) || cnn_model_build(m, 1)) return -1;
    cnn_layer *l = &m->layers[0];
    const size_t nx = (size_t)n * size * size * cin, ny = (size_t)n * size * size * cout;
    buffers b = {randoms(nx, 1), randoms(ny, 2), randoms(ny, 3), randoms(nx, 4),
                 randoms(l->ops->workspace(l, n), 5)};
    int rc = b.x && b.y && b.dy && b.dx && b.work ? 0 : -1;
    double d[3], w[3];
    if (!rc) {
        cnn_wino_allow(0);
        measure(l, &b, n, repeats, d);
        cnn_wino_allow(2);
        measure(l, &b, n, repeats, w);
        printf("%4d %4d %4d   %8.2f %8.2f %5.2fx   %8.2f %8.2f %5.2fx   %8.2f %8.2f %5.2fx\n", size, cin,
               cout, 1e3 * d[0], 1e3 * w[0], d[0] / w[0], 1e3 * d[1], 1e3 * w[1], d[1] / w[1], 1e3 * d[2],
               1e3 * w[2], d[2] / w[2]);
        fflush(stdout);
    }
    free(b.x), free(b.y), free(b.dy), free(b.dx), free(b.work);
    cnn_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    const int bf16 = argc > 1 && !strcmp(argv[1], "--bf16");
    if (bf16) {
        if (cnn_bf16_check()) {
            fprintf(stderr, "winograd_layers: %s\n", cnn_errmsg());
            return 1;
        }
        cnn_gemm_bf16_set(1);
        argc--, argv++;
    }
    const int repeats = argc > 1 ? atoi(argv[1]) : 3, n = argc > 2 ? atoi(argv[2]) : 64;
    static const int LAYERS[][3] = {/* side divisor, cin, cout: VGG16's 3x3 layers after its first */
                                    {1, 64, 64},   {2, 64, 128},  {2, 128, 128}, {4, 128, 256},
                                    {4, 256, 256}, {8, 256, 512}, {8, 512, 512}, {16, 512, 512}};
    if (repeats < 1 || n < 1) {
        fprintf(stderr, "usage: winograd_layers [repeats] [batch] [size...]\n");
        return 2;
    }
    cnn_set_threads(1);
    printf("batch %d, 1 thread, kernels %s, precision %s; ms (thread CPU time, best of %d)\n", n,
           cnn_isa_name(), bf16 ? "bf16" : "fp32", repeats);
    printf("side  cin cout   fwd dir  fwd wino  ratio  frozen dir  wino  ratio   train dir  wino  ratio\n");
    /* layers the rule leaves direct: fewer channels (Model_2's and Model_11's sizes), and VGG16's block5 */
    static const int OTHERS[][3] = {{28, 32, 32}, {28, 32, 64}, {14, 64, 32}, {14, 64, 64}, {7, 64, 64}};
    int sizes[8] = {32, 56}, count = 2;
    if (argc > 3)
        for (count = 0; count < 8 && 3 + count < argc; count++) sizes[count] = atoi(argv[3 + count]);
    for (int s = 0; s < count; s++)
        for (size_t i = 0; i < sizeof LAYERS / sizeof LAYERS[0]; i++)
            if (sizes[s] / LAYERS[i][0] >= 1 &&
                run_shape(sizes[s] / LAYERS[i][0], LAYERS[i][1], LAYERS[i][2], n, repeats)) {
                fprintf(stderr, "winograd_layers: %s\n", cnn_errmsg());
                return 1;
            }
    for (size_t i = 0; argc <= 3 && i < sizeof OTHERS / sizeof OTHERS[0]; i++)
        if (run_shape(OTHERS[i][0], OTHERS[i][1], OTHERS[i][2], n, repeats)) return 1;
    return 0;
}
