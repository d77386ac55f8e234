/* Conv2D: y = f(conv(x, W) + b), Keras semantics (NHWC, padding valid|same with TensorFlow's split of odd
 * padding, strides, dilation_rate).
 *
 *   x     (n, ih, iw, cin)
 *   W     (kh, kw, cin, filters)   Keras kernel layout = a (K, filters) matrix, K = kh*kw*cin
 *   b     (filters)
 *   y     (n, oh, ow, filters)     = (n*P, filters), P = oh*ow
 *   work  see unit_ws: per unit the patches of a chunk of images (chunk*P, K), its padded images and the
 *         dW/db partial sums; shared W^T and the gather tables (conv_common.h)
 *
 * The convolution is a GEMM per chunk of images: y_chunk = patches_chunk W. The batch is split into units of
 * images (cnn_conv_plan_for); one thread does everything for a unit, chunk by chunk (patches, GEMM, bias,
 * activation), so the data stay in that core's cache and the threads never wait for each other inside a
 * layer. A chunk keeps the buffers within a budget: a whole batch of VGG-sized images would lower to
 * gigabytes. The GEMMs read the patches in place from the images (zero-padded copies when the padding needs
 * it) through offset tables: no im2col (which only the thin kernels below use). Backward reads
 * the patches again from x rather than keeping them from forward (P*K floats per sample would multiply the
 * activation memory by K): dW  = sum over units of (sum over the unit's chunks of patches^T dy), added in
 * unit order db  = the same for the column sums of dy dx  = col2im(dy W^T), chunk by chunk into the chunk's
 * own images A 1x1 stride-1 kernel needs no lowering: x already is the (n*P, cin) matrix. Kernels with few
 * taps (K <= SMALL_K, e.g. a 3x3 on a gray image) with relu or no activation use thin loops
 * (kernels/loops.h): a GEMM is slow at such a thin inner dimension, and these apply the activation on the fly
 * and do backward in one pass over dy.
 *
 * A frozen layer (trainable = false: backward needs dx only) with stride 1, no dilation, a kernel with taps
 * and at least DX_CONV_MIN_CIN input channels computes dx as a convolution instead (dx_conv below): the
 * zero-padded dy convolved with the flipped, channel-transposed kernel, through the same gathered GEMM as
 * forward. No patch gradients are written and read back (9x dx for a 3x3 kernel): that made a frozen layer's
 * backward cost 1.3-1.5x its forward (VGG16's base, issue 8). Its sums run in another order than col2im's,
 * so its dx differs from the trainable layer's in the last bits; the only non-VGG model of the study with
 * frozen Conv2D layers, Model_11_igen_f, freezes every layer, so no backward runs through them (step.c
 * starts backward at the first trained layer) and the study's other results keep their bits.
 *
 * Deep layers (cnn_conv_is_deep: 256 or more input channels, VGG16's block3_conv2 on, no other model of the
 * study) compute dx that way when trainable too, and read their kernels packed into 64-column panels
 * (kernels/gemm.h, cnn_gemm_gather_packed: the same bits as reading them in place). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"
#include "kernels/loops.h"
#include "kernels/winograd.h"
#include "layers/activation.h"
#include "layers/conv_common.h"
#include "layers/conv_pool.h"
#include "layers/layer.h"

typedef struct conv2d_cfg {
    int filters;
    int use_bias;
    float l1, l2;
    cnn_conv_opts conv;
    cnn_conv_geom g;
} conv2d_cfg;

static int conv2d_configure(cnn_layer *l, cnn_opts *o)
{
    conv2d_cfg *c = l->cfg;
    cnn_first_error e = {0};
    cnn_first_error_keep(&e, cnn_opts_int(o, "filters", 0, 1, 1 << 20, &c->filters));
    cnn_conv_read_opts(o, &c->conv, &e);
    cnn_first_error_keep(&e, cnn_opts_bool(o, "use_bias", 1, &c->use_bias));
    cnn_first_error_keep(&e, cnn_layer_read_activation(l, o));
    cnn_first_error_keep(&e, cnn_layer_read_regularizer(o, &c->l1, &c->l2));
    return cnn_first_error_result(&e);
}

static int conv2d_build(cnn_layer *l)
{
    conv2d_cfg *c = l->cfg;
    int rc = cnn_isa_check();            /* an unusable CNNLAB_ISA fails here, before any kernel runs */
    if (!rc) rc = cnn_conv_algo_check(); /* and an unknown CNNLAB_CONV */
    if (!rc) rc = cnn_conv_geometry(l, &c->conv, &c->g);
    if (rc) return rc;
    const cnn_conv_geom *g = &c->g;
    const int taps = g->kh * g->kw;
    l->out = cnn_shape_hwc(g->oh, g->ow, c->filters);
    int k = cnn_layer_add_param(l, "kernel", 4, (int[]){g->kh, g->kw, g->cin, c->filters}, 1,
                                CNN_INIT_GLOROT_UNIFORM, taps * g->cin, taps * c->filters);
    if (k < 0) return k;
    l->params[k].l1 = c->l1;
    l->params[k].l2 = c->l2;
    if (c->use_bias) {
        int b = cnn_layer_add_param(l, "bias", 1, (int[]){c->filters}, 1, CNN_INIT_ZEROS, 0, 0);
        if (b < 0) return b;
    }
    /* GELU's derivative needs the pre-activation, kept per sample. */
    l->scratch_per_sample = cnn_act_needs_input(l->act_run) ? cnn_shape_size(l->out) : 0;
    return CNN_OK;
}

/* ---------------------------------------------------------------- thin kernels */

/* The thin path's largest K (its loops are in kernels/loops.h). */
enum { SMALL_K = 16 };

static int thin(const cnn_layer *l)
{
    const conv2d_cfg *c = l->cfg;
    return cnn_conv_k(&c->g) <= SMALL_K && !l->scratch &&
           (l->act_run == CNN_ACT_RELU || l->act_run == CNN_ACT_LINEAR);
}

/* Where the fused pass's images start in the workspace: after the plan's, on a cache line (a misaligned
 * image made its loops 1.5x slower). */
static size_t fused_offset(const cnn_conv_plan *p)
{
    return cnn_float_lines(cnn_conv_plan_floats(p));
}

/* ---------------------------------------------------------------- a frozen layer's dx as a convolution */

/* The dx GEMM's columns are the input channels: below this many, its tiles (64 columns on AVX-512) would run
 * mostly empty, and such layers (VGG16's block1_conv1 on RGB) keep col2im. */
enum { DX_CONV_MIN_CIN = 32 };

/* Geometries that allow dx as a convolution. Their workspace has room for it whether or not the layer is
 * frozen now: cnn_model_set_trainable may freeze it after the workspace was planned. Never thin (K >= 64). */
static int dx_conv_fits(const conv2d_cfg *c)
{
    const cnn_conv_geom *g = &c->g;
    return g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && !cnn_conv_is_pointwise(g) &&
           g->cin >= DX_CONV_MIN_CIN;
}

/* Frozen layers, and deep ones (cnn_conv_is_deep: VGG16's block3_conv2 on, no other model of the study has
 * one) trainable or not: block5's trainable dx by col2im cost a transposed copy of its 9.4 MB kernel and
 * patch gradients 9x dx written and read back, on top of the same GEMM. With --precision bf16, every layer
 * that fits: col2im, the same in both precisions, took about a sixth of the time of Model_2_s2's BF16
 * products, while the convolution reads dy rounded once, in place (fp32 keeps col2im, and its bits). */
static int dx_conv(const cnn_layer *l)
{
    const conv2d_cfg *c = l->cfg;
    return (!l->trainable || cnn_conv_is_deep(&c->g) || cnn_gemm_bf16_on()) && dx_conv_fits(c);
}

/* Deep layers read their kernels packed (kernels/gemm.h: at 512 channels their rows lie 2 KB apart), in the
 * shared slot of the plan, packed again on every call (the weights may have changed). */
static int packs(const cnn_layer *l)
{
    const conv2d_cfg *c = l->cfg;
    return cnn_conv_is_deep(&c->g);
}

/* The convolution whose output is dx: dy (oh x ow x filters) padded by kh-1-pt rows before, read by the
 * flipped kernel. Its output pixel iy at flipped tap ky' = kh-1-ky reads dy row iy + ky' - (kh-1-pt) =
 * iy + pt - ky: the output row that read input row iy at tap ky in forward (the same for columns). */
static cnn_conv_geom dx_geom(const conv2d_cfg *c)
{
    const cnn_conv_geom *g = &c->g;
    return (cnn_conv_geom){.ih = g->oh,
                           .iw = g->ow,
                           .cin = c->filters,
                           .kh = g->kh,
                           .kw = g->kw,
                           .sh = 1,
                           .sw = 1,
                           .dh = 1,
                           .dw = 1,
                           .oh = g->ih,
                           .ow = g->iw,
                           .pt = g->kh - 1 - g->pt,
                           .pl = g->kw - 1 - g->pl};
}

/* Floats of one unit's padded dy for a chunk (on cache lines); 0 where dx_conv_fits fails. */
static size_t dx_pad_floats(const conv2d_cfg *c, const cnn_conv_plan *p)
{
    if (!dx_conv_fits(c)) return 0;
    const cnn_conv_geom d = dx_geom(c);
    int hp, wp;
    cnn_conv_padded_size(&d, &hp, &wp);
    return ((size_t)p->chunk * hp * wp * d.cin + 15) / 16 * 16;
}

/* All units' padded dy, then the dx convolution's gather tables (chunk * ih * iw + kh * kw * filters ints).
 */
static size_t dx_conv_floats(const conv2d_cfg *c, const cnn_conv_plan *p)
{
    if (!dx_conv_fits(c)) return 0;
    const cnn_conv_geom d = dx_geom(c);
    return (size_t)p->units * dx_pad_floats(c, p) + (size_t)p->chunk * cnn_conv_pixels(&d) + cnn_conv_k(&d);
}

/* Floats of one padded input image. */
static size_t padded_image(const cnn_conv_geom *g)
{
    int hp, wp;
    cnn_conv_padded_size(g, &hp, &wp);
    return (size_t)hp * wp * g->cin;
}

/* Floats per unit of the pass fused with pooling (conv_pool.h): room for a convolved image's gradient
 * (backward uses a few of its rows at a time) and the padded input image, each on cache lines. */
static size_t fused_floats(const cnn_layer *l)
{
    const conv2d_cfg *c = l->cfg;
    return thin(l)
               ? cnn_float_lines(cnn_conv_pixels(&c->g) * c->filters) + cnn_float_lines(padded_image(&c->g))
               : 0;
}

/* ---------------------------------------------------------------- Winograd F(2x2, 3x3) */

/* Winograd (kernels/winograd.h) computes 3x3, stride-1, undilated convolutions with up to 2.25x fewer
 * multiply-adds, forward and for dx (dW stays direct), where it pays for its transforms (which read and write
 * 4 floats per input and output value and channel, and the 16 / 9 larger transformed kernel on every call).
 * One Zen 4 core, batch 64, direct / Winograd time, forward (frozen backward, trainable backward), avx512 and
 * avx2 (bench/winograd_layers.c, docs/bench-logs/2026-12-02-wino/):
 *   64 to 512 channels, outputs from 56x56 down to 4x4 (VGG16's blocks 1-4): 1.3-2.0x (1.1-1.9x);
 *   512 channels at 2x2 (block5 at 32x32 input: one tile per image): 1.4-1.65x (1.1-1.3x);
 *   512 channels at 3x3 (block5 at 56x56: 4 tiles for 9 outputs, 16 x 4 / 9 = 7.1 products per output
 *   against 9): 0.9-1.07x, so a layer must save at least WINO_MIN_SAVING of the multiply-adds (7x7 saves
 *   1.72x, 5x5 1.56x, 3x3 1.27x, 1x1 none). 5x5 does not pay either: Model_2_s2's conv2d_2 (64 -> 64, 7x7
 *   valid) took 4.87 + 13.79 ms forward + backward on Winograd against 4.79 + 11.71 ms direct (cnnlab profile
 *   Model_2_s2, 2 threads, quiet machine; docs/bench-logs/2026-12-02-quiet-bfb65ce/ against
 *   2026-12-02-quiet-b53a59b/);
 *   32 -> 32, 32 -> 64 and 64 -> 32 channels at 28x28 and 14x14: 1.2-1.5x (1.0-1.4x): they would gain too,
 *   but both channel counts must reach WINO_MIN_CHANNELS so that the study's narrow models (Model_1,
 *   Model_2, ...) keep the bits of their recorded results.
 * The study's models other than VGG16's with such a layer get Winograd's rounding, which differs from the
 * direct sums' in the last bits (test_winograd lists them). CNNLAB_CONV=direct turns it off. */
enum { WINO_MIN_CHANNELS = 64 };
#define WINO_MIN_SAVING 1.6

/* The direct algorithm's multiply-adds over Winograd's: 9 per output against 16 per 2x2 tile. */
static double wino_saving(const cnn_conv_geom *g)
{
    return 9.0 * g->oh * g->ow / (16.0 * ((g->oh + 1) / 2) * ((g->ow + 1) / 2));
}

/* The geometries Winograd takes (their workspace is planned whether or not CNNLAB_CONV allows it now), all
 * 3x3 stride-1 undilated ones when cnn_wino_allow(2) (measurements of the rule, bench/winograd_layers.c). */
static int wino_fits(const conv2d_cfg *c)
{
    const cnn_conv_geom *g = &c->g;
    const int rule =
        g->cin >= WINO_MIN_CHANNELS && c->filters >= WINO_MIN_CHANNELS && wino_saving(g) >= WINO_MIN_SAVING;
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           (rule || cnn_wino_allowed() == 2);
}

static int wino(const cnn_layer *l)
{
    return wino_fits(l->cfg) && cnn_wino_allowed();
}

static cnn_wino_geom wino_geom(const conv2d_cfg *c)
{
    const cnn_conv_geom *g = &c->g;
    return (cnn_wino_geom){g->ih, g->iw, g->cin, g->oh, g->ow, c->filters, g->pt, g->pl};
}

/* dx = dy convolved with the rotated, channel-swapped kernel (as dx_geom). */
static cnn_wino_geom wino_dx_geom(const conv2d_cfg *c)
{
    const cnn_conv_geom *g = &c->g;
    return (cnn_wino_geom){g->oh, g->ow, c->filters, g->ih, g->iw, g->cin, 2 - g->pt, 2 - g->pl};
}

/* Floats of the slot of the transformed kernel, forward's or dx's (their packed panels round up different
 * columns), on cache lines. */
static size_t wino_kernel_slot(const conv2d_cfg *c)
{
    const size_t f = cnn_wino_kernel_floats(c->g.cin, c->filters),
                 d = cnn_wino_kernel_floats(c->filters, c->g.cin);
    return cnn_float_lines(f > d ? f : d);
}

/* The transformed kernel, on cache lines, then the driver's workspace for forward or dx, or dx's flipped
 * kernel (used before the driver starts), whichever needs most; 0 for the other geometries. */
static size_t wino_floats(const conv2d_cfg *c, int n)
{
    if (!wino_fits(c)) return 0;
    const cnn_wino_geom f = wino_geom(c), d = wino_dx_geom(c);
    const size_t u = wino_kernel_slot(c);
    const size_t wf = cnn_wino_work_floats(&f, n), wd = cnn_wino_work_floats(&d, n);
    const size_t flipped = 9 * (size_t)c->g.cin * c->filters, w = wf > wd ? wf : wd;
    return u + (w > flipped ? w : flipped);
}

/* The bias and activation of forward over pixels the driver has finished. */
typedef struct wino_epilogue {
    cnn_activation act;
    float *y, *z;
    const float *b;
    int F;
} wino_epilogue;

static void wino_bias_act(void *arg, int first, int count)
{
    const wino_epilogue *e = arg;
    const size_t o = (size_t)first * e->F;
    cnn_conv_bias_act(e->act, e->y + o, e->b, e->z ? e->z + o : NULL, (size_t)count, e->F);
}

/* The kernel is transformed on every call: the weights may have changed since the last one. */
static void wino_forward(const cnn_layer *l, float *work, const float *x, float *y, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_wino_geom g = wino_geom(c);
    wino_epilogue e = {.act = l->act_run,
                       .y = y,
                       .z = l->scratch,
                       .b = c->use_bias ? cnn_layer_param(l, 1) : NULL,
                       .F = c->filters};
    cnn_wino_kernel(cnn_layer_param(l, 0), g.cin, g.cout, work);
    cnn_wino_conv(&g, n, x, work, y, work + wino_kernel_slot(c), wino_bias_act, &e);
}

static void flip_kernel(const cnn_conv_geom *g, int F, const float *w, float *wf, int packed);

/* dx from dy (after the activation gradient): the kernel is rotated and channel-swapped (flip_kernel, where
 * the driver's workspace will be) and transformed as forward's. */
static void wino_dx(const cnn_layer *l, float *work, const float *dy, float *dx, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_wino_geom g = wino_dx_geom(c);
    float *u = work, *rest = work + wino_kernel_slot(c);
    /* w' in Keras's layout, in the driver's workspace before the driver uses it */
    flip_kernel(&c->g, c->filters, cnn_layer_param(l, 0), rest, 0);
    cnn_wino_kernel(rest, g.cin, g.cout, u);
    cnn_wino_conv(&g, n, dy, u, dx, rest, NULL, NULL);
}

/* The plan's workspace, then the fused pass's floats per unit (thin layers) or the dx convolution's buffers
 * (frozen layers that fit it): never both, since thin layers have K <= 16 and dx_conv_fits needs cin >= 32.
 */
static size_t conv2d_workspace(const cnn_layer *l, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_plan p = cnn_conv_plan_for(&c->g, c->filters, n);
    const size_t direct = fused_offset(&p) + (size_t)p.units * fused_floats(l) + dx_conv_floats(c, &p);
    const size_t wino = wino_floats(c, n);
    return direct > wino ? direct : wino;
}

/* ---------------------------------------------------------------- forward and backward */

/* The GEMMs read the patches in place from the (padded) images through offset tables: no im2col. */
static int gathered(const cnn_layer *l)
{
    const conv2d_cfg *c = l->cfg;
    return !cnn_conv_is_pointwise(&c->g) && !thin(l);
}

/* A unit's slices of the workspace: units x cols | units x pad | units x partial | W^T | gather tables. */
typedef struct unit_ws {
    float *cols;      /* patches (im2col), or the patch gradients of dx; the BF16 images of bf16_images */
    size_t ncols;     /* floats at cols */
    float *pad;       /* padded images for the gathered GEMMs, NULL when the images need no padding */
    float *pw, *pb;   /* dW and db partial sums (pb NULL without bias) */
    float *wt;        /* W^T (filters, K), or the flipped kernel of dx_conv, shared */
    int *pix, *tap;   /* the gather tables, shared */
    float *dyp;       /* dx_conv: the padded dy of a chunk (NULL where dx_conv_fits fails) */
    int *dpix, *dtap; /* dx_conv: its gather tables, shared */
} unit_ws;

static unit_ws unit_slices(const cnn_layer *l, const cnn_conv_plan *p, float *work, int u)
{
    const conv2d_cfg *c = l->cfg;
    const size_t U = (size_t)p->units;
    float *shared = work + U * (p->cols + p->pad + p->partial);
    unit_ws w = {.cols = work + u * p->cols,
                 .ncols = p->cols,
                 .pad = p->pad ? work + U * p->cols + u * p->pad : NULL,
                 .pw = work + U * (p->cols + p->pad) + u * p->partial,
                 .wt = shared,
                 .pix = (int *)(shared + p->shared)};
    w.pb = c->use_bias ? w.pw + cnn_conv_k(&c->g) * c->filters : NULL;
    w.tap = w.pix + (size_t)p->chunk * cnn_conv_pixels(&c->g);
    if (dx_conv_fits(c)) {
        float *d = work + fused_offset(p);
        w.dyp = d + u * dx_pad_floats(c, p);
        w.dpix = (int *)(d + U * dx_pad_floats(c, p));
        w.dtap = w.dpix + (size_t)p->chunk * c->g.ih * c->g.iw;
    }
    return w;
}

/* The images the gathered GEMMs read: padded into the unit's buffer, or x itself. */
static const float *padded(const cnn_layer *l, const unit_ws *w, const float *x, int cnt)
{
    const conv2d_cfg *c = l->cfg;
    if (!w->pad) return x;
    cnn_conv_pad(&c->g, x, cnt, w->pad);
    return w->pad;
}

/* --precision bf16: the images that a gathered product reads for cnt images x of geometry g (padded when
 * pad), rounded to BF16 once, in the padding's pass, into the unit's lowering buffer (free while those
 * products run: only the patch gradients of col2im use it, after them), so that the BF16 kernel does not
 * round each value at every tap that reads it; with pair_step > 0 also their pair image after them
 * (kernels/gemm.h), where the buffer has room. Returns 0 (leaving *h empty) in fp32, or where the buffer is
 * too small: the caller then pads the FP32 images and the kernel rounds their values itself, to the same
 * bits. */
static int bf16_images(const unit_ws *w, const cnn_conv_geom *g, const float *x, int cnt, int pad,
                       long pair_step, cnn_bf16_images *h)
{
    *h = (cnn_bf16_images){NULL, NULL, 0};
    const size_t n = (size_t)cnt * (pad ? padded_image(g) : (size_t)g->ih * g->iw * g->cin),
                 half = cnn_float_lines((n + 1) / 2);
    if (!cnn_gemm_bf16_on() || half > w->ncols) return 0;
    uint16_t *a16 = (uint16_t *)w->cols;
    if (pad)
        cnn_conv_pad_bf16(g, x, cnt, a16);
    else
        cnn_bf16_round(x, n, a16);
    h->a16 = a16;
    if (pair_step <= 0 || half + n > w->ncols) return 1;
    cnn_bf16_pair_image(a16, n, pair_step, (uint32_t *)(w->cols + half));
    *h = (cnn_bf16_images){a16, (const uint32_t *)(w->cols + half), pair_step};
    return 1;
}

/* C (M x N) (+)= the gathered product of gemm.h with A from the images a (or their BF16 copy h where there
 * is one) and B (N columns) packed (kernels/gemm.h) or in place. */
static void gather(int M, int N, int P, const float *a, const cnn_bf16_images *h, const int *ri,
                   const int *po, const float *b, int packed, float *c, int accumulate)
{
    if (h && packed)
        cnn_gemm_gather_packed_bf16(M, N, P, h, ri, po, b, c, N, accumulate);
    else if (h)
        cnn_gemm_gather_bf16(M, N, P, h, ri, po, b, N, c, N, accumulate);
    else if (packed)
        cnn_gemm_gather_packed(M, N, P, a, ri, po, b, c, N, accumulate);
    else
        cnn_gemm_gather(M, N, P, a, ri, po, b, N, c, N, accumulate);
}

/* The gathered product over cnt images x: forward's patches W, or dW's patches^T dy. dW pairs neighbouring
 * output pixels, sw * cin apart in the images while a row of them has an even width (then no pair spans two
 * rows): there the kernel reads the images' pair image in place; elsewhere it packs the pairs from the FP32
 * images (packing them from BF16 ones measured no faster: Model_2_s2's conv2d_2, 5 x 5 pixels). */
static void gather_patches(const cnn_layer *l, const unit_ws *w, const float *x, int cnt, int dw,
                           const float *b, float *c, int accumulate)
{
    const conv2d_cfg *cf = l->cfg;
    const cnn_conv_geom *g = &cf->g;
    const int F = cf->filters, K = (int)cnn_conv_k(g), rows = cnt * (int)cnn_conv_pixels(g);
    cnn_bf16_images h;
    const long pair_step = dw && g->ow % 2 == 0 ? (long)g->sw * g->cin : 0;
    const int bf16 = (!dw || pair_step) && bf16_images(w, g, x, cnt, w->pad != NULL, pair_step, &h);
    const float *a = bf16 ? NULL : padded(l, w, x, cnt);
    if (dw)
        gather(K, F, rows, a, bf16 ? &h : NULL, w->tap, w->pix, b, 0, c, accumulate);
    else
        gather(rows, F, K, a, bf16 ? &h : NULL, w->pix, w->tap, b, packs(l), c, accumulate);
}

/* y_chunk (rows, F) = act(patches W + b) for cnt images x. */
static void forward_chunk(const cnn_layer *l, const unit_ws *w, const float *x, int cnt, float *y, float *z)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, K = (int)cnn_conv_k(g), rows = cnt * (int)cnn_conv_pixels(g);
    const float *k = cnn_layer_param(l, 0), *b = c->use_bias ? cnn_layer_param(l, 1) : NULL;
    if (gathered(l)) {
        gather_patches(l, w, x, cnt, 0, packs(l) ? w->wt : k, y, 0);
    } else {
        const float *a = x;
        if (!cnn_conv_is_pointwise(g)) {
            cnn_im2col(g, x, cnt, w->cols);
            a = w->cols;
        }
        if (thin(l)) {
            cnn_loops_current()->thin_forward(rows, K, F, a, k, b, l->act_run == CNN_ACT_RELU, y);
            return;
        }
        cnn_gemm(rows, F, K, a, K, 1, k, F, y, F, 0);
    }
    cnn_conv_bias_act(l->act_run, y, b, z, (size_t)rows, F);
}

/* Tables for the gathered GEMMs (once per call: every chunk of every unit has the same layout). */
static void prepare(const cnn_layer *l, const cnn_conv_plan *p, float *work)
{
    const conv2d_cfg *c = l->cfg;
    if (!gathered(l)) return;
    const unit_ws w = unit_slices(l, p, work, 0);
    cnn_conv_gather_tables(&c->g, p->chunk, w.pix, w.tap);
}

/* Forward's kernel packed into the shared slot, for the layers that read it so (packs). */
static void pack_kernel(const cnn_layer *l, const cnn_conv_plan *p, float *work)
{
    const conv2d_cfg *c = l->cfg;
    if (!gathered(l) || !packs(l)) return;
    cnn_gemm_pack_b((int)cnn_conv_k(&c->g), c->filters, cnn_layer_param(l, 0), c->filters,
                    unit_slices(l, p, work, 0).wt);
}

static void conv2d_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_conv_pixels(g) * c->filters;
    if (wino(l)) {
        wino_forward(l, ctx->work, x, y, n);
        return;
    }
    const cnn_conv_plan p = cnn_conv_plan_for(g, c->filters, n);
    prepare(l, &p, ctx->work);
    pack_kernel(l, &p, ctx->work);
    /* Units run in any order on any thread (dynamic: a thread that loses its core to another process does not
     * hold the others back); each writes only its own images, so the result is the same. */
#pragma omp parallel for schedule(dynamic) if (p.units > 1)
    for (int u = 0; u < p.units; u++) {
        const unit_ws w = unit_slices(l, &p, ctx->work, u);
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        for (int i0 = first; i0 < first + count; i0 += p.chunk)
            forward_chunk(l, &w, x + (size_t)i0 * in_img,
                          first + count - i0 < p.chunk ? first + count - i0 : p.chunk,
                          y + (size_t)i0 * out_img, l->scratch ? l->scratch + (size_t)i0 * out_img : NULL);
    }
}

/* acc[j] (+)= sum over rows of dy[r][j]. */
static void add_column_sums(const float *dy, int rows, int F, float *acc)
{
    for (int r = 0; r < rows; r++) {
        const float *restrict d = dy + (size_t)r * F;
        for (int j = 0; j < F; j++) acc[j] += d[j];
    }
}

/* What one chunk of backward reads and writes. */
typedef struct chunk_io {
    const float *x, *y, *z; /* input, output, pre-activation (NULL unless kept) */
    float *dy, *dx;
    int cnt;   /* images */
    int first; /* first chunk of its unit: the dW GEMM overwrites the partials */
    int need_dx;
} chunk_io;

/* dW and db partials of one chunk, after the activation gradient. */
static void weight_grads(const cnn_layer *l, const unit_ws *w, const chunk_io *io)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, K = (int)cnn_conv_k(g), rows = io->cnt * (int)cnn_conv_pixels(g);
    if (gathered(l)) {
        cnn_act_backward(l->act_run, io->z, io->y, io->dy, (size_t)rows, (size_t)F);
        if (w->pb) add_column_sums(io->dy, rows, F, w->pb);
        gather_patches(l, w, io->x, io->cnt, 1, io->dy, w->pw, !io->first);
        return;
    }
    const float *a = io->x;
    if (!cnn_conv_is_pointwise(g)) {
        cnn_im2col(g, io->x, io->cnt, w->cols);
        a = w->cols;
    }
    if (thin(l)) {
        cnn_loops_current()->thin_backward(rows, K, F, a, io->y, io->dy, l->act_run == CNN_ACT_RELU,
                                           io->need_dx, w->pw, w->pb);
        return;
    }
    cnn_act_backward(l->act_run, io->z, io->y, io->dy, (size_t)rows, (size_t)F);
    if (w->pb) add_column_sums(io->dy, rows, F, w->pb);
    cnn_gemm(K, F, rows, a, 1, K, io->dy, F, w->pw, F, !io->first);
}

/* dx of a chunk by dx_conv: the padded dy (after the activation gradient) times the flipped kernel, read in
 * place through the tables as in forward. */
static void dx_conv_chunk(const cnn_layer *l, const unit_ws *w, const chunk_io *io)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom d = dx_geom(c);
    const int rows = io->cnt * (int)cnn_conv_pixels(&d), cin = c->g.cin;
    cnn_bf16_images h;
    const int bf16 = bf16_images(w, &d, io->dy, io->cnt, 1, 0, &h);
    if (!bf16) cnn_conv_pad(&d, io->dy, io->cnt, w->dyp);
    gather(rows, cin, (int)cnn_conv_k(&d), w->dyp, bf16 ? &h : NULL, w->dpix, w->dtap, w->wt, packs(l),
           io->dx, 0);
}

/* One chunk of backward: the activation gradient and the unit's dW/db partials, then dx = col2im(dy W^T). */
static void backward_chunk(const cnn_layer *l, const unit_ws *w, const chunk_io *io)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, K = (int)cnn_conv_k(g), rows = io->cnt * (int)cnn_conv_pixels(g);
    if (l->trainable)
        weight_grads(l, w, io);
    else
        cnn_act_backward(l->act_run, io->z, io->y, io->dy, (size_t)rows, (size_t)F);
    if (!io->need_dx) return;
    if (dx_conv(l)) {
        dx_conv_chunk(l, w, io);
        return;
    }
    if (cnn_conv_is_pointwise(g)) {
        cnn_gemm(rows, K, F, io->dy, F, 1, w->wt, K, io->dx, K, 0);
        return;
    }
    cnn_gemm(rows, K, F, io->dy, F, 1, w->wt, K, w->cols, K, 0);
    cnn_col2im(g, w->cols, io->cnt, io->dx);
}

/* wt (F, K) = W^T, so that dy W^T reads both operands along rows. */
static void transpose_kernel(const float *w, int K, int F, float *wt)
{
#pragma omp parallel for schedule(static) if ((size_t)K * F > 65536)
    for (int f = 0; f < F; f++)
        for (int k = 0; k < K; k++) wt[(size_t)f * K + k] = w[(size_t)k * F + f];
}

/* wf (kh*kw*filters, cin): the kernel flipped in both spatial axes with its channel axes swapped,
 * wf[ky', kx', f, c] = W[kh-1-ky', kw-1-kx', c, f] (tap t' = ky'*kw + kx' reads tap taps-1-t'), row-major or
 * packed (kernels/gemm.h). Copied in blocks of 16 input channels (never across a packed panel), so that reads
 * and writes both run along rows. Pure copies: any split gives the same bits. */
static void flip_kernel(const cnn_conv_geom *g, int F, const float *w, float *wf, int packed)
{
    const int taps = g->kh * g->kw, cin = g->cin, R = taps * F;
#pragma omp parallel for schedule(static) if ((size_t)taps * cin * F > 65536)
    for (int t = 0; t < taps; t++) {
        const float *src = w + (size_t)(taps - 1 - t) * cin * F;
        for (int c0 = 0; c0 < cin; c0 += 16) {
            const int cn = cin - c0 < 16 ? cin - c0 : 16;
            for (int f = 0; f < F; f++) {
                const int r = t * F + f;
                float *dst = wf + (packed ? cnn_gemm_packed_at(R, r, c0) : (size_t)r * cin + c0);
                for (int k = 0; k < cn; k++) dst[k] = src[(size_t)(c0 + k) * F + f];
            }
        }
    }
}

/* The kernel product dx needs, rebuilt on every call (the weights may have changed since the last one), and
 * for dx_conv its tables. */
static void prepare_dx(const cnn_layer *l, const cnn_conv_plan *p, float *work)
{
    const conv2d_cfg *c = l->cfg;
    const unit_ws w = unit_slices(l, p, work, 0);
    if (!dx_conv(l)) {
        transpose_kernel(cnn_layer_param(l, 0), (int)cnn_conv_k(&c->g), c->filters, w.wt);
        return;
    }
    const cnn_conv_geom d = dx_geom(c);
    flip_kernel(&c->g, c->filters, cnn_layer_param(l, 0), w.wt, packs(l));
    cnn_conv_gather_tables(&d, p->chunk, w.dpix, w.dtap);
}

/* The thin loops and the bias sums add to zero; the dW GEMMs overwrite on the unit's first chunk, and a
 * frozen layer has no partials: clearing all of them cost VGG16's frozen block4 layers 8 units x 9.4 MB a
 * call. */
static void clear_partials(const cnn_layer *l, const unit_ws *w, const cnn_conv_plan *p)
{
    const conv2d_cfg *c = l->cfg;
    if (!l->trainable) return;
    if (thin(l))
        memset(w->pw, 0, sizeof(float) * p->partial);
    else if (w->pb)
        memset(w->pb, 0, sizeof(float) * (size_t)c->filters);
}

/* dW and db from the units' partial sums, added in unit order. */
static void sum_partials(const cnn_layer *l, const cnn_conv_plan *p, float *work)
{
    const conv2d_cfg *c = l->cfg;
    const unit_ws w0 = unit_slices(l, p, work, 0);
    cnn_conv_sum_partials(w0.pw, p->partial, p->units, cnn_conv_k(&c->g) * c->filters, cnn_layer_grad(l, 0));
    if (c->use_bias) cnn_conv_sum_partials(w0.pb, p->partial, p->units, c->filters, cnn_layer_grad(l, 1));
}

static void conv2d_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                            float *dx, int n)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_conv_pixels(g) * c->filters;
    const cnn_conv_plan p = cnn_conv_plan_for(g, c->filters, n);
    /* Winograd's dx runs after the units (its workspace overlaps theirs) over dy as they left it. */
    const int wdx = ctx->need_dx && wino(l);
    prepare(l, &p, ctx->work);
    if (ctx->need_dx && !wdx) prepare_dx(l, &p, ctx->work);
        /* Dynamic as in forward: each unit writes only its own images and partial sums. */
#pragma omp parallel for schedule(dynamic) if (p.units > 1)
    for (int u = 0; u < p.units; u++) {
        const unit_ws w = unit_slices(l, &p, ctx->work, u);
        clear_partials(l, &w, &p);
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        for (int i0 = first; i0 < first + count; i0 += p.chunk) {
            const size_t o = (size_t)i0 * out_img;
            const chunk_io io = {.x = x + (size_t)i0 * in_img,
                                 .y = y + o,
                                 .z = l->scratch ? l->scratch + o : NULL,
                                 .dy = dy + o,
                                 .dx = dx + (size_t)i0 * in_img,
                                 .cnt = first + count - i0 < p.chunk ? first + count - i0 : p.chunk,
                                 .first = i0 == first,
                                 .need_dx = ctx->need_dx && !wdx};
            backward_chunk(l, &w, &io);
        }
    }
    if (l->trainable) sum_partials(l, &p, ctx->work);
    if (wdx) wino_dx(l, ctx->work, dy, dx, n);
}

/* ---------------------------------------------------------------- fused with the max pooling after it */

extern const cnn_layer_ops cnn_conv2d_ops;

int cnn_conv_pool_fusable(const cnn_layer *conv, const cnn_layer *pool)
{
    int kh, kw;
    return conv->ops == &cnn_conv2d_ops && thin(conv) && cnn_max_pool_tiles(pool, &kh, &kw) &&
           kh * kw <= CNN_MAX_WINDOW;
}

/* Unit u's rows of the convolved image's gradient (backward uses a row of windows at a time), after the
 * plan's workspace (conv2d_workspace), and its padded input image after them. */
static float *unit_image(const cnn_layer *l, const cnn_conv_plan *p, float *work, int u)
{
    return work + fused_offset(p) + (size_t)u * fused_floats(l);
}

static float *unit_pad(const cnn_layer *l, const cnn_conv_plan *p, float *work, int u)
{
    const conv2d_cfg *c = l->cfg;
    return unit_image(l, p, work, u) + cnn_float_lines(cnn_conv_pixels(&c->g) * c->filters);
}

/* The taps of image x read in place: from x itself, or from its padded copy in the unit's buffer. */
static cnn_taps image_taps(const cnn_layer *l, const float *x, float *pad, int tap[SMALL_K])
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    int hp, wp, k = 0;
    cnn_conv_padded_size(g, &hp, &wp);
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int ch = 0; ch < g->cin; ch++) tap[k++] = (ky * g->dh * wp + kx * g->dw) * g->cin + ch;
    if (cnn_conv_needs_padding(g)) {
        cnn_conv_pad(g, x, 1, pad);
        x = pad;
    }
    return (cnn_taps){.x = x, .row = g->sh * wp * g->cin, .col = g->sw * g->cin, .K = k, .tap = tap};
}

/* Images [first, first + count) of x convolved and pooled a row of windows at a time, in registers, into y
 * and the argmax table (offsets in the whole convolved image, as the unfused pooling's). The convolution's
 * values that no window covers are never computed: nothing reads them. */
static void forward_pooled(const cnn_layer *conv, const cnn_layer *pool, float *pad, const float *x,
                           int first, int count, float *y, int32_t *arg)
{
    const conv2d_cfg *c = conv->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, relu = conv->act_run == CNN_ACT_RELU, pw = pool->out.w;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_shape_size(pool->out);
    const float *k = cnn_layer_param(conv, 0), *b = c->use_bias ? cnn_layer_param(conv, 1) : NULL;
    const cnn_loops *loops = cnn_loops_current();
    int kh, kw, tap[SMALL_K];
    cnn_max_pool_tiles(pool, &kh, &kw);
    for (int s = first; s < first + count; s++) {
        const cnn_taps t = image_taps(conv, x + (size_t)s * in_img, pad, tap);
        for (int r = 0; r < pool->out.h; r++) {
            const size_t o = (size_t)s * out_img + (size_t)r * pw * F;
            loops->thin_pool_row(&t, r * kh, kh, kw, pw, g->ow, F, k, b, relu, y + o, arg + o);
        }
    }
}

void cnn_conv_pool_forward(cnn_layer *conv, cnn_layer *pool, const cnn_ctx *ctx, const float *x, float *y,
                           int n)
{
    const conv2d_cfg *c = conv->cfg;
    const cnn_conv_plan p = cnn_conv_plan_for(&c->g, c->filters, n);
#pragma omp parallel for schedule(dynamic) if (p.units > 1)
    for (int u = 0; u < p.units; u++) {
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        forward_pooled(conv, pool, unit_pad(conv, &p, ctx->work, u), x, first, count, y,
                       (int32_t *)pool->scratch);
    }
}

/* dW and db partials of one image x from its pooled output y, gradient dy and argmax table: the gradient of
 * the convolution's output is rebuilt a window row at a time in drows (in cache: a window's gradient at its
 * maximum, zero where relu cut it, zeros elsewhere and in the rows no window covers) and goes through the
 * thin backward loop, so every sum adds the same terms in the same order as the unfused pass, which reads it
 * from the gradient the pooling scattered into memory. */
static void pooled_grads(const cnn_layer *l, const cnn_layer *pool, const float *x, const float *y,
                         const float *dy, const int32_t *arg, const unit_ws *w, float *drows, float *pad)
{
    const conv2d_cfg *c = l->cfg;
    const cnn_conv_geom *g = &c->g;
    const int F = c->filters, ow = g->ow, pw = pool->out.w, relu = l->act_run == CNN_ACT_RELU;
    const cnn_loops *loops = cnn_loops_current();
    int kh, kw, tap[SMALL_K];
    cnn_max_pool_tiles(pool, &kh, &kw);
    const cnn_taps t = image_taps(l, x, pad, tap);
    for (int r = 0; r < pool->out.h; r++) {
        const size_t o = (size_t)r * pw * F;
        loops->pool_grad_rows(y + o, dy + o, arg + o, r * kh * ow * F, kh, kw, pw, ow, F, relu, drows);
        loops->thin_rows_backward(&t, r * kh, kh, ow, F, drows, w->pw, w->pb);
    }
    const int rest = g->oh - pool->out.h * kh;
    if (rest > 0) { /* zero gradients, but added as the unfused pass adds them */
        memset(drows, 0, sizeof(float) * (size_t)rest * ow * F);
        loops->thin_rows_backward(&t, g->oh - rest, rest, ow, F, drows, w->pw, w->pb);
    }
}

void cnn_conv_pool_backward(cnn_layer *conv, const cnn_layer *pool, const cnn_ctx *ctx, const float *x,
                            const float *y, const float *dy, int n)
{
    const conv2d_cfg *c = conv->cfg;
    const cnn_conv_geom *g = &c->g;
    if (!conv->trainable) return;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_shape_size(pool->out);
    const cnn_conv_plan p = cnn_conv_plan_for(g, c->filters, n);
    const int32_t *arg = (const int32_t *)pool->scratch;
#pragma omp parallel for schedule(dynamic) if (p.units > 1)
    for (int u = 0; u < p.units; u++) {
        const unit_ws w = unit_slices(conv, &p, ctx->work, u);
        float *drows = unit_image(conv, &p, ctx->work, u);
        memset(w.pw, 0, sizeof(float) * p.partial);
        int first, count;
        cnn_conv_unit_range(&p, u, n, &first, &count);
        for (int s = first; s < first + count; s++) {
            const size_t o = (size_t)s * out_img;
            pooled_grads(conv, pool, x + (size_t)s * in_img, y + o, dy + o, arg + o, &w, drows,
                         unit_pad(conv, &p, ctx->work, u));
        }
    }
    sum_partials(conv, &p, ctx->work);
}

/* The lowered GEMM of the forward pass: (n*P, filters, K). */
static void conv2d_gemm_shape(const cnn_layer *l, int n, int mnk[3])
{
    const conv2d_cfg *c = l->cfg;
    mnk[0] = n * (int)cnn_conv_pixels(&c->g);
    mnk[1] = c->filters;
    mnk[2] = (int)cnn_conv_k(&c->g);
}

static double conv2d_flops(const cnn_layer *l, int n)
{
    int mnk[3];
    conv2d_gemm_shape(l, n, mnk);
    return 2.0 * mnk[0] * mnk[1] * mnk[2];
}

static void conv2d_describe(const cnn_layer *l, char *buf, size_t cap)
{
    const conv2d_cfg *c = l->cfg;
    int k = snprintf(buf, cap, "filters=%d ", c->filters);
    if (k < 0 || (size_t)k >= cap) return;
    int j = cnn_conv_describe(&c->conv, buf + k, cap - (size_t)k);
    if (j < 0 || (size_t)(k + j) >= cap) return;
    snprintf(buf + k + j, cap - (size_t)(k + j), " %s", cnn_act_name(l->act));
}

static const char *conv2d_algorithm(const cnn_layer *l)
{
    return wino(l) ? "winograd" : NULL;
}

const cnn_layer_ops cnn_conv2d_ops = {
    .type = "Conv2D",
    .auto_name = "conv2d",
    .positional = {"filters"},
    .cfg_size = sizeof(conv2d_cfg),
    .configure = conv2d_configure,
    .build = conv2d_build,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .flops = conv2d_flops,
    .gemm_shape = conv2d_gemm_shape,
    .algorithm = conv2d_algorithm,
};
