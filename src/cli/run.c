/* One training run of a spec, shared by `cnnlab train` and `cnnlab study`: fit with the spec's callbacks,
 * evaluate the final weights on the test set, and write every output into the run's folder. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/report.h"

cli_run_options cli_run_defaults(void)
{
    return (cli_run_options){
        .data = CNN_FASHION_MNIST_DIR, .epochs = -1, .batch = -1, .seed = -1, .backup_minutes = 10};
}

int cli_run_option(const char *o, const char *v, cli_run_options *r, long *threads, int *takes, int *bad)
{
    *takes = 1;
    *bad = 0;
    if (!strcmp(o, "--data"))
        r->data = v;
    else if (!strcmp(o, "--epochs"))
        *bad = cli_int(o, v, 0, 100000, &r->epochs);
    else if (!strcmp(o, "--batch"))
        *bad = cli_int(o, v, 1, 1 << 20, &r->batch);
    else if (!strcmp(o, "--threads"))
        *bad = cli_int(o, v, 1, 1024, threads);
    else if (!strcmp(o, "--seed"))
        *bad = cli_int(o, v, 0, 2147483647, &r->seed);
    else if (!strcmp(o, "--limit"))
        *bad = cli_int(o, v, 1, 2147483647, &r->limit);
    else if (!strcmp(o, "--validation-split"))
        *bad = cli_double(o, v, 1e-6, 0.999999, &r->val_split);
    else if (!strcmp(o, "--quiet"))
        r->quiet = 1, *takes = 0;
    else if (!strcmp(o, "--initial-weights"))
        r->initial_weights = v;
    else if (!strcmp(o, "--vgg-weights"))
        r->vgg_weights = v;
    else if (!strcmp(o, "--precision"))
        *bad = cli_precision(o, v, &r->precision);
    else if (!strcmp(o, "--backup-minutes"))
        *bad = cli_double(o, v, 0, 1e6, &r->backup_minutes);
    else if (!strcmp(o, "--sync-batchnorm"))
        r->sync_batchnorm = 1, *takes = 0;
    else if (!strcmp(o, "--batch-slices"))
        *bad = cli_int(o, v, 1, 1 << 20, &r->batch_slices);
    else
        return 0;
    return 1;
}

int cli_data_load(const cli_run_options *o, cli_data *d)
{
    memset(d, 0, sizeof *d);
    if (cnn_dataset_load_dir(o->data, &d->train, &d->test)) return cli_error("%s", cnn_errmsg()), -1;
    if (o->limit && o->limit < d->train.n) {
        cnn_dataset part;
        if (cnn_dataset_slice(&d->train, 0, (int)o->limit, &part)) return cli_error("%s", cnn_errmsg()), -1;
        cnn_dataset_free(&d->train);
        d->train = part;
    }
    return 0;
}

void cli_data_free(cli_data *d)
{
    cnn_dataset_free(&d->train);
    cnn_dataset_free(&d->test);
}

/* The spec's fit settings with the command line's overrides. */
static cnn_spec_fit effective_fit(const cnn_spec *s, const cli_run_options *o)
{
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    if (o->epochs >= 0) f.epochs = (int)o->epochs;
    if (o->batch > 0) f.batch_size = (int)o->batch;
    if (o->seed >= 0) f.seed = (uint64_t)o->seed;
    if (o->precision) snprintf(f.precision, sizeof f.precision, "%s", o->precision);
    if (o->val_split > 0) {
        snprintf(f.validation, sizeof f.validation, "split");
        f.validation_split = o->val_split;
    }
    return f;
}

/* A run cut short by --epochs says so in its stop reason, so that no table or report shows it as a whole run.
 */
static void mark_capped(const cnn_spec *s, const cnn_spec_fit *f, cnn_history *h)
{
    cnn_spec_fit own;
    cnn_spec_fit_settings(s, &own);
    if (h->stop_reason[0] || f->epochs >= own.epochs) return;
    snprintf(h->stop_reason, sizeof h->stop_reason, "capped: %d of the spec's %d epochs (--epochs %d)",
             f->epochs, own.epochs, f->epochs);
}

typedef struct run_state {
    cnn_model *model;
    cnn_callback **callbacks;
    int ncallbacks;
    cnn_dataset train, val; /* used when validation splits the training data */
    const cnn_dataset *train_set;
    FILE *log;
    const char *dir;           /* the run folder */
    cnn_source *test_features; /* the test set's cached prefix outputs, when validation is the test set */
} run_state;

static void run_free(run_state *r)
{
    cnn_model_free(r->model);
    for (int i = 0; i < r->ncallbacks; i++) cnn_callback_free(r->callbacks[i]);
    free(r->callbacks);
    cnn_dataset_free(&r->train);
    cnn_dataset_free(&r->val);
    cnn_source_free(r->test_features);
    if (r->log) fclose(r->log);
}

/* Mirrors each epoch into train.log. */
static int log_epoch(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *e, int *stop)
{
    (void)m, (void)stop;
    fprintf(cb->state,
            "epoch %d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f lr %.4g seconds %.2f\n",
            e->epoch + 1, e->loss, e->accuracy, e->val_loss, e->val_accuracy, e->lr, e->seconds);
    fflush(cb->state);
    return CNN_OK;
}

/* Temporary files a killed writer left (NAME.tmp-XXXXXX) go; so does an old backup unless this run resumes
 * it. */
static void clean_run_dir(const char *dir, int resume)
{
    DIR *d = opendir(dir);
    char path[4400];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strstr(e->d_name, ".tmp-")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) remove(path);
    }
    if (d) closedir(d);
    snprintf(path, sizeof path, "%s/backup.cnn", dir);
    if (!resume) remove(path);
}

/* initial_weights: NAME -- the trained weights of NAME's run: --initial-weights FILE, else the study's folder
 * beside this run's (OUT/NAME/model.cnn). The optimizer stays fresh, as after Keras's clone_model +
 * set_weights. */
static int start_weights(const cnn_spec *s, const cli_run_options *o, const char *dir, cnn_model *m)
{
    const char *from = cnn_spec_initial_weights(s);
    if (!from) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/../%s/model.cnn", dir, from);
    cnn_model *src = cnn_model_load(o->initial_weights ? o->initial_weights : path);
    int rc = !src || cnn_model_set_weights_from(m, src);
    if (rc)
        cli_error("%s starts from %s's trained weights (initial_weights): %s; train %s first (cnnlab study "
                  "does) or pass --initial-weights FILE",
                  cnn_spec_name(s), from, cnn_errmsg(), from);
    cnn_model_free(src);
    return rc ? -1 : 0;
}

static int prepare(const cnn_spec *s, const cnn_spec_fit *f, const cli_data *d, const char *dir, run_state *r,
                   const cli_run_options *o)
{
    char path[4200];
    r->dir = dir;
    /* Under mpirun only rank 0 writes files (and only its checkpoints run: cli_mpi_fit). */
    if (cli_writer()) clean_run_dir(dir, o->resume);
    snprintf(path, sizeof path, "%s/train.log", dir);
    if (!cli_writer()) snprintf(path, sizeof path, "/dev/null");
    if (!(r->log = fopen(path, o->resume ? "a" : "w"))) return cli_error("cannot write %s", path), -1;
    if (o->resume) fprintf(r->log, "-- resumed\n");
    r->model = cnn_spec_build_model(s, f->seed);
    if (!r->model || cnn_spec_callbacks(s, dir, &r->callbacks, &r->ncallbacks))
        return cli_error("%s", cnn_errmsg()), -1;
    if (start_weights(s, o, dir, r->model)) return -1;
    if (cnn_model_set_precision(r->model, f->precision)) return cli_error("%s", cnn_errmsg()), -1;
    if (cli_writer()) cli_precision_note(f->precision);
    r->train_set = &d->train;
    if (!strcmp(f->validation, "split")) {
        if (cnn_dataset_split(&d->train, f->validation_split, &r->train, &r->val))
            return cli_error("%s", cnn_errmsg()), -1;
        r->train_set = &r->train;
    }
    return 0;
}

/* Worth caching: a frozen, deterministic prefix that does real work (holds parameters) and leaves layers to
 * train. Its outputs for the training and validation sets are computed once, and the epochs run the rest. */
static int cached_prefix(const cnn_model *m)
{
    int k = cnn_model_frozen_prefix(m), weights = 0;
    for (int i = 0; i < k; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s/kernel", cnn_model_layer_name(m, i));
        cnn_tensor t;
        weights |= cnn_model_find_tensor((cnn_model *)m, name, &t) == 0;
    }
    return weights && k < cnn_model_num_layers(m) ? k : 0;
}

void cli_say_cached(FILE *log, int quiet, const cnn_model *m, int k, double t_train, double t_val, int ranks)
{
    char line[400], by[80] = "";
    if (ranks > 1) snprintf(by, sizeof by, " by %d ranks, 1/%d each, and shared", ranks, ranks);
    snprintf(
        line, sizeof line,
        "cached features: layers 1-%d ('%s' to '%s') are frozen and deterministic; their outputs were "
        "computed once%s (%.1f s for training, %.1f s for validation) and the epochs train the layers after "
        "them\n",
        k, cnn_model_layer_name(m, 0), cnn_model_layer_name(m, k - 1), by, t_train, t_val);
    if (!quiet && cli_writer()) fputs(line, stdout);
    fputs(line, log);
}

static int fit_with_cache(run_state *r, cnn_fit_config *fc, const cnn_dataset *test, int quiet,
                          cnn_history *h)
{
    int k = cached_prefix(r->model);
    if (!k) return cnn_model_fit(r->model, r->train_set, fc, h);
    double t_train = 0, t_val = 0;
    cnn_source *tr =
        cnn_source_features(r->model, k - 1, r->train_set, fc->batch_size, fc->shuffle, fc->seed, &t_train);
    cnn_source *va = tr && fc->validation
                         ? cnn_source_features(r->model, k - 1, fc->validation, fc->batch_size, 0, 0, &t_val)
                         : NULL;
    int rc = !tr || (fc->validation && !va) ? cnn_errcode() : 0;
    if (!rc) cli_say_cached(r->log, quiet, r->model, k, t_train, t_val, 1);
    fc->validation_source = va;
    if (!rc) rc = cnn_model_fit_source(r->model, tr, fc, h);
    cnn_source_free(tr);
    /* The final evaluation on the test set reuses its features rather than running the prefix again. */
    if (fc->validation == test && va)
        r->test_features = va;
    else
        cnn_source_free(va);
    return rc;
}

/* The fit's own data checks, made first so that a failure names the data folder, which the library does
 * not know (a label of 7 for a 2-class model used to be reported without any file). */
static int check_run_data(const cnn_model *m, const cnn_dataset *train, const cnn_dataset *val,
                          const char *dir)
{
    if (cnn_model_check_dataset(m, train, "training") ||
        (val && cnn_model_check_dataset(m, val, "validation")))
        return cli_error("data folder %s: %s", dir, cnn_errmsg()), -1;
    return 0;
}

static int fit(const cnn_spec *s, const cnn_spec_fit *f, const cli_data *d, const cli_run_options *o,
               run_state *r, cnn_run *run)
{
    const cnn_dataset *val = !strcmp(f->validation, "test")    ? &d->test
                             : !strcmp(f->validation, "split") ? &r->val
                                                               : NULL;
    if (check_run_data(r->model, r->train_set, val, o->data)) return -1;
    cnn_callback logger = {.name = "log", .state = r->log, .on_epoch_end = log_epoch};
    cnn_callback **all = calloc((size_t)r->ncallbacks + 2, sizeof *all);
    if (!all) return cli_error("out of memory"), -1;
    memcpy(all, r->callbacks, sizeof *all * (size_t)r->ncallbacks);
    /* Keras's TensorBoard callback comes last in the study's list (spec 3.4), then the log. */
    char logs[4300];
    snprintf(logs, sizeof logs, "%s/logs/tensorboard_%s", r->dir, cnn_model_name(r->model));
    cnn_callback *tb = cli_writer() ? cnn_callback_tensorboard(logs) : NULL;
    if (cli_writer() && !tb) return free(all), cli_error("%s", cnn_errmsg()), -1;
    int n = r->ncallbacks;
    if (tb) all[n++] = tb;
    all[n++] = &logger;
    cnn_fit_config fc = cnn_fit_default();
    fc.epochs = f->epochs;
    fc.batch_size = f->batch_size;
    fc.shuffle = f->shuffle;
    fc.seed = f->seed;
    fc.validation = val;
    fc.verbose = o->quiet ? CNN_VERBOSE_SILENT : CNN_VERBOSE_AUTO;
    fc.callbacks = all;
    fc.num_callbacks = n;
    if (!o->quiet)
        printf(
            "Training %s: %d images, batch %d, up to %d epochs, %d threads, precision %s; validation: %s\n",
            cnn_model_name(r->model), r->train_set->n, fc.batch_size, fc.epochs, cnn_get_threads(),
            cnn_model_precision(r->model),
            fc.validation == &d->test  ? "the test set (as in the study)"
            : fc.validation == &r->val ? "split off the training data"
                                       : "none");
    run->seed = f->seed, run->threads = cnn_get_threads(), run->batch_size = f->batch_size;
    run->train_images = r->train_set->n;
    snprintf(run->precision, sizeof run->precision, "%s", cnn_model_precision(r->model));
    fprintf(r->log, "precision: %s (kernels: %s)\n", run->precision, cnn_isa_name());
    snprintf(run->weights, sizeof run->weights, "initialised from seed %llu", (unsigned long long)f->seed);
    char backup[4200];
    snprintf(backup, sizeof backup, "%s/backup.cnn", r->dir);
    /* Data-parallel: rank 0 writes the backup and every rank resumes from it, at epoch ends only (inside an
     * epoch a rank holds only its own share of the epoch's sums). */
    fc.backup_path = backup;
    fc.backup_restore_only = !cli_writer();
    fc.backup_minutes = cli_par ? 0 : o->backup_minutes;
    fc.batch_slices = (int)o->batch_slices;
    if (cnn_spec_initial_weights(s))
        snprintf(run->weights, sizeof run->weights, "trained weights of %s", cnn_spec_initial_weights(s));
    cnn_source *aug = NULL; /* the spec's augment: section, if any (this rank's share under mpirun) */
    int rc = cnn_spec_train_source_shard(s, r->train_set, f, cli_par ? cli_par->rank : 0,
                                         cli_par ? cli_par->ranks : 1, &aug);
    if (!rc && o->batch_slices > 1 && cli_par) {
        cli_error("--batch-slices makes one process compute its batches as that many ranks would; under "
                  "mpirun every rank already holds one slice");
        cnn_source_free(aug);
        cnn_callback_free(tb);
        free(all);
        return -1;
    }
    /* Augmented images change every epoch (or come from a generator): no prefix can be cached over them. */
    cli_fit_job job = {o->sync_batchnorm, aug ? 0 : cached_prefix(r->model), r->log, o->quiet, aug};
    if (!rc)
        rc = cli_par ? cli_par->fit(r->model, r->train_set, &fc, &job, &run->history)
             : aug   ? cnn_model_fit_source(r->model, aug, &fc, &run->history)
                     : fit_with_cache(r, &fc, &d->test, o->quiet, &run->history);
    cnn_source_free(aug);
    if (!rc) mark_capped(s, f, &run->history);
    if (!rc) cnn_run_summarize(run);
    if (!rc && cli_writer()) remove(backup); /* the run is complete: nothing to resume */
    cnn_callback_free(tb);
    free(all);
    if (rc) cli_error("%s", cnn_errmsg());
    return rc ? -1 : 0;
}

/* Test-set figures of the final weights (the run record) and the classification report. */
static int evaluate(const cli_data *d, run_state *r, cnn_run *run, char **report)
{
    int k = cnn_model_num_outputs(r->model);
    const char *names[16];
    char name_buf[16][48];
    for (int i = 0; i < k && i < 16; i++) {
        const char *cls = cnn_fashion_class_name(i);
        cnn_target_name(i, cls ? cls : "", name_buf[i], sizeof name_buf[i]);
        names[i] = name_buf[i];
    }
    size_t len = 0;
    const char *const *target = k <= 16 ? names : NULL;
    int rc = cli_par ? cli_par->evaluate(run, r->model, &d->test, 512)
             : r->test_features
                 ? cnn_run_evaluate_source(run, r->model, r->test_features, d->test.y, d->test.n)
                 : cnn_run_evaluate(run, r->model, &d->test, 512);
    if (!rc && !run->evaluated) return 0; /* a rank other than 0: rank 0 holds the figures */
    if (!rc)
        rc = cnn_classification_report(run->y_true, run->y_pred, run->n_test, k, target, 2, NULL, 0, &len);
    if (!rc && !(*report = malloc(len + 1))) return cli_error("out of memory"), -1;
    if (!rc)
        rc = cnn_classification_report(run->y_true, run->y_pred, run->n_test, k, target, 2, *report, len + 1,
                                       NULL);
    if (rc) cli_error("%s", cnn_errmsg());
    return rc ? -1 : 0;
}

/* The run's pictures and its page (report.c), drawn from the run record just saved. */
static int draw_report(const char *dir, const cli_run_options *o)
{
    cli_report_options ro = cli_report_defaults();
    ro.data = o->data;
    ro.quiet = 1;
    ro.no_predict = o->in_study; /* the study draws predict.png once, for its chosen model */
    if (cli_report_dir(dir, &ro) == 0) return 0;
    return cli_error("%s", cnn_errmsg()), -1;
}

int cli_run_spec(const cnn_spec *spec, const cli_run_options *o, const cli_data *d, const char *dir,
                 cnn_run *run)
{
    cnn_spec_fit f = effective_fit(spec, o);
    run_state r = {0};
    char *report = NULL;
    int rc = prepare(spec, &f, d, dir, &r, o);
    if (!rc && !o->quiet) cli_print_summary(spec, r.model, 0, stdout);
    if (!rc) cli_print_summary(spec, r.model, 0, r.log);
    if (!rc) rc = fit(spec, &f, d, o, &r, run);
    if (!rc) cli_label_pretrained(spec, run);
    if (!rc) rc = evaluate(d, &r, run, &report);
    if (!rc && cli_writer()) rc = cli_save_run(dir, r.model, run, report, r.log);
    if (!rc && cli_writer()) rc = draw_report(dir, o);
    if (!rc && !o->quiet) fputs(report, stdout);
    if (!rc && cli_writer())
        printf("Test accuracy: %.2f%%  loss: %.4f  ROC-AUC: %.4f  (%d epochs, best %d, %.2f s/epoch; %s)\n"
               "Outputs: %s/\n",
               100 * run->test_accuracy, run->test_loss, run->roc_auc_ovo, run->history.count,
               run->best_epoch + 1, run->seconds_per_epoch, cnn_run_stop_reason(run), dir);
    free(report);
    run_free(&r);
    return rc;
}
