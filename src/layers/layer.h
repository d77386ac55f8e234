/* The layer interface. Each layer type lives in its own file and exports one cnn_layer_ops table;
 * the model owns the memory (parameters, activations, scratch) and hands layers views into it.
 *
 * Shapes are per sample, NHWC without the batch axis. A vector of n values is rank 1 with h = w = 1, c = n,
 * so "the last axis" is always c and a Dense layer simply acts on c for every one of the h*w positions. */
#ifndef CNN_LAYERS_LAYER_H
#define CNN_LAYERS_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "cnnlab.h"
#include "core/opts.h"

typedef struct cnn_shape {
    int rank; /* 1 or 3 */
    int h, w, c;
} cnn_shape;

static inline size_t cnn_shape_size(cnn_shape s)
{
    return (size_t)s.h * s.w * s.c;
}
static inline cnn_shape cnn_shape_vec(int n)
{
    return (cnn_shape){1, 1, 1, n};
}
static inline cnn_shape cnn_shape_hwc(int h, int w, int c)
{
    return (cnn_shape){3, h, w, c};
}

typedef enum { CNN_INIT_ZEROS = 0, CNN_INIT_ONES, CNN_INIT_GLOROT_UNIFORM, CNN_INIT_HE_NORMAL } cnn_init;

#define CNN_LAYER_MAX_PARAMS 4

/* One named parameter tensor of a layer: a view into the model's contiguous buffers. */
typedef struct cnn_param {
    char name[24]; /* Keras weight name: kernel, bias, gamma, beta, moving_mean, ... */
    int rank;
    int dim[4];    /* Keras shape, e.g. Dense kernel (in, units), Conv2D kernel (kh, kw, cin, cout) */
    size_t offset; /* into the model's params/grads buffers */
    size_t size;
    int trainable; /* 0 for state such as BatchNorm moving statistics */
    cnn_init init;
    int fan_in, fan_out;
    float l1, l2; /* Keras kernel_regularizer coefficients */
} cnn_param;

/* Data-parallel training with synchronised batch statistics (cnn_model_set_batch_sync): reduce replaces
 * sums[0..count) by their totals over the processes, the same bits on every process. A layer pass cannot
 * fail, so the first failure is kept in rc for the model to report after the pass. */
typedef struct cnn_batch_sync {
    int (*reduce)(void *ctx, double *sums, int count);
    void *ctx;
    int rc;
} cnn_batch_sync;

/* Per-call facts a layer needs besides its input. */
typedef struct cnn_ctx {
    int training;         /* dropout active, batch statistics used */
    uint64_t seed;        /* with step, drives dropout masks */
    uint64_t step;        /* global training step */
    uint64_t sample;      /* position of sample 0 in the global batch (data-parallel training; 0 otherwise) */
    cnn_batch_sync *sync; /* training: batch statistics over all processes (NULL: this process's batch) */
    float *work;          /* shared workspace of at least ops->workspace(l, n) floats */
    int need_dx;          /* backward must produce dx (0 for the first trained layer) */
} cnn_ctx;

typedef struct cnn_layer cnn_layer;

/* Layer type flags. RANDOM: the training-mode output draws random numbers (Dropout), so a prefix holding it
 * cannot be cached. */
enum { CNN_LAYER_RANDOM = 1u };

typedef struct cnn_layer_ops {
    const char *type;      /* Keras class name: "Dense" */
    const char *auto_name; /* Keras's automatic name prefix: "dense" */
    size_t cfg_size;       /* bytes of l->cfg, zeroed before configure */
    unsigned flags;        /* CNN_LAYER_* */
    /* Keyword names of the positional arguments Keras accepts, in order ({"units"} for Dense); the spec
     * parser rewrites Dense(256) as units=256. */
    const char *positional[2];
    /* Reads the layer's options into l->cfg (cfg_size bytes, zeroed, owned by the model). */
    int (*configure)(cnn_layer *l, cnn_opts *o);
    /* With l->in set: sets l->out, declares parameters and scratch, or fails naming the layer. */
    int (*build)(cnn_layer *l);
    /* Floats of shared workspace needed for a batch of n (NULL: none). */
    size_t (*workspace)(const cnn_layer *l, int n);
    void (*forward)(cnn_layer *l, const cnn_ctx *c, const float *x, float *y, int n);
    /* dy is the gradient of the output (may be overwritten); writes parameter gradients when l->trainable
     * and dx when c->need_dx. x and y are the forward pass's input and output. */
    void (*backward)(cnn_layer *l, const cnn_ctx *c, const float *x, const float *y, float *dy, float *dx,
                     int n);
    /* Forward-pass floating-point operations for a batch of n, and the shape (M, N, K) of the GEMM the
     * forward pass is built on, for `cnnlab profile` (NULL: not counted / no GEMM). */
    double (*flops)(const cnn_layer *l, int n);
    void (*gemm_shape)(const cnn_layer *l, int n, int mnk[3]);
    /* Short configuration text for the summary (NULL: none). */
    void (*describe)(const cnn_layer *l, char *buf, size_t cap);
    /* The algorithm the layer runs now where it has a choice and took another than the direct one
     * ("winograd"), for `cnnlab profile`; NULL (or a NULL op): the direct one. */
    const char *(*algorithm)(const cnn_layer *l);
} cnn_layer_ops;

struct cnn_layer {
    const cnn_layer_ops *ops;
    char name[64];
    char options[512]; /* the options text it was created with (saved with the model) */
    cnn_shape in, out;
    int trainable;
    cnn_activation act;     /* declared activation, as shown to the user */
    cnn_activation act_run; /* applied by the layer: LINEAR when the loss applies the softmax */
    void *cfg;
    cnn_param params[CNN_LAYER_MAX_PARAMS];
    int nparams;
    float *w, *g; /* the model's parameter and gradient buffers (param offsets index into them) */
    size_t scratch_per_sample; /* floats kept from forward to backward */
    float *scratch;
    int alias; /* output is the input buffer itself (Flatten, Reshape) */
};

/* Declares a parameter tensor during build. Returns its index or a negative status. */
int cnn_layer_add_param(cnn_layer *l, const char *name, int rank, const int *dim, int trainable,
                        cnn_init init, int fan_in, int fan_out);
/* Pointer to parameter i's values / gradients. */
float *cnn_layer_param(const cnn_layer *l, int i);
float *cnn_layer_grad(const cnn_layer *l, int i);
/* Replaces sums[0..count) by their totals over the data-parallel processes when c->sync is set (returns 1);
 * returns 0 and leaves them when it is not, or when an earlier reduction failed. */
int cnn_layer_sync_sums(const cnn_ctx *c, double *sums, int count);
/* Reads "activation=" into l->act. */
int cnn_layer_read_activation(cnn_layer *l, cnn_opts *o);
/* Reads "kernel_regularizer=l2(0.001)" / "l1(...)" / "l1_l2(l1=..,l2=..)" into *l1, *l2. */
int cnn_layer_read_regularizer(cnn_opts *o, float *l1, float *l2);
/* Fails with a shape error that names the layer. */
int cnn_layer_fail(const cnn_layer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const cnn_layer_ops *cnn_layer_find(const char *type);
/* The known type nearest to a misspelt one, or NULL. */
const char *cnn_layer_suggest(const char *type);
/* Comma-separated list of the known layer types (for error messages). */
const char *cnn_layer_types(void);

#endif
