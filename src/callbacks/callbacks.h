/* The callback types a spec can name, registered in callbacks/registry.c as layers are in layers/layer.c:
 * each callback file exports one cnn_callback_kind that builds the callback from Keras-named options text. */
#ifndef CNN_CALLBACKS_CALLBACKS_H
#define CNN_CALLBACKS_CALLBACKS_H

#include "cnnlab.h"

/* What a constructor may need besides its options: where the run lives and how long it is. */
typedef struct cnn_callback_env {
    const char *model;   /* the model's name (ModelCheckpoint's default file names) */
    const char *out_dir; /* the folder for files; NULL: the current one */
    int epochs;          /* the fit's epochs (the schedules' default length) */
} cnn_callback_env;

typedef struct cnn_callback_kind {
    const char *type;          /* Keras class name: "EarlyStopping" */
    const char *positional[2]; /* keyword names of the positional arguments Keras accepts, in order */
    /* Builds the callback from options such as "monitor=val_loss, patience=5"; NULL with the error set. A
     * type whose options say everything sets create (its public constructor); one that needs the run's
     * context sets create_in. */
    cnn_callback *(*create)(const char *options);
    cnn_callback *(*create_in)(const char *options, const cnn_callback_env *env);
} cnn_callback_kind;

/* The kind of a Keras class name, or NULL. */
const cnn_callback_kind *cnn_callback_kind_find(const char *type);
/* Builds a callback of kind k from its options. */
cnn_callback *cnn_callback_kind_create(const cnn_callback_kind *k, const char *options,
                                       const cnn_callback_env *env);
/* The known type nearest to a misspelt one (within 3 edits), or NULL. */
const char *cnn_callback_kind_suggest(const char *type);
/* Comma-separated list of the known types (for error messages). */
const char *cnn_callback_kind_types(void);

#endif
