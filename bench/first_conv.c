/* The first convolution of Model_2_s2 (Conv2D(32, 3x3, same, relu) on 28x28x1) fused with the MaxPooling2D
 * after it (layers/conv_pool.h): one core's forward and backward time for a batch, in thread CPU time (so
 * that other processes on a shared machine move the figures less), on the kernel path in use
 * (CNNLAB_ISA=generic|avx2|avx512 forces one). docs/benchmarks.md, "The first convolution".
 *
 *   make && build/bench/first_conv [repeats] [batch]
 *
 * Each time is the best of `repeats` (default 20) calls on the calling thread (one thread: the work is
 * split into the same units at any thread count). The images are random; the times do not depend on them.
 * It calls the library's internal functions (a static link sees them). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnnlab.h"
#include "core/rng.h"
#include "kernels/isa.h"
#include "layers/conv_pool.h"
#include "model/model.h"

static const char SPEC[] = "model: first_conv\n"
                           "input: (28, 28, 1)\n"
                           "layers:\n"
                           "    Conv2D(32, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
                           "    MaxPooling2D(2, strides=2)\n"
                           "    Flatten()\n"
                           "    Dense(10, activation=\"softmax\")\n"
                           "optimizer: Adam()\n";

static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best forward and backward seconds of `repeats` passes over the batch n already in m's input. */
static void measure(cnn_model *m, int n, int repeats, double *fwd, double *bwd)
{
    cnn_exec *x = &m->x;
    cnn_ctx ctx = {.training = 1, .work = x->work};
    float *dy = x->dbuf[0];
    const size_t pooled = cnn_shape_size(m->layers[1].out) * (size_t)n;
    for (size_t i = 0; i < pooled; i++) dy[i] = cnn_rng_uniform(7, 2, i) - 0.5f;
    *fwd = *bwd = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = thread_seconds();
        cnn_conv_pool_forward(&m->layers[0], &m->layers[1], &ctx, x->acts[0], x->acts[2], n);
        double t1 = thread_seconds();
        cnn_conv_pool_backward(&m->layers[0], &m->layers[1], &ctx, x->acts[0], x->acts[2], dy, n);
        double t2 = thread_seconds();
        if (t1 - t0 < *fwd) *fwd = t1 - t0;
        if (t2 - t1 < *bwd) *bwd = t2 - t1;
    }
}

int main(int argc, char **argv)
{
    const int repeats = argc > 1 ? atoi(argv[1]) : 20, n = argc > 2 ? atoi(argv[2]) : 512;
    if (repeats < 1 || n < 1) {
        fprintf(stderr, "usage: first_conv [repeats >= 1] [batch >= 1]\n");
        return 2;
    }
    cnn_set_threads(1);
    cnn_spec *s = cnn_spec_parse(SPEC, "first_conv.spec");
    cnn_model *m = s ? cnn_spec_build_model(s, 1) : NULL;
    if (!m || cnn_model_plan(m, n) || !cnn_model_fused(m, 0)) {
        fprintf(stderr, "first_conv: %s\n", cnn_errmsg());
        return 1;
    }
    const size_t in = cnn_shape_size(m->input) * (size_t)n;
    for (size_t i = 0; i < in; i++) m->x.acts[0][i] = cnn_rng_uniform(5, 1, i);
    double fwd, bwd;
    measure(m, n, repeats, &fwd, &bwd);
    const cnn_layer *conv = &m->layers[0];
    const double flop = conv->ops->flops(conv, n); /* backward: the same for dW (no input gradient) */
    printf("first_conv: kernels %s, batch %d, 1 thread, best of %d, thread CPU time\n", cnn_isa_name(), n,
           repeats);
    printf("forward  %8.3f ms  %6.1f GFLOP/s\nbackward %8.3f ms  %6.1f GFLOP/s\n", 1e3 * fwd,
           flop / fwd * 1e-9, 1e3 * bwd, flop / bwd * 1e-9);
    cnn_model_free(m);
    cnn_spec_free(s);
    return 0;
}
