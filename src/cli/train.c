/* cnnlab train: one model, from a built-in recipe, with its outputs in a run folder of its own. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const char *const HELP =
    "usage: cnnlab train [options]\n"
    "\n"
    "Trains a model and writes model.cnn, history.csv, history.json, metrics.json and train.log into\n"
    "its run folder. By default, as in the study, the test set is the validation set.\n"
    "\n"
    "options:\n"
    "  --model NAME            built-in model (default Model_1; `cnnlab models` lists them)\n"
    "  --data DIR              IDX dataset folder (default " CNN_FASHION_MNIST_DIR ")\n"
    "  --epochs N              epochs (default: the model's recipe)\n"
    "  --batch N               batch size (default: the model's recipe)\n"
    "  --threads N             threads (default: the number of physical cores)\n"
    "  --seed N                seed of initialisation and shuffling (default 1)\n"
    "  --validation-split F    validate on the last fraction F of the training data, not the test set\n"
    "  --limit N               train on the first N training images only\n"
    "  --out DIR               run folder (default runs/MODEL-N, a new one each run)\n"
    "  --overwrite             let --out name a folder that already holds a run\n"
    "  --quiet                 no progress output\n";

typedef struct train_args {
    const char *model, *data, *out;
    long epochs, batch, threads, seed, limit;
    double val_split;
    int overwrite, quiet;
} train_args;

/* Returns 0, or EXIT_USAGE after printing why; -1 means --help was shown. */
static int parse_args(int argc, char **argv, train_args *a)
{
    *a = (train_args){.model = "Model_1", .data = CNN_FASHION_MNIST_DIR, .epochs = -1, .batch = -1, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes = 1;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return fputs(HELP, stdout), -1;
        else if (!strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--data")) a->data = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--epochs")) bad = cli_int(o, v, 0, 100000, &a->epochs);
        else if (!strcmp(o, "--batch")) bad = cli_int(o, v, 1, 1 << 20, &a->batch);
        else if (!strcmp(o, "--threads")) bad = cli_int(o, v, 1, 1024, &a->threads);
        else if (!strcmp(o, "--seed")) bad = cli_int(o, v, 0, 2147483647, &a->seed);
        else if (!strcmp(o, "--limit")) bad = cli_int(o, v, 1, 2147483647, &a->limit);
        else if (!strcmp(o, "--validation-split")) bad = cli_double(o, v, 1e-6, 0.999999, &a->val_split);
        else if (!strcmp(o, "--overwrite")) a->overwrite = 1, takes = 0;
        else if (!strcmp(o, "--quiet")) a->quiet = 1, takes = 0;
        else {
            cli_error("train: unknown option '%s' (try: cnnlab train --help)", o);
            return EXIT_USAGE;
        }
        if (takes && !v) {
            cli_error("train: %s needs a value", o);
            return EXIT_USAGE;
        }
        if (bad) return EXIT_USAGE;
        i += takes;
    }
    return 0;
}

/* A fresh folder: --out as given (refused if it holds a run, unless --overwrite), else runs/MODEL-N. */
static int make_run_dir(const train_args *a, char *dir, size_t cap)
{
    if (a->out) {
        snprintf(dir, cap, "%s", a->out);
        if (mkdir(dir, 0777) && errno != EEXIST) return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/model.cnn", dir);
        struct stat st;
        if (!a->overwrite && stat(probe, &st) == 0)
            return cli_error("%s already holds a run; choose another --out or add --overwrite", dir), -1;
        return 0;
    }
    if (mkdir("runs", 0777) && errno != EEXIST) return cli_error("cannot create runs/: %s", strerror(errno)), -1;
    for (int n = 1; n < 100000; n++) {
        snprintf(dir, cap, "runs/%s-%d", a->model, n);
        if (mkdir(dir, 0777) == 0) return 0;
        if (errno != EEXIST) return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
    }
    return cli_error("runs/ is full"), -1;
}

typedef struct run {
    cnn_dataset train, test, val;
    const cnn_dataset *validation;
    cnn_model *model;
    cnn_callback *callbacks[2];
    int ncallbacks;
    FILE *log;
    char dir[4096];
} run;

static void run_free(run *r)
{
    cnn_dataset_free(&r->train);
    cnn_dataset_free(&r->test);
    cnn_dataset_free(&r->val);
    cnn_model_free(r->model);
    for (int i = 0; i < r->ncallbacks; i++) cnn_callback_free(r->callbacks[i]);
    if (r->log) fclose(r->log);
}

static int load_data(const train_args *a, run *r)
{
    if (cnn_dataset_load_dir(a->data, &r->train, &r->test)) return cli_error("%s", cnn_errmsg()), -1;
    if (a->limit && a->limit < r->train.n) {
        cnn_dataset part;
        if (cnn_dataset_slice(&r->train, 0, (int)a->limit, &part)) return cli_error("%s", cnn_errmsg()), -1;
        cnn_dataset_free(&r->train);
        r->train = part;
    }
    r->validation = &r->test;
    if (a->val_split > 0) {
        cnn_dataset rest;
        if (cnn_dataset_split(&r->train, a->val_split, &rest, &r->val)) return cli_error("%s", cnn_errmsg()), -1;
        cnn_dataset_free(&r->train);
        r->train = rest;
        r->validation = &r->val;
    }
    return 0;
}

/* Mirrors each epoch's line into train.log. */
static int log_epoch(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *e, int *stop)
{
    (void)m, (void)stop;
    FILE *f = cb->state;
    fprintf(f, "epoch %d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f lr %.4g seconds %.2f\n",
            e->epoch + 1, e->loss, e->accuracy, e->val_loss, e->val_accuracy, e->lr, e->seconds);
    fflush(f);
    return CNN_OK;
}

static int setup_model(const train_args *a, const cli_recipe *rc, run *r)
{
    r->model = cli_recipe_build(rc, (uint64_t)a->seed);
    cnn_optimizer_config opt = cnn_optimizer_default(rc->optimizer, rc->lr);
    if (!r->model || cnn_model_compile(r->model, &opt)) return cli_error("%s", cnn_errmsg()), -1;
    if (rc->schedule == 1) {
        cnn_step_schedule s = {rc->thresh, rc->lr_after};
        r->callbacks[r->ncallbacks] = cnn_callback_lr_scheduler(cnn_schedule_step, &s, sizeof s);
    } else if (rc->schedule == 2) {
        r->callbacks[r->ncallbacks] = cnn_callback_lr_scheduler(cnn_schedule_exp, &rc->thresh, sizeof rc->thresh);
    }
    if (rc->schedule && !r->callbacks[r->ncallbacks++]) return cli_error("%s", cnn_errmsg()), -1;
    return 0;
}

static int save_outputs(run *r, const cnn_history *h, double loss, double acc)
{
    char path[4200], json[256];
    snprintf(path, sizeof path, "%s/model.cnn", r->dir);
    int rc = cnn_model_save(r->model, path);
    snprintf(path, sizeof path, "%s/history.csv", r->dir);
    if (!rc) rc = cnn_history_save_csv(h, path);
    snprintf(path, sizeof path, "%s/history.json", r->dir);
    if (!rc) rc = cnn_history_save_json(h, path);
    int k = snprintf(json, sizeof json, "{\"test_loss\": %.9g, \"test_accuracy\": %.9g, \"epochs\": %d}\n", loss, acc,
                     h->count);
    snprintf(path, sizeof path, "%s/metrics.json", r->dir);
    if (!rc) rc = cnn_write_file_atomic(path, json, (size_t)k);
    if (rc) cli_error("%s", cnn_errmsg());
    return rc;
}

static int train_and_report(const train_args *a, const cli_recipe *rc, run *r)
{
    cnn_fit_config fc = cnn_fit_default();
    fc.epochs = a->epochs >= 0 ? (int)a->epochs : rc->epochs;
    fc.batch_size = a->batch > 0 ? (int)a->batch : rc->batch;
    fc.seed = (uint64_t)a->seed;
    fc.validation = r->validation;
    fc.verbose = a->quiet ? CNN_VERBOSE_SILENT : CNN_VERBOSE_AUTO;
    cnn_callback logger = {.name = "log", .state = r->log, .on_epoch_end = log_epoch};
    r->callbacks[r->ncallbacks] = &logger;
    fc.callbacks = r->callbacks;
    fc.num_callbacks = r->ncallbacks + 1;
    if (!a->quiet)
        printf("Training %s: %d images, batch %d, up to %d epochs, %d threads; validation: %s\n", rc->name,
               r->train.n, fc.batch_size, fc.epochs, cnn_get_threads(),
               r->validation == &r->test ? "the test set (as in the study)" : "split off the training data");
    cnn_history h;
    int err = cnn_model_fit(r->model, &r->train, &fc, &h);
    double loss = NAN, acc = NAN;
    if (!err) err = cnn_model_evaluate(r->model, &r->test, 512, &loss, &acc);
    if (err) {
        cnn_history_free(&h);
        return cli_error("%s", cnn_errmsg()), -1;
    }
    double secs = 0;
    for (int i = 0; i < h.count; i++) secs += h.epochs[i].seconds;
    printf("Test accuracy: %.2f%%  loss: %.4f  (%d epochs, %.2f s/epoch)\nOutputs: %s/\n", 100 * acc, loss, h.count,
           h.count ? secs / h.count : 0.0, r->dir);
    fprintf(r->log, "test_accuracy %.4f test_loss %.4f\n", acc, loss);
    err = save_outputs(r, &h, loss, acc);
    cnn_history_free(&h);
    return err;
}

int cli_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    const cli_recipe *recipe = cli_recipe_find(a.model);
    if (!recipe) {
        cli_error("train: unknown model '%s'; built-in models:", a.model);
        cli_recipe_list(stderr);
        return EXIT_USAGE;
    }
    cnn_set_threads((int)a.threads);
    run r = {0};
    int fail = load_data(&a, &r) || setup_model(&a, recipe, &r) || make_run_dir(&a, r.dir, sizeof r.dir);
    if (!fail) {
        char path[4200];
        snprintf(path, sizeof path, "%s/train.log", r.dir);
        if (!(r.log = fopen(path, "w"))) fail = (cli_error("cannot write %s", path), 1);
    }
    if (!fail && !a.quiet) cnn_model_summary(r.model, stdout);
    if (!fail) cnn_model_summary(r.model, r.log);
    if (!fail) fail = train_and_report(&a, recipe, &r) != 0;
    run_free(&r);
    return fail ? EXIT_FAILURE_RUN : EXIT_OK;
}
