/* The memory-bound loops outside the GEMM that decide a training step's speed, compiled once per
 * instruction-set path like the GEMM kernels (loops.inc, included by loops_generic.c, loops_avx2.c and
 * loops_avx512.c with their own target flags): the rest of the library is compiled for the x86-64-v2
 * baseline, where these loops ran up to 2x slower than with AVX-512. The code is the same C on every path,
 * with no reassociation and no fused multiply-adds (ISO C mode), so every path gives the same bits. */
#ifndef CNN_KERNELS_LOOPS_H
#define CNN_KERNELS_LOOPS_H

#include <stdint.h>

/* The taps of a thin convolution read in place from one (zero-padded) image, where im2col would copy them:
 * output pixel (oy, ox)'s tap k is x[oy * row + ox * col + tap[k]], the value im2col's column k holds. */
typedef struct cnn_taps {
    const float *x;
    int row, col;   /* offset of one output row's, one output column's first tap */
    int K;          /* taps, at most 16 */
    const int *tap; /* K offsets */
} cnn_taps;

/* The largest pooling window thin_pool_row takes. */
#define CNN_MAX_WINDOW 64

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
    /* One row of windows of a max pooling (kh x kw windows tiling rows [oy0, oy0 + kh) of a thin
     * convolution's output, W positions wide, pw windows; kh * kw <= CNN_MAX_WINDOW) over that output
     * computed in registers from the taps read in place: y (pw, F) and arg as max_row gives them for the
     * output thin_forward gives (arg: offsets in the whole output). */
    void (*thin_pool_row)(const cnn_taps *t, int oy0, int kh, int kw, int pw, int W, int F, const float *w,
                          const float *b, int relu, float *y, int32_t *arg);
    /* thin_backward without activation of output rows [oy0, oy0 + nrows) with the taps read in place, for the
     * gradient d (nrows * ow, F): pb (F) += column sums of d (pb may be NULL), pw (K, F) += taps^T d, rows in
     * order; every partial sum adds the same terms in the same order as thin_backward's. */
    void (*thin_rows_backward)(const cnn_taps *t, int oy0, int nrows, int ow, int F, const float *d,
                               float *pw, float *pb);
    /* The gradient of the kh input rows of one row of a max pooling's windows (kh x kw windows tiling them,
     * pw of them, the columns after them in none), as the pooling's backward scatters it: d (kh * W, F) = dy
     * at each window's maximum (arg: offsets in the whole input, base: that of these rows' first position), 0
     * there where relu cut it (y <= 0, when relu), 0 elsewhere. */
    void (*pool_grad_rows)(const float *y, const float *dy, const int32_t *arg, int32_t base, int kh, int kw,
                           int pw, int W, int F, int relu, float *d);
} cnn_loops;

/* The loops of the path kernels/isa.h chose. */
const cnn_loops *cnn_loops_current(void);

extern const cnn_loops cnn_loops_generic, cnn_loops_avx2, cnn_loops_avx512;

#endif
