/* GrayscaleToRGB: the single gray channel repeated into three (tf.image.grayscale_to_rgb). Not a Keras
 * layer: it stands in a spec for the NumPy step np.repeat(x[..., None], 3, axis=-1) that the study ran
 * before a model whose input is RGB (Model_5_VGG16), or its Lambda "gray2rgb"; no parameters.
 *
 *   x  (n, h, w, 1)  ->  y  (n, h, w, 3), y[..., k] = x[..., 0]; dx = the sum of dy over the three channels.
 */
#include "core/error.h"
#include "layers/layer.h"

static int gray_build(cnn_layer *l)
{
    if (l->in.rank != 3 || l->in.c != 1)
        return cnn_layer_fail(l, "needs a one-channel image (height, width, 1), got %d channel(s)", l->in.c);
    l->out = cnn_shape_hwc(l->in.h, l->in.w, 3);
    return CNN_OK;
}

static void gray_forward(cnn_layer *l, const cnn_ctx *ctx, const float *x, float *y, int n)
{
    (void)ctx;
    const size_t pixels = cnn_shape_size(l->in) * (size_t)n;
#pragma omp parallel for schedule(static) if (pixels > 65536)
    for (size_t p = 0; p < pixels; p++) y[3 * p] = y[3 * p + 1] = y[3 * p + 2] = x[p];
}

static void gray_backward(cnn_layer *l, const cnn_ctx *ctx, const float *x, const float *y, float *dy,
                          float *dx, int n)
{
    (void)x, (void)y;
    if (!ctx->need_dx) return;
    const size_t pixels = cnn_shape_size(l->in) * (size_t)n;
#pragma omp parallel for schedule(static) if (pixels > 65536)
    for (size_t p = 0; p < pixels; p++) dx[p] = dy[3 * p] + dy[3 * p + 1] + dy[3 * p + 2];
}

const cnn_layer_ops cnn_grayscale_to_rgb_ops = {
    .type = "GrayscaleToRGB",
    .auto_name = "grayscale_to_rgb",
    .build = gray_build,
    .forward = gray_forward,
    .backward = gray_backward,
};
