/* Keras-style per-epoch progress: a live bar on a terminal, one plain line per epoch otherwise. */
#ifndef CNN_MODEL_PROGRESS_H
#define CNN_MODEL_PROGRESS_H

#include <stdio.h>

#include "cnnlab.h"
#include "core/time.h" /* cnn_now, for the timings of fit and the profile */

typedef struct cnn_progress {
    FILE *out;
    int mode; /* CNN_VERBOSE_SILENT, _BAR or _LINE */
    int steps;
    double start, last_draw;
} cnn_progress;

/* Resolves CNN_VERBOSE_AUTO by whether out is a terminal. */
void cnn_progress_begin(cnn_progress *p, FILE *out, cnn_verbosity v, int epoch, int epochs, int steps);
void cnn_progress_step(cnn_progress *p, int step, double loss, double acc);
void cnn_progress_end(cnn_progress *p, const cnn_epoch_log *log);

#endif
