/* What the convolution layers share: Keras's options and padding rules, the splitting of a batch into units
 * and chunks, the lowering (patches copied by im2col, or read in place by cnn_gemm_gather of kernels/gemm.h
 * through offset tables), col2im, and the depthwise kernels (DepthwiseConv2D and the first half of
 * SeparableConv2D).
 *
 * Lowered layout, for a chunk of m images of P = oh*ow output pixels and K = kh*kw*cin:
 *   patches (m*P, K)   row = (image, oy, ox), column = (ky, kx, c): the Keras kernel (kh, kw, cin, cout)
 * viewed as (K, cout) multiplies it directly, and every (ky, kx) block is a contiguous run of an input row
 * (im2col copies such runs; the gathered GEMM reads them where they are). */
#ifndef CNN_LAYERS_CONV_COMMON_H
#define CNN_LAYERS_CONV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "layers/layer.h"

typedef enum { CNN_PAD_VALID = 0, CNN_PAD_SAME = 1 } cnn_padding;

/* Options common to every 2-D convolution. */
typedef struct cnn_conv_opts {
    int kernel[2];   /* kh, kw */
    int strides[2];  /* sh, sw */
    int dilation[2]; /* dh, dw */
    int padding;     /* cnn_padding */
} cnn_conv_opts;

/* Everything the loops need: input, kernel, strides, output and the zero padding before the first row and
 * column (the rest of the total padding, if any, lies after the last ones). */
typedef struct cnn_conv_geom {
    int ih, iw, cin;
    int kh, kw;
    int sh, sw;
    int dh, dw;
    int oh, ow;
    int pt, pl;
} cnn_conv_geom;

/* Reads kernel_size (required), strides, padding (valid|same) and dilation_rate into c, keeping the first
 * failure in e. */
void cnn_conv_read_opts(cnn_opts *o, cnn_conv_opts *c, cnn_first_error *e);
/* Keras/TensorFlow output length of one axis, and the padding before it (same: total padding
 * max((out-1)*s + k_eff - in, 0), the smaller half first). Returns 0, or -1 when no output fits. */
int cnn_conv_out_len(int in, int k, int s, int d, int padding, int *out, int *pad_before);
/* Fills g for layer l's input, or fails naming the layer (rank-1 input, kernel larger than the input). */
int cnn_conv_geometry(const cnn_layer *l, const cnn_conv_opts *c, cnn_conv_geom *g);
/* "3x3 s2 same" (stride and dilation only when not 1). */
int cnn_conv_describe(const cnn_conv_opts *c, char *buf, size_t cap);

static inline size_t cnn_conv_pixels(const cnn_conv_geom *g)
{
    return (size_t)g->oh * g->ow;
}
static inline size_t cnn_conv_k(const cnn_conv_geom *g)
{
    return (size_t)g->kh * g->kw * g->cin;
}
/* A 1x1, stride-1 convolution: the input already is the lowered matrix. */
static inline int cnn_conv_is_pointwise(const cnn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1;
}

/* How Conv2D splits a batch of n images: `units` contiguous ranges of images, each processed by one thread
 * from lowering to GEMM to bias and activation (so the patches are still in that core's cache when the GEMM
 * reads them, and no barrier separates the steps), `chunk` images at a time inside a unit. The split depends
 * only on n, the geometry and the budgets, never on the thread count, and each unit sums its own gradient
 * partials that are then added in unit order: results are bit-identical for any number of threads. */
typedef struct cnn_conv_plan {
    int units;
    int chunk;
    size_t cols;    /* floats of one unit's lowering buffer: chunk * P * K (0 for a pointwise kernel) */
    size_t pad;     /* floats of one unit's padded images: chunk * hp * wp * cin (0 when not needed) */
    size_t partial; /* floats of one unit's gradient partial sums: K * filters + filters */
    size_t shared;  /* floats shared by all units: the transposed kernel (K * filters), or a deep layer's
                       packed kernels (kernels/gemm.h) */
    size_t tables;  /* slots shared by all units: the gather tables, chunk * P + K ints */
} cnn_conv_plan;

#define CNN_CONV_UNITS          32  /* at most; fewer for small batches or huge layers */
#define CNN_CONV_MIN_ROWS       128 /* GEMM rows (images x pixels) a deep layer's unit gets, batch allowing */
#define CNN_CONV_DEEP_CIN       256 /* input channels from which a layer is deep (cnn_conv_is_deep) */
#define CNN_CONV_BUDGET         ((size_t)1 << 20) /* bytes of one unit's chunk: patches + output (about an L2) */
#define CNN_CONV_PARTIAL_BUDGET ((size_t)128 << 20) /* bytes of all units' gradient partials together */
#define CNN_CONV_COLS_BUDGET    ((size_t)64 << 20)  /* bytes of all units' lowering buffers together */

/* Layers with CNN_CONV_DEEP_CIN or more input channels (VGG16's block3_conv2 on) get chunks and units of at
 * least CNN_CONV_MIN_ROWS GEMM rows where the budget and the batch allow. Only deep layers: the plan decides
 * the order in which dW's partial sums add up, and the study's other models (no layer this deep:
 * test_conv_frozen checks models/seed and models/extra) keep the plans, and so the bits, their recorded
 * results were computed with. */
static inline int cnn_conv_is_deep(const cnn_conv_geom *g)
{
    return g->cin >= CNN_CONV_DEEP_CIN;
}

/* The split of n images for layer geometry g with `filters` outputs. Non-decreasing in n, so a workspace
 * planned for the largest batch fits every smaller one. */
cnn_conv_plan cnn_conv_plan_for(const cnn_conv_geom *g, int filters, int n);
static inline size_t cnn_conv_plan_floats(const cnn_conv_plan *p)
{
    return (size_t)p->units * (p->cols + p->pad + p->partial) + p->shared + p->tables;
}
/* Images [*first, *first + *count) of unit u. */
void cnn_conv_unit_range(const cnn_conv_plan *p, int u, int n, int *first, int *count);
/* The per-unit lowering budget in bytes; 0 restores CNN_CONV_BUDGET. For tests and measurements: a workspace
 * planned under one budget may be too small under another. */
void cnn_conv_set_budget(size_t bytes);
size_t cnn_conv_get_budget(void);

/* cols (n*P, K) <- the patches of n images x (on the calling thread). */
void cnn_im2col(const cnn_conv_geom *g, const float *x, int n, float *cols);
/* dx (n images) <- the patch gradients dcols (n*P, K) summed back onto the pixels they came from (on the
 * calling thread). dx is overwritten; each pixel sums its contributions in a fixed order. */
void cnn_col2im(const cnn_conv_geom *g, const float *dcols, int n, float *dx);

/* Images padded for in-place patch reading: hp x wp x cin, the input at row pt and column pl, zeros around,
 * as large as the last patch reaches. */
void cnn_conv_padded_size(const cnn_conv_geom *g, int *hp, int *wp);
/* 0 when the padded image is the image itself (valid padding whose patches end inside it). */
int cnn_conv_needs_padding(const cnn_conv_geom *g);
/* xp (n padded images) <- x (n images). */
void cnn_conv_pad(const cnn_conv_geom *g, const float *x, int n, float *xp);
/* The same with the values rounded to BF16 on the way (cnn_bf16_round of kernels/gemm_bf16.h: the BF16
 * products only), the images of cnn_gemm_gather_bf16 in one pass. */
void cnn_conv_pad_bf16(const cnn_conv_geom *g, const float *x, int n, uint16_t *xp);
/* pix[r]: offset of output pixel r's first tap in n padded images (r < n*P); tap[k]: offset of tap k from
 * it (k < K). */
void cnn_conv_gather_tables(const cnn_conv_geom *g, int n, int *pix, int *tap);

/* Partial sums of units: dst[e] = sum over u of src[u * stride + e], u ascending, for e < len. */
void cnn_conv_sum_partials(const float *src, size_t stride, int units, size_t len, float *dst);

/* y (rows, cols) <- act(y + b); b may be NULL. When z is not NULL it receives y + b (for activations whose
 * derivative needs the input). */
void cnn_conv_bias_act(cnn_activation a, float *y, const float *b, float *z, size_t rows, int cols);

/* Depthwise kernels, k (kh, kw, cin, dm); output channel c*dm + m comes from input channel c.
 *   y (n, oh, ow, cin*dm) <- depthwise(x) + b (b may be NULL; no activation) */
void cnn_dw_forward(const cnn_conv_geom *g, int dm, const float *x, const float *k, const float *b, float *y,
                    int n);
/* dk <- sum over the batch of x (*) dy; partial holds n * kh*kw*cin*dm floats of per-image sums, reduced over
 * the images in order, so the result does not depend on the thread count. */
void cnn_dw_backward_kernel(const cnn_conv_geom *g, int dm, const float *x, const float *dy, float *dk,
                            float *partial, int n);
/* dx <- the input gradient of dy through k (overwritten). */
void cnn_dw_backward_input(const cnn_conv_geom *g, int dm, const float *dy, const float *k, float *dx, int n);

#endif
