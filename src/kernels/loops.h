/* The memory-bound loops outside the GEMM that decide a training step's speed, compiled once per
 * instruction-set path like the GEMM kernels (loops.inc, included by loops_generic.c, loops_avx2.c and
 * loops_avx512.c with their own target flags): the rest of the library is compiled for the x86-64-v2
 * baseline, where these loops ran up to 2x slower than with AVX-512. The code is the same C on every path,
 * with no reassociation and no fused multiply-adds (ISO C mode), so every path gives the same bits. */
#ifndef CNN_KERNELS_LOOPS_H
#define CNN_KERNELS_LOOPS_H

#include <stdint.h>

typedef struct cnn_loops {
    /* A convolution with few taps (K <= 16), lowered to a (rows, K): y (rows, F) = a W (K, F) + b, then relu
     * when asked; b may be NULL. */
    void (*thin_forward)(int rows, int K, int F, const float *a, const float *w, const float *b, int relu,
                         float *y);
    /* Its backward for a chunk, in one pass over dy: the relu gradient (written back to dy when keep), then
     * pb (F) += column sums of dy (pb may be NULL) and pw (K, F) += a^T dy, rows in order. */
    void (*thin_backward)(int rows, int K, int F, const float *a, const float *y, float *dy, int relu,
                          int keep, float *pw, float *pb);
    /* Max pooling of one output row of an image x (width W, C channels): output j's window covers rows
     * [h0, h1) and columns [j*sw - pl, j*sw - pl + kw) clipped to the image; y[j][c] = its first maximum in
     * row-major order, arg[j][c] that maximum's offset in x. */
    void (*max_row)(const float *x, int W, int C, int h0, int h1, int ow, int kw, int sw, int pl, float *y,
                    int32_t *arg);
} cnn_loops;

/* The loops of the path kernels/isa.h chose. */
const cnn_loops *cnn_loops_current(void);

extern const cnn_loops cnn_loops_generic, cnn_loops_avx2, cnn_loops_avx512;

#endif
