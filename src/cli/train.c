/* cnnlab train: one model, from a built-in recipe, with its outputs in a run folder of its own. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    "  --precision P           fp32 (default) or bf16: convolutions and Dense products with BF16\n"
    "                          inputs, FP32 sums and weights (CPUs with AVX512_BF16)\n"
    "  --seed N                seed of initialisation and shuffling (default: the spec's, else 1)\n"
    "  --validation-split F    validate on the last fraction F of the training data, not the test set\n"
    "  --limit N               train on the first N training images only\n"
    "  --out DIR               run folder (default runs/MODEL-N, a new one each run)\n"
    "  --overwrite             let --out name a folder that already holds a run\n"
    "  --resume DIR            continue the run in DIR where it stopped (a crash, kill -9): the same\n"
    "                          command again, from the fit backup written after every epoch (and every\n"
    "                          --backup-minutes inside one); the result is the uninterrupted run's, bit for "
    "bit\n"
    "  --backup-minutes M      also back up inside an epoch every M minutes (default 10; 0: epoch ends "
    "only;\n"
    "                          under mpirun rank 0 backs up at epoch ends only)\n"
    "  --quiet                 no progress output\n"
    "  --sync-batchnorm        under mpirun: BatchNorm statistics over the global batch (default: each\n"
    "                          rank's own share, as PyTorch DDP)\n"
    "  --batch-slices N        one process computing each batch's gradient in N slices and adding them,\n"
    "                          as N ranks do: bit for bit the weights of `mpirun -np N`\n"
    "  --initial-weights FILE  the trained model a spec's initial_weights: names (its model.cnn)\n"
    "  --vgg-weights W         weights of a VGG16 base: none (Keras's random init), imagenet or FILE.h5\n"
    "\n"
    "Under `mpirun -np N` (builds with Open MPI) every batch is split over the N ranks and only rank 0 "
    "writes.\n";

typedef struct train_args {
    const char *model, *out, *resume;
    long threads;
    int overwrite;
    int positional; /* the model was named as the first argument */
    int named;      /* ... or with --model */
    cli_run_options run;
} train_args;

/* One model per run: a spec named twice (SPEC and --model) would silently lose one of them. */
static int one_model(const train_args *a, const char *second)
{
    if (!a->positional && !a->named) return 0;
    cli_error("train: the model is given twice ('%s' and '%s'); name one spec or --model, not both", a->model,
              second);
    return 1;
}

static int train_option(void *ctx, const char *o, const char *v, int *takes, int *bad)
{
    train_args *a = ctx;
    const char *model = !strcmp(o, "--model") ? v : o[0] != '-' && !a->positional ? o : NULL;
    if (model) *bad = one_model(a, model);
    if (!strcmp(o, "--model"))
        a->model = v, a->named = 1;
    else if (!strcmp(o, "--out"))
        a->out = v;
    else if (!strcmp(o, "--overwrite"))
        a->overwrite = 1, *takes = 0;
    else if (!strcmp(o, "--resume"))
        a->resume = v;
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

/* The files a run writes into its folder (the checkpoints' *.cnn and *.epoch besides): --overwrite removes
 * the old run's, so that none of them can pass for the new run's. */
static int is_run_output(const char *name)
{
    static const char *const known[] = {"model.spec",   "history.csv", "history.json",
                                        "metrics.json", "report.txt",  "train.log",
                                        "run.json",     "run.key",     "train.args"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(name, known[i])) return 1;
    size_t n = strlen(name);
    return (n > 4 && !strcmp(name + n - 4, ".cnn")) || (n > 6 && !strcmp(name + n - 6, ".epoch"));
}

/* Only regular files with those names, in dir itself: nothing else is touched, nothing recursed into. */
static int remove_old_run(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return cli_error("cannot read %s: %s", dir, strerror(errno)), -1;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!is_run_output(e->d_name) || lstat(path, &st) || !S_ISREG(st.st_mode)) continue;
        if (unlink(path)) rc = (cli_error("--overwrite: cannot remove %s: %s", path, strerror(errno)), -1);
    }
    closedir(d);
    return rc;
}

/* The spec file must not be one of the files the run writes into dir (`train runs/x/model.spec --out
 * runs/x`): found now, not when the finished run's outputs are written. */
static int spec_is_output(const train_args *a, const char *dir)
{
    struct stat spec, st;
    if (stat(a->model, &spec) || !S_ISREG(spec.st_mode)) return 0; /* a built-in model */
    DIR *d = opendir(dir);
    if (!d) return 0;
    char path[4400] = "";
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (is_run_output(e->d_name) && !stat(path, &st) && st.st_dev == spec.st_dev &&
            st.st_ino == spec.st_ino)
            break;
        path[0] = '\0';
    }
    closedir(d);
    if (!path[0]) return 0;
    cli_error("%s is the spec of this run and would be replaced by its outputs; choose another --out", path);
    return 1;
}

/* A fresh folder: --out as given (refused if it holds a run, unless --overwrite), else runs/MODEL-N.
 * *made: the folder was created here. */
static int make_run_dir(const train_args *a, const char *name, char *dir, size_t cap, int *made)
{
    *made = 1;
    if (a->out) {
        snprintf(dir, cap, "%s", a->out);
        *made = mkdir(dir, 0777) == 0;
        if (!*made && errno != EEXIST) return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/model.cnn", dir);
        struct stat st;
        if (!a->overwrite && stat(probe, &st) == 0)
            return cli_error("%s already holds a run; choose another --out or add --overwrite", dir), -1;
        if (spec_is_output(a, dir)) return -1;
        /* --resume continues the run in dir: its backup and files are what it resumes from. */
        return a->overwrite && !a->run.resume ? remove_old_run(dir) : 0;
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

/* The command line of a run, kept in its folder (train.args, NUL-separated) so that --resume repeats it. */
static int save_args(const char *dir, int argc, char **argv, const cnn_spec *spec)
{
    char spec_path[4200];
    snprintf(spec_path, sizeof spec_path, "%s/model.spec", dir);
    const char *text = cnn_spec_text(spec);
    if (cnn_write_file_atomic(spec_path, text, strlen(text))) return cli_error("%s", cnn_errmsg()), -1;
    char *buf = NULL, path[4200];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int i = 1; f && i < argc; i++) fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
    if (!f || fclose(f)) return cli_error("out of memory"), -1;
    snprintf(path, sizeof path, "%s/train.args", dir);
    int rc = cnn_write_file_atomic(path, buf, len);
    free(buf);
    return rc ? (cli_error("%s", cnn_errmsg()), -1) : 0;
}

/* What a run writes as it starts, before anything it could resume from. */
static const char *const START_FILES[] = {"train.log", "model.spec", "train.args"};

static int is_start_file(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, START_FILES[i])) return 1;
    return !strcmp(name, ".") || !strcmp(name, "..");
}

/* Entries of dir that a run's start did not write (nor, with temps, a write it was killed in: *.tmp-*);
 * -1 when dir cannot be read. */
static int other_files(const char *dir, int temps)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int others = 0;
    for (struct dirent *e; (e = readdir(d));)
        others += !is_start_file(e->d_name) && !(temps && strstr(e->d_name, ".tmp-"));
    closedir(d);
    return others;
}

/* A run folder killed between its creation and train.args (written after model.spec). */
static int started_only(const char *dir)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/train.args", dir);
    if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || lstat(path, &st) == 0 || errno != ENOENT) return 0;
    return other_files(dir, 1) == 0;
}

/* --resume DIR: the run's own command line again, into the same folder, continuing from its backup. */
static int resume_args(const train_args *given, train_args *a, char **text)
{
    char path[4200], *argv[256] = {"train"};
    size_t len = 0;
    snprintf(path, sizeof path, "%s/train.args", given->resume);
    if (started_only(given->resume))
        return cli_error(
                   "train: %s was stopped before its run started (no train.args yet): nothing to resume; "
                   "run its command again",
                   given->resume),
               EXIT_FAILURE_RUN;
    /* Only a regular file is read: a FIFO named train.args must not hang --resume. */
    if (cnn_read_file(path, text, &len, 1 << 16) || len == 0 || (*text)[len - 1])
        return cli_error("train: %s is missing or damaged; --resume needs a run folder made by cnnlab train",
                         path),
               EXIT_USAGE;
    int argc = 1;
    for (size_t i = 0; i < len && argc < 255; i += strlen(*text + i) + 1) argv[argc++] = *text + i;
    int rc = parse_args(argc, argv, a);
    if (rc) return rc;
    a->out = given->resume, a->overwrite = 1, a->run.resume = 1;
    if (given->run.quiet) a->run.quiet = 1;
    return 0;
}

/* A run to resume must be the same spec, and unfinished: 0 resume, 2 nothing to do, -1 refused. */
static int check_resumable(const char *dir, const cnn_spec *spec)
{
    char path[4200], *have = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/model.spec", dir);
    int same = cnn_read_file(path, &have, &len, 1 << 20) == 0 && len == strlen(cnn_spec_text(spec)) &&
               !memcmp(have, cnn_spec_text(spec), len);
    free(have);
    if (!same)
        return cli_error("train: %s was made from another spec than %s now holds; not resuming", dir, path),
               -1;
    struct stat st;
    snprintf(path, sizeof path, "%s/backup.cnn", dir);
    if (stat(path, &st) == 0) return printf("Resuming %s from %s\n", cnn_spec_name(spec), path), 0;
    snprintf(path, sizeof path, "%s/run.json", dir);
    if (stat(path, &st) == 0) return printf("%s holds a finished run: nothing to resume\n", dir), 2;
    printf("%s has no backup yet (it stopped in its first epoch): training from the start\n", dir);
    return 0;
}

/* A failed run in a folder made for it that left nothing else (no backup to resume from) removes the folder,
 * so that failures do not pile up empty runs. */
static void drop_failed_run(const char *dir)
{
    int others = other_files(dir, 0);
    if (others < 0) return;
    char path[4200];
    for (int i = 0; !others && i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, START_FILES[i]);
        others = unlink(path) && errno != ENOENT;
    }
    if (others || rmdir(dir)) return;
    cli_error("removed %s/: the failed run left nothing but its train.log", dir);
}

static int train(const train_args *given, train_args a, int argc, char **argv);

int cli_train(int argc, char **argv)
{
    train_args a, given;
    char *args_text = NULL; /* --resume: the run's command line, which a's strings point into */
    int rc = parse_args(argc, argv, &given);
    a = given;
    if (!rc && given.resume && argc > 3 + given.run.quiet)
        rc = (cli_error("train: --resume DIR takes no other options (the run's own are used)"), EXIT_USAGE);
    if (!rc && given.resume) rc = resume_args(&given, &a, &args_text);
    rc = rc ? (rc < 0 ? EXIT_OK : rc) : train(&given, a, argc, argv);
    free(args_text);
    return rc;
}

static int train(const train_args *given, train_args a, int argc, char **argv)
{
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
    int made = 0;
    int fail = cli_data_load(&a.run, &data) ||
               (cli_writer() && make_run_dir(&a, cnn_spec_name(spec), dir, sizeof dir, &made)) ||
               (cli_writer() && !given->resume && save_args(dir, argc, argv, spec));
    /* Under mpirun the ranks train together: all of them, or none. */
    if (cli_par) fail = cli_par->any(fail);
    /* Rank 0 chose the run folder; the others read the fit backup (and a study's weights) from it. */
    if (cli_par && !fail) cli_par->share_text(dir, (int)sizeof dir);
    if (!fail && a.run.resume && cli_writer()) fail = check_resumable(dir, spec);
    if (fail == 2) {
        fail = 0; /* finished already */
    } else if (!fail && cli_run_spec(spec, &a.run, &data, dir, &run)) {
        fail = 1;
        if (made && cli_writer()) drop_failed_run(dir);
    }
    cnn_run_free(&run);
    cli_data_free(&data);
    cnn_spec_free(spec);
    return fail ? EXIT_FAILURE_RUN : EXIT_OK;
}
