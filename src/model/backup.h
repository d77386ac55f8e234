/* A resumable fit's backup: the model file (with optimizer state) plus a FITS section holding the fit's
 * progress, its history and every callback's state. */
#ifndef CNN_MODEL_BACKUP_H
#define CNN_MODEL_BACKUP_H

#include "cnnlab.h"

/* Where a fit stands: the next batch to train and the epoch's running sums so far. */
typedef struct cnn_fit_progress {
    int epoch, batch; /* next batch to train (batch 0: the epoch has not started) */
    double loss_sum, seconds;
    long correct;
    int seen;
    int stop; /* training was stopped: nothing is left but on_train_end */
} cnn_fit_progress;

int cnn_backup_write(const cnn_model *m, const cnn_fit_config *c, const cnn_history *h,
                     const cnn_fit_progress *p);
/* Restores c->backup_path into m, h, p and the callbacks. Returns 1 when restored, 0 when there is no backup
 * file, or a negative status. */
int cnn_backup_restore(cnn_model *m, const cnn_fit_config *c, cnn_history *h, cnn_fit_progress *p);

#endif
