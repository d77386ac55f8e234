/* Keras-style layer options in text form: "units=256, activation=relu, kernel_size=(3,3)".
 * Every getter records the key it asked for, so cnn_opts_finish() can reject a misspelt option and
 * suggest the closest key the layer knows. */
#ifndef CNN_CORE_OPTS_H
#define CNN_CORE_OPTS_H

#include <stddef.h>

#define CNN_OPTS_MAX 32

typedef struct cnn_opt {
    char key[40];
    char val[80];
    int used;
    int pos; /* offset of the key in the parsed text, for error positions */
} cnn_opt;

typedef struct cnn_opts {
    cnn_opt items[CNN_OPTS_MAX];
    int n;
    const char *known[CNN_OPTS_MAX]; /* keys asked for, for suggestions */
    int nknown;
    char context[96]; /* "layer 'conv1' (Conv2D)", prefixed to errors */
} cnn_opts;

int cnn_opts_parse(cnn_opts *o, const char *text, const char *context);
/* Getters: absent key -> default; present but malformed or out of range -> error naming key and value. */
int cnn_opts_int(cnn_opts *o, const char *key, int def, int min, int max, int *out);
int cnn_opts_double(cnn_opts *o, const char *key, double def, double min, double max, double *out);
int cnn_opts_bool(cnn_opts *o, const char *key, int def, int *out);
/* An int or a pair: "3" -> (3,3); "(3,2)" -> (3,2). */
int cnn_opts_pair(cnn_opts *o, const char *key, int def, int min, int max, int out[2]);
/* One of names[0..n) (case-insensitive); *out is the index. */
int cnn_opts_enum(cnn_opts *o, const char *key, const char *const *names, int n, int def, int *out);
int cnn_opts_str(cnn_opts *o, const char *key, const char *def, char *out, size_t cap);
/* Fails with CNN_ERR_INVALID and a message about option key, recording where key stands in the text. */
int cnn_opts_fail(const cnn_opts *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 when an option nobody asked for is a near miss of one that was asked for (a likely misspelling). */
int cnn_opts_has_misspelling(const cnn_opts *o);
/* Fails on the first option nobody asked for, suggesting the nearest known key. */
int cnn_opts_finish(cnn_opts *o);

/* Option reading that goes on after a failure: an option left unread would be reported as unknown and hide
 * the real error, so every getter runs and the first failure (status and message) is what configure returns.
 */
typedef struct cnn_first_error {
    int rc;
    int offset; /* where in the options text, for line:column reports */
    char msg[480];
} cnn_first_error;
void cnn_first_error_keep(cnn_first_error *e, int rc);
int cnn_first_error_result(const cnn_first_error *e);

/* Levenshtein distance, for "did you mean" suggestions. */
int cnn_edit_distance(const char *a, const char *b);

#endif
