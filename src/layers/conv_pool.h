/* A thin convolution (few taps, e.g. 3x3 on a gray image: the first layer of the study's CNNs) fused with the
 * MaxPooling2D after it. The convolution's output is the largest tensor of such a model and memory-bound to
 * write, pool, scatter gradients into and read back; fused, it is never written: forward convolves each
 * pooling window's positions in vector registers, reading the taps in place from the (padded) image, and
 * keeps only the window's maximum and its offset; backward rebuilds the convolution's output gradient a row
 * of windows at a time in a per-thread buffer that stays in cache (from the pooled gradient and the argmax
 * table) and sums the dW/db partials over it in registers. Results are bit-identical to the two layers run
 * one after the other: every value and partial sum adds the same terms in the same order with the same
 * operations, and the units of images and their partial sums are the convolution's own.
 *
 * The model (model/step.c) fuses a pair only where the convolution is its first layer (no gradient for the
 * input is ever needed) and runs the two layers' forward and backward through these calls; the convolution's
 * own output buffer is then left unwritten. */
#ifndef CNN_LAYERS_CONV_POOL_H
#define CNN_LAYERS_CONV_POOL_H

#include "layers/layer.h"

/* 1 when conv is a Conv2D on the thin path and pool a MaxPooling2D whose windows tile conv's output without
 * overlap (padding valid, strides = pool_size). */
int cnn_conv_pool_fusable(const cnn_layer *conv, const cnn_layer *pool);
/* y (pool's output) and pool's argmax scratch, as the two forward passes would leave them, from x. */
void cnn_conv_pool_forward(cnn_layer *conv, cnn_layer *pool, const cnn_ctx *ctx, const float *x, float *y,
                           int n);
/* conv's parameter gradients from x, the pooled output y and its gradient dy (no input gradient). */
void cnn_conv_pool_backward(cnn_layer *conv, const cnn_layer *pool, const cnn_ctx *ctx, const float *x,
                            const float *y, const float *dy, int n);

/* For the above (pooling.c): the window of a MaxPooling2D layer whose windows tile its input without overlap;
 * 0 for any other layer. */
int cnn_max_pool_tiles(const cnn_layer *l, int *kh, int *kw);

#endif
