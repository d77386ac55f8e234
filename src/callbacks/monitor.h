/* What the monitoring callbacks (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint) share: the quantity they
 * watch in the epoch log and the direction in which it improves. */
#ifndef CNN_CALLBACKS_MONITOR_H
#define CNN_CALLBACKS_MONITOR_H

#include <math.h>
#include <stddef.h>

#include "cnnlab.h"
#include "core/opts.h"

enum { MON_LOSS, MON_ACCURACY, MON_VAL_LOSS, MON_VAL_ACCURACY, MON_COUNT };
enum { MODE_AUTO, MODE_MIN, MODE_MAX };

static const char *const cnn_monitor_names[MON_COUNT] = {"loss", "accuracy", "val_loss", "val_accuracy"};
static const char *const cnn_mode_names[3] = {"auto", "min", "max"};

/* Reads monitor= and mode= and resolves mode auto. Keras's three callbacks word the auto rule differently
 * (EarlyStopping: the name ends in "acc"/"accuracy"/"auc"; the other two: "acc" occurs in it), but for the
 * four quantities of an epoch log all say: maximise the accuracies, minimise the losses. */
static inline int cnn_monitor_options(cnn_opts *o, int *monitor, int *maximize)
{
    int mode;
    int rc = cnn_opts_enum(o, "monitor", cnn_monitor_names, MON_COUNT, MON_VAL_LOSS, monitor);
    if (!rc) rc = cnn_opts_enum(o, "mode", cnn_mode_names, 3, MODE_AUTO, &mode);
    if (!rc)
        *maximize = mode == MODE_MAX ||
                    (mode == MODE_AUTO && (*monitor == MON_ACCURACY || *monitor == MON_VAL_ACCURACY));
    return rc;
}

/* The monitored value of an epoch. Returns 0 when the log lacks it (validation quantities of a fit without
 * validation data), where Keras finds no key, warns and skips the epoch. val_accuracy is NaN exactly when
 * there was no validation pass; a diverged val_loss is NaN too but is still a value, as in Keras. */
static inline int cnn_monitor_value(const cnn_epoch_log *log, int monitor, double *value)
{
    switch (monitor) {
    case MON_LOSS:
        *value = log->loss;
        return 1;
    case MON_ACCURACY:
        *value = log->accuracy;
        return 1;
    case MON_VAL_LOSS:
        *value = log->val_loss;
        break;
    default:
        *value = log->val_accuracy;
        break;
    }
    return !isnan(log->val_accuracy);
}

/* The shared constructor of the three: allocates size bytes (zeroed; the state block starts with its
 * cnn_callback, a copy of hooks), parses options with type as the context of error messages, lets read take
 * the type's options (monitor and mode first, with cnn_monitor_options) and rejects any option left unread.
 * NULL on failure, with the error set. */
void *cnn_monitor_create(const char *type, size_t size, const cnn_callback *hooks, const char *options,
                         int (*read)(void *state, cnn_opts *o));

typedef int (*cnn_epoch_end_fn)(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop);
/* cb's state block when cb is of the type whose on_epoch_end is epoch_end; otherwise NULL, failing with
 * CNN_ERR_INVALID "callback '<name>' is not <what>" (what: "an EarlyStopping"). */
const void *cnn_monitor_state(const cnn_callback *cb, cnn_epoch_end_fn epoch_end, const char *what);

/* A monitoring callback's resumable state as one fixed-size block (its state_size/state_save/state_load):
 * the doubles, then the ints (as int32), little-endian. Each callback lists pointers to its fields. */
typedef struct cnn_state_fields {
    double *d[4];
    int *i[8];
    int nd, ni;
} cnn_state_fields;

size_t cnn_state_block_size(const cnn_state_fields *f);
void cnn_state_block_save(const cnn_state_fields *f, void *buf);
/* Sets the fields from buf, which must hold exactly cnn_state_block_size bytes; fails, changing nothing,
 * otherwise (type names the callback in the message). */
int cnn_state_block_load(const cnn_state_fields *f, const void *buf, size_t len, const char *type);

#endif
