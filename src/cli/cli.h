/* The cnnlab command line: one file per command, sharing argument parsing and the built-in models. */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include <stdint.h>

#include "cnnlab.h"

/* Exit codes, documented in `cnnlab --help`. */
enum { EXIT_OK = 0, EXIT_FAILURE_RUN = 1, EXIT_USAGE = 2 };

/* Parses an integer option value in [min, max]; prints a usage error and returns -1 otherwise. */
int cli_int(const char *opt, const char *val, long min, long max, long *out);
/* --precision's value (fp32, bf16) into *out, or a usage error saying why this machine cannot run it. */
int cli_precision(const char *opt, const char *val, const char **out);
/* For precision bf16: once per process, a note on stderr where this CPU's BF16 multiply-add peak is not
 * clearly above its FP32 one (both measured, about 0.2 s), since bf16 is then slower, not faster. */
void cli_precision_note(const char *precision);
int cli_double(const char *opt, const char *val, double min, double max, double *out);
/* Prints "cnnlab: <msg>" to stderr (and the library's message when lib is set). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The CPU's model name, for reports that print figures. */
void cli_cpu_name(char *buf, size_t cap);

/* The study's spec files compiled into the binary (models/seed/), ended by a NULL name. */
typedef struct cli_builtin_spec {
    const char *name, *path, *text;
} cli_builtin_spec;
extern const cli_builtin_spec cli_builtin_specs[];

/* A spec from a file path, or else a built-in model by name (case-insensitive). NULL with a message
 * printed when neither; *usage is set when the name is simply unknown (exit code 2, not 1). */
cnn_spec *cli_spec_resolve(const char *what, int *usage);
void cli_spec_list(FILE *out);

/* Options shared by train and study. */
typedef struct cli_run_options {
    const char *data;
    long epochs, batch, seed; /* -1: the spec's */
    long limit;               /* 0: all training images */
    double val_split;         /* 0: the spec's validation choice */
    int quiet;
    double backup_minutes; /* fit backups inside an epoch every that many minutes (0: at epoch ends only) */
    int resume;            /* continue the run in its folder from its backup (train --resume) */
    int in_study;          /* a run of `cnnlab study` (the study draws the study-wide pictures) */
    int sync_batchnorm;    /* under mpirun: BatchNorm statistics over the global batch (--sync-batchnorm) */
    long batch_slices;     /* one process: each batch's gradient in that many slices (--batch-slices) */
    const char
        *vgg_weights; /* --vgg-weights: none, imagenet or a file for every VGG16 base (NULL: the spec's) */
    const char
        *initial_weights; /* --initial-weights FILE for a spec's initial_weights (NULL: OUT/NAME/model.cnn) */
    const char *precision; /* --precision fp32|bf16 (checked when parsed; NULL: fp32) */
} cli_run_options;

/* The defaults: the study's data, everything else from the spec. */
cli_run_options cli_run_defaults(void);
/* Parses one option shared by train and study (--data, --epochs, --batch, --threads, --seed, --limit,
 * --validation-split, --quiet) with value v. Returns 1 when o is one of them (*takes: whether it used v;
 * *bad: a usage error was printed), 0 when it is not. */
int cli_run_option(const char *o, const char *v, cli_run_options *r, long *threads, int *takes, int *bad);
/* A command's own options, tried after the shared ones, in the same contract: returns 1 when o is one of
 * them (*takes: whether it used v; *bad: a usage error was printed), 0 when it is not. */
typedef int (*cli_own_option)(void *ctx, const char *o, const char *v, int *takes, int *bad);
/* The argument loop of the training commands (cmd: "train", "study"): --help prints help and returns -1;
 * then the shared options, then own(ctx, ...). An unknown option or a missing value is a usage error
 * (printed; returns EXIT_USAGE), as is whatever an option reports as bad. Returns 0 otherwise. */
int cli_parse_run_args(const char *cmd, const char *help, int argc, char **argv, cli_run_options *run,
                       long *threads, cli_own_option own, void *ctx);

/* Applies --vgg-weights to the spec and checks that the weights it starts from exist; prints why not (what
 * is missing, where to put it, and the option that trains without it) and returns -1. Says so when a
 * pretrained base starts from random weights instead. */
int cli_apply_pretrained(cnn_spec *s, const cli_run_options *o);
/* Says in the run record where a pretrained base's weights came from (a random base says so). */
void cli_label_pretrained(const cnn_spec *s, cnn_run *run);
/* The summary table with the spec's nested models (a VGG16 base) as one row each, or expanded. */
void cli_print_summary(const cnn_spec *s, const cnn_model *m, int expand, FILE *out);

/* Data loaded once and shared by every run of a study. */
typedef struct cli_data {
    cnn_dataset train, test;
} cli_data;
int cli_data_load(const cli_run_options *o, cli_data *d);
void cli_data_free(cli_data *d);

/* Trains spec into dir (which exists) and writes model.cnn, model.spec, history.csv/json, metrics.json,
 * report.txt, train.log, the study's checkpoints and, last, run.json (the run record, whose presence marks a
 * finished run). run receives the record. */
int cli_run_spec(const cnn_spec *spec, const cli_run_options *o, const cli_data *d, const char *dir,
                 cnn_run *run);
/* Writes a finished run's outputs into dir (atomically, file by file). model.spec is not among them: train
 * and study write it as the run starts, so that a crashed run can be resumed. */
int cli_save_run(const char *dir, const cnn_model *m, const cnn_run *run, const char *report, FILE *log);

/* What a data-parallel fit is asked for besides the fit config. */
typedef struct cli_fit_job {
    int sync_bn; /* BatchNorm statistics over the global batch (cnn_model_set_batch_sync), else each rank's */
    int cached;  /* > 0: layers [0, cached) are a frozen prefix whose outputs are computed once and shared */
    FILE *log;   /* the run's train.log (/dev/null on ranks other than 0) */
    int quiet;
    cnn_source *train; /* the rank's share of the spec's augmented batches, or NULL: the dataset's */
} cli_fit_job;

/* Says that layers [0, k) of m run once over the data (cached features), in log and, unless quiet, on the
 * writer's stdout; ranks > 1: computed 1/ranks by each rank and shared. */
void cli_say_cached(FILE *log, int quiet, const cnn_model *m, int k, double t_train, double t_val, int ranks);

/* Runs under mpirun (src/cli/mpi*.c, built only when Open MPI is found at build time; cli_mpi_begin in main).
 * cli_par: data-parallel `train`, one model over all ranks; cli_spread: `study`, whole models handed to
 * ranks. Both NULL in a plain process. */
typedef struct cli_parallel {
    int rank, ranks;
    int threads; /* threads per rank: the node's cores over its ranks, within the rank's CPU binding */
    /* cnn_model_fit on this rank's share of every batch: gradients allreduced, epoch sums reduced, only
     * rank 0's callbacks write files (the caller passes no out_dir elsewhere); the job says the rest. */
    int (*fit)(cnn_model *m, const cnn_dataset *train, const cnn_fit_config *fc, const cli_fit_job *job,
               cnn_history *h);
    /* cnn_run_evaluate split over the ranks; the record's test figures are filled on rank 0 only. */
    int (*evaluate)(cnn_run *run, cnn_model *m, const cnn_dataset *test, int batch_size);
    /* Whether flag is set on any rank (a collective: every rank calls it). */
    int (*any)(int flag);
    /* Rank 0's buf (cap bytes, a string) to every rank (a collective). */
    void (*share_text)(char *buf, int cap);
    /* study: owner[i], the rank that trains spec i (largest first, each to the least loaded rank). */
    void (*assign)(cnn_spec *const *specs, int n, int *owner);
    /* study: status[0..n) combined on rank 0 (each entry set by its owner only; 0 elsewhere). */
    void (*collect)(int *status, int n);
} cli_parallel;
extern const cli_parallel *cli_par, *cli_spread;
/* The rank that writes outputs: rank 0, or the only process. */
int cli_writer(void);

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_summary(int argc, char **argv);
int cli_study(int argc, char **argv);
int cli_profile(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_export_weights(int argc, char **argv);
int cli_report(int argc, char **argv); /* cli/report.c; cli_report_dir in cli/report.h */
int cli_augment(int argc, char **argv);

#endif
