/* Internal helpers shared by the study's augmentation and the Keras-style one. */
#ifndef CNN_AUGMENT_AUGMENT_H
#define CNN_AUGMENT_AUGMENT_H

#include <stdint.h>

#include "cnnlab.h"

/* The k-th uniform number in [0, 1) of sample `index` in `epoch`: every random choice of an augmentation goes
 * through here, so a sample's transform depends only on (seed, epoch, index), never on the thread or order.
 */
double cnn_random_uniform(uint64_t seed, int epoch, int index, int k);

/* The study's transform with caller-provided scratch (h * w floats), for callers that run it in parallel. */
void aug_study_transform(const float *in, float *out, float *scratch, int h, int w, double s, int tx, int ty,
                         int angle);

/* A source that forwards to inner and, when freed, frees inner and then owned (with free()): for sources
 * whose context (a transform's parameters, a generator's state) must live as long as they do. NULL (inner
 * freed) when out of memory. */
cnn_source *aug_source_owning(cnn_source *inner, void *owned);

#endif
