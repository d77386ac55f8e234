/* The pixels of a dataset, whichever form it holds them in (bytes with a divisor, or floats: cnn_dataset in
 * include/cnnlab.h). Everything in the library that reads images goes through these, one sample at a time,
 * so no reader needs the whole set as floats. */
#ifndef CNN_DATA_DATASET_H
#define CNN_DATA_DATASET_H

#include <stddef.h>

#include "cnnlab.h"

/* Values per sample: h * w * c. */
static inline size_t cnn_dataset_sample_size(const cnn_dataset *ds)
{
    return (size_t)ds->h * (size_t)ds->w * (size_t)ds->c;
}

/* Whether ds holds its pixels in exactly one form: floats, or bytes with a finite divisor > 0. */
int cnn_dataset_has_pixels(const cnn_dataset *ds);
/* Writes sample i as float32 values into out (cnn_dataset_sample_size floats). */
void cnn_dataset_sample(const cnn_dataset *ds, size_t i, float *out);

#endif
