/* The cnnlab command line, run as a program: exit codes (0 success, 1 failed work, 2 usage), the messages on
 * stderr, and a real (tiny) training run whose outputs are checked and evaluated again.
 *
 * The binary is the one of this test's build: dirname(dirname(argv[0]))/cnnlab, so build/tests/test_cli runs
 * build/cnnlab and build-san/tests/test_cli runs build-san/cnnlab (under the sanitizers, whose leak check
 * then also fails a run). Tests run from the repository root. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cnnlab.h"
#include "util.h"

static char g_bin[1024];
static char *g_out, *g_err; /* stdout and stderr of the last run */

/* The file's bytes, NUL-terminated (NULL if it cannot be read); *size receives its length when size is set.
 */
static char *slurp_n(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, k;
    char chunk[4096];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + k + 1 > cap) {
            cap = 2 * (len + k + 1);
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + len, chunk, k);
        len += k;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    assert_non_null(buf);
    buf[len] = '\0';
    if (size) *size = len;
    return buf;
}

static char *slurp(const char *path)
{
    return slurp_n(path, NULL);
}

/* Runs `cnnlab ARGS` and returns its exit status; g_out and g_err receive its output. */
static int cli(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", g_bin, args, tu_path("stdout.txt"),
             tu_path("stderr.txt"));
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    free(g_out);
    free(g_err);
    g_out = slurp(tu_path("stdout.txt"));
    g_err = slurp(tu_path("stderr.txt"));
    assert_true(g_out && g_err);
    return WEXITSTATUS(rc);
}

/* Asserts the exit status of `cnnlab ARGS` and that stderr (or stdout, for on_stdout) holds the fragment. */
static void expect(const char *args, int status, const char *fragment, int on_stdout)
{
    int rc = cli(args);
    if (rc != status) fail_msg("cnnlab %s: exit %d, expected %d\nstderr: %s", args, rc, status, g_err);
    const char *text = on_stdout ? g_out : g_err;
    if (fragment && !strstr(text, fragment))
        fail_msg("cnnlab %s: %s lacks \"%s\":\n%s", args, on_stdout ? "stdout" : "stderr", fragment, text);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------ a tiny IDX dataset */

/* n 28x28 images whose class k (0..9) shows a bright bar on rows 4 + 2k and 5 + 2k; the test set gzipped. */
static void write_split(const char *dir, const char *prefix, int n, int gz, uint32_t seed)
{
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    assert_true(img && lab);
    for (int i = 0; i < n; i++) {
        int k = i % 10;
        lab[i] = (uint8_t)k;
        for (int p = 0; p < 784; p++) {
            seed = seed * 1664525u + 1013904223u;
            int row = p / 28, bar = row == 4 + 2 * k || row == 5 + 2 * k;
            img[(size_t)i * 784 + p] = (uint8_t)(bar ? 200 + (seed >> 27) : seed >> 26);
        }
    }
    tu_write_idx(dir, prefix, img, lab, n, gz);
    free(img);
    free(lab);
}

static const char *tiny_data(void)
{
    static char dir[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", tu_path("data"));
        assert_int_equal(mkdir(dir, 0777), 0);
        write_split(dir, "train", 200, 0, 1);
        write_split(dir, "t10k", 100, 1, 2);
    }
    return dir;
}

/* ------------------------------------------------------------------ tests */

static void test_help_and_dispatch(void **state)
{
    (void)state;
    expect("--help", 0, "usage: cnnlab COMMAND", 1);
    assert_non_null(strstr(g_out, "2  usage error"));
    expect("", 2, "usage: cnnlab COMMAND", 0);
    expect("--version", 0, "cnnlab " CNN_VERSION "\n", 1);
    assert_non_null(strstr(g_out, "kernels: "));
    /* CNNLAB_ISA forces a path, or is refused before any command runs */
    setenv("CNNLAB_ISA", "generic", 1);
    expect("--version", 0, "kernels: generic (", 1);
    expect("profile Model_1 --batch 8 --steps 1 --threads 1", 0, "kernels generic", 1);
    /* the header carries the peak every %peak is taken of, measured on the forced path and thread count */
    assert_non_null(strstr(g_out, "multiply-add peak (generic, 1 threads): "));
    assert_non_null(strstr(g_out, ", CPU "));
    setenv("CNNLAB_ISA", "avx3", 1);
    expect("--version", 2,
           "cnnlab: CNNLAB_ISA=avx3: unknown kernel path 'avx3' (expected auto, avx512, avx2 or "
           "generic)",
           0);
    unsetenv("CNNLAB_ISA");
    expect("frobnicate", 2, "cnnlab: unknown command 'frobnicate' (try: cnnlab --help)", 0);
    expect("train --help", 0, "usage: cnnlab train", 1);
    expect("eval --help", 0, "usage: cnnlab eval", 1);
    expect("models", 0, "Model_1", 1);
}

static void test_summary(void **state)
{
    (void)state;
    expect("summary", 0, "Total params: 337,674 (1.29 MB)", 1);
    assert_non_null(strstr(g_out, "Trainable params: 337,674"));
    assert_non_null(strstr(g_out, "Hidden_Layer_2 (Dense)"));
    expect("summary --model model_1", 0, "Model: \"Model_1\"", 1); /* names are case-insensitive */
    expect("summary --model Nope", 2, "summary: unknown model 'Nope'", 0);
    expect("summary --bogus", 2, "summary: unexpected argument '--bogus'", 0);
    expect("profile --batch 0", 2, "--batch expects an integer in [1, 65536], got '0'", 0);
    expect("profile --model Nope", 2, "profile: unknown model 'Nope'", 0);
    expect("profile --bogus", 2, "profile: unexpected argument '--bogus'", 0);
    expect("profile Model_1 --batch 8 --steps 1 --threads 1", 0, "Hidden_Layer_1", 1);
    /* every GEMM layer's row ends in its share of the sgemm and of the forward and backward peak */
    assert_non_null(strstr(g_out, "%sgemm  fwd%pk  bwd%pk\n"));
    const char *row = strstr(g_out, "Hidden_Layer_1");
    int shares = 0;
    for (const char *p = row; *p && *p != '\n'; p++) shares += *p == '%';
    assert_int_equal(shares, 3);
}

static void test_train_usage_errors(void **state)
{
    (void)state;
    char args[1024], out[512]; /* tu_path's buffers rotate: keep a copy */
    snprintf(out, sizeof out, "%s", tu_path("never"));
    snprintf(args, sizeof args, "train --epochs abc --out '%s'", out);
    expect(args, 2, "cnnlab: --epochs expects an integer in [0, 100000], got 'abc'", 0);
    snprintf(args, sizeof args, "train --model Nope --out '%s'", out);
    expect(args, 2, "cnnlab: train: unknown model 'Nope'; built-in models:", 0);
    assert_non_null(strstr(g_err, "Model_1"));
    expect("train --bogus", 2, "train: unknown option '--bogus' (try: cnnlab train --help)", 0);
    expect("train --batch 0", 2, "--batch expects an integer in [1, 1048576], got '0'", 0);
    expect("train --validation-split 1.5", 2, "--validation-split expects a number", 0);
    expect("train --seed -1", 2, "--seed expects an integer", 0);
    expect("train --epochs", 2, "--epochs", 0);
    expect("train --out", 2, "train: --out needs a value", 0);
    /* A spec and --model: one would be silently ignored. */
    snprintf(args, sizeof args, "train Model_1 --model Model_2 --out '%s'", out);
    expect(args, 2, "train: the model is given twice ('Model_1' and 'Model_2')", 0);
    snprintf(args, sizeof args, "train --model Model_2 Model_1 --out '%s'", out);
    expect(args, 2, "name one spec or --model, not both", 0);
    assert_false(exists(out)); /* usage errors create nothing */
}

static void test_train_missing_data(void **state)
{
    (void)state;
    char args[1024], out[512];
    snprintf(out, sizeof out, "%s", tu_path("nodata"));
    snprintf(args, sizeof args, "train --data /nonexistent/fashion --quiet --out '%s'", out);
    expect(args, 1, "/nonexistent/fashion", 0);
    assert_non_null(strstr(g_err, "train-images-idx3-ubyte"));
    assert_false(exists(out));
}

static void test_eval_errors(void **state)
{
    (void)state;
    expect("eval", 2, "eval: which model file?", 0);
    expect("eval missing.cnn", 1, "missing.cnn: cannot open", 0);
    char garbage[512];
    snprintf(garbage, sizeof garbage, "%s", tu_path("garbage.cnn"));
    tu_write(garbage, "this is not a model, just some text long enough\n", 48);
    char args[1024];
    snprintf(args, sizeof args, "eval '%s'", garbage);
    expect(args, 1, "not a cnnlab model file", 0);
    snprintf(args, sizeof args, "eval '%s' --batch 0", garbage);
    expect(args, 2, "--batch expects an integer", 0);
    snprintf(args, sizeof args, "eval '%s' other.cnn", garbage);
    expect(args, 2, "eval: unexpected argument 'other.cnn'", 0);
}

/* metrics.json's test_accuracy, formatted as train printed it (in train_out) and in train.log, and as
 * `cnnlab eval` of the saved model prints it. */
static void assert_eval_matches_metrics(const char *run_dir, const char *data, const char *train_out)
{
    char path[600], args[1400], want[64];
    snprintf(path, sizeof path, "%s/metrics.json", run_dir);
    char *metrics = slurp(path);
    assert_non_null(metrics);
    const char *key = strstr(metrics, "\"test_accuracy\": ");
    assert_non_null(key);
    double acc = strtod(key + strlen("\"test_accuracy\": "), NULL);
    assert_true(acc >= 0.0 && acc <= 1.0);
    free(metrics);
    snprintf(want, sizeof want, "Test accuracy: %.2f%%", 100 * acc);
    if (!strstr(train_out, want)) fail_msg("train's output lacks \"%s\":\n%s", want, train_out);
    snprintf(path, sizeof path, "%s/train.log", run_dir);
    char *log = slurp(path);
    snprintf(want, sizeof want, "test_accuracy %.4f", acc);
    assert_non_null(strstr(log, want));
    free(log);
    snprintf(want, sizeof want, "test accuracy %.2f%%", 100 * acc);
    if (data)
        snprintf(args, sizeof args, "eval '%s/model.cnn' --data '%s' --threads 1", run_dir, data);
    else
        snprintf(args, sizeof args, "eval '%s/model.cnn' --threads 1", run_dir);
    expect(args, 0, want, 1);
}

static void assert_run_outputs(const char *dir, int epochs)
{
    static const char *const files[] = {"model.cnn", "history.csv", "history.json", "metrics.json",
                                        "train.log"};
    char path[600];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!exists(path)) fail_msg("%s is missing", path);
    }
    snprintf(path, sizeof path, "%s/history.csv", dir);
    char *csv = slurp(path);
    const char *header = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,val_seconds\n";
    assert_memory_equal(csv, header, strlen(header));
    int lines = 0;
    for (const char *p = csv; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + epochs);
    free(csv);
    snprintf(path, sizeof path, "%s/train.log", dir);
    char *log = slurp(path);
    assert_non_null(strstr(log, "Total params: 337,674"));
    assert_non_null(strstr(log, "epoch 1: loss "));
    free(log);
    snprintf(path, sizeof path, "%s/model.cnn", dir);
    cnn_model *m = cnn_model_load(path);
    if (!m) fail_msg("%s", cnn_errmsg());
    assert_int_equal(cnn_model_num_params(m, 0), 337674);
    assert_string_equal(cnn_model_name(m), "Model_1");
    cnn_model_free(m);
}

/* predict writes one CSV row per test image, agreeing with eval's accuracy; bad arguments are usage errors.
 */
static void check_predict(const char *run, const char *data)
{
    char args[2400], csv_path[600];
    snprintf(csv_path, sizeof csv_path, "%s/pred.csv", run);
    snprintf(args, sizeof args, "predict '%s/model.cnn' --data '%s' --threads 1 --out '%s'", run, data,
             csv_path);
    expect(args, 0, "labelled: accuracy ", 0);
    char *csv = slurp(csv_path);
    assert_non_null(csv);
    assert_memory_equal(csv, "index,label,predicted,class,p0,", 31);
    int lines = 0;
    for (const char *p = csv; *p; p++) lines += *p == '\n';
    cnn_dataset train, test;
    assert_int_equal(cnn_dataset_load_dir(data, &train, &test), 0);
    assert_int_equal(lines, 1 + test.n);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    free(csv);
    expect("predict", 2, "predict: which model file?", 0);
    snprintf(args, sizeof args, "predict '%s/model.cnn' --labels x", run);
    expect(args, 2, "predict: --labels goes with --images", 0);
    snprintf(args, sizeof args, "predict '%s/model.cnn' --images /nonexistent/images.gz", run);
    expect(args, 1, "/nonexistent/images.gz", 0);
}

static const char *const STUDY_SPEC = "model: %s\ninput: (28, 28, 1)\nlayers:\n    Flatten()\n"
                                      "    Dense(%d, activation=relu)\n    Dense(10, activation=softmax)\n"
                                      "optimizer: Adam(learning_rate=0.01)\nfit: batch_size=50, epochs=2\n"
                                      "callbacks:\n    EarlyStopping(monitor=val_loss, patience=1)\n";

static void write_spec(const char *dir, const char *name, int units)
{
    char path[600], text[512];
    snprintf(path, sizeof path, "%s/%s.spec", dir, name);
    int n = snprintf(text, sizeof text, STUDY_SPEC, name, units);
    tu_write(path, text, (size_t)n);
}

/* The study's archive (cnnlab report --zip) restores it elsewhere: study --from-zip reuses every model and
 * writes the same table without training. */
static void check_from_zip(const char *specs, const char *data, const char *out)
{
    char args[2400], path[700], zip[700];
    snprintf(args, sizeof args, "report '%s' --no-predict --zip --quiet", out);
    expect(args, 0, NULL, 1);
    snprintf(zip, sizeof zip, "%s/study_models.zip", out);
    snprintf(args, sizeof args, "study '%s' --data '%s' --threads 1 --quiet --out '%s' --from-zip '%s'",
             specs, data, tu_path("restored"), zip);
    expect(args, 0, "== Small: reusing", 1);
    assert_non_null(strstr(g_out, "== Wide: reusing"));
    snprintf(path, sizeof path, "%s/results.csv", out);
    char *a = slurp(path);
    snprintf(path, sizeof path, "%s/results.csv", tu_path("restored"));
    char *b = slurp(path);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    snprintf(args, sizeof args, "study '%s' --data '%s' --out '%s' --from-zip /nonexistent.zip", specs, data,
             tu_path("restored"));
    expect(args, 1, "--from-zip: /nonexistent.zip", 0);
}

/* A VGG16 base from Keras's random initialisation (--vgg-weights none) is labelled as such in the study's
 * table and results.csv: such a result must never pass for an ImageNet one. */
static void test_study_random_base(void **state)
{
    (void)state;
    const char *data = tiny_data();
    char dir[512], out[512], args[2400], path[700];
    snprintf(dir, sizeof dir, "%s", tu_path("vgg_specs"));
    snprintf(out, sizeof out, "%s", tu_path("vgg_study"));
    assert_int_equal(mkdir(dir, 0777), 0);
    const char *text = "model: V\ninput: (28, 28, 1)\nlayers:\n    ZeroPadding2D(2)\n    GrayscaleToRGB()\n"
                       "    VGG16(include_top=False, trainable=False)\n    Flatten()\n"
                       "    Dense(10, activation=\"softmax\")\nfit: batch_size=8, epochs=1\n";
    snprintf(path, sizeof path, "%s/V.spec", dir);
    tu_write(path, text, strlen(text));
    snprintf(args, sizeof args,
             "study '%s' --data '%s' --threads 1 --limit 8 --vgg-weights none --quiet --out '%s'", dir, data,
             out);
    expect(args, 0, "NOT from ImageNet weights", 1);
    assert_non_null(strstr(g_out, "[random base, NOT ImageNet]"));
    snprintf(path, sizeof path, "%s/results.csv", out);
    char *csv = slurp(path);
    assert_non_null(csv);
    assert_non_null(strstr(csv, ",stop_reason,weights\n"));
    assert_non_null(strstr(csv, "\"seed 1, VGG16 base random (NOT ImageNet)\"\n"));
    free(csv);
}

/* A study trains every spec of a folder, writes one table sorted by accuracy, reuses unchanged runs, and
 * retrains a model whose spec changed or when asked to. */
static void test_study(void **state)
{
    (void)state;
    const char *data = tiny_data();
    char specs[512], out[512], args[2400], path[700];
    snprintf(specs, sizeof specs, "%s", tu_path("specs"));
    snprintf(out, sizeof out, "%s", tu_path("study"));
    assert_int_equal(mkdir(specs, 0777), 0);
    write_spec(specs, "Small", 4);
    write_spec(specs, "Wide", 64);
    snprintf(args, sizeof args, "study '%s' --data '%s' --threads 1 --quiet --out '%s'", specs, data, out);
    expect(args, 0, "Validation = the test set, as in the study.", 1);
    assert_non_null(strstr(g_out, "model (sorted by accuracy)"));
    assert_non_null(strstr(g_out, "== Small"));
    assert_non_null(strstr(g_out, "== Wide"));
    snprintf(path, sizeof path, "%s/results.csv", out);
    char *csv = slurp(path);
    assert_non_null(csv);
    assert_memory_equal(csv, "model,accuracy,loss,roc_auc_ovo,", 32);
    double acc[2];
    const char *row = strchr(csv, '\n') + 1;
    for (int i = 0; i < 2; i++, row = strchr(row, '\n') + 1) acc[i] = strtod(strchr(row, ',') + 1, NULL);
    assert_true(acc[0] >= acc[1]);
    free(csv);
    snprintf(path, sizeof path, "%s/Small/metrics.json", out);
    char *metrics = slurp(path);
    assert_non_null(metrics);
    assert_non_null(strstr(metrics, "\"stop_reason\": \"reached the last epoch\"")); /* not capped */
    free(metrics);
    snprintf(path, sizeof path, "%s/Small/Small.spec", out);
    assert_false(exists(path));

    expect(args, 0, "== Small: reusing", 1);
    assert_non_null(strstr(g_out, "== Wide: reusing"));
    check_from_zip(specs, data, out);
    write_spec(specs, "Wide", 32); /* a changed spec is trained again, the other reused */
    expect(args, 0, "== Small: reusing", 1);
    assert_non_null(strstr(g_out, "== Wide\n"));
    /* another thread count is another run (cnnlab's results are bitwise thread-independent only on some
     * kernel paths); the footer names the validation data of a split */
    char split[2400];
    snprintf(split, sizeof split, "study '%s' --data '%s' --threads 2 --quiet --out '%s'", specs, data, out);
    expect(split, 0, "== Small\n", 1);
    snprintf(split, sizeof split,
             "study '%s' --data '%s' --threads 2 --validation-split 0.2 --quiet --out '%s'", specs, data,
             out);
    expect(split, 0, "Validation = the last 0.2 of the training data (--validation-split).", 1);
    snprintf(args, sizeof args, "study '%s' --data '%s' --threads 1 --quiet --out '%s' --retrain", specs,
             data, out);
    expect(args, 0, "== Small\n", 1);
    /* A run whose model.cnn is damaged or was deleted is trained again, not reused. */
    snprintf(path, sizeof path, "%s/Small/model.cnn", out);
    size_t len;
    char *model = slurp_n(path, &len);
    model[len / 2] ^= 0x40;
    tu_write(path, model, len);
    free(model);
    snprintf(path, sizeof path, "%s/Wide/model.cnn", out);
    assert_int_equal(remove(path), 0);
    snprintf(args, sizeof args, "study '%s' --data '%s' --threads 1 --quiet --out '%s'", specs, data, out);
    expect(args, 0, "Small/: not reused, its model does not load", 1);
    assert_non_null(strstr(g_out, "checksum mismatch"));
    /* Trained again (as an unfinished run of the same spec: from its backup, or from the start). */
    assert_non_null(strstr(g_out, "== Small (resuming an unfinished run)\n"));
    assert_non_null(strstr(g_out, "== Wide (resuming an unfinished run)\n"));
    cnn_model *again = cnn_model_load(path);
    assert_non_null(again);
    cnn_model_free(again);
    snprintf(path, sizeof path, "%s/Small/model.cnn", out);
    again = cnn_model_load(path);
    assert_non_null(again);
    cnn_model_free(again);
    snprintf(args, sizeof args, "study '%s/Nope.spec' --out '%s'", specs, out);
    expect(args, 2, "is neither a spec file, a folder nor a built-in model", 0);
    write_spec(specs, "Bad", 0);
    snprintf(args, sizeof args, "study '%s' --data '%s' --out '%s'", specs, data, out);
    expect(args, 2, "Bad.spec:5:11: layer 2 (Dense): units=0 is out of range", 0);
}

static void test_tiny_training_run(void **state)
{
    (void)state;
    const char *data = tiny_data();
    char run[512], args[2400];
    snprintf(run, sizeof run, "%s", tu_path("run"));
    snprintf(args, sizeof args,
             "train --data '%s' --limit 150 --epochs 1 --batch 50 --threads 1 --quiet --out '%s'", data, run);
    expect(args, 0, "Test accuracy: ", 1);
    char *train_out = strdup(g_out);
    assert_run_outputs(run, 1);
    assert_eval_matches_metrics(run, data, train_out);
    free(train_out);
    /* Model_1's spec runs up to 60 epochs: a run cut to 1 says so wherever its stop reason shows */
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.json", run);
    char *metrics = slurp(path);
    assert_non_null(strstr(metrics, "\"stop_reason\": \"capped: 1 of the spec's 60 epochs (--epochs 1)\""));
    free(metrics);
    check_predict(run, data);

    /* The folder now holds a run: refused without --overwrite, the model left as it was. */
    char model[600];
    snprintf(model, sizeof model, "%s/model.cnn", run);
    size_t n_before, n_after;
    char *before = slurp_n(model, &n_before);
    expect(args, 1, "already holds a run; choose another --out or add --overwrite", 0);
    char *after = slurp_n(model, &n_after);
    assert_int_equal(n_before, n_after);
    assert_memory_equal(before, after, n_before);
    free(before);
    free(after);

    /* --overwrite removes the old run's outputs and checkpoints first (files of other names, and folders,
     * stay): no stale checkpoint passes for the new run's. */
    char stale[700];
    const char *const old_files[] = {"best.cnn", "best.epoch", "run.key", "notes.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(stale, sizeof stale, "%s/%s", run, old_files[i]);
        tu_write(stale, "old", 3);
    }
    snprintf(stale, sizeof stale, "%s/keep.cnn", run);
    assert_int_equal(mkdir(stale, 0777), 0);
    /* --overwrite replaces it; with a validation split the history has validation figures. */
    snprintf(args, sizeof args,
             "train --data '%s' --limit 150 --epochs 2 --batch 50 --threads 1 --quiet --overwrite "
             "--validation-split 0.2 --out '%s'",
             data, run);
    expect(args, 0, "Test accuracy: ", 1);
    train_out = strdup(g_out);
    assert_run_outputs(run, 2);
    snprintf(path, sizeof path, "%s/history.csv", run);
    char *csv = slurp(path);
    assert_null(strstr(csv, ",,")); /* no empty (NaN) validation fields */
    free(csv);
    assert_eval_matches_metrics(run, data, train_out);
    free(train_out);
    for (int i = 0; i < 4; i++) {
        snprintf(stale, sizeof stale, "%s/%s", run, old_files[i]);
        assert_int_equal(exists(stale), i == 3);
    }
    snprintf(stale, sizeof stale, "%s/keep.cnn", run);
    assert_true(exists(stale));
    /* The run's own model.spec as the spec, the same folder as --out: refused before anything is removed. */
    snprintf(args, sizeof args,
             "train '%s/model.spec' --data '%s' --limit 150 --epochs 1 --quiet --overwrite --out '%s'", run,
             data, run);
    expect(args, 1, "model.spec is the spec of this run and would be replaced by its outputs", 0);
    assert_true(exists(model));

    /* eval on a folder without data fails naming the folder. */
    snprintf(args, sizeof args, "eval '%s' --data /nonexistent/dir", model);
    expect(args, 1, "/nonexistent/dir", 0);
}

/* ------------------------------------------------------------------ hostile use (issue 11) */

/* n images of h x w (all pixels 7), IDX, plain. */
/* A frozen convolution in front: train caches its outputs once, trains the head on them and evaluates the
 * test set from the cached features; `eval` through the whole network must give the same figures. */
static void test_cached_prefix_run(void **state)
{
    (void)state;
    const char *data = tiny_data();
    char spec[512], run[512], args[2400];
    snprintf(spec, sizeof spec, "%s", tu_path("frozen.spec"));
    static const char text[] = "model: frozen\ninput: (28, 28, 1)\nlayers:\n"
                               "    Conv2D(4, kernel_size=3, activation=\"relu\", trainable=False)\n"
                               "    MaxPooling2D(2)\n    Flatten()\n    Dense(10, activation=\"softmax\")\n"
                               "optimizer: Adam(learning_rate=0.01)\nfit: batch_size=50, epochs=2, seed=3\n";
    tu_write(spec, text, strlen(text));
    snprintf(run, sizeof run, "%s", tu_path("frozen-run"));
    snprintf(args, sizeof args, "train '%s' --data '%s' --threads 1 --out '%s'", spec, data, run);
    expect(args, 0, "cached features: layers 1-3 ('conv2d' to 'flatten') are frozen and deterministic", 1);
    char *train_out = strdup(g_out);
    assert_eval_matches_metrics(run, data, train_out);
    free(train_out);
}

static void write_images(const char *path, int n, int h, int w)
{
    size_t len = 16 + (size_t)n * h * w;
    uint8_t *img = malloc(len);
    assert_non_null(img);
    memset(img, 7, len);
    tu_put_be32(img, 0x803), tu_put_be32(img + 4, (uint32_t)n), tu_put_be32(img + 8, (uint32_t)h);
    tu_put_be32(img + 12, (uint32_t)w);
    tu_write(path, img, len);
    free(img);
}

/* A Model_1-shaped classifier (28x28x1 -> 10), saved untrained: these tests need a model file, not a good
 * one. */
static const char *hostile_model(void)
{
    static char path[512];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", tu_path("hostile.cnn"));
        cnn_model *m = cnn_model_create("Hostile", 28, 28, 1);
        assert_non_null(m);
        assert_int_equal(cnn_model_add_flatten(m, "flatten"), 0);
        assert_int_equal(cnn_model_add_dense(m, "dense", 10, CNN_ACT_SOFTMAX), 0);
        assert_int_equal(cnn_model_build(m, 3), 0);
        assert_int_equal(cnn_model_save(m, path), 0);
        cnn_model_free(m);
    }
    return path;
}

/* predict on images of another size than the model's input: an error naming both shapes (it read past
 * the images, or printed garbage with exit 0). */
static void test_predict_other_shapes(void **state)
{
    (void)state;
    char args[1600], small[512], large[512];
    snprintf(small, sizeof small, "%s", tu_path("small-images"));
    snprintf(large, sizeof large, "%s", tu_path("large-images"));
    write_images(small, 3, 14, 14);
    write_images(large, 3, 56, 56);
    snprintf(args, sizeof args, "predict '%s' --images '%s'", hostile_model(), small);
    expect(args, 1, "the images are 14x14x1 (HxWxC); model 'Hostile' takes 28x28x1", 0);
    snprintf(args, sizeof args, "predict '%s' --images '%s'", hostile_model(), large);
    expect(args, 1, "the images are 56x56x1", 0);
}

/* --out over the model file itself, over a FIFO, or over a folder: refused, the target left as it was. */
static void test_predict_out_targets(void **state)
{
    (void)state;
    char args[1600], images[512], fifo[512];
    snprintf(images, sizeof images, "%s", tu_path("images-28"));
    write_images(images, 2, 28, 28);
    size_t n_before, n_after;
    char *before = slurp_n(hostile_model(), &n_before);
    snprintf(args, sizeof args, "predict '%s' --images '%s' --out '%s'", hostile_model(), images,
             hostile_model());
    expect(args, 1, "the output is an input of this run; not replaced", 0);
    char *after = slurp_n(hostile_model(), &n_after);
    assert_int_equal(n_before, n_after);
    assert_memory_equal(before, after, n_before);
    free(before);
    free(after);
    snprintf(args, sizeof args, "predict '%s' --images '%s' --out '%s'", hostile_model(), images, images);
    expect(args, 1, "an input of this run", 0);
    snprintf(fifo, sizeof fifo, "%s", tu_path("pred.fifo"));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "predict '%s' --images '%s' --out '%s'", hostile_model(), images, fifo);
    expect(args, 1, "is not a regular file (a FIFO); not replaced", 0);
    snprintf(args, sizeof args, "predict '%s' --images '%s' --out '%s'", hostile_model(), images,
             tu_tmpdir());
    expect(args, 1, "(a folder)", 0);
    /* A FIFO as the model: refused at once instead of waiting for a writer forever. */
    snprintf(args, sizeof args, "timeout 20 '%s' eval '%s'", g_bin, fifo);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>'%s'", args, tu_path("fifo-err.txt"));
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    char *err = slurp(tu_path("fifo-err.txt"));
    assert_non_null(strstr(err, "not a regular file"));
    free(err);
}

/* eval and predict --data read only the t10k files: a folder without the training files will do. */
static void test_eval_needs_only_test_files(void **state)
{
    (void)state;
    char dir[512], args[1600];
    snprintf(dir, sizeof dir, "%s", tu_path("only-t10k"));
    assert_int_equal(mkdir(dir, 0777), 0);
    write_split(dir, "t10k", 20, 0, 5);
    snprintf(args, sizeof args, "eval '%s' --data '%s' --threads 1", hostile_model(), dir);
    expect(args, 0, "(20 images, precision fp32)", 1);
    snprintf(args, sizeof args, "predict '%s' --data '%s' --threads 1", hostile_model(), dir);
    expect(args, 0, "20 images, 20 labelled", 0);
    /* A test set whose images do not fit the model: the message names the data folder. */
    char other[600];
    snprintf(other, sizeof other, "%s/t10k-images-idx3-ubyte", dir);
    write_images(other, 20, 14, 14);
    snprintf(args, sizeof args, "eval '%s' --data '%s' --threads 1", hostile_model(), dir);
    expect(args, 1, dir, 0);
}

/* A run that fails in a folder made for it, leaving only train.log, removes the folder; a folder that was
 * there before stays. */
static void test_failed_run_folder(void **state)
{
    (void)state;
    char spec[512], out[512], args[2000];
    snprintf(spec, sizeof spec, "%s", tu_path("two.spec"));
    const char *text = "model: Two\ninput: (28, 28, 1)\nlayers:\n    Flatten()\n"
                       "    Dense(2, activation=softmax)\nfit: batch_size=50, epochs=1\n";
    tu_write(spec, text, strlen(text));
    snprintf(out, sizeof out, "%s", tu_path("failed-run"));
    /* The data's labels go up to 9: a 2-class model cannot train on them. */
    snprintf(args, sizeof args, "train '%s' --data '%s' --threads 1 --quiet --out '%s'", spec, tiny_data(),
             out);
    expect(args, 1, "the failed run left nothing but its train.log", 0);
    assert_false(exists(out));
    assert_int_equal(mkdir(out, 0777), 0);
    expect(args, 1, "outside [0, 2)", 0);
    assert_non_null(strstr(g_err, tiny_data())); /* the message names the data folder */
    assert_null(strstr(g_err, "removed"));
    assert_true(exists(out));
}

static void test_fashion_mnist_run(void **state)
{
    (void)state;
    if (!exists(CNN_FASHION_MNIST_DIR)) {
        print_message("skipped: %s not found\n", CNN_FASHION_MNIST_DIR);
        skip();
    }
    char run[512], args[1024];
    snprintf(run, sizeof run, "%s", tu_path("fashion-run"));
    snprintf(args, sizeof args, "train --limit 600 --epochs 1 --batch 100 --threads 1 --quiet --out '%s'",
             run);
    expect(args, 0, "Test accuracy: ", 1);
    char *train_out = strdup(g_out);
    assert_run_outputs(run, 1);
    assert_eval_matches_metrics(run, NULL, train_out);
    free(train_out);
}

/* ------------------------------------------------------------------ kill -9 and --resume */

static const char *const RESUME_SPEC =
    "model: Resumable\ninput: (28, 28, 1)\nlayers:\n    Conv2D(4, kernel_size=3, activation=\"relu\")\n"
    "    MaxPooling2D(2)\n    Flatten()\n    Dropout(0.2)\n    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\nfit: batch_size=10, epochs=25, seed=3\ncallbacks:\n"
    "    ReduceLROnPlateau(monitor=\"val_loss\", factor=0.5, patience=1)\n"
    "    EarlyStopping(monitor=\"val_loss\", patience=8, restore_best_weights=True)\n"
    "    ModelCheckpoint(monitor=\"val_accuracy\", save_best_only=True)\n";

/* Starts `cnnlab ARGS`, kills it with SIGKILL after ms milliseconds (if it still runs). 1 if it was killed.
 */
static int run_and_kill(const char *args, int ms)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec '%s' %s >/dev/null 2>&1", g_bin, args);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static int has_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));) found |= strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return found;
}

static void test_resume_after_kill(void **state)
{
    (void)state;
    const char *data = tiny_data();
    char spec[600];
    snprintf(spec, sizeof spec, "%s", tu_path("resumable.spec")); /* tu_path's buffers are reused */
    tu_write(spec, RESUME_SPEC, strlen(RESUME_SPEC));
    char args[2048], through[600], dir[600];
    snprintf(through, sizeof through, "%s", tu_path("resume-through"));
    /* Twice: the first run warms caches (fonts for the pictures), the second is timed and must match it. */
    snprintf(args, sizeof args, "train '%s' --data '%s' --threads 2 --quiet --out '%s'", spec, data, through);
    expect(args, 0, NULL, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect(strcat(args, " --overwrite"), 0, NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int run_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    snprintf(args, sizeof args, "%s/model.cnn", through);
    size_t want_len, got_len;
    char *want = slurp_n(args, &want_len);
    int killed = 0;
    /* Moments spread over the run's own length (loading, epochs, checkpoints, the final writes). */
    static const int percent[] = {10, 25, 40, 55, 70, 85};
    int ms[6];
    for (size_t i = 0; i < 6; i++) ms[i] = run_ms * percent[i] / 100;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        snprintf(dir, sizeof dir, "%s%zu", tu_path("resume-killed"), i);
        snprintf(args, sizeof args,
                 "train '%s' --data '%s' --threads 2 --quiet --out '%s' --backup-minutes 0.0001", spec, data,
                 dir);
        killed += run_and_kill(args, ms[i]);
        if (!exists(dir)) continue; /* killed before it made its folder */
        snprintf(args, sizeof args, "%s/train.args", dir);
        if (!exists(args)) { /* killed between making its folder and saving its command line */
            snprintf(args, sizeof args, "train --resume '%s' --quiet", dir);
            expect(args, 1, "was stopped before its run started", 0);
            continue;
        }
        snprintf(args, sizeof args, "train --resume '%s' --quiet", dir);
        expect(args, 0, NULL, 0);
        assert_false(has_temp_files(dir));
        snprintf(args, sizeof args, "%s/model.cnn", dir);
        char *got = slurp_n(args, &got_len);
        if (got_len != want_len || memcmp(got, want, want_len))
            fail_msg("killed after %d ms and resumed: model.cnn differs from the uninterrupted run's", ms[i]);
        free(got);
    }
    assert_true(killed >=
                1); /* at least one moment fell inside a run (timings vary from machine to machine) */
    snprintf(args, sizeof args, "train --resume '%s'", through);
    expect(args, 0, "holds a finished run: nothing to resume", 1);
    snprintf(args, sizeof args, "train --resume '%s' --epochs 3", through);
    expect(args, 2, "--resume DIR takes no other options", 0);
    snprintf(args, sizeof args, "train --resume '%s'", data);
    expect(args, 2, "train.args is missing or damaged", 0);
    /* Killed just after writing model.spec (the moment above falls there only by chance). */
    snprintf(dir, sizeof dir, "%s", tu_path("resume-early"));
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(args, sizeof args, "%s/model.spec", dir);
    tu_write(args, RESUME_SPEC, strlen(RESUME_SPEC));
    snprintf(args, sizeof args, "train --resume '%s'", dir);
    expect(args, 1, "was stopped before its run started", 0);
    free(want);
}

/* --precision bf16 says when this CPU's BF16 products are no faster than its FP32 ones (half their rate on
 * Intel Xeons without AMX, twice on AMD Zen 4): the ratio is measured here too, and only clear cases are
 * judged. */
static void test_bf16_note(void **state)
{
    (void)state;
    const char *args = "profile Model_1 --batch 8 --steps 1 --threads 1 --precision bf16";
    if (cnn_precision_check("bf16")) {
        assert_true(cnn_bf16_peak_gflops() == 0.0);
        expect(args, 2, "precision", 0);
        return;
    }
    expect(args, 0, "BF16 multiply-add peak (avx512, 1 threads)", 1);
    const double ratio = cnn_bf16_peak_gflops() / cnn_fma_peak_gflops();
    print_message("  BF16 peak / FP32 peak on this CPU: %.2f\n", ratio);
    const int noted = strstr(g_err, "so precision bf16 will be slower than fp32 here") != NULL;
    if (ratio < 0.9) assert_true(noted);
    if (ratio > 1.5) assert_false(noted);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (tu_cnnlab_path(argv[0], g_bin, sizeof g_bin)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_dispatch),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_train_usage_errors),
        cmocka_unit_test(test_train_missing_data),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_tiny_training_run),
        cmocka_unit_test(test_cached_prefix_run),
        cmocka_unit_test(test_fashion_mnist_run),
        cmocka_unit_test(test_study),
        cmocka_unit_test(test_study_random_base),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_predict_other_shapes),
        cmocka_unit_test(test_predict_out_targets),
        cmocka_unit_test(test_eval_needs_only_test_files),
        cmocka_unit_test(test_failed_run_folder),
        cmocka_unit_test(test_bf16_note),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_out);
    free(g_err);
    return rc;
}
