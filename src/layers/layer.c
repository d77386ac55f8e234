/* What every layer shares: parameter declaration, activation and regulariser options, the type registry. */
#include "layers/layer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/registry.h"
#include "layers/activation.h"

/* The registry: Keras class name -> implementation, one line per layer file. */
extern const cnn_layer_ops cnn_dense_ops;
extern const cnn_layer_ops cnn_flatten_ops;
extern const cnn_layer_ops cnn_conv2d_ops;
extern const cnn_layer_ops cnn_depthwise_conv2d_ops;
extern const cnn_layer_ops cnn_separable_conv2d_ops;
extern const cnn_layer_ops cnn_max_pooling2d_ops;
extern const cnn_layer_ops cnn_average_pooling2d_ops;
extern const cnn_layer_ops cnn_global_average_pooling2d_ops;
extern const cnn_layer_ops cnn_zero_padding2d_ops;
extern const cnn_layer_ops cnn_resizing_ops;
extern const cnn_layer_ops cnn_grayscale_to_rgb_ops;
extern const cnn_layer_ops cnn_batch_normalization_ops;
extern const cnn_layer_ops cnn_dropout_ops;
extern const cnn_layer_ops cnn_relu_ops;
extern const cnn_layer_ops cnn_leaky_relu_ops;
extern const cnn_layer_ops cnn_elu_ops;
extern const cnn_layer_ops cnn_activation_ops;
extern const cnn_layer_ops cnn_softmax_ops;

/* Pointers to entries, as core/registry.h reads them. */
static const void *const g_layers[] = {
    &cnn_dense_ops,
    &cnn_flatten_ops,
    &cnn_conv2d_ops,
    &cnn_depthwise_conv2d_ops,
    &cnn_separable_conv2d_ops,
    &cnn_max_pooling2d_ops,
    &cnn_average_pooling2d_ops,
    &cnn_global_average_pooling2d_ops,
    &cnn_zero_padding2d_ops,
    &cnn_resizing_ops,
    &cnn_grayscale_to_rgb_ops,
    &cnn_batch_normalization_ops,
    &cnn_dropout_ops,
    &cnn_relu_ops,
    &cnn_leaky_relu_ops,
    &cnn_elu_ops,
    &cnn_activation_ops,
    &cnn_softmax_ops,
};
enum { N_LAYERS = sizeof g_layers / sizeof g_layers[0] };

const cnn_layer_ops *cnn_layer_find(const char *type)
{
    return cnn_registry_find(g_layers, N_LAYERS, type);
}

const char *cnn_layer_suggest(const char *type)
{
    return cnn_registry_suggest(g_layers, N_LAYERS, type, 3);
}

const char *cnn_layer_types(void)
{
    static char list[512];
    return cnn_registry_list(g_layers, N_LAYERS, ", ", list, sizeof list);
}

int cnn_layer_add_param(cnn_layer *l, const char *name, int rank, const int *dim, int trainable,
                        cnn_init init, int fan_in, int fan_out)
{
    if (l->nparams == CNN_LAYER_MAX_PARAMS) return cnn_layer_fail(l, "too many parameter tensors");
    cnn_param *p = &l->params[l->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rank = rank;
    p->size = 1;
    for (int i = 0; i < rank; i++) {
        p->dim[i] = dim[i];
        p->size *= (size_t)dim[i];
    }
    p->trainable = trainable;
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    return l->nparams++;
}

float *cnn_layer_param(const cnn_layer *l, int i)
{
    return l->w + l->params[i].offset;
}

int cnn_layer_sync_sums(const cnn_ctx *c, double *sums, int count)
{
    if (!c->sync || c->sync->rc) return 0;
    c->sync->rc = c->sync->reduce(c->sync->ctx, sums, count);
    return !c->sync->rc;
}

float *cnn_layer_grad(const cnn_layer *l, int i)
{
    return l->g + l->params[i].offset;
}

int cnn_layer_read_activation(cnn_layer *l, cnn_opts *o)
{
    char name[32];
    int rc = cnn_opts_str(o, "activation", "linear", name, sizeof name);
    if (rc) return rc;
    int a = cnn_act_from_name(name);
    if (a < 0)
        return cnn_opts_fail(o, "activation",
                             "%s: unknown activation '%s' (expected linear, relu, softmax, tanh, sigmoid, "
                             "leaky_relu, elu or gelu)",
                             o->context, name);
    l->act = l->act_run = (cnn_activation)a;
    return CNN_OK;
}

/* Parses "l2(0.001)", "l1(1e-3)", "l1_l2(l1=0.01, l2=0.01)" or "none". */
int cnn_layer_read_regularizer(cnn_opts *o, float *l1, float *l2)
{
    char v[80];
    int rc = cnn_opts_str(o, "kernel_regularizer", "none", v, sizeof v);
    if (rc) return rc;
    double a = 0, b = 0;
    char tail = 0;
    *l1 = *l2 = 0.0f;
    if (!strcasecmp(v, "none")) return CNN_OK;
    if (sscanf(v, "l1(%lf%c", &a, &tail) == 2 && tail == ')' && a >= 0) {
        *l1 = (float)a;
        return CNN_OK;
    }
    if (sscanf(v, "l2(%lf%c", &b, &tail) == 2 && tail == ')' && b >= 0) {
        *l2 = (float)b;
        return CNN_OK;
    }
    if (sscanf(v, "l1_l2(l1=%lf , l2=%lf%c", &a, &b, &tail) == 3 && tail == ')' && a >= 0 && b >= 0) {
        *l1 = (float)a;
        *l2 = (float)b;
        return CNN_OK;
    }
    return cnn_opts_fail(
        o, "kernel_regularizer",
        "%s: kernel_regularizer=%s: expected l1(c), l2(c), l1_l2(l1=a,l2=b) or none with c >= 0", o->context,
        v);
}

int cnn_layer_fail(const cnn_layer *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(CNN_ERR_SHAPE, "layer '%s' (%s): %s", l->name, l->ops->type, msg);
}
