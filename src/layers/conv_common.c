/* Convolution plumbing shared by Conv2D, DepthwiseConv2D and SeparableConv2D; see conv_common.h.
 *
 * Every loop here that runs in parallel splits by output element (an output row, an input row, a block of
 * columns, an image's partial sums) and sums each element in a fixed order, so results are bit-identical for
 * any thread count. The lowering and the GEMM run on the calling thread: Conv2D parallelises over units of
 * images around them. */
#include "layers/conv_common.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "layers/activation.h"

/* ---------------------------------------------------------------- options and geometry */

void cnn_conv_read_opts(cnn_opts *o, cnn_conv_opts *c, cnn_first_error *e)
{
    static const char *const pads[] = {"valid", "same"};
    cnn_first_error_keep(e, cnn_opts_pair(o, "kernel_size", 0, 0, 1 << 16, c->kernel));
    cnn_first_error_keep(e, cnn_opts_pair(o, "strides", 1, 1, 1 << 16, c->strides));
    cnn_first_error_keep(e, cnn_opts_enum(o, "padding", pads, 2, CNN_PAD_VALID, &c->padding));
    cnn_first_error_keep(e, cnn_opts_pair(o, "dilation_rate", 1, 1, 1 << 16, c->dilation));
    if (c->kernel[0] == 0 || c->kernel[1] == 0)
        cnn_first_error_keep(e,
                             cnn_fail(CNN_ERR_INVALID,
                                      "%s: missing required option 'kernel_size' (a positive int or a pair "
                                      "like (3,3))",
                                      o->context));
    /* Keras refuses this combination too. */
    if ((c->strides[0] > 1 || c->strides[1] > 1) && (c->dilation[0] > 1 || c->dilation[1] > 1))
        cnn_first_error_keep(e, cnn_fail(CNN_ERR_INVALID,
                                         "%s: strides > 1 cannot be combined with dilation_rate > 1",
                                         o->context));
}

int cnn_conv_out_len(int in, int k, int s, int d, int padding, int *out, int *pad_before)
{
    const long keff = (long)(k - 1) * d + 1;
    long o, pad = 0;
    if (padding == CNN_PAD_SAME) {
        o = (in + (long)s - 1) / s;
        long total = (o - 1) * s + keff - in;
        pad = total > 0 ? total / 2 : 0; /* TensorFlow: the odd pixel goes after (bottom/right) */
    } else {
        if (in < keff) return -1;
        o = (in - keff) / s + 1;
    }
    if (o < 1) return -1;
    *out = (int)o;
    *pad_before = (int)pad;
    return 0;
}

int cnn_conv_geometry(const cnn_layer *l, const cnn_conv_opts *c, cnn_conv_geom *g)
{
    if (l->in.rank != 3)
        return cnn_layer_fail(
            l, "expects an image input (height, width, channels), got a vector of %d values", l->in.c);
    *g = (cnn_conv_geom){.ih = l->in.h,
                         .iw = l->in.w,
                         .cin = l->in.c,
                         .kh = c->kernel[0],
                         .kw = c->kernel[1],
                         .sh = c->strides[0],
                         .sw = c->strides[1],
                         .dh = c->dilation[0],
                         .dw = c->dilation[1]};
    if (cnn_conv_out_len(g->ih, g->kh, g->sh, g->dh, c->padding, &g->oh, &g->pt) ||
        cnn_conv_out_len(g->iw, g->kw, g->sw, g->dw, c->padding, &g->ow, &g->pl))
        return cnn_layer_fail(
            l, "kernel %dx%d (dilation %dx%d) does not fit the %dx%d input with padding 'valid'", g->kh,
            g->kw, g->dh, g->dw, g->ih, g->iw);
    if ((size_t)g->oh * g->ow * cnn_conv_k(g) > ((size_t)1 << 31))
        return cnn_layer_fail(l, "one image lowers to more than 2^31 values; use a smaller kernel or input");
    return CNN_OK;
}

int cnn_conv_describe(const cnn_conv_opts *c, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%dx%d", c->kernel[0], c->kernel[1]);
    if (k >= 0 && (size_t)k < cap && (c->strides[0] != 1 || c->strides[1] != 1))
        k += snprintf(buf + k, cap - (size_t)k, " s%dx%d", c->strides[0], c->strides[1]);
    if (k >= 0 && (size_t)k < cap && (c->dilation[0] != 1 || c->dilation[1] != 1))
        k += snprintf(buf + k, cap - (size_t)k, " d%dx%d", c->dilation[0], c->dilation[1]);
    if (k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, " %s", c->padding ? "same" : "valid");
    return k;
}

/* ---------------------------------------------------------------- splitting a batch */

static size_t g_budget = CNN_CONV_BUDGET;

void cnn_conv_set_budget(size_t bytes)
{
    g_budget = bytes ? bytes : CNN_CONV_BUDGET;
}

size_t cnn_conv_get_budget(void)
{
    return g_budget;
}

/* Images per chunk of a deep layer (cnn_conv_is_deep) with fewer than CNN_CONV_MIN_ROWS rows per image when
 * the budget allows less (fit). VGG16's block4 and block5 (512 channels on a few pixels) would get GEMMs of a
 * few dozen rows, each streaming the whole kernel (up to 2.4M floats) for them. Their patches are read in
 * place from the padded images (the input gradient writes them once and col2im reads them once, or none
 * with dx_conv), so the budget holds the padded images and the output: chunks of CNN_CONV_MIN_ROWS rows where
 * they fit. */
static size_t deep_fit(const cnn_conv_geom *g, int filters, size_t fit)
{
    const size_t P = cnn_conv_pixels(g);
    if (!cnn_conv_is_deep(g) || fit * P >= CNN_CONV_MIN_ROWS) return fit;
    int hp, wp;
    cnn_conv_padded_size(g, &hp, &wp);
    const size_t want = (CNN_CONV_MIN_ROWS + P - 1) / P,
                 room = g_budget / (sizeof(float) * ((size_t)hp * wp * g->cin + P * filters));
    return want < room ? want : room;
}

/* The same for units: with few pixels per image (VGG16's block5 at 32x32: 4), 32 units of a batch of 64 would
 * be GEMMs of 8 rows. A deep layer's unit gets at least CNN_CONV_MIN_ROWS rows where the batch allows (this
 * depends on n and the geometry only); ceil(n / images) keeps the plan non-decreasing in n. */
static size_t deep_units(const cnn_conv_geom *g, int n, size_t units)
{
    if (!cnn_conv_is_deep(g)) return units;
    const size_t P = cnn_conv_pixels(g), min_images = (CNN_CONV_MIN_ROWS + P - 1) / P,
                 by_rows = ((size_t)n + min_images - 1) / min_images;
    return by_rows < units ? by_rows : units;
}

/* The shared kernel copy: W^T (K x filters), or for a deep layer room for either of its packed kernels
 * (kernels/gemm.h): W (K x filters) for forward, or the flipped kernel (taps * filters x cin) for dx. */
static size_t deep_shared(const cnn_conv_geom *g, int filters)
{
    const size_t K = cnn_conv_k(g);
    if (!cnn_conv_is_deep(g)) return K * filters;
    const size_t w = cnn_gemm_packed_floats((int)K, filters),
                 flipped = cnn_gemm_packed_floats(g->kh * g->kw * filters, g->cin);
    return w > flipped ? w : flipped;
}

cnn_conv_plan cnn_conv_plan_for(const cnn_conv_geom *g, int filters, int n)
{
    /* A chunk's patches and its output are both read back right after they are written: budget both. */
    const size_t K = cnn_conv_k(g), per_image = cnn_conv_pixels(g) * K,
                 in_cache = cnn_conv_pixels(g) * (K + filters);
    const size_t fit_raw = deep_fit(g, filters, g_budget / (sizeof(float) * in_cache)),
                 fit = fit_raw ? fit_raw : 1;
    cnn_conv_plan p = {.partial = K * filters + filters, .shared = deep_shared(g, filters)};
    /* Fewer units when their partial sums or (with images too large for the budget) their lowering buffers
     * would take too much memory together. */
    size_t units = CNN_CONV_UNITS;
    const size_t by_partial = CNN_CONV_PARTIAL_BUDGET / (sizeof(float) * p.partial),
                 by_cols = cnn_conv_is_pointwise(g)
                               ? units
                               : CNN_CONV_COLS_BUDGET / (sizeof(float) * fit * per_image);
    if (by_partial < units) units = by_partial;
    if (by_cols < units) units = by_cols;
    units = deep_units(g, n, units);
    if (units < 1) units = 1;
    p.units = (size_t)n < units ? n : (int)units;
    const size_t per_unit = ((size_t)n + p.units - 1) / p.units;
    p.chunk = (int)(fit < per_unit ? fit : per_unit);
    p.cols = cnn_conv_is_pointwise(g) ? 0 : (size_t)p.chunk * per_image;
    if (!cnn_conv_is_pointwise(g)) {
        int hp, wp;
        cnn_conv_padded_size(g, &hp, &wp);
        p.pad = cnn_conv_needs_padding(g) ? (size_t)p.chunk * hp * wp * g->cin : 0;
        p.tables = (size_t)p.chunk * cnn_conv_pixels(g) + K;
    }
    return p;
}

void cnn_conv_unit_range(const cnn_conv_plan *p, int u, int n, int *first, int *count)
{
    const long a = (long)u * n / p->units, b = (long)(u + 1) * n / p->units;
    *first = (int)a;
    *count = (int)(b - a);
}

void cnn_conv_sum_partials(const float *src, size_t stride, int units, size_t len, float *dst)
{
    const long blocks = (long)((len + 15) / 16);
#pragma omp parallel for schedule(static) if (len * units > 32768)
    for (long bk = 0; bk < blocks; bk++) {
        const size_t e0 = (size_t)bk * 16, w = len - e0 < 16 ? len - e0 : 16;
        float acc[16] = {0};
        for (int u = 0; u < units; u++)
            for (size_t j = 0; j < w; j++) acc[j] += src[(size_t)u * stride + e0 + j];
        memcpy(dst + e0, acc, sizeof(float) * w);
    }
}

/* ---------------------------------------------------------------- padded images and offset tables */

void cnn_conv_padded_size(const cnn_conv_geom *g, int *hp, int *wp)
{
    const int need_h = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1,
              need_w = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    *hp = g->pt + g->ih > need_h ? g->pt + g->ih : need_h;
    *wp = g->pl + g->iw > need_w ? g->pl + g->iw : need_w;
}

int cnn_conv_needs_padding(const cnn_conv_geom *g)
{
    int hp, wp;
    cnn_conv_padded_size(g, &hp, &wp);
    return hp != g->ih || wp != g->iw;
}

/* How a row of values goes into the padded images: copied, or rounded to BF16. */
typedef void (*pad_copy)(const float *src, size_t n, void *dst);

static void copy_floats(const float *src, size_t n, void *dst)
{
    memcpy(dst, src, sizeof(float) * n);
}

static void round_bf16(const float *src, size_t n, void *dst)
{
    cnn_bf16_round(src, n, dst);
}

/* The padded images, values of `size` bytes. */
static void pad_images(const cnn_conv_geom *g, const float *x, int n, char *xp, size_t size, pad_copy copy)
{
    int hp, wp;
    cnn_conv_padded_size(g, &hp, &wp);
    const size_t cin = (size_t)g->cin, row = wp * cin * size, left = g->pl * cin * size,
                 right = (wp - g->pl - g->iw) * cin * size;
    for (int i = 0; i < n; i++) {
        const float *img = x + (size_t)i * g->ih * g->iw * cin;
        char *o = xp + (size_t)i * hp * row;
        memset(o, 0, (size_t)g->pt * row);
        o += (size_t)g->pt * row;
        for (int y = 0; y < g->ih; y++, o += row) {
            memset(o, 0, left);
            copy(img + (size_t)y * g->iw * cin, (size_t)g->iw * cin, o + left);
            memset(o + left + g->iw * cin * size, 0, right);
        }
        memset(o, 0, (size_t)(hp - g->pt - g->ih) * row);
    }
}

void cnn_conv_pad(const cnn_conv_geom *g, const float *x, int n, float *xp)
{
    pad_images(g, x, n, (char *)xp, sizeof(float), copy_floats);
}

void cnn_conv_pad_bf16(const cnn_conv_geom *g, const float *x, int n, uint16_t *xp)
{
    pad_images(g, x, n, (char *)xp, sizeof(uint16_t), round_bf16);
}

void cnn_conv_gather_tables(const cnn_conv_geom *g, int n, int *pix, int *tap)
{
    int hp, wp;
    cnn_conv_padded_size(g, &hp, &wp);
    int r = 0, k = 0;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) pix[r++] = ((i * hp + oy * g->sh) * wp + ox * g->sw) * g->cin;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int c = 0; c < g->cin; c++) tap[k++] = (ky * g->dh * wp + kx * g->dw) * g->cin + c;
}

/* ---------------------------------------------------------------- im2col / col2im */

/* Runs are short (kw*cin floats: 3 for a 3x3 kernel on a gray image): fixed-size copies compile to plain
 * moves, where a loop would become a call to memcpy. */
static inline void copy_run(float *restrict dst, const float *restrict src, int len)
{
    if (len > 32) {
        memcpy(dst, src, sizeof(float) * (size_t)len);
        return;
    }
    int i = 0;
    for (; i + 4 <= len; i += 4) memcpy(dst + i, src + i, 4 * sizeof(float));
    switch (len - i) {
    case 3:
        memcpy(dst + i, src + i, 3 * sizeof(float));
        break;
    case 2:
        memcpy(dst + i, src + i, 2 * sizeof(float));
        break;
    case 1:
        dst[i] = src[i];
        break;
    default:
        break;
    }
}

static inline void zero_run(float *dst, int len)
{
    for (int i = 0; i < len; i++) dst[i] = 0.0f;
}

static inline void add_run(float *restrict dst, const float *restrict src, int len)
{
    for (int i = 0; i < len; i++) dst[i] += src[i];
}

/* The ow patch rows of output row oy of one image. A kernel row inside the image is one contiguous run of
 * kw*cin floats; only border pixels (and dilated kernels) go column by column. */
static void im2col_row(const cnn_conv_geom *g, const float *img, int oy, float *out)
{
    const int cin = g->cin, run = g->kw * cin, K = g->kh * run;
    for (int ox = 0; ox < g->ow; ox++, out += K) {
        const int x0 = ox * g->sw - g->pl;
        const int inside = g->dw == 1 && x0 >= 0 && x0 + g->kw <= g->iw;
        for (int ky = 0; ky < g->kh; ky++) {
            float *o = out + ky * run;
            const int iy = oy * g->sh - g->pt + ky * g->dh;
            if (iy < 0 || iy >= g->ih) {
                zero_run(o, run);
                continue;
            }
            const float *row = img + (size_t)iy * g->iw * cin;
            if (inside) {
                copy_run(o, row + (size_t)x0 * cin, run);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                const int ix = x0 + kx * g->dw;
                if (ix < 0 || ix >= g->iw)
                    zero_run(o + kx * cin, cin);
                else
                    copy_run(o + kx * cin, row + (size_t)ix * cin, cin);
            }
        }
    }
}

void cnn_im2col(const cnn_conv_geom *g, const float *x, int n, float *cols)
{
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, row_len = (size_t)g->ow * cnn_conv_k(g);
    const long rows = (long)n * g->oh;
    for (long r = 0; r < rows; r++)
        im2col_row(g, x + (size_t)(r / g->oh) * in_img, (int)(r % g->oh), cols + (size_t)r * row_len);
}

/* The output row whose kernel row ky reads input row iy, or -1 when none does (a stride skips it, or the row
 * lies in the padding's reach only). */
static int out_row_reading(const cnn_conv_geom *g, int iy, int ky)
{
    const int t = iy + g->pt - ky * g->dh;
    if (t < 0 || t % g->sh || t / g->sh >= g->oh) return -1;
    return t / g->sh;
}

/* Input row iy of one image gathers its gradient from every patch that read it: kernel rows ky ascending,
 * then output columns ascending. */
static void col2im_row(const cnn_conv_geom *g, const float *dcols, int iy, float *dxrow)
{
    const int cin = g->cin, K = g->kh * g->kw * cin;
    zero_run(dxrow, g->iw * cin);
    for (int ky = 0; ky < g->kh; ky++) {
        const int oy = out_row_reading(g, iy, ky);
        if (oy < 0) continue;
        for (int ox = 0; ox < g->ow; ox++) {
            const float *src = dcols + ((size_t)oy * g->ow + ox) * K + (size_t)ky * g->kw * cin;
            const int x0 = ox * g->sw - g->pl;
            for (int kx = 0; kx < g->kw; kx++) {
                const int ix = x0 + kx * g->dw;
                if (ix >= 0 && ix < g->iw) add_run(dxrow + (size_t)ix * cin, src + (size_t)kx * cin, cin);
            }
        }
    }
}

void cnn_col2im(const cnn_conv_geom *g, const float *dcols, int n, float *dx)
{
    const size_t img_cols = cnn_conv_pixels(g) * cnn_conv_k(g), row_len = (size_t)g->iw * g->cin;
    const long rows = (long)n * g->ih;
    for (long r = 0; r < rows; r++)
        col2im_row(g, dcols + (size_t)(r / g->ih) * img_cols, (int)(r % g->ih), dx + (size_t)r * row_len);
}

/* ---------------------------------------------------------------- bias and activation */

void cnn_conv_bias_act(cnn_activation a, float *y, const float *b, float *z, size_t rows, int cols)
{
    const long nrows = (long)rows;
    if (a == CNN_ACT_RELU && !z) { /* the common case in one pass over y */
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
        for (long r = 0; r < nrows; r++) {
            float *yr = y + (size_t)r * cols;
            if (b)
                for (int j = 0; j < cols; j++) yr[j] = yr[j] + b[j] > 0.0f ? yr[j] + b[j] : 0.0f;
            else
                for (int j = 0; j < cols; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
        }
        return;
    }
    if (b) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
        for (long r = 0; r < nrows; r++)
            for (int j = 0; j < cols; j++) y[(size_t)r * cols + j] += b[j];
    }
    if (z) memcpy(z, y, sizeof(float) * rows * (size_t)cols);
    cnn_act_forward(a, y, rows, (size_t)cols);
}

enum { SUM_BLOCK = 16 };

/* ---------------------------------------------------------------- depthwise */

/* Output pixel (oy, ox) of one image: acc[c*dm + m] += x[c] * k[c*dm + m] over the kernel taps inside. */
static void dw_pixel(const cnn_conv_geom *g, int dm, const float *img, const float *k, int oy, int ox,
                     float *acc)
{
    const int cin = g->cin, cd = cin * dm;
    for (int ky = 0; ky < g->kh; ky++) {
        const int iy = oy * g->sh - g->pt + ky * g->dh;
        if (iy < 0 || iy >= g->ih) continue;
        for (int kx = 0; kx < g->kw; kx++) {
            const int ix = ox * g->sw - g->pl + kx * g->dw;
            if (ix < 0 || ix >= g->iw) continue;
            const float *xp = img + ((size_t)iy * g->iw + ix) * cin;
            const float *kp = k + ((size_t)ky * g->kw + kx) * cd;
            if (dm == 1)
                for (int c = 0; c < cin; c++) acc[c] += xp[c] * kp[c];
            else
                for (int c = 0; c < cin; c++)
                    for (int m = 0; m < dm; m++) acc[c * dm + m] += xp[c] * kp[c * dm + m];
        }
    }
}

void cnn_dw_forward(const cnn_conv_geom *g, int dm, const float *x, const float *k, const float *b, float *y,
                    int n)
{
    const int cd = g->cin * dm;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, row_len = (size_t)g->ow * cd;
    const long rows = (long)n * g->oh;
#pragma omp parallel for schedule(static) if (rows * row_len > 4096)
    for (long r = 0; r < rows; r++) {
        const float *img = x + (size_t)(r / g->oh) * in_img;
        float *yr = y + (size_t)r * row_len;
        for (int ox = 0; ox < g->ow; ox++) {
            float *acc = yr + (size_t)ox * cd;
            if (b)
                copy_run(acc, b, cd);
            else
                zero_run(acc, cd);
            dw_pixel(g, dm, img, k, (int)(r % g->oh), ox, acc);
        }
    }
}

/* One image's kernel gradient: pk[(ky, kx, c, m)] = sum over output pixels of x[iy, ix, c] * dy[c*dm + m]. */
static void dw_image_kernel_grad(const cnn_conv_geom *g, int dm, const float *img, const float *dyi,
                                 float *pk)
{
    const int cin = g->cin, cd = cin * dm;
    zero_run(pk, g->kh * g->kw * cd);
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            const float *d = dyi + ((size_t)oy * g->ow + ox) * cd;
            for (int ky = 0; ky < g->kh; ky++) {
                const int iy = oy * g->sh - g->pt + ky * g->dh;
                if (iy < 0 || iy >= g->ih) continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    const int ix = ox * g->sw - g->pl + kx * g->dw;
                    if (ix < 0 || ix >= g->iw) continue;
                    const float *restrict xp = img + ((size_t)iy * g->iw + ix) * cin;
                    float *restrict kp = pk + ((size_t)ky * g->kw + kx) * cd;
                    if (dm == 1) /* the common case, vectorised along the channels */
                        for (int c = 0; c < cin; c++) kp[c] += xp[c] * d[c];
                    else
                        for (int c = 0; c < cin; c++)
                            for (int m = 0; m < dm; m++) kp[c * dm + m] += xp[c] * d[c * dm + m];
                }
            }
        }
}

void cnn_dw_backward_kernel(const cnn_conv_geom *g, int dm, const float *x, const float *dy, float *dk,
                            float *partial, int n)
{
    const size_t ks = (size_t)g->kh * g->kw * g->cin * dm;
    const size_t in_img = (size_t)g->ih * g->iw * g->cin, out_img = cnn_conv_pixels(g) * g->cin * dm;
#pragma omp parallel for schedule(static) if (n > 1)
    for (int i = 0; i < n; i++)
        dw_image_kernel_grad(g, dm, x + (size_t)i * in_img, dy + (size_t)i * out_img,
                             partial + (size_t)i * ks);
    const long blocks = (long)((ks + SUM_BLOCK - 1) / SUM_BLOCK);
#pragma omp parallel for schedule(static) if (ks * n > 16384)
    for (long bk = 0; bk < blocks; bk++) {
        const size_t e0 = (size_t)bk * SUM_BLOCK, w = ks - e0 < SUM_BLOCK ? ks - e0 : SUM_BLOCK;
        float acc[SUM_BLOCK] = {0};
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < w; j++) acc[j] += partial[(size_t)i * ks + e0 + j];
        memcpy(dk + e0, acc, sizeof(float) * w);
    }
}

/* Input row iy of one image: dx[ix, c] = sum over the taps that read it of sum_m dy[c*dm + m] * k[c*dm + m].
 */
static void dw_input_row(const cnn_conv_geom *g, int dm, const float *dyi, const float *k, int iy,
                         float *dxrow)
{
    const int cin = g->cin, cd = cin * dm;
    zero_run(dxrow, g->iw * cin);
    for (int ky = 0; ky < g->kh; ky++) {
        const int oy = out_row_reading(g, iy, ky);
        if (oy < 0) continue;
        for (int ox = 0; ox < g->ow; ox++) {
            const float *d = dyi + ((size_t)oy * g->ow + ox) * cd;
            for (int kx = 0; kx < g->kw; kx++) {
                const int ix = ox * g->sw - g->pl + kx * g->dw;
                if (ix < 0 || ix >= g->iw) continue;
                const float *restrict kp = k + ((size_t)ky * g->kw + kx) * cd;
                float *restrict o = dxrow + (size_t)ix * cin;
                if (dm == 1) {
                    for (int c = 0; c < cin; c++) o[c] += d[c] * kp[c];
                } else {
                    for (int c = 0; c < cin; c++) {
                        float s = 0.0f;
                        for (int m = 0; m < dm; m++) s += d[c * dm + m] * kp[c * dm + m];
                        o[c] += s;
                    }
                }
            }
        }
    }
}

void cnn_dw_backward_input(const cnn_conv_geom *g, int dm, const float *dy, const float *k, float *dx, int n)
{
    const size_t out_img = cnn_conv_pixels(g) * g->cin * dm, row_len = (size_t)g->iw * g->cin;
    const long rows = (long)n * g->ih;
#pragma omp parallel for schedule(static) if (rows * row_len > 4096)
    for (long r = 0; r < rows; r++)
        dw_input_row(g, dm, dy + (size_t)(r / g->ih) * out_img, k, (int)(r % g->ih),
                     dx + (size_t)r * row_len);
}
