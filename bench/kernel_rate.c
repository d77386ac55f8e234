/* One core's GEMM rate on each kernel path the CPU has, against that path's multiply-add peak measured in the
 * same run (docs/benchmarks.md, "Kernel paths"): the products of Model_2_s2's large convolutions and of a
 * Dense layer, in thread CPU time (so that other processes on a shared machine move the figures less).
 *
 *   make && build/bench/kernel_rate [repeats]
 *
 * Each rate is the best of `repeats` (default 5) calls of cnn_gemm on the calling thread; A is read strided,
 * as the gathered convolutions read it through their offset tables. It calls the library's internal kernels
 * (a static link sees them). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnnlab.h"
#include "kernels/gemm.h"
#include "kernels/gemm_kernels.h"
#include "kernels/isa.h"

static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The shapes (M, N, P, A transposed): Model_2_s2's conv2d_1 and conv2d_2 per chunk (forward, weight gradient,
 * input gradient) and its Dense. */
static const struct {
    const char *name;
    int m, n, p, trans;
} SHAPES[] = {
    {"conv2d_1 forward 3136x64x288", 3136, 64, 288, 0}, {"conv2d_1 dW 288x64x3136", 288, 64, 3136, 1},
    {"conv2d_1 dx 3136x288x64", 3136, 288, 64, 0},      {"conv2d_2 forward 1568x128x576", 1568, 128, 576, 0},
    {"conv2d_2 dW 576x128x1568", 576, 128, 1568, 1},    {"dense 512x256x784", 512, 256, 784, 0},
};

static double gemm_rate(int M, int N, int P, int trans, int repeats)
{
    float *a = malloc(sizeof(float) * (size_t)M * P), *b = malloc(sizeof(float) * (size_t)P * N);
    float *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return -1;
    }
    for (size_t i = 0; i < (size_t)M * P; i++) a[i] = (float)(i * 7919 % 1000) / 999.0f - 0.3f;
    for (size_t i = 0; i < (size_t)P * N; i++) b[i] = (float)(i * 104729 % 1000) / 999.0f - 0.5f;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        const double t0 = thread_seconds();
        cnn_gemm(M, N, P, a, trans ? 1 : P, trans ? M : 1, b, N, c, N, 0);
        const double t = thread_seconds() - t0;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * M * N * P / best * 1e-9;
}

/* The path's multiply-add peak on this thread: CNN_PEAK_CHAINS chains of 2 * lanes FLOP a round. */
static double peak_rate(cnn_isa isa, int repeats)
{
    static const int LANES[CNN_ISA_COUNT] = {2, 8, 16};
    float (*const peak[CNN_ISA_COUNT])(long) = {cnn_peak_generic, cnn_peak_avx2, cnn_peak_avx512};
    const long steps = isa == CNN_ISA_GENERIC ? 1 << 18 : 1 << 22;
    double best = 1e30;
    volatile float sink = 0;
    for (int r = 0; r < repeats; r++) {
        const double t0 = thread_seconds();
        sink += peak[isa](steps);
        const double t = thread_seconds() - t0;
        if (t < best) best = t;
    }
    return (double)steps * CNN_PEAK_CHAINS * 2 * LANES[isa] / best * 1e-9;
}

int main(int argc, char **argv)
{
    const int repeats = argc > 1 ? atoi(argv[1]) : 5;
    if (repeats < 1) {
        fprintf(stderr, "usage: kernel_rate [repeats >= 1]\n");
        return 2;
    }
    cnn_isa paths[CNN_ISA_COUNT];
    const int np = cnn_isa_list(paths);
    for (int k = np - 1; k >= 0; k--) {
        if (cnn_isa_use(paths[k])) {
            fprintf(stderr, "kernel_rate: %s\n", cnn_errmsg());
            return 1;
        }
        const double peak = peak_rate(paths[k], repeats);
        printf("%s, one core (thread CPU time): multiply-add peak %.1f GFLOP/s\n", cnn_isa_label(paths[k]),
               peak);
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
            const double r = gemm_rate(SHAPES[s].m, SHAPES[s].n, SHAPES[s].p, SHAPES[s].trans,
                                       paths[k] == CNN_ISA_GENERIC ? 1 : repeats);
            printf("  %-32s %7.1f GFLOP/s  %3.0f%% of peak\n", SHAPES[s].name, r, 100.0 * r / peak);
        }
    }
    return 0;
}
