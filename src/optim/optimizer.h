/* Optimizers over the model's contiguous parameter buffer. Frozen parameters are simply ranges skipped. */
#ifndef CNN_OPTIM_OPTIMIZER_H
#define CNN_OPTIM_OPTIMIZER_H

#include <stddef.h>

#include "cnnlab.h"

typedef struct cnn_range {
    size_t offset, size;
} cnn_range;

typedef struct cnn_optimizer {
    cnn_optimizer_config cfg;
    double lr;         /* current learning rate (schedules and callbacks change it) */
    long t;            /* updates taken */
    float *m, *v;      /* state slots, each as long as the parameter buffer (unused ones NULL) */
    cnn_range *ranges; /* trainable ranges, merged */
    int nranges;
} cnn_optimizer;

int cnn_optimizer_init(cnn_optimizer *o, const cnn_optimizer_config *cfg, size_t nparams);
void cnn_optimizer_free(cnn_optimizer *o);
/* Replaces the set of trainable ranges (after a trainable flag changes). */
int cnn_optimizer_set_ranges(cnn_optimizer *o, const cnn_range *r, int n);
/* One update of w from g over the trainable ranges. */
void cnn_optimizer_step(cnn_optimizer *o, float *w, const float *g);

/* Update rules over one contiguous range; Keras 2.15 formulas (see each file). */
void cnn_adam_update(const cnn_optimizer_config *c, double lr, long t, float *w, const float *g, float *m,
                     float *v, size_t n);
void cnn_sgd_update(const cnn_optimizer_config *c, double lr, float *w, const float *g, float *m, size_t n);
void cnn_rmsprop_update(const cnn_optimizer_config *c, double lr, float *w, const float *g, float *v,
                        size_t n);

#endif
