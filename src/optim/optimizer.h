/* Optimizers over the model's contiguous parameter buffer. Frozen parameters are simply ranges skipped. */
#ifndef CNN_OPTIM_OPTIMIZER_H
#define CNN_OPTIM_OPTIMIZER_H

#include <stddef.h>

#include "cnnlab.h"
#include "core/opts.h"

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

/* One optimizer type, registered in optimizer.c as layers are in layers/layer.c: each update-rule file
 * exports its ops. */
typedef struct cnn_optimizer_ops {
    const char *type;          /* Keras class name: "Adam" */
    const char *positional[2]; /* keyword names of the positional arguments Keras accepts, in order */
    cnn_optimizer_kind kind;
    /* Reads Keras-named options (learning_rate and the type's own) into *cfg, from Keras's defaults. */
    int (*configure)(cnn_opts *o, cnn_optimizer_config *cfg);
} cnn_optimizer_ops;

/* The ops of a Keras class name, or NULL. */
const cnn_optimizer_ops *cnn_optimizer_find(const char *type);
/* "Adam, SGD or RMSprop": the known types, for error messages. */
const char *cnn_optimizer_types(void);
/* Reads learning_rate (default def), the option every optimizer has. */
int cnn_optimizer_read_lr(cnn_opts *o, double def, cnn_optimizer_config *cfg);

int cnn_optimizer_init(cnn_optimizer *o, const cnn_optimizer_config *cfg, size_t nparams);
/* The configuration check of cnn_optimizer_init, alone. */
int cnn_optimizer_check(const cnn_optimizer_config *cfg);
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
