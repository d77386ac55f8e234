/* cnnlab predict: class probabilities and predicted classes of a saved model for the test set of a dataset
 * folder or for an IDX image file, as CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const HELP =
    "usage: cnnlab predict MODEL_FILE [--data DIR | --images FILE [--labels FILE]] [--out FILE.csv]\n"
    "                     [--batch N] [--threads N]\n"
    "\n"
    "Writes one CSV row per image: index, true label (-1 when unknown), predicted class, its name and\n"
    "the probability of every class. Input: the test set of DIR (default " CNN_FASHION_MNIST_DIR "),\n"
    "or an IDX image file (labels optional). Output: FILE.csv (written atomically) or standard output.\n";

typedef struct predict_args {
    const char *model, *data, *images, *labels, *out;
    long batch, threads;
} predict_args;

static int parse(int argc, char **argv, predict_args *a)
{
    *a = (predict_args){.data = CNN_FASHION_MNIST_DIR, .batch = 512};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1, bad = 0;
        if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return fputs(HELP, stdout), -1;
        else if (!strcmp(o, "--data"))
            a->data = v;
        else if (!strcmp(o, "--images"))
            a->images = v;
        else if (!strcmp(o, "--labels"))
            a->labels = v;
        else if (!strcmp(o, "--out"))
            a->out = v;
        else if (!strcmp(o, "--batch"))
            bad = cli_int(o, v, 1, 1 << 20, &a->batch);
        else if (!strcmp(o, "--threads"))
            bad = cli_int(o, v, 1, 1024, &a->threads);
        else if (o[0] != '-' && !a->model)
            a->model = o, takes = 0;
        else
            return cli_error("predict: unexpected argument '%s' (try: cnnlab predict --help)", o), EXIT_USAGE;
        if (takes && !v) return cli_error("predict: %s needs a value", o), EXIT_USAGE;
        if (bad) return EXIT_USAGE;
        i += takes;
    }
    if (!a->model) return cli_error("predict: which model file? (try: cnnlab predict --help)"), EXIT_USAGE;
    if (a->labels && !a->images) return cli_error("predict: --labels goes with --images"), EXIT_USAGE;
    return 0;
}

/* Only the images predicted are read (the t10k files of --data), and every file read is marked as an input
 * so that --out cannot replace it. */
static int load_input(const predict_args *a, cnn_dataset *ds)
{
    int rc = cnn_file_protect(a->model);
    if (!rc && a->images) rc = cnn_file_protect(a->images);
    if (!rc && a->labels) rc = cnn_file_protect(a->labels);
    if (rc) return rc;
    if (a->images) return cnn_dataset_load_idx(ds, a->images, a->labels);
    return cnn_dataset_load_dir(a->data, NULL, ds);
}

/* The CSV text: header, then one row per image. */
static char *format_csv(const cnn_dataset *ds, const float *probs, const int32_t *pred, int k, size_t *len)
{
    size_t cap = 64 + (size_t)k * 8 + (size_t)ds->n * (48 + (size_t)k * 16), n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    n += (size_t)snprintf(buf, cap, "index,label,predicted,class");
    for (int j = 0; j < k; j++) n += (size_t)snprintf(buf + n, cap - n, ",p%d", j);
    n += (size_t)snprintf(buf + n, cap - n, "\n");
    for (int i = 0; i < ds->n; i++) {
        const char *name = k == 10 ? cnn_fashion_class_name(pred[i]) : NULL;
        n += (size_t)snprintf(buf + n, cap - n, "%d,%d,%d,%s", i, ds->y[i], pred[i], name ? name : "");
        for (int j = 0; j < k; j++)
            n += (size_t)snprintf(buf + n, cap - n, ",%.6g", probs[(size_t)i * k + j]);
        n += (size_t)snprintf(buf + n, cap - n, "\n");
    }
    *len = n;
    return buf;
}

static int write_predictions(const predict_args *a, const cnn_dataset *ds, const float *probs,
                             const int32_t *pred, int k)
{
    size_t len;
    char *csv = format_csv(ds, probs, pred, k, &len);
    if (!csv) return cli_error("out of memory"), -1;
    int rc = 0;
    if (a->out) {
        if (cnn_write_file_atomic(a->out, csv, len)) rc = (cli_error("%s", cnn_errmsg()), -1);
    } else if (fwrite(csv, 1, len, stdout) != len) {
        rc = (cli_error("cannot write the predictions"), -1);
    }
    free(csv);
    return rc;
}

static void report_accuracy(const cnn_dataset *ds, const int32_t *pred, int k)
{
    int known = 0, hits = 0;
    for (int i = 0; i < ds->n; i++)
        if (ds->y[i] >= 0 && ds->y[i] < k) known++, hits += pred[i] == ds->y[i];
    if (known)
        fprintf(stderr, "%d images, %d labelled: accuracy %.2f%%\n", ds->n, known, 100.0 * hits / known);
    else
        fprintf(stderr, "%d images (no labels)\n", ds->n);
}

int cli_predict(int argc, char **argv)
{
    predict_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    cnn_set_threads((int)a.threads);
    cnn_model *m = cnn_model_load(a.model);
    cnn_dataset ds = {0};
    float *probs = NULL;
    int32_t *pred = NULL;
    int fail = !m || load_input(&a, &ds);
    int k = m ? cnn_model_num_outputs(m) : 0;
    if (fail) cli_error("%s", cnn_errmsg());
    if (!fail) {
        probs = malloc(sizeof(float) * (size_t)ds.n * k);
        pred = malloc(sizeof(int32_t) * (size_t)ds.n);
        if (!probs || !pred) fail = (cli_error("out of memory"), 1);
    }
    if (!fail &&
        (cnn_model_predict_dataset(m, &ds, (int)a.batch, probs) || cnn_argmax_rows(probs, ds.n, k, pred)))
        fail = (cli_error("%s", cnn_errmsg()), 1);
    if (!fail) fail = write_predictions(&a, &ds, probs, pred, k) != 0;
    if (!fail) report_accuracy(&ds, pred, k);
    free(probs);
    free(pred);
    cnn_dataset_free(&ds);
    cnn_model_free(m);
    return fail ? EXIT_FAILURE_RUN : EXIT_OK;
}
