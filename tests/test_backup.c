/* Exact resume: a fit killed with SIGKILL at chosen moments (inside an epoch, right after a checkpoint,
 * between epochs) and restarted from its backup ends with the same weights, bit for bit, as a fit that ran
 * through. The model has Dropout and BatchNormalization (RNG position and moving statistics) and the study's
 * callbacks (ReduceLROnPlateau, EarlyStopping with restore_best_weights, ModelCheckpoint, a schedule), whose
 * states must all come back. The killed fits run in a child process: this program started again with "child".
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/model_file.h"
#include "model/backup.h"
#include "util.h"

enum { SIDE = 6, N = 96, EPOCHS = 9 };

static const char *const SPEC =
    "model: resume\n"
    "input: (6, 6, 1)\n"
    "layers:\n"
    "    Conv2D(4, kernel_size=3, activation=\"relu\")\n"
    "    BatchNormalization()\n"
    "    Flatten()\n"
    "    Dropout(0.3)\n"
    "    Dense(3, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.02)\n"
    "fit: batch_size=16, epochs=9, seed=4\n"
    "callbacks:\n"
    "    ReduceLROnPlateau(monitor=\"val_loss\", factor=0.5, patience=1)\n"
    "    EarlyStopping(monitor=\"val_accuracy\", patience=3, restore_best_weights=True)\n"
    "    ModelCheckpoint(monitor=\"val_loss\", save_best_only=True)\n"
    "    LearningRateScheduler(\"exp\", thresh=3)\n";

static cnn_dataset make_data(int n, uint32_t s)
{
    cnn_dataset ds = {.n = n, .h = SIDE, .w = SIDE, .c = 1, .num_classes = 3};
    ds.x = malloc(sizeof(float) * SIDE * SIDE * n);
    ds.y = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) {
        ds.y[i] = i % 3;
        for (int p = 0; p < SIDE * SIDE; p++) {
            s = s * 1664525u + 1013904223u;
            ds.x[i * SIDE * SIDE + p] = (p % 3 == ds.y[i] ? 0.5f : 0.0f) + (float)(s >> 8) / 16777216.0f;
        }
    }
    return ds;
}

/* Kills the process at one moment: (epoch, batch) after that batch, or batch -1: after the epoch's callbacks.
 */
typedef struct kill_at {
    int epoch, batch;
    int every_batch; /* back up after every batch too (backup_minutes tiny) */
    int fifo_epoch; /* after this epoch's callbacks, the checkpoint's epoch file becomes a FIFO (-1: never) */
    const char *fifo;
} kill_at;

static int kill_batch(cnn_callback *cb, cnn_model *m, const cnn_batch_log *log, int *stop)
{
    (void)m, (void)stop;
    const kill_at *k = cb->state;
    if (log->epoch == k->epoch && log->batch == k->batch) raise(SIGKILL);
    return 0;
}

static int kill_epoch(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)m, (void)stop;
    const kill_at *k = cb->state;
    if (log->epoch == k->epoch && k->batch < 0) raise(SIGKILL);
    if (log->epoch == k->fifo_epoch && (unlink(k->fifo) || mkfifo(k->fifo, 0600))) return -1;
    return 0;
}

/* One fit of the spec into dir with a backup; the killer runs last (after the checkpoint of its epoch). */
/* What a fit leaves: its weights and, per epoch, the losses and learning rate (bit for bit). */
typedef struct outcome {
    float params[4096];
    size_t nparams;
    double logs[EPOCHS][5];
    int epochs;
} outcome;

static int run_fit(const char *dir, const kill_at *k, outcome *out)
{
    cnn_spec *s = cnn_spec_parse(SPEC, "resume.spec");
    cnn_model *m = s ? cnn_spec_build_model(s, 4) : NULL;
    cnn_callback **cbs = NULL;
    int ncb = 0;
    if (!m || cnn_spec_callbacks(s, dir, &cbs, &ncb)) return fprintf(stderr, "%s\n", cnn_errmsg()), -1;
    cnn_callback killer = {
        .name = "killer", .state = (void *)k, .on_train_batch_end = kill_batch, .on_epoch_end = kill_epoch};
    cnn_callback *all[16];
    memcpy(all, cbs, sizeof *cbs * (size_t)ncb);
    all[ncb] = &killer;
    cnn_dataset train = make_data(N, 1), val = make_data(30, 2);
    char backup[600];
    snprintf(backup, sizeof backup, "%s/backup.cnn", dir);
    cnn_fit_config c = cnn_fit_default();
    c.epochs = EPOCHS, c.batch_size = 16, c.seed = 4, c.verbose = CNN_VERBOSE_SILENT;
    c.validation = &val, c.callbacks = all, c.num_callbacks = ncb + 1, c.backup_path = backup;
    c.backup_minutes = k->every_batch ? 1e-12 : 0;
    cnn_history h;
    int rc = cnn_model_fit(m, &train, &c, &h);
    if (rc) fprintf(stderr, "%s\n", cnn_errmsg());
    if (!rc && out) {
        out->nparams = cnn_model_num_params(m, 0);
        memcpy(out->params, cnn_model_params(m), sizeof(float) * out->nparams);
        out->epochs = h.count;
        for (int e = 0; e < h.count; e++) {
            const cnn_epoch_log *l = &h.epochs[e];
            double row[5] = {l->loss, l->accuracy, l->val_loss, l->val_accuracy, l->lr};
            memcpy(out->logs[e], row, sizeof row);
        }
    }
    cnn_history_free(&h);
    for (int i = 0; i < ncb; i++) cnn_callback_free(cbs[i]);
    free(cbs);
    cnn_model_free(m);
    cnn_spec_free(s);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
    return rc;
}

static const char *g_self;

/* Runs the fit in a child that kills itself at k; returns the child's terminating signal (0 if none). */
static int killed_child(const char *dir, kill_at k)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[16], b[16], every[4];
        snprintf(e, sizeof e, "%d", k.epoch);
        snprintf(b, sizeof b, "%d", k.batch);
        snprintf(every, sizeof every, "%d", k.every_batch);
        execl(g_self, g_self, "child", dir, e, b, every, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    static outcome want, got;
    kill_at never = {-1, -1, 0, -1, NULL};
    assert_int_equal(run_fit(tu_path("through"), &never, &want), 0);
    /* Inside an epoch with only epoch backups (the epoch is redone), right after a checkpoint was written and
     * the epoch backed up, inside epochs backed up after every batch (resumed mid-epoch). */
    static const kill_at moments[] = {{0, 2, 0, -1, NULL}, {2, -1, 0, -1, NULL}, {1, 4, 1, -1, NULL},
                                      {3, 2, 1, -1, NULL}, {1, 5, 0, -1, NULL},  {3, -1, 0, -1, NULL}};
    for (size_t i = 0; i < sizeof moments / sizeof moments[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "killed%zu", i);
        const char *dir = tu_path(name);
        assert_int_equal(mkdir(dir, 0777), 0);
        if (killed_child(dir, moments[i]) != SIGKILL) fail_msg("moment %zu: the child was not killed", i);
        /* Resume (the same killer would strike again at the same moment, so it is off now). */
        kill_at resume = {-1, -1, moments[i].every_batch, -1, NULL};
        assert_int_equal(run_fit(dir, &resume, &got), 0);
        assert_int_equal(got.nparams, want.nparams);
        assert_int_equal(got.epochs, want.epochs);
        if (memcmp(got.params, want.params, sizeof(float) * want.nparams))
            fail_msg("killed at epoch %d batch %d: the resumed weights differ", moments[i].epoch,
                     moments[i].batch);
        if (memcmp(got.logs, want.logs, sizeof want.logs))
            fail_msg("killed at epoch %d batch %d: the resumed history differs", moments[i].epoch,
                     moments[i].batch);
    }
}

static uint8_t *slurp(const char *path, size_t *len)
{
    char *data = NULL;
    if (cnn_read_file(path, &data, len, 1 << 24)) fail_msg("%s", cnn_errmsg());
    return (uint8_t *)data;
}

/* The second epoch whose val_loss is a new best: ModelCheckpoint(save_best_only) saves there. */
static int second_save(const outcome *o)
{
    double best = INFINITY;
    int saves = 0;
    for (int e = 0; e < o->epochs; e++)
        if (o->logs[e][2] < best && (best = o->logs[e][2], ++saves == 2)) return e;
    fail_msg("the fit saved its checkpoint fewer than twice");
    return -1;
}

/* A checkpoint's epoch rides in its model file: a fit that stops between the model file and its epoch file
 * (here the epoch file became a FIFO, which the atomic writer refuses, just as a kill there would stop it)
 * leaves a checkpoint that still names its own epoch, and the resumed fit reads the record from the file
 * and ends with the checkpoint, epoch file and record of the fit that ran through, byte for byte. */
static void test_kill_between_checkpoint_writes(void **state)
{
    (void)state;
    static outcome want, got;
    kill_at never = {-1, -1, 0, -1, NULL};
    assert_int_equal(run_fit(tu_path("ck_through"), &never, &want), 0);
    int k = second_save(&want);
    const char *dir = tu_path("ck_stopped");
    assert_int_equal(mkdir(dir, 0777), 0);
    char ckpt[600], copy[600];
    snprintf(ckpt, sizeof ckpt, "%s/resume_best_model_loss.cnn", dir);
    snprintf(copy, sizeof copy, "%s/resume_best_model_loss.epoch", dir);
    kill_at stop = {-1, -1, 0, k - 1, copy};
    assert_int_not_equal(run_fit(dir, &stop, NULL), 0);
    cnn_checkpoint_info rec;
    assert_int_equal(cnn_checkpoint_read(ckpt, &rec), 0);
    assert_int_equal(rec.saved_epoch, k); /* the weights' epoch, though the epoch file could not follow */
    assert_int_equal(rec.epoch_file, k);
    assert_int_equal(unlink(copy), 0);
    assert_int_equal(run_fit(dir, &never, &got), 0);
    assert_memory_equal(got.params, want.params, sizeof(float) * want.nparams);
    assert_memory_equal(got.logs, want.logs, sizeof want.logs);
    const char *const files[] = {"resume_best_model_loss.cnn", "resume_best_model_loss.epoch"};
    for (int i = 0; i < 2; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", tu_path("ck_through"), files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        size_t la, lb;
        uint8_t *x = slurp(a, &la), *y = slurp(b, &lb);
        assert_int_equal(la, lb);
        if (memcmp(x, y, la)) fail_msg("%s differs from the uninterrupted fit's", files[i]);
        free(x), free(y);
    }
}

/* A backup is a file a resume reads, hence hostile input: its fit state cut at any length (every length
 * through the progress, history and callback headers, then every 97th byte), or with an absurd history
 * length, is refused with a message naming the file, never read past its end. */
static void test_damaged_fit_state(void **state)
{
    (void)state;
    const char *dir = tu_path("damaged");
    assert_int_equal(mkdir(dir, 0777), 0);
    if (killed_child(dir, (kill_at){2, -1, 0, -1, NULL}) != SIGKILL) fail_msg("the child was not killed");
    char backup[600], damaged[600];
    snprintf(backup, sizeof backup, "%s/backup.cnn", dir);
    snprintf(damaged, sizeof damaged, "%s/damaged.cnn", dir);
    cnn_model_extra x = {.tag = "FITS"};
    cnn_model *saved = cnn_model_load_extra(backup, &x);
    assert_true(saved && x.data && x.len > 300);
    cnn_spec *s = cnn_spec_parse(SPEC, "resume.spec");
    cnn_model *m = s ? cnn_spec_build_model(s, 4) : NULL;
    cnn_callback **cbs = NULL, *all[16], killer = {.name = "killer"};
    int ncb = 0;
    assert_true(m && !cnn_spec_callbacks(s, dir, &cbs, &ncb));
    memcpy(all, cbs, sizeof *cbs * (size_t)ncb);
    all[ncb] = &killer;
    for (int i = 0; i < ncb; i++) /* as a fit does before it restores */
        if (cbs[i]->on_train_begin) assert_int_equal(cbs[i]->on_train_begin(cbs[i], m), 0);
    cnn_fit_config c = cnn_fit_default();
    c.callbacks = all, c.num_callbacks = ncb + 1, c.backup_path = damaged;
    uint8_t *bytes = malloc(x.len);
    assert_non_null(bytes);
    for (size_t len = 0; len <= x.len; len += len < 300 ? 1 : 97) {
        memcpy(bytes, x.data, x.len);
        if (len == x.len) memset(bytes + 4 + 40, 0x7f, 3); /* whole, but a history of ~2^30 epochs */
        cnn_model_extra cut = {"FITS", bytes, len};
        assert_int_equal(cnn_model_save_extra(saved, damaged, CNN_SAVE_OPTIMIZER, &cut), 0);
        cnn_history h = {0};
        cnn_fit_progress p;
        if (cnn_backup_restore(m, &c, &h, &p) >= 0)
            fail_msg("a fit state of %zu of %zu bytes was accepted", len, x.len);
        if (!strstr(cnn_errmsg(), damaged)) fail_msg("cut to %zu bytes: %s", len, cnn_errmsg());
        cnn_history_free(&h);
    }
    cnn_model_extra whole = {"FITS", x.data, x.len};
    assert_int_equal(cnn_model_save_extra(saved, damaged, CNN_SAVE_OPTIMIZER, &whole), 0);
    cnn_history h = {0};
    cnn_fit_progress p;
    if (cnn_backup_restore(m, &c, &h, &p) != 1) fail_msg("the whole fit state: %s", cnn_errmsg());
    assert_int_equal(p.epoch, 2); /* killed after epoch 2's callbacks, before its backup */
    assert_int_equal(h.count, 2);
    cnn_history_free(&h);
    free(bytes);
    free(x.data);
    for (int i = 0; i < ncb; i++) cnn_callback_free(cbs[i]);
    free(cbs);
    cnn_model_free(saved);
    cnn_model_free(m);
    cnn_spec_free(s);
}

int main(int argc, char **argv)
{
    g_self = argv[0];
    if (argc == 6 && !strcmp(argv[1], "child")) {
        kill_at k = {atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), -1, NULL};
        cnn_set_threads(2);
        return run_fit(argv[2], &k, NULL) ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_kill_between_checkpoint_writes),
        cmocka_unit_test(test_damaged_fit_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
