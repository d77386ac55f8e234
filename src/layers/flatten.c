/* Flatten: (h, w, c) -> (h*w*c). NHWC order is already Keras's flatten order, so the output is the input
 * buffer itself and the gradient passes through untouched. */
#include "layers/layer.h"

static int flatten_configure(cnn_layer *l, cnn_opts *o)
{
    (void)l;
    (void)o;
    return CNN_OK;
}

static int flatten_build(cnn_layer *l)
{
    l->out = cnn_shape_vec((int)cnn_shape_size(l->in));
    l->alias = 1;
    return CNN_OK;
}

static void flatten_forward(cnn_layer *l, const cnn_ctx *c, const float *x, float *y, int n)
{
    (void)l, (void)c, (void)x, (void)y, (void)n;
}

static void flatten_backward(cnn_layer *l, const cnn_ctx *c, const float *x, const float *y, float *dy,
                             float *dx, int n)
{
    (void)l, (void)c, (void)x, (void)y, (void)dy, (void)dx, (void)n;
}

const cnn_layer_ops cnn_flatten_ops = {
    .type = "Flatten",
    .auto_name = "flatten",
    .configure = flatten_configure,
    .build = flatten_build,
    .forward = flatten_forward,
    .backward = flatten_backward,
};
