/* cnnlab train: one model, from a built-in recipe, with its outputs in a run folder of its own. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const char *const HELP =
    "usage: cnnlab train [SPEC] [options]\n"
    "\n"
    "Trains the model of a spec file (docs/spec-format.md) or a built-in model of the study, and writes\n"
    "model.cnn, model.spec, history.csv, history.json, metrics.json, report.txt and train.log into its run\n"
    "folder. By default, as in the study, the test set is the validation set. Options override the spec.\n"
    "\n"
    "options:\n"
    "  SPEC                    a spec file, or a built-in model's name\n"
    "  --model NAME            built-in model (default Model_1; `cnnlab models` lists them)\n"
    "  --data DIR              IDX dataset folder (default " CNN_FASHION_MNIST_DIR ")\n"
    "  --epochs N              epochs (default: the model's recipe)\n"
    "  --batch N               batch size (default: the model's recipe)\n"
    "  --threads N             threads (default: the number of physical cores)\n"
    "  --seed N                seed of initialisation and shuffling (default: the spec's, else 1)\n"
    "  --validation-split F    validate on the last fraction F of the training data, not the test set\n"
    "  --limit N               train on the first N training images only\n"
    "  --out DIR               run folder (default runs/MODEL-N, a new one each run)\n"
    "  --overwrite             let --out name a folder that already holds a run\n"
    "  --quiet                 no progress output\n"
    "  --vgg-weights W         weights of a VGG16 base: none (Keras's random init), imagenet or FILE.h5\n"
    "\n"
    "Under `mpirun -np N` (builds with Open MPI) every batch is split over the N ranks and only rank 0 "
    "writes.\n";

typedef struct train_args {
    const char *model, *out;
    long threads;
    int overwrite;
    int positional; /* the model was named as the first argument */
    cli_run_options run;
} train_args;

static int train_option(void *ctx, const char *o, const char *v, int *takes, int *bad)
{
    (void)bad;
    train_args *a = ctx;
    if (!strcmp(o, "--model"))
        a->model = v;
    else if (!strcmp(o, "--out"))
        a->out = v;
    else if (!strcmp(o, "--overwrite"))
        a->overwrite = 1, *takes = 0;
    else if (o[0] != '-' && !a->positional)
        a->model = o, a->positional = 1, *takes = 0;
    else
        return 0;
    return 1;
}

/* Returns 0, or EXIT_USAGE after printing why; -1 means --help was shown. */
static int parse_args(int argc, char **argv, train_args *a)
{
    *a = (train_args){.model = "Model_1"};
    a->run = cli_run_defaults();
    return cli_parse_run_args("train", HELP, argc, argv, &a->run, &a->threads, train_option, a);
}

/* A fresh folder: --out as given (refused if it holds a run, unless --overwrite), else runs/MODEL-N. */
static int make_run_dir(const train_args *a, const char *name, char *dir, size_t cap)
{
    if (a->out) {
        snprintf(dir, cap, "%s", a->out);
        if (mkdir(dir, 0777) && errno != EEXIST)
            return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/model.cnn", dir);
        struct stat st;
        if (!a->overwrite && stat(probe, &st) == 0)
            return cli_error("%s already holds a run; choose another --out or add --overwrite", dir), -1;
        return 0;
    }
    if (mkdir("runs", 0777) && errno != EEXIST)
        return cli_error("cannot create runs/: %s", strerror(errno)), -1;
    for (int n = 1; n < 100000; n++) {
        snprintf(dir, cap, "runs/%s-%d", name, n);
        if (mkdir(dir, 0777) == 0) return 0;
        if (errno != EEXIST) return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
    }
    return cli_error("runs/ is full"), -1;
}

int cli_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    int usage;
    cnn_spec *spec = cli_spec_resolve(a.model, &usage);
    if (!spec) {
        if (!usage) return EXIT_FAILURE_RUN;
        cli_error("train: unknown model '%s'; built-in models:", a.model);
        cli_spec_list(stderr);
        return EXIT_USAGE;
    }
    if (cli_apply_pretrained(spec, &a.run)) return cnn_spec_free(spec), EXIT_FAILURE_RUN;
    cnn_set_threads(a.threads ? (int)a.threads : cli_par ? cli_par->threads : 0);
    if (!cli_writer()) a.run.quiet = 1;
    cli_data data;
    char dir[4096] = "";
    cnn_run run;
    cnn_run_init(&run, cnn_spec_name(spec));
    int fail = cli_data_load(&a.run, &data) ||
               (cli_writer() && make_run_dir(&a, cnn_spec_name(spec), dir, sizeof dir));
    /* Under mpirun the ranks train together: all of them, or none. */
    if (cli_par) fail = cli_par->any(fail);
    fail = fail || cli_run_spec(spec, &a.run, &data, dir, &run);
    cnn_run_free(&run);
    cli_data_free(&data);
    cnn_spec_free(spec);
    return fail ? EXIT_FAILURE_RUN : EXIT_OK;
}
