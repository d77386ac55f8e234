/* cnnlab report: redraws every picture of a run or a study from its run records, and writes index.html. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/report.h"

static const char *const REPORT_HELP =
    "usage: cnnlab report RUN_OR_STUDY_DIR [--data DIR] [--labels en|uk] [--seed N] [--select MODEL]\n"
    "                     [--no-predict] [--zip] [--quiet]\n"
    "\n"
    "Draws every picture of a finished run (a folder holding run.json) or of a study (a folder whose\n"
    "sub-folders hold run.json), from the saved run records and without training, and writes index.html:\n"
    "  <model>/<model>_ca.png   learning curves with the early-stop marker\n"
    "  <model>/<model>_cm.png   confusion matrix\n"
    "  va.png, va_sorted.png    every model's test accuracy and ROC-AUC (study)\n"
    "  predict.png              50 random test images with the predictions of the selected model\n"
    "  index.html               results table, pictures, classification reports, recipes, conclusions\n"
    "\n"
    "options:\n"
    "  --data DIR      the test set the runs were evaluated on, for predict.png\n"
    "                  (default " CNN_FASHION_MNIST_DIR ")\n"
    "  --labels en|uk  class names in English (default) or the study's Ukrainian names\n"
    "  --seed N        which 50 test images predict.png shows (default 43)\n"
    "  --select MODEL  the model of predict.png (default: the most accurate)\n"
    "  --no-predict    skip predict.png (no test images at hand)\n"
    "  --zip           also write the study's archives beside it: <study>_models.zip (models, run records,\n"
    "                  histories, recipes, .epoch files, TensorBoard logs) and <study>_images.zip "
    "(pictures)\n"
    "  --quiet         print nothing but errors\n";

cli_report_options cli_report_defaults(void)
{
    return (cli_report_options){CNN_FASHION_MNIST_DIR, CNN_LABELS_EN, 43, NULL, 0, 0, 0};
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* NULL when path is missing or not a regular file (a FIFO in a run folder must not hang the command). */
static char *read_text(const char *path)
{
    char *text = NULL;
    size_t len;
    if (cnn_read_file(path, &text, &len, 1u << 30)) return NULL;
    return text;
}

static void free_set(cli_report_set *s)
{
    for (int i = 0; i < s->n; i++) {
        cnn_run_free(&s->e[i].run);
        free(s->e[i].spec_text);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

/* Loads the run record of root/sub and what the report shows beside it (recipe, parameter count). */
static int load_entry(cli_report_set *s, const char *sub)
{
    char path[4400];
    cli_report_entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s", sub);
    snprintf(path, sizeof path, "%s%s%s/run.json", s->root, *sub ? "/" : "", sub);
    if (cnn_run_load(&e->run, path)) return cli_error("report: %s", cnn_errmsg()), -1;
    s->n++;
    /* The model's name becomes part of picture file names: it must not lead anywhere else. */
    const char *name = e->run.model;
    if (!*name || *name == '.' || strchr(name, '/'))
        return cli_error("report: %s: model name '%s' cannot name a picture file", path, name), -1;
    snprintf(path, sizeof path, "%s%s%s/model.spec", s->root, *sub ? "/" : "", sub);
    e->spec_text = read_text(path);
    snprintf(path, sizeof path, "%s%s%s/model.cnn", s->root, *sub ? "/" : "", sub);
    cnn_model *m = is_file(path) ? cnn_model_load(path) : NULL;
    e->params = m ? (long)cnn_model_num_params(m, 0) : -1;
    cnn_model_free(m);
    return 0;
}

/* The study's order: model names in version order (Model_2 < Model_2_s2 < Model_10_VGG16_AL), which is the
 * order of the built-in models and close to the study's notebook. */
static int by_study_order(const void *a, const void *b)
{
    return strverscmp(*(const char *const *)a, *(const char *const *)b);
}

static int list_runs(const char *root, char ***names, int *n)
{
    DIR *d = opendir(root);
    if (!d) return cli_error("report: cannot read %s: %s", root, strerror(errno)), -1;
    *n = 0;
    *names = NULL;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s/run.json", root, e->d_name);
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 256 || !is_file(path)) continue;
        char **p = realloc(*names, sizeof **names * (size_t)(*n + 1));
        if (!p || !(p[*n] = strdup(e->d_name))) {
            free(p ? p : *names);
            closedir(d);
            return cli_error("report: out of memory"), -1;
        }
        *names = p;
        (*n)++;
    }
    closedir(d);
    return 0;
}

static int load_set(const char *root, cli_report_set *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->root, sizeof s->root, "%s", root);
    char path[4400], **names = NULL;
    int n = 0, rc = 0;
    snprintf(path, sizeof path, "%s/run.json", root);
    if (is_file(path)) {
        s->e = calloc(1, sizeof *s->e);
        return s->e ? load_entry(s, "") : (cli_error("report: out of memory"), -1);
    }
    if (list_runs(root, &names, &n)) return -1;
    if (n == 0) return free(names), cli_error("report: no run.json in %s or its sub-folders", root), -1;
    qsort(names, (size_t)n, sizeof *names, by_study_order);
    s->study = 1;
    s->e = calloc((size_t)n, sizeof *s->e);
    if (!s->e) rc = (cli_error("report: out of memory"), -1);
    for (int i = 0; i < n; i++) {
        if (!rc) rc = load_entry(s, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* <model>_ca.png and <model>_cm.png beside each run's record. */
static int draw_run(const cli_report_set *s, const cli_report_entry *e)
{
    char path[4600];
    const char *sep = *e->dir ? "/" : "";
    snprintf(path, sizeof path, "%s%s%s/%s_ca.png", s->root, sep, e->dir, e->run.model);
    if (e->run.history.count > 0 && cnn_plot_curves(&e->run, path)) return -1;
    snprintf(path, sizeof path, "%s%s%s/%s_cm.png", s->root, sep, e->dir, e->run.model);
    if (e->run.evaluated && cnn_plot_confusion(&e->run, path)) return -1;
    return 0;
}

static int draw_bars(cli_report_set *s)
{
    const cnn_run **runs = malloc(sizeof *runs * (size_t)s->n);
    int n = 0, rc = 0;
    if (!runs) return cli_error("report: out of memory"), -1;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].run.evaluated) runs[n++] = &s->e[i].run;
    char path[4200];
    snprintf(path, sizeof path, "%s/va.png", s->root);
    if (n > 0) rc = cnn_plot_accuracy_bars(runs, n, 0, path);
    s->bars = n > 0 && !rc;
    snprintf(path, sizeof path, "%s/va_sorted.png", s->root);
    if (n > 0 && !rc) rc = cnn_plot_accuracy_bars(runs, n, 1, path);
    free(runs);
    return rc;
}

static int pick_predict(const cli_report_set *s, const char *select)
{
    int best = -1;
    for (int i = 0; i < s->n; i++) {
        const cnn_run *r = &s->e[i].run;
        if (select && !strcmp(r->model, select)) return r->evaluated ? i : -2;
        if (!select && r->evaluated && r->y_pred &&
            (best < 0 || r->test_accuracy > s->e[best].run.test_accuracy))
            best = i;
    }
    return select ? -3 : best;
}

static int draw_predict(cli_report_set *s, const cli_report_options *o)
{
    int k = pick_predict(s, o->select);
    if (k == -2 || k == -3)
        return cli_error("report: --select %s: %s", o->select,
                         k == -2 ? "that run was not evaluated" : "no such run"),
               -1;
    s->predict = k;
    if (k < 0) return 0;
    cnn_dataset test = {0};
    char path[4200];
    snprintf(path, sizeof path, "%s/predict.png", s->root);
    /* Only the test set: at the end of a training run the training set is still in memory. */
    int rc = cnn_dataset_load_dir(o->data, NULL, &test) ||
             cnn_plot_predictions(&s->e[k].run, &test, o->seed, o->labels, path);
    if (rc) cli_error("report: predict.png: %s (--data DIR, or --no-predict)", cnn_errmsg());
    cnn_dataset_free(&test);
    return rc ? -1 : 0;
}

static const char *const MODEL_FILES[] = {".cnn", ".json", ".csv", ".spec", ".epoch", ".key",
                                          ".tsv", ".txt",  ".log", ".v2",   NULL};
static const char *const IMAGE_FILES[] = {".png", ".svg", ".html", NULL};

/* dir/<name><suffix>.zip of the wanted files under dir, name being dir's last component; entries are named
 * from dir on ("Model_1/model.cnn"), as the study's archives held the files of its working folder. */
static int zip_named(const char *dir, const char *suffix, const char *const *wanted, int quiet)
{
    char root[4096], path[8300];
    snprintf(root, sizeof root, "%s", dir);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = '\0';
    const char *slash = strrchr(root, '/'), *dirs[1] = {root};
    snprintf(path, sizeof path, "%s/%s%s.zip", root, slash ? slash + 1 : root, suffix);
    if (cnn_zip_tree(path, root, dirs, 1, wanted)) return cli_error("report: %s", cnn_errmsg()), -1;
    if (!quiet) printf("report: %s\n", path);
    return 0;
}

int cli_report_archives(const char *dir, int quiet)
{
    return zip_named(dir, "_models", MODEL_FILES, quiet) || zip_named(dir, "_images", IMAGE_FILES, quiet) ? -1
                                                                                                          : 0;
}

int cli_report_progress(const char *dir)
{
    return zip_named(dir, "_progress", MODEL_FILES, 1);
}

int cli_report_dir(const char *dir, const cli_report_options *o)
{
    cli_report_set s;
    int rc = load_set(dir, &s);
    for (int i = 0; i < s.n && !rc; i++)
        if (draw_run(&s, &s.e[i])) rc = (cli_error("report: %s", cnn_errmsg()), -1);
    if (!rc && s.study && draw_bars(&s)) rc = (cli_error("report: %s", cnn_errmsg()), -1);
    s.predict = -1;
    if (!rc && !o->no_predict) rc = draw_predict(&s, o);
    if (!rc && cli_report_html(&s)) rc = -1;
    if (!rc && o->zip) rc = cli_report_archives(dir, o->quiet);
    if (!rc && !o->quiet) printf("report: %d run%s drawn, %s/index.html\n", s.n, s.n == 1 ? "" : "s", dir);
    free_set(&s);
    return rc;
}

static int parse_option(const char *o, const char *v, cli_report_options *r, int *used)
{
    long seed;
    *used = 1;
    if (!strcmp(o, "--data") && v)
        r->data = v;
    else if (!strcmp(o, "--select") && v)
        r->select = v;
    else if (!strcmp(o, "--labels") && v && (!strcmp(v, "en") || !strcmp(v, "uk")))
        r->labels = !strcmp(v, "uk") ? CNN_LABELS_UK : CNN_LABELS_EN;
    else if (!strcmp(o, "--labels"))
        return cli_error("report: --labels expects en or uk, got '%s'", v ? v : ""), -1;
    else if (!strcmp(o, "--seed")) {
        if (cli_int(o, v, 0, 2147483647L, &seed)) return -1;
        r->seed = (uint64_t)seed;
    } else {
        *used = 0;
        if (!strcmp(o, "--no-predict"))
            r->no_predict = 1;
        else if (!strcmp(o, "--quiet"))
            r->quiet = 1;
        else if (!strcmp(o, "--zip"))
            r->zip = 1;
        else
            return cli_error("report: unexpected argument '%s' (try: cnnlab report --help)", o), -1;
    }
    return 0;
}

int cli_report(int argc, char **argv)
{
    cli_report_options o = cli_report_defaults();
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(REPORT_HELP, stdout), EXIT_OK;
        if (a[0] != '-' && !dir)
            dir = a;
        else if (parse_option(a, v, &o, &used))
            return EXIT_USAGE;
        i += used;
    }
    if (!dir) return cli_error("report: which run or study folder? (try: cnnlab report --help)"), EXIT_USAGE;
    return cli_report_dir(dir, &o) ? EXIT_FAILURE_RUN : EXIT_OK;
}
