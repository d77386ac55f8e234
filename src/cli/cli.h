/* The cnnlab command line: one file per command, sharing argument parsing and the built-in models. */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include <stdint.h>

#include "cnnlab.h"

/* Exit codes, documented in `cnnlab --help`. */
enum { EXIT_OK = 0, EXIT_FAILURE_RUN = 1, EXIT_USAGE = 2 };

/* A training recipe: the architecture and how the study trains it. */
typedef struct cli_recipe {
    const char *name;
    const char *description;
    int h, w, c;
    const char *layers[16][2]; /* {type, options}, ended by {NULL} */
    cnn_optimizer_kind optimizer;
    double lr;
    int batch, epochs;
    int schedule;     /* 0 none, 1 step, 2 exp */
    int thresh;       /* schedule threshold epoch (0-based) */
    double lr_after;  /* step schedule's later rate */
} cli_recipe;

const cli_recipe *cli_recipe_find(const char *name);
void cli_recipe_list(FILE *out);
/* Creates and builds the recipe's model. */
cnn_model *cli_recipe_build(const cli_recipe *r, uint64_t seed);

/* Parses an integer option value in [min, max]; prints a usage error and returns -1 otherwise. */
int cli_int(const char *opt, const char *val, long min, long max, long *out);
int cli_double(const char *opt, const char *val, double min, double max, double *out);
/* Prints "cnnlab: <msg>" to stderr (and the library's message when lib is set). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_summary(int argc, char **argv);

#endif
