/* Data-parallel training and the distributed study (issue 13).
 *
 * The shard source is checked in-process: the ranks' slices of every batch, put side by side, are exactly
 * one process's batches. The rest runs this build's cnnlab (dirname(dirname(argv[0]))/cnnlab) under
 * `mpirun --allow-run-as-root --oversubscribe -np 2` on loopback, on Fashion-MNIST (skipped when the build
 * has no MPI, mpirun is missing or the data is not installed):
 *  - two runs on 2 ranks give the same model file, byte for byte;
 *  - against one process with the same global batch, every weight tensor after one epoch agrees within 1e-5
 *    of its largest value, and the test accuracy within 0.1 points (the sums run in another order);
 *  - only rank 0 writes: the ranks run in folders of their own (mpirun --wdir) and rank 1's stays empty;
 *  - one process computing its batches in N slices (--batch-slices N) gives N ranks' weights bit for bit
 *    (N = 2 and 3 with Dropout, 2 with per-rank BatchNorm and with a cached frozen prefix);
 *  - augmented training (the study's generator, random augmentation) on 2 ranks equals 2 slices bit for bit;
 *  - synchronised BatchNorm (--sync-batchnorm) matches one process within 1e-5, per-rank BatchNorm does not;
 *  - a 2-rank run stopped after its first fit backup and resumed ends with the uninterrupted run's model;
 *  - a study of three specs on 2 ranks, one of which cannot train: the other two results are in the table.
 * Tests run from the repository root. */
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static char g_bin[1024], g_spec[1024], g_specs[1024];
/* Open MPI's own allocations outlive MPI_Finalize, so the sanitizer build's leak check is off for the ranks
 * (test_cli checks cnnlab's single-process paths with it on). The environment reaches every app context. */
static const char *const MPIRUN = "ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe";

/* Runs a shell command with its output in the test folder; returns its exit status. */
static int sh(const char *cmd)
{
    char full[16384];
    snprintf(full, sizeof full, "%s >'%s' 2>'%s'", cmd, tu_path("out.txt"), tu_path("err.txt"));
    int rc = system(full);
    assert_true(rc != -1 && WIFEXITED(rc));
    return WEXITSTATUS(rc);
}

/* Whether the last command's stdout (or stderr) holds the text. */
static int printed(const char *text, int on_stderr)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "grep -qF -- '%s' '%s'", text, tu_path(on_stderr ? "err.txt" : "out.txt"));
    return system(cmd) == 0;
}

static void show_output(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' >&2", tu_path("out.txt"), tu_path("err.txt"));
    if (system(cmd) != 0) print_message("could not show the output\n");
}

static int mpi_ready(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --help", g_bin);
    if (sh(cmd) != 0 || !printed("this build has Open MPI", 0))
        return print_message("skipped: no MPI in this build\n"), 0;
    if (system("command -v mpirun >/dev/null") != 0) return print_message("skipped: mpirun not found\n"), 0;
    if (access(CNN_FASHION_MNIST_DIR, R_OK) != 0) return print_message("skipped: no Fashion-MNIST\n"), 0;
    return 1;
}

/* ---------------------------------------------------------------- the shard source */

static void make_data(cnn_dataset *ds, int n)
{
    *ds = (cnn_dataset){.x = malloc(sizeof(float) * 2 * n),
                        .y = malloc(sizeof(int32_t) * n),
                        .n = n,
                        .h = 1,
                        .w = 2,
                        .c = 1,
                        .num_classes = 10};
    assert_non_null(ds->x);
    assert_non_null(ds->y);
    for (int i = 0; i < n; i++) ds->x[2 * i] = (float)i, ds->x[2 * i + 1] = -(float)i, ds->y[i] = i % 10;
}

/* Every batch of two epochs: the ranks' slices in rank order are the one-process batch (samples of 1 x 2). */
static void assert_slices_whole(cnn_source *one, cnn_source *const *part, int ranks)
{
    float x[2 * 64], xs[2 * 64];
    int32_t y[64], ys[64];
    for (int e = 0; e < 2; e++)
        for (int b = 0; b < one->batches; b++) {
            int n, got = 0, k;
            assert_int_equal(one->fill(one, e, b, x, y, &n), 0);
            for (int r = 0; r < ranks; r++) {
                assert_int_equal(part[r]->batches, one->batches);
                assert_int_equal(part[r]->fill(part[r], e, b, xs + 2 * got, ys + got, &k), 0);
                assert_true(k >= 1 && k <= part[r]->batch_size);
                got += k;
            }
            assert_int_equal(got, n);
            assert_memory_equal(xs, x, sizeof(float) * 2 * n);
            assert_memory_equal(ys, y, sizeof(int32_t) * n);
        }
    cnn_source_free(one);
    for (int r = 0; r < ranks; r++) cnn_source_free(part[r]);
}

static void check_shards(const cnn_dataset *ds, int batch, int ranks)
{
    cnn_source *one = cnn_source_dataset(ds, batch, 1, 7), *part[4];
    assert_non_null(one);
    for (int r = 0; r < ranks; r++)
        assert_non_null(part[r] = cnn_source_dataset_shard(ds, batch, 1, 7, r, ranks));
    assert_slices_whole(one, part, ranks);
}

static void test_shard_source(void **state)
{
    (void)state;
    cnn_dataset ds;
    make_data(&ds, 103);
    check_shards(&ds, 32, 2);
    check_shards(&ds, 32, 3);
    check_shards(&ds, 64, 4);
    /* 103 = 3 x 34 + 1: the last batch would leave two of three ranks without a sample. */
    tu_assert_error(cnn_source_dataset_shard(&ds, 34, 1, 7, 0, 3) ? 0 : cnn_errcode(), CNN_ERR_INVALID,
                    "the last batch (4 of 4) has 1 samples, fewer than the 3 ranks");
    tu_assert_error(cnn_source_dataset_shard(&ds, 32, 1, 7, 2, 2) ? 0 : cnn_errcode(), CNN_ERR_INVALID,
                    "rank 2 of 2 ranks is out of range");
    int start, count, total;
    assert_int_equal(cnn_shard_range(103, 32, 3, 1, 2, &start, &count, &total), 0);
    assert_int_equal(start, 96 + 3);
    assert_int_equal(count, 4);
    assert_int_equal(total, 7);
    tu_assert_error(cnn_shard_range(103, 32, 4, 0, 2, &start, &count, NULL), CNN_ERR_INVALID, "batch 4");
    cnn_dataset_free(&ds);
}

/* A sequence of batches of batch_size samples (h 1, w 2) whose values name the batch and the position; batch
 * short_batch (if >= 0) holds one sample fewer. */
typedef struct seq_ctx {
    int batch_size, short_batch;
} seq_ctx;

static int seq_get(void *ctx, int index, float *x, int32_t *y, int *n)
{
    const seq_ctx *q = ctx;
    *n = q->batch_size - (index == q->short_batch);
    for (int i = 0; i < *n; i++) x[2 * i] = (float)index, x[2 * i + 1] = (float)i, y[i] = (index + i) % 10;
    return 0;
}

/* Any source cut after it fills (cnn_source_shard): the ranks' slices in rank order are the whole batches
 * of every epoch, as for the dataset shard. */
static void check_source_shards(seq_ctx *q, int batches, int ranks)
{
    cnn_source *one = cnn_source_sequence(batches, q->batch_size, 1, 2, 1, seq_get, q, 1, 7, 0), *part[4];
    assert_non_null(one);
    for (int r = 0; r < ranks; r++) {
        part[r] = cnn_source_shard(cnn_source_sequence(batches, q->batch_size, 1, 2, 1, seq_get, q, 1, 7, 1),
                                   r, ranks);
        assert_non_null(part[r]);
        assert_int_equal(part[r]->batch_size, (q->batch_size + ranks - 1) / ranks);
    }
    assert_slices_whole(one, part, ranks);
}

static void test_any_source_shard(void **state)
{
    (void)state;
    seq_ctx q = {30, -1};
    check_source_shards(&q, 5, 2);
    check_source_shards(&q, 4, 3);
    q.batch_size = 64;
    check_source_shards(&q, 3, 4);
    /* A batch short of the source's batch size would shift every later slice: refused, naming it. */
    q = (seq_ctx){30, 2};
    cnn_source *s = cnn_source_shard(cnn_source_sequence(4, 30, 1, 2, 1, seq_get, &q, 0, 7, 0), 1, 2);
    assert_non_null(s);
    float x[2 * 30];
    int32_t y[30];
    int n;
    assert_int_equal(s->fill(s, 0, 1, x, y, &n), 0);
    tu_assert_error(s->fill(s, 0, 2, x, y, &n), CNN_ERR_INVALID,
                    "batch 3 of epoch 1 has 29 samples, expected 30");
    cnn_source_free(s);
    /* Ranks out of range, or more ranks than the last batch has samples: refused, the source freed. */
    q = (seq_ctx){2, -1};
    tu_assert_error(
        cnn_source_shard(cnn_source_sequence(3, 2, 1, 2, 1, seq_get, &q, 0, 7, 0), 0, 3) ? 0 : cnn_errcode(),
        CNN_ERR_INVALID, "the last batch has 2 samples, fewer than the 3 ranks");
    tu_assert_error(
        cnn_source_shard(cnn_source_sequence(3, 2, 1, 2, 1, seq_get, &q, 0, 7, 0), 2, 2) ? 0 : cnn_errcode(),
        CNN_ERR_INVALID, "rank 2 of 2 ranks is out of range");
    assert_null(cnn_source_shard(NULL, 0, 2));
    /* The spec's augmented source checks the ranks before building anything. */
    cnn_spec *spec = cnn_spec_parse(
        "model: A\ninput: (1, 2, 1)\nlayers:\n    Flatten()\n    Dense(10, activation=\"softmax\")\n"
        "fit: batch_size=4\naugment:\n    PadAndCrop(padding=1)\n",
        "aug.spec");
    assert_non_null(spec);
    cnn_dataset ds;
    make_data(&ds, 8);
    cnn_spec_fit fit;
    cnn_spec_fit_settings(spec, &fit);
    cnn_source *src = NULL;
    tu_assert_error(cnn_spec_train_source_shard(spec, &ds, &fit, 2, 2, &src), CNN_ERR_INVALID,
                    "rank 2 of 2 ranks is out of range");
    assert_null(src);
    assert_int_equal(cnn_spec_train_source_shard(spec, &ds, &fit, 1, 2, &src), 0);
    assert_non_null(src);
    assert_int_equal(src->batch_size, 2);
    cnn_source_free(src);
    cnn_dataset_free(&ds);
    cnn_spec_free(spec);
}

/* ---------------------------------------------------------------- training on 2 ranks */

/* max |a - b| over each tensor, relative to max |a|: the largest over the model; a and b are the model files
 * of two run folders in the test folder. */
static double weights_gap(const char *dir_a, const char *dir_b)
{
    char path_a[1200], path_b[1200];
    snprintf(path_a, sizeof path_a, "%s/model.cnn", tu_path(dir_a));
    snprintf(path_b, sizeof path_b, "%s/model.cnn", tu_path(dir_b));
    cnn_model *a = cnn_model_load(path_a), *b = cnn_model_load(path_b);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(cnn_model_num_tensors(a), cnn_model_num_tensors(b));
    double worst = 0;
    for (int i = 0; i < cnn_model_num_tensors(a); i++) {
        cnn_tensor ta, tb;
        assert_int_equal(cnn_model_tensor(a, i, &ta), 0);
        assert_int_equal(cnn_model_tensor(b, i, &tb), 0);
        assert_int_equal(ta.size, tb.size);
        double diff = 0, scale = 0;
        for (size_t j = 0; j < ta.size; j++) {
            diff = fmax(diff, fabs((double)ta.data[j] - tb.data[j]));
            scale = fmax(scale, fabs((double)ta.data[j]));
        }
        if (scale > 0) worst = fmax(worst, diff / scale);
    }
    cnn_model_free(a);
    cnn_model_free(b);
    return worst;
}

static double test_accuracy(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/run.json", dir);
    cnn_run r;
    cnn_run_init(&r, "");
    assert_int_equal(cnn_run_load(&r, path), 0);
    double acc = r.test_accuracy;
    cnn_run_free(&r);
    return acc;
}

/* Writes a spec's text into the test folder as name; path receives where. */
static void write_spec(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s", tu_path(name)); /* tu_path's buffers are reused */
    tu_write(path, text, strlen(text));
}

/* Trains spec with extra options (opts) in one process (ranks_and_dirs NULL), on N ranks ("N") or on 2 ranks
 * in folders of their own ("wdir"). */
static void train_opts(const char *spec, const char *opts, const char *ranks_and_dirs, const char *out)
{
    char cmd[12000], args[2500];
    snprintf(args, sizeof args, "train '%s' %s --limit 3000 --epochs 1 --quiet --out '%s'", spec, opts, out);
    if (!ranks_and_dirs)
        snprintf(cmd, sizeof cmd, "'%s' %s --threads 1", g_bin, args);
    else if (!strcmp(ranks_and_dirs, "wdir"))
        snprintf(cmd, sizeof cmd, "%s -np 1 --wdir '%s' '%s' %s : -np 1 --wdir '%s' '%s' %s", MPIRUN,
                 tu_path("rank0"), g_bin, args, tu_path("rank1"), g_bin, args);
    else
        snprintf(cmd, sizeof cmd, "%s -np %s '%s' %s", MPIRUN, ranks_and_dirs, g_bin, args);
    int rc = sh(cmd);
    if (rc) show_output();
    assert_int_equal(rc, 0);
}

static void train_spec(const char *spec, const char *ranks_and_dirs, const char *out)
{
    train_opts(spec, "", ranks_and_dirs, out);
}

static void train(const char *ranks_and_dirs, const char *out)
{
    train_spec(g_spec, ranks_and_dirs, out);
}

static void test_two_ranks_match_one_process(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    assert_int_equal(mkdir(tu_path("rank0"), 0777), 0);
    assert_int_equal(mkdir(tu_path("rank1"), 0777), 0);
    train(NULL, tu_path("one"));
    train("wdir", "out"); /* relative: rank0/out, and rank1/out if rank 1 wrote */
    train("2", tu_path("two"));
    assert_true(printed("MPI: train on 2 ranks over 1 node", 0));
    assert_true(printed("gradient allreduce", 0));
    char cmd[3000];
    /* Bit-identical on every run of the same seed and ranks. */
    snprintf(cmd, sizeof cmd, "cmp '%s/model.cnn' '%s/out/model.cnn'", tu_path("two"), tu_path("rank0"));
    assert_int_equal(system(cmd), 0);
    /* Rank 0 alone wrote: rank 1's folder is empty. */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\" && test -s '%s/out/run.json'", tu_path("rank1"),
             tu_path("rank0"));
    assert_int_equal(system(cmd), 0);
    double gap = weights_gap("one", "two");
    print_message("1 process vs 2 ranks after one epoch: weights differ by %.3g of their scale\n", gap);
    assert_true(gap <= 1e-5);
    double a1 = test_accuracy(tu_path("one")), a2 = test_accuracy(tu_path("two"));
    print_message("test accuracy: 1 process %.4f, 2 ranks %.4f\n", a1, a2);
    assert_true(fabs(a1 - a2) <= 0.001);
}

/* A frozen layer between trainable ones: the gradients go as two messages around it (src/cli/mpi_train.c),
 * and the result still matches one process. */
static void test_frozen_layer_between(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    static const char spec[] = "model: Frozen_Gap\ninput: (28, 28, 1)\nlayers:\n    Flatten()\n"
                               "    Dense(64, activation=\"relu\")\n"
                               "    Dense(128, activation=\"relu\", trainable=False)\n"
                               "    Dense(10, activation=\"softmax\")\n"
                               "optimizer: Adam(learning_rate=0.002)\n"
                               "fit: batch_size=100, epochs=1, validation=\"test\", seed=4\n";
    char path[600];
    write_spec("frozen_gap.spec", spec, path, sizeof path);
    train_spec(path, NULL, tu_path("gap1"));
    train_spec(path, "2", tu_path("gap2"));
    double gap = weights_gap("gap1", "gap2");
    print_message("frozen layer between: weights differ by %.3g of their scale\n", gap);
    assert_true(gap <= 1e-5);
}

/* ---------------------------------------------------------------- batch slices and BatchNorm */

/* A CNN with BatchNorm after a convolution (image statistics) and after a Dense layer (vector statistics).
 * Without biases before BatchNorm (as usual): such a bias has no effect on the output, its gradient is zero
 * up to rounding, and Adam turns that rounding into steps of +-lr, so it would differ at random between any
 * two summation orders. */
static const char BN_SPEC[] =
    "model: BN_CNN\ninput: (28, 28, 1)\nlayers:\n"
    "    Conv2D(8, kernel_size=3, use_bias=False)\n    BatchNormalization(momentum=0.9)\n"
    "    Activation(\"relu\")\n    MaxPooling2D(2, strides=2)\n    Flatten()\n"
    "    Dense(32, use_bias=False)\n    BatchNormalization(momentum=0.9)\n    Activation(\"relu\")\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.002)\n"
    "fit: batch_size=64, epochs=1, validation=\"test\", seed=5\n";

/* One process computing every batch in N slices (--batch-slices N) adds the same partial gradients in the
 * same order as N ranks (for 2 ranks the allreduce's a + b; for more, cnnlab's rank-order reduction): the
 * weights are bit for bit those of N ranks, for the Dropout model on 2 and 3 ranks and for a BatchNorm model
 * with per-rank statistics (moving statistics included) on 2. */
static void test_batch_slices_equal_ranks(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    char bn[600];
    write_spec("bn.spec", BN_SPEC, bn, sizeof bn);
    const struct {
        const char *spec, *name, *ranks;
    } runs[] = {{g_spec, "Small_CNN", "2"}, {bn, "BN_CNN", "2"}, {g_spec, "Small_CNN", "3"}};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char opts[64];
        snprintf(opts, sizeof opts, "--batch-slices %s --overwrite", runs[i].ranks);
        train_opts(runs[i].spec, opts, NULL, tu_path("slices"));
        train_opts(runs[i].spec, "--overwrite", runs[i].ranks, tu_path("ranks"));
        double gap = weights_gap("slices", "ranks");
        print_message("%s: 1 process in %s slices vs %s ranks: weights differ by %.3g\n", runs[i].name,
                      runs[i].ranks, runs[i].ranks, gap);
        assert_true(gap == 0.0);
        assert_true(test_accuracy(tu_path("slices")) == test_accuracy(tu_path("ranks")));
    }
}

/* Synchronised BatchNorm: 2 ranks normalise with the global batch's statistics, so they match one process
 * with the whole batch up to summation order; with per-rank statistics (the default) they do not. */
static void test_sync_batchnorm(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    char bn[600];
    write_spec("bn.spec", BN_SPEC, bn, sizeof bn);
    train_spec(bn, NULL, tu_path("bn1"));
    train_opts(bn, "--sync-batchnorm", "2", tu_path("bn2sync"));
    train_spec(bn, "2", tu_path("bn2"));
    double synced = weights_gap("bn1", "bn2sync"), own = weights_gap("bn1", "bn2");
    double a1 = test_accuracy(tu_path("bn1")), a2 = test_accuracy(tu_path("bn2sync"));
    print_message("BN_CNN, 1 process vs 2 ranks: weights differ by %.3g synchronised, %.3g per rank; test "
                  "accuracy %.4f / %.4f (synchronised)\n",
                  synced, own, a1, a2);
    assert_true(synced <= 1e-5);
    assert_true(own > 1e-3);
    assert_true(fabs(a1 - a2) <= 0.001);
}

/* A frozen convolution first: its outputs are cached, each rank computing half of them and the two halves
 * exchanged; the weights are bit for bit those of one process in two slices (which caches them too). */
static void test_cached_prefix(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    static const char spec[] = "model: Frozen_Base\ninput: (28, 28, 1)\nlayers:\n"
                               "    Conv2D(8, kernel_size=3, activation=\"relu\", trainable=False)\n"
                               "    MaxPooling2D(2)\n    Flatten()\n    Dense(32, activation=\"relu\")\n"
                               "    Dense(10, activation=\"softmax\")\n"
                               "optimizer: Adam(learning_rate=0.002)\n"
                               "fit: batch_size=100, epochs=1, validation=\"test\", seed=6\n";
    char path[600];
    write_spec("frozen_base.spec", spec, path, sizeof path);
    train_opts(path, "--batch-slices 2", NULL, tu_path("base1"));
    train_opts(path, "", "2", tu_path("base2"));
    char cmd[1300];
    snprintf(cmd, sizeof cmd,
             "grep -q 'cached features: layers 1-[0-9]* .*by 2 ranks, 1/2 each' '%s/train.log'",
             tu_path("base2"));
    assert_int_equal(system(cmd), 0);
    double gap = weights_gap("base1", "base2");
    print_message("cached prefix: 1 process in 2 slices vs 2 ranks: weights differ by %.3g\n", gap);
    assert_true(gap == 0.0);
}

/* Augmented training on 2 ranks: the study's generator (each rank makes the memoised batches whole and keeps
 * its slice) and random augmentation (each rank transforms only its samples, with the draws one process
 * makes for them) give, bit for bit, one process's weights in two slices. */
static void test_augment_on_two_ranks(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    static const char head[] =
        "input: (28, 28, 1)\nlayers:\n    Conv2D(8, kernel_size=3, activation=\"relu\")\n"
        "    MaxPooling2D(2)\n    Flatten()\n    Dropout(0.25)\n"
        "    Dense(10, activation=\"softmax\")\n"
        "optimizer: Adam(learning_rate=0.002)\n";
    const struct {
        const char *name, *rest;
    } specs[] = {
        {"Study_Aug", "fit: batch_size=500, epochs=1, validation=\"test\", seed=8\n"
                      "augment:\n    StudyGenerator()\n"},
        {"Random_Aug",
         "fit: batch_size=64, epochs=1, validation=\"test\", seed=9\n"
         "augment:\n    ImageDataGenerator(rotation_range=10, width_shift_range=0.1, zoom_range=0.1, "
         "horizontal_flip=True)\n    PadAndCrop(padding=2)\n    RandomErasing(p=0.5)\n"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        char text[1024], path[600];
        snprintf(text, sizeof text, "model: %s\n%s%s", specs[i].name, head, specs[i].rest);
        write_spec("aug.spec", text, path, sizeof path);
        train_opts(path, "--batch-slices 2 --overwrite", NULL, tu_path("aug1"));
        train_opts(path, "--overwrite", "2", tu_path("aug2"));
        double gap = weights_gap("aug1", "aug2");
        print_message("%s: 1 process in 2 slices vs 2 ranks: weights differ by %.3g\n", specs[i].name, gap);
        assert_true(gap == 0.0);
        assert_true(test_accuracy(tu_path("aug1")) == test_accuracy(tu_path("aug2")));
    }
}

/* ---------------------------------------------------------------- backup and resume on 2 ranks */

/* Starts `mpirun -np 2 cnnlab train SPEC --epochs 3 ... --out OUT` in the background; returns mpirun's pid.
 */
static pid_t start_ranks(const char *out)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        execlp("mpirun", "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", g_bin, "train",
               g_spec, "--epochs", "3", "--limit", "3000", "--quiet", "--out", out, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Rank 0 writes the fit backup at every epoch end and every rank resumes from it: a 2-rank run stopped after
 * its first backup and resumed (`mpirun -np 2 cnnlab train --resume DIR`) ends with the model file of the
 * uninterrupted 2-rank run, byte for byte. The spec's callbacks (ReduceLROnPlateau, EarlyStopping, and the
 * checkpoint that rank 0 alone runs) are restored too. */
static void test_resume_on_two_ranks(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    char through[600], cut[600], backup[700], cmd[4000];
    snprintf(through, sizeof through, "%s", tu_path("through"));
    snprintf(cut, sizeof cut, "%s", tu_path("cut"));
    snprintf(cmd, sizeof cmd, "%s -np 2 '%s' train '%s' --epochs 3 --limit 3000 --quiet --out '%s'", MPIRUN,
             g_bin, g_spec, through);
    assert_int_equal(sh(cmd), 0);
    snprintf(backup, sizeof backup, "%s/backup.cnn", cut);
    pid_t pid = start_ranks(cut);
    int status, ended = 0;
    while (access(backup, F_OK) != 0 && !(ended = waitpid(pid, &status, WNOHANG) == pid)) {
        struct timespec t = {0, 10 * 1000000L};
        nanosleep(&t, NULL);
    }
    assert_false(ended); /* three epochs take far longer than one poll */
    kill(pid, SIGTERM);  /* mpirun ends its ranks */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    snprintf(cmd, sizeof cmd, "test -e '%s/model.cnn'", cut);
    assert_int_not_equal(system(cmd), 0); /* stopped before the end */
    snprintf(cmd, sizeof cmd, "%s -np 2 '%s' train --resume '%s' --quiet", MPIRUN, g_bin, cut);
    int rc = sh(cmd);
    if (rc) show_output();
    assert_int_equal(rc, 0);
    snprintf(cmd, sizeof cmd, "cmp '%s/model.cnn' '%s/model.cnn' && test ! -e '%s'", through, cut, backup);
    assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------- the study on 2 ranks */

static void test_distributed_study(void **state)
{
    (void)state;
    if (!mpi_ready()) skip();
    char cmd[4000], out[600];
    snprintf(out, sizeof out, "%s", tu_path("study"));
    snprintf(cmd, sizeof cmd, "%s -np 2 '%s' study '%s' --limit 600 --epochs 1 --quiet --out '%s'", MPIRUN,
             g_bin, g_specs, out);
    int rc = sh(cmd);
    if (rc != 1) show_output();
    assert_int_equal(rc, 1); /* one model failed */
    assert_true(printed("MPI: study on 2 ranks", 0));
    assert_true(printed("study: Wrong_Input failed", 1));
    /* The other two models were trained (one on each rank) and are in rank 0's table. */
    snprintf(cmd, sizeof cmd,
             "test -s '%s/Small_CNN/run.json' && test -s '%s/Tiny_MLP/run.json' && "
             "grep -q '^Small_CNN,' '%s/results.csv' && grep -q '^Tiny_MLP,' '%s/results.csv' && "
             "! grep -q Wrong_Input '%s/results.csv' && test \"$(wc -l < '%s/results.csv')\" -eq 3",
             out, out, out, out, out, out);
    assert_int_equal(system(cmd), 0);
    assert_true(printed("Small_CNN", 0) && printed("Tiny_MLP", 0));
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024], cwd[900];
    snprintf(self, sizeof self, "%s", argv[0]);
    if (!realpath(dirname(dirname(self)), cwd)) return fprintf(stderr, "test_mpi: no build folder\n"), 1;
    snprintf(g_bin, sizeof g_bin, "%s/cnnlab", cwd);
    if (!getcwd(cwd, sizeof cwd)) return 1;
    snprintf(g_spec, sizeof g_spec, "%s/tests/data/mpi/small_cnn.spec", cwd);
    snprintf(g_specs, sizeof g_specs, "%s/tests/data/mpi", cwd);
    if (access(g_bin, X_OK) != 0 || access(g_spec, R_OK) != 0) {
        fprintf(stderr, "test_mpi: %s or %s is missing (run from the repository root)\n", g_bin, g_spec);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_source),
        cmocka_unit_test(test_any_source_shard),
        cmocka_unit_test(test_two_ranks_match_one_process),
        cmocka_unit_test(test_frozen_layer_between),
        cmocka_unit_test(test_batch_slices_equal_ranks),
        cmocka_unit_test(test_sync_batchnorm),
        cmocka_unit_test(test_cached_prefix),
        cmocka_unit_test(test_augment_on_two_ranks),
        cmocka_unit_test(test_resume_on_two_ranks),
        cmocka_unit_test(test_distributed_study),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
