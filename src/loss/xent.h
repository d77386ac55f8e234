/* Sparse categorical cross-entropy on logits (Keras's path when the last activation is softmax: it reads
 * the logits under the softmax rather than the clipped probabilities). */
#ifndef CNN_LOSS_XENT_H
#define CNN_LOSS_XENT_H

#include <stdint.h>

/* For each of n rows of k logits z: loss_i = logsumexp(z_i) - z_i[y_i]. Adds the losses to *loss_sum and the
 * rows whose argmax equals y_i to *correct. When dz is not NULL, writes scale * (softmax(z_i) - onehot(y_i)).
 * Labels outside [0, k) count as wrong with zero loss contribution and zero gradient; the caller validates
 * labels before training. */
void cnn_xent(const float *z, const int32_t *y, int n, int k, float scale, double *loss_sum, int *correct,
              float *dz);

#endif
