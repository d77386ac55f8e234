/* Element-wise activations applied in place over rows x cols (softmax works per row). */
#ifndef CNN_LAYERS_ACTIVATION_H
#define CNN_LAYERS_ACTIVATION_H

#include <stddef.h>

#include "cnnlab.h"

/* Keras name of an activation ("relu"), and the reverse lookup (-1 when unknown). */
const char *cnn_act_name(cnn_activation a);
int cnn_act_from_name(const char *name);
/* 1 if the derivative needs the pre-activation z (cannot be computed from the output y alone). */
int cnn_act_needs_input(cnn_activation a);

/* y <- f(y) in place. */
void cnn_act_forward(cnn_activation a, float *y, size_t rows, size_t cols);
/* dy <- dy * f'(z) in place, where y = f(z); z is only read when cnn_act_needs_input(a). */
void cnn_act_backward(cnn_activation a, const float *z, const float *y, float *dy, size_t rows, size_t cols);

/* Row-wise softmax of z into p; returns nothing, stable against large logits. */
void cnn_softmax_rows(const float *z, float *p, size_t rows, size_t cols);

#endif
