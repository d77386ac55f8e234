/* The model: a sequence of layers over three contiguous buffers (parameters, gradients, optimizer state)
 * and one activation arena planned per batch size. */
#ifndef CNN_MODEL_MODEL_H
#define CNN_MODEL_MODEL_H

#include "cnnlab.h"
#include "layers/layer.h"
#include "optim/optimizer.h"

/* Execution state: everything training and inference change, each quantity in one place. The model's
 * definition (layers, shapes, parameter tensors, trainable flags) lives in cnn_model itself. */
typedef struct cnn_exec {
    /* activation plan for batches of up to plan_batch samples (model/plan.c) */
    int plan_batch;
    float *arena;
    float **acts;    /* acts[0] = input batch, acts[i+1] = output of layer i */
    float *dbuf[2];  /* ping-pong gradient buffers */
    float *work;     /* shared workspace */
    float *logits;   /* logits of a fused softmax output, kept for the loss */
    int32_t *labels; /* label batch */
    float *input;    /* where the batch enters: acts[first] of the last pass */
    int last_n;      /* batch size of the last forward pass */
    int last_first;  /* first layer the last forward pass ran */
    int last_training;

    /* training: the loss and the optimizer with its learning rate, iteration count and slots */
    int compiled;
    cnn_loss_config loss; /* set by compile (or a loaded file); zero: on probabilities */
    cnn_optimizer opt;
    uint64_t rng_step;   /* training forward passes taken: the position of the dropout streams */
    uint64_t rng_sample; /* data-parallel: position of this process's first sample in the global batch */
    int loss_count;      /* data-parallel: the global batch's size, which scales the loss gradient (0: n) */
    cnn_batch_sync sync; /* synchronised BatchNorm over the processes (reduce NULL: off) */

    /* per-layer timing, when profiling: seconds[2*i] forward, seconds[2*i+1] backward */
    double *prof_seconds;
    long prof_forward, prof_backward; /* passes timed */
    int unfused; /* run every layer on its own (tests compare it with the fused pairs of cnn_model_fused) */
} cnn_exec;

struct cnn_model {
    char name[64];
    cnn_shape input;
    cnn_layer *layers;
    int nlayers, cap;
    int built;
    uint64_t seed;
    char *spec_text; /* the spec this model was built from, saved with it (NULL: none) */

    /* parameters: one buffer each, layers hold offsets */
    float *params, *grads;
    size_t nparams;

    int outputs;       /* values per sample of the last layer's output */
    int fused_softmax; /* the last layer's softmax runs in the model, over kept logits */
    int bf16;          /* cnn_model_set_precision "bf16": the layers' products run on the BF16 kernels */

    cnn_exec x;
};

/* Ensures the arena fits batches of n; allocates only when n exceeds what is planned. */
int cnn_model_plan(cnn_model *m, int n);
/* Runs layers first..end over acts[first] (already filled with n samples). */
void cnn_model_forward_from(cnn_model *m, int first, int n, int training);
/* Runs layers first..through over acts[first]; the output is acts[through + 1]. */
void cnn_model_forward_range(cnn_model *m, int first, int through, int n, int training);
/* 1 when layer i and the next one run as one pass (layers/conv_pool.h: the first convolution and the max
 * pooling after it); layer i's own output is then not written. */
int cnn_model_fused(const cnn_model *m, int i);
/* Loss and correct count of the last forward pass against labels y; fills the gradients. */
void cnn_model_backward_planned(cnn_model *m, const int32_t *y, double *loss, int *correct);
/* Adds the loss sum and correct count of the last forward pass to *loss_sum and *correct (no gradients). */
void cnn_model_score_planned(cnn_model *m, const int32_t *y, int n, double *loss_sum, int *correct);
/* One optimizer update from the current gradients. */
void cnn_model_update_planned(cnn_model *m);
/* Sum of the regularisation terms over all kernels. */
double cnn_model_regularization(const cnn_model *m);
/* Output of the last forward pass: n x outputs. */
const float *cnn_model_output(const cnn_model *m);
/* Sets the optimizer's ranges from the trainable flags. */
int cnn_model_update_ranges(cnn_model *m);
/* Fails with CNN_ERR_NONFINITE naming the first tensor (and index) holding NaN or infinity; context prefixes
 * the message. */
int cnn_model_check_finite(const cnn_model *m, const char *context);
/* 1 when every gradient the optimizer would apply is finite. */
int cnn_model_grads_finite(const cnn_model *m);
/* Writes which layer's output (forward order from first, batch of n) or which gradient first went non-finite.
 */
int cnn_model_explain_nonfinite(const cnn_model *m, int first, int n, char *buf, size_t cap);
/* Fails unless the model is compiled with a loss that fits its output. */
int cnn_model_check_loss(const cnn_model *m, const cnn_loss_config *loss);
/* What cnn_model_build decides without allocating anything: every layer's shapes and parameter offsets,
 * nparams, outputs and the fused softmax (cnn_model_check_loss works after it). Build calls it first; alone
 * it checks a model too large to build cheaply (the spec fuzz harness). */
int cnn_model_infer(cnn_model *m);

#endif
