/* The study's augmentation (spec §5): its per-image transform, scikit-image's warp followed by rotate, and
 * its batch generator DataImageGenerator_batch.
 *
 * The transform copies scikit-image 0.19's float32 path step by step (matrix cast to float32, coordinates and
 * corner weights in float32, the final blend in double, output clipped to the input's range), because the
 * study's images are float32 and a per-pixel match is the point: scripts/ref_augment.py checks it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/error.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* scikit-image's get_pixel2d in constant mode (cval 0). */
static float pixel_or_zero(const float *img, int h, int w, long r, long c)
{
    return r < 0 || c < 0 || r >= h || c >= w ? 0.0f : img[r * w + c];
}

/* scikit-image's bilinear_interpolation on a float32 image: weights and the two row blends in float32, the
 * blend of the rows in double. */
static float bilinear_f32(const float *img, int h, int w, float r, float c)
{
    long r0 = (long)floor(r), c0 = (long)floor(c), r1 = (long)ceil(r), c1 = (long)ceil(c);
    float dr = r - (float)r0, dc = c - (float)c0;
    double top = (1 - dc) * pixel_or_zero(img, h, w, r0, c0) + dc * pixel_or_zero(img, h, w, r0, c1);
    double bottom = (1 - dc) * pixel_or_zero(img, h, w, r1, c0) + dc * pixel_or_zero(img, h, w, r1, c1);
    return (float)((1 - dr) * top + dr * bottom);
}

/* fminf and fmaxf as comparisons (a NaN operand gives the other; equal operands give b), which the compiler
 * keeps inline: as calls they took a third of the transform's time. */
static float min_f(float a, float b)
{
    return a < b || b != b ? a : b;
}

static float max_f(float a, float b)
{
    return a > b || b != b ? a : b;
}

/* warp(..., clip=True): the output is clipped to the input's range, widened to include the fill value 0 when
 * the input's range lacks it but the output uses it. */
static void clip_to_input(const float *in, float *out, int n)
{
    float lo = in[0], hi = in[0], olo = out[0], ohi = out[0];
    for (int i = 1; i < n; i++) {
        lo = min_f(lo, in[i]), hi = max_f(hi, in[i]);
        olo = min_f(olo, out[i]), ohi = max_f(ohi, out[i]);
    }
    if (!(lo <= 0 && 0 <= hi) && olo <= 0 && 0 <= ohi) lo = min_f(lo, 0), hi = max_f(hi, 0);
    for (int i = 0; i < n; i++) out[i] = min_f(max_f(out[i], lo), hi);
}

/* warp with the float32 matrix H (row-major 2 x 3, x = column, y = row). */
static void warp_f32(const float *in, float *out, int h, int w, const float H[6])
{
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            float x = (float)c, y = (float)r;
            float xs = H[0] * x + H[1] * y + H[2], ys = H[3] * x + H[4] * y + H[5];
            out[r * w + c] = bilinear_f32(in, h, w, ys, xs);
        }
    clip_to_input(in, out, h * w);
}

/* rotate(): SimilarityTransform translation(c) o rotation(theta) o translation(-c), composed in float64 as
 * numpy does, then cast to float32 by warp. */
static void rotation_matrix(int h, int w, int angle, float H[6])
{
    double th = angle * (M_PI / 180.0), co = cos(th), si = sin(th);
    double cx = w / 2.0 - 0.5, cy = h / 2.0 - 0.5;
    double ox = co * -cx + -si * -cy + 0.0, oy = si * -cx + co * -cy + 0.0;
    H[0] = (float)co, H[1] = (float)-si, H[2] = (float)(ox + cx);
    H[3] = (float)si, H[4] = (float)co, H[5] = (float)(oy + cy);
}

void aug_study_transform(const float *in, float *out, float *scratch, int h, int w, double s, int tx, int ty,
                         int angle)
{
    const float scale[6] = {(float)s, 0, (float)tx, 0, (float)s, (float)ty};
    float rot[6];
    warp_f32(in, scratch, h, w, scale);
    rotation_matrix(h, w, angle, rot);
    warp_f32(scratch, out, h, w, rot);
}

int cnn_augment_study(const float *in, float *out, int h, int w, double s, int tx, int ty, int angle)
{
    if (!in || !out || h < 1 || w < 1 || (long)h * w > (1L << 26))
        return cnn_fail(CNN_ERR_INVALID, "augment_study: expected images and 1 <= h*w <= 2^26, got %d x %d",
                        h, w);
    if (!isfinite(s)) return cnn_fail(CNN_ERR_INVALID, "augment_study: scale %g is not finite", s);
    float local[64 * 64];
    float *scratch = (long)h * w <= 64 * 64 ? local : malloc(sizeof(float) * (size_t)h * (size_t)w);
    if (!scratch)
        return cnn_fail(CNN_ERR_NOMEM, "augment_study: no memory for a %d x %d scratch image", h, w);
    aug_study_transform(in, out, scratch, h, w, s, tx, ty, angle);
    if (scratch != local) free(scratch);
    return CNN_OK;
}

void cnn_augment_study_draw(uint64_t seed, int epoch, int index, double *s, int *tx, int *ty, int *angle)
{
    /* NumPy's uniform(0.8, 1.2), randint(-6, 6) twice and randint(-30, 30), in that order. */
    *s = 0.8 + 0.4 * cnn_random_uniform(seed, epoch, index, 0);
    *tx = -6 + (int)(12 * cnn_random_uniform(seed, epoch, index, 1));
    *ty = -6 + (int)(12 * cnn_random_uniform(seed, epoch, index, 2));
    *angle = -30 + (int)(60 * cnn_random_uniform(seed, epoch, index, 3));
}
