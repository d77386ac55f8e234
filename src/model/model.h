/* The model: a sequence of layers over three contiguous buffers (parameters, gradients, optimizer state)
 * and one activation arena planned per batch size. */
#ifndef CNN_MODEL_MODEL_H
#define CNN_MODEL_MODEL_H

#include "cnnlab.h"
#include "layers/layer.h"
#include "optim/optimizer.h"

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

    /* loss: softmax cross-entropy over the last layer's outputs */
    int compiled;
    int classes;
    cnn_optimizer opt;

    /* activation plan for batches of up to plan_batch samples */
    int plan_batch;
    float *arena;
    float **acts;    /* acts[0] = input batch, acts[i+1] = output of layer i */
    float *dbuf[2];  /* ping-pong gradient buffers */
    float *work;     /* shared workspace */
    float *logits;   /* copy of the last layer's pre-softmax output */
    int32_t *labels; /* label batch for fit */
    int last_n;      /* batch size of the last forward pass */
    int last_training;
    uint64_t step; /* training steps taken (Adam's t, dropout streams) */

    /* per-layer timing, when profiling: seconds[2*i] forward, seconds[2*i+1] backward */
    double *prof_seconds;
    long prof_forward, prof_backward; /* passes timed */
};

/* Ensures the arena fits batches of n; allocates only when n exceeds what is planned. */
int cnn_model_plan(cnn_model *m, int n);
/* Runs the forward pass over acts[0] (already filled with n samples). */
void cnn_model_forward_planned(cnn_model *m, int n, int training);
/* Mean loss and correct count of the last forward pass against labels; fills the gradients. */
void cnn_model_backward_planned(cnn_model *m, const int32_t *y, double *loss, int *correct);
/* Loss and correct count only (no gradients). */
void cnn_model_score_planned(cnn_model *m, const int32_t *y, int n, double *loss_sum, int *correct);
/* Sum of the regularisation terms over all kernels. */
double cnn_model_regularization(const cnn_model *m);
/* Output probabilities of the last forward pass: n x classes. */
const float *cnn_model_output(const cnn_model *m);

#endif
