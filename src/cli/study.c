/* cnnlab study: train a set of specs in turn, reuse runs whose spec and settings are unchanged (the study
 * did the same with its saved models), and compare every model in one table sorted by accuracy. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/report.h"

static const char *const HELP =
    "usage: cnnlab study [SPEC... | DIR...] [options]\n"
    "\n"
    "Trains each spec in turn (a folder means every *.spec in it; no argument means the study's built-in\n"
    "models) and writes each model's outputs into OUT/<model>/, then prints all models sorted by test\n"
    "accuracy and writes the table to OUT/results.csv. A model whose outputs exist for the same spec and\n"
    "settings is reused, not retrained.\n"
    "\n"
    "options:\n"
    "  --out DIR      results folder (default study)\n"
    "  --epochs N     cap every model's epochs (a quick look)\n"
    "  --retrain      train every model again even when its outputs exist\n"
    "  --from-zip F   first unpack F (a <study>_models.zip of `cnnlab report --zip`) into OUT, so that its\n"
    "                 models are reused instead of trained again, as the study restored its archive\n"
    "  --threads N    threads (default: the number of physical cores)\n"
    "  --precision P  fp32 (default) or bf16: convolutions and Dense products with BF16\n"
    "                 inputs, FP32 sums and weights (CPUs with AVX512_BF16)\n"
    "  --seed N       seed for every model (default: each spec's)\n"
    "  --batch N      batch size for every model (default: each spec's)\n"
    "  --validation-split F  validate on the last fraction F of the training data, not the test set\n"
    "  --data DIR     IDX dataset folder (default " CNN_FASHION_MNIST_DIR ")\n"
    "  --limit N      train on the first N training images only\n"
    "  --quiet        no per-epoch progress\n"
    "  --vgg-weights W  weights of every VGG16 base: none (Keras's random init), imagenet or FILE.h5;\n"
    "                 a model whose ImageNet weights are missing is not trained (the others are)\n"
    "\n"
    "Under `mpirun -np N` (builds with Open MPI) whole models go to the ranks, largest first; rank 0 reads\n"
    "their run records and writes the table (OUT must be on a file system every rank sees).\n";

enum { MAX_SPECS = 256 };

typedef struct study_args {
    const char *out, *from_zip;
    long threads;
    int retrain;
    cli_run_options run;
    cnn_spec *specs[MAX_SPECS];
    int nspecs;
} study_args;

static int add_spec(study_args *a, cnn_spec *s)
{
    if (!s) return -1;
    for (int i = 0; i < a->nspecs; i++)
        if (!strcmp(cnn_spec_name(a->specs[i]), cnn_spec_name(s))) {
            cli_error("study: two specs name the model '%s'", cnn_spec_name(s));
            cnn_spec_free(s);
            return -1;
        }
    if (a->nspecs == MAX_SPECS)
        return cnn_spec_free(s), cli_error("study: more than %d specs", MAX_SPECS), -1;
    a->specs[a->nspecs++] = s;
    return 0;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every *.spec file of a folder, in name order. */
static int add_dir(study_args *a, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return cli_error("study: cannot read %s: %s", dir, strerror(errno)), -1;
    char *names[MAX_SPECS];
    int n = 0, rc = 0;
    for (struct dirent *e; (e = readdir(d)) && n < MAX_SPECS;) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".spec") && (names[n] = malloc(strlen(dir) + len + 2)))
            sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 0; i < n; i++) {
        if (!rc) rc = add_spec(a, cnn_spec_load(names[i]));
        if (rc && i == 0) cli_error("%s", cnn_errmsg());
        free(names[i]);
    }
    if (!rc && n == 0) rc = (cli_error("study: no .spec files in %s", dir), -1);
    return rc;
}

static int add_target(study_args *a, const char *what)
{
    struct stat st;
    if (stat(what, &st) == 0 && S_ISDIR(st.st_mode)) return add_dir(a, what);
    int usage;
    cnn_spec *s = cli_spec_resolve(what, &usage);
    if (!s && usage) cli_error("study: '%s' is neither a spec file, a folder nor a built-in model", what);
    return add_spec(a, s);
}

static int study_option(void *ctx, const char *o, const char *v, int *takes, int *bad)
{
    study_args *a = ctx;
    if (!strcmp(o, "--out"))
        a->out = v;
    else if (!strcmp(o, "--from-zip"))
        a->from_zip = v;
    else if (!strcmp(o, "--retrain"))
        a->retrain = 1, *takes = 0;
    else if (o[0] == '-')
        return 0;
    else
        *takes = 0, *bad = add_target(a, o);
    return 1;
}

static int parse_args(int argc, char **argv, study_args *a)
{
    a->out = "study";
    a->run = cli_run_defaults();
    int rc = cli_parse_run_args("study", HELP, argc, argv, &a->run, &a->threads, study_option, a);
    if (rc) return rc;
    for (const cli_builtin_spec *b = cli_builtin_specs; !a->nspecs && b->name; b++)
        if (add_spec(a, cnn_spec_parse(b->text, b->path)))
            return cli_error("%s", cnn_errmsg()), EXIT_FAILURE_RUN;
    return 0;
}

/* What, besides the spec text, decides a run's record: the overrides, the data and the thread count (the
 * weights do not depend on it, on any kernel path, but the recorded seconds per epoch do). */
static void run_key(const study_args *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "epochs=%ld batch=%ld seed=%ld limit=%ld validation_split=%g threads=%d data=%s\n",
             a->run.epochs, a->run.batch, a->run.seed, a->run.limit, a->run.val_split, cnn_get_threads(),
             a->run.data);
    if (a->run.vgg_weights)
        snprintf(buf + strlen(buf), cap - strlen(buf), "vgg_weights=%s\n", a->run.vgg_weights);
}

/* NULL when path is missing or not a regular file (a FIFO in a run folder must not hang the command). */
static char *read_text(const char *path)
{
    char *text = NULL;
    size_t len;
    if (cnn_read_file(path, &text, &len, 1u << 20)) return NULL;
    return text;
}

static int same_file_text(const char *dir, const char *name, const char *text)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *have = read_text(path);
    int same = have && !strcmp(have, text);
    free(have);
    return same;
}

/* A run is reused only whole: a model.cnn that was deleted or fails its checksum means training again. */
static int model_loads(const char *dir)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/model.cnn", dir);
    cnn_model *m = cnn_model_load(path);
    if (!m) printf("== %s/: not reused, its model does not load (%s)\n", dir, cnn_errmsg());
    cnn_model_free(m);
    return m != NULL;
}

/* A finished run with the same spec text and settings is reused. */
static int try_reuse(const study_args *a, const cnn_spec *s, const char *dir, cnn_run *res)
{
    char key[4400], path[4300];
    run_key(a, key, sizeof key);
    snprintf(path, sizeof path, "%s/run.json", dir);
    return !a->retrain && same_file_text(dir, "model.spec", cnn_spec_text(s)) &&
           same_file_text(dir, "run.key", key) && model_loads(dir) && cnn_run_load(res, path) == 0;
}

static int run_one(const study_args *a, const cnn_spec *s, const cli_data *d, cnn_run *res, int *reused)
{
    char dir[4200], key[4400], path[4300];
    snprintf(dir, sizeof dir, "%s/%s", a->out, cnn_spec_name(s));
    if (mkdir(dir, 0777) && errno != EEXIST)
        return cli_error("cannot create %s: %s", dir, strerror(errno)), -1;
    if ((*reused = try_reuse(a, s, dir, res))) {
        printf("== %s: reusing %s/ (same spec and settings; --retrain to train again)\n", res->model, dir);
        return 0;
    }
    /* An unfinished run of the same spec and settings continues from its backup (a crashed or killed
     * study); anything else starts afresh. The spec and key are written first, so a crash keeps them. */
    run_key(a, key, sizeof key);
    cli_run_options o = a->run;
    o.in_study = 1;
    o.resume = !a->retrain && same_file_text(dir, "model.spec", cnn_spec_text(s)) &&
               same_file_text(dir, "run.key", key);
    printf("== %s%s\n", cnn_spec_name(s), o.resume ? " (resuming an unfinished run)" : "");
    /* A stale result must not survive a failed retraining. */
    snprintf(path, sizeof path, "%s/run.json", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/model.spec", dir);
    int rc = cnn_write_file_atomic(path, cnn_spec_text(s), strlen(cnn_spec_text(s)));
    snprintf(path, sizeof path, "%s/run.key", dir);
    if (!rc) rc = cnn_write_file_atomic(path, key, strlen(key));
    if (rc) return cli_error("%s", cnn_errmsg()), -1;
    cnn_run_init(res, cnn_spec_name(s));
    return cli_run_spec(s, &o, d, dir, res) ? -1 : 0;
}

/* A row of the table: the run record and whether it was reused. */
typedef struct study_row {
    cnn_run run;
    int reused;
} study_row;

static int by_accuracy(const void *x, const void *y)
{
    const cnn_run *a = &((const study_row *)x)->run, *b = &((const study_row *)y)->run;
    return (a->test_accuracy < b->test_accuracy) - (a->test_accuracy > b->test_accuracy);
}

/* What the table's val_* figures were measured on: --validation-split overrides every spec's choice. */
static const char *validation_note(const study_args *a, char *buf, size_t cap)
{
    if (a->run.val_split > 0) {
        snprintf(buf, cap, "the last %g of the training data (--validation-split)", a->run.val_split);
        return buf;
    }
    for (int i = 0; i < a->nspecs; i++) {
        cnn_spec_fit fit;
        cnn_spec_fit_settings(a->specs[i], &fit);
        if (strcmp(fit.validation, "test")) return "as each spec says (not the test set for all)";
    }
    return "the test set, as in the study";
}

static void print_table(const study_row *rows, int n, const char *validation, FILE *out)
{
    fprintf(out, "\n%-28s %9s %8s %7s %5s %8s %9s\n", "model (sorted by accuracy)", "accuracy", "ROC-AUC",
            "epochs", "best", "s/epoch", "total s");
    for (int i = 0; i < n; i++) {
        const cnn_run *r = &rows[i].run;
        fprintf(out, "%-28s %8.2f%% %8.4f %7d %5d %8.2f %9.1f%s%s\n", r->model, 100 * r->test_accuracy,
                r->roc_auc_ovo, r->history.count, r->best_epoch + 1, r->seconds_per_epoch, r->total_seconds,
                rows[i].reused ? "  (reused)" : "", cnn_run_base_label(r));
    }
    fprintf(out, "Validation = %s. ROC-AUC: one-vs-one macro; best: 1-based epoch.\n", validation);
}

/* A quoted CSV field, its quotes doubled. */
static void csv_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const char *c = s; *c; c++) fprintf(f, *c == '"' ? "\"\"" : "%c", *c);
    fputc('"', f);
}

/* One CSV row; weights says where the model started (a random VGG16 base says NOT ImageNet there). */
static void csv_row(FILE *f, const cnn_run *r)
{
    fprintf(f, "%s,%.6f,%.6f,%.6f,%.6f,%d,%d,%.3f,%.1f,", r->model, r->test_accuracy, r->test_loss,
            r->roc_auc_ovo, r->roc_auc_ovr, r->history.count, r->best_epoch + 1, r->seconds_per_epoch,
            r->total_seconds);
    csv_quoted(f, cnn_run_stop_reason(r));
    fputc(',', f);
    csv_quoted(f, r->weights);
    fputc('\n', f);
}

static int write_csv(const char *out, const study_row *rows, int n)
{
    char *buf = NULL, path[4200];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_error("out of memory"), -1;
    fprintf(f,
            "model,accuracy,loss,roc_auc_ovo,roc_auc_ovr,epochs,best_epoch,seconds_per_epoch,total_seconds,"
            "stop_reason,weights\n");
    for (int i = 0; i < n; i++) csv_row(f, &rows[i].run);
    int rc = fclose(f) ? -1 : 0;
    snprintf(path, sizeof path, "%s/results.csv", out);
    if (!rc) rc = cnn_write_file_atomic(path, buf, len);
    free(buf);
    if (rc) cli_error("%s", rc == -1 ? "out of memory" : cnn_errmsg());
    return rc;
}

/* Under mpirun: the models the other ranks trained, read from the run records they wrote, on rank 0.
 * status[i]: 0 another rank's, 1 failed, 2 trained, 3 reused. */
static int collect_others(const study_args *a, const int *owner, const int *status, study_row *rows,
                          int *done)
{
    int failed = 0;
    for (int i = 0; i < a->nspecs; i++) {
        const char *name = cnn_spec_name(a->specs[i]);
        char path[4300];
        snprintf(path, sizeof path, "%s/%s/run.json", a->out, name);
        if (status[i] == 1 && owner[i] != 0)
            failed++, cli_error("study: %s failed on rank %d", name, owner[i]);
        if (status[i] < 2 || owner[i] == 0) continue;
        cnn_run_init(&rows[*done].run, name);
        if (cnn_run_load(&rows[*done].run, path)) {
            cli_error("study: %s from rank %d: %s", name, owner[i], cnn_errmsg());
            cnn_run_free(&rows[*done].run), failed++;
            continue;
        }
        rows[(*done)++].reused = status[i] == 3;
    }
    return failed;
}

int cli_study(int argc, char **argv)
{
    study_args a = {0};
    int rc = parse_args(argc, argv, &a), failed = 0, done = 0;
    study_row *rows = rc ? NULL : calloc((size_t)a.nspecs, sizeof *rows);
    cli_data data = {0};
    if (!rc && !rows) rc = (cli_error("out of memory"), EXIT_FAILURE_RUN);
    if (!rc && mkdir(a.out, 0777) && errno != EEXIST)
        rc = (cli_error("cannot create %s: %s", a.out, strerror(errno)), EXIT_FAILURE_RUN);
    if (!rc && a.from_zip && cnn_unzip(a.from_zip, a.out))
        rc = (cli_error("study: --from-zip: %s", cnn_errmsg()), EXIT_FAILURE_RUN);
    if (!rc) cnn_set_threads(a.threads ? (int)a.threads : cli_spread ? cli_spread->threads : 0);
    if (!rc && cli_data_load(&a.run, &data)) rc = EXIT_FAILURE_RUN;
    /* Under mpirun each rank trains the models assigned to it. */
    int *owner = calloc((size_t)a.nspecs + 1, sizeof *owner),
        *status = calloc((size_t)a.nspecs + 1, sizeof *status);
    if (!rc && (!owner || !status)) rc = (cli_error("out of memory"), EXIT_FAILURE_RUN);
    if (!rc && cli_spread) cli_spread->assign(a.specs, a.nspecs, owner);
    for (int i = 0; !rc && i < a.nspecs; i++) {
        if (cli_spread && owner[i] != cli_spread->rank) continue;
        if (cli_apply_pretrained(a.specs[i], &a.run) == 0 &&
            run_one(&a, a.specs[i], &data, &rows[done].run, &rows[done].reused) == 0) {
            status[i] = 2 + rows[done].reused;
            done++;
            if (!cli_spread) cli_report_progress(a.out); /* the models so far, as the study zipped them */
        } else {
            status[i] = 1;
            cnn_run_free(&rows[done].run);
            failed++, cli_error("study: %s failed; going on with the others", cnn_spec_name(a.specs[i]));
        }
    }
    if (cli_spread && !rc) {
        cli_spread->collect(status, a.nspecs);
        if (cli_spread->rank == 0) failed += collect_others(&a, owner, status, rows, &done);
    }
    free(owner);
    free(status);
    if (!rc && done && (!cli_spread || cli_spread->rank == 0)) {
        qsort(rows, (size_t)done, sizeof *rows, by_accuracy);
        char note[96];
        print_table(rows, done, validation_note(&a, note, sizeof note), stdout);
        if (write_csv(a.out, rows, done))
            failed++;
        else
            printf("Table: %s/results.csv\n", a.out);
        /* Every picture, the page and the archives of the whole study, from the saved run records. */
        cli_report_options ro = cli_report_defaults();
        ro.data = a.run.data;
        ro.zip = 1;
        if (cli_report_dir(a.out, &ro))
            failed++, cli_error("study: report: %s", cnn_errmsg());
        else
            printf("Report: %s/index.html\n", a.out);
    }
    cli_data_free(&data);
    for (int i = 0; i < done; i++) cnn_run_free(&rows[i].run);
    free(rows);
    for (int i = 0; i < a.nspecs; i++) cnn_spec_free(a.specs[i]);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    return failed ? EXIT_FAILURE_RUN : EXIT_OK;
}
