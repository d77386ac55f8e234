/* EarlyStopping, ReduceLROnPlateau, ModelCheckpoint and the schedules. The reference is Keras 2.15 itself:
 * tests/data/keras_callbacks_ref.txt, written by scripts/keras_callbacks_ref.py, records what real Keras
 * callbacks did in each scripted scenario, and the "keras_reference" tests replay every scenario here. The
 * hand-traced tests before them explain the rules on the study's scenarios (and check what the file does not
 * record: stop reasons, restored epochs, reduction counts); PyTorch OneCycleLR is checked against its
 * formula. The tests drive the callbacks as fit does, with scripted validation values: before each epoch's
 * end the parameters are set to a marker of that epoch, so the parameters left after a restore tell whose
 * copy it was. A last group runs cnn_model_fit for real. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAXE   32

/* float32 values of the learning rates the study's callbacks produce (Keras stores lr as float32) */
static const double LR0 = 0.004999999888241291;     /* f32(0.005) */
static const double LR_1E3 = 0.0010000000474974513; /* f32(0.001) */
/* f32(f32(0.005) * 0.2) with the product in double (NumPy 1.x promotes float32 * float to float64): one ulp
 * below f32(0.001); a float32 product would round up to f32(0.001) instead. */
static const double R1 = 0.0009999999310821295;
static const double R2 = 0.0001999999803956598;  /* f32(R1 * 0.2) */
static const double R3 = 0.00020000000949949026; /* f32(f32(0.001) * 0.2) */

static cnn_model *tiny_model(double lr)
{
    cnn_model *m = cnn_model_create("tiny", 1, 1, 3);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Dense", "units=2, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 7), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, lr);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    return m;
}

static void set_marker(cnn_model *m, int epoch)
{
    float *p = cnn_model_params(m);
    for (size_t i = 0; i < cnn_model_num_params(m, 0); i++) p[i] = (float)(1000 * (epoch + 1) + (int)i);
}

/* The epoch whose marker the parameters hold (all of them, or it fails). */
static int marker_of(const float *p, size_t n)
{
    int epoch = (int)(p[0] / 1000) - 1;
    for (size_t i = 0; i < n; i++) assert_float_equal(p[i], 1000 * (epoch + 1) + (int)i, 0);
    return epoch;
}

static int model_marker(cnn_model *m)
{
    return marker_of(cnn_model_params(m), cnn_model_num_params(m, 0));
}

typedef struct run {
    int epochs;        /* epochs run */
    int stopped;       /* epoch at which training stopped, -1 */
    char reason[256];  /* names of the callbacks that asked to stop */
    double used[MAXE]; /* lr during each epoch */
    double end[MAXE];  /* lr after each epoch's callbacks: what Keras's logs["lr"] holds */
} run;

/* Called after each epoch's callbacks (the reference scenarios look at the checkpoint files there). */
typedef void (*epoch_observer)(cnn_model *m, int epoch, void *ctx);

/* Runs n epochs as cnn_model_fit does; vl/va are the scripted val_loss/val_accuracy (va NULL: no validation).
 */
static run drive_observed(cnn_model *m, cnn_callback **cbs, int ncb, const double *vl, const double *va,
                          int n, epoch_observer observe, void *ctx)
{
    run r = {.stopped = -1};
    for (int i = 0; i < ncb; i++)
        if (cbs[i]->on_train_begin) assert_int_equal(cbs[i]->on_train_begin(cbs[i], m), 0);
    for (int e = 0; e < n && e < MAXE; e++) {
        for (int i = 0; i < ncb; i++)
            if (cbs[i]->on_epoch_begin) assert_int_equal(cbs[i]->on_epoch_begin(cbs[i], m, e), 0);
        set_marker(m, e); /* "training" */
        cnn_epoch_log log = {
            .epoch = e, .loss = 1.0 / (e + 1), .accuracy = 0.5, .lr = cnn_model_learning_rate(m)};
        log.val_loss = va ? vl[e] : NAN;
        log.val_accuracy = va ? va[e] : NAN;
        r.used[e] = log.lr;
        int stop = 0;
        for (int i = 0; i < ncb; i++) {
            int mine = 0;
            if (cbs[i]->on_epoch_end) assert_int_equal(cbs[i]->on_epoch_end(cbs[i], m, &log, &mine), 0);
            if (mine) {
                size_t k = strlen(r.reason);
                snprintf(r.reason + k, sizeof r.reason - k, "%s%s", k ? "; " : "", cbs[i]->name);
            }
            stop |= mine;
        }
        r.end[e] = cnn_model_learning_rate(m);
        r.epochs = e + 1;
        if (observe) observe(m, e, ctx);
        if (stop) {
            r.stopped = e;
            break;
        }
    }
    for (int i = 0; i < ncb; i++)
        if (cbs[i]->on_train_end) assert_int_equal(cbs[i]->on_train_end(cbs[i], m, NULL), 0);
    return r;
}

static run drive(cnn_model *m, cnn_callback **cbs, int ncb, const double *vl, const double *va, int n)
{
    return drive_observed(m, cbs, ncb, vl, va, n, NULL, NULL);
}

static void free_all(cnn_callback **cbs, int n)
{
    for (int i = 0; i < n; i++) cnn_callback_free(cbs[i]);
}

static cnn_early_stopping_info es_info(const cnn_callback *cb)
{
    cnn_early_stopping_info info;
    assert_int_equal(cnn_early_stopping_get_info(cb, &info), 0);
    return info;
}

static cnn_reduce_lr_info rlr_info(const cnn_callback *cb)
{
    cnn_reduce_lr_info info;
    assert_int_equal(cnn_reduce_lr_get_info(cb, &info), 0);
    return info;
}

static cnn_checkpoint_info ck_info(const cnn_callback *cb)
{
    cnn_checkpoint_info info;
    assert_int_equal(cnn_checkpoint_get_info(cb, &info), 0);
    return info;
}

static int read_int_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -100;
    char buf[32] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) assert_true(buf[i] >= '0' && buf[i] <= '9'); /* str(epoch): no newline */
    return atoi(buf);
}

/* The marker held by a saved model file. */
static int file_marker(const char *path)
{
    cnn_model *m = cnn_model_load(path);
    if (!m) fail_msg("%s", cnn_errmsg());
    int e = model_marker(m);
    cnn_model_free(m);
    return e;
}

/* ------------------------------------------------------------------ the study's callback list (spec 3.4) */

enum { RLR, ES_LOSS, ES_ACC, CK_ACC, CK_LOSS, SCHED, NSTUDY };

static void study_callbacks(cnn_callback **cbs, const char *prefix, int es_loss_start)
{
    char a[256], b[256], c[256], d[256], opts[128];
    snprintf(a, sizeof a, "%s%s_best_model_acc.keras", tu_path(""), prefix);
    snprintf(b, sizeof b, "%s%s_best_model_acc.epoch", tu_path(""), prefix);
    snprintf(c, sizeof c, "%s%s_best_model_loss.keras", tu_path(""), prefix);
    snprintf(d, sizeof d, "%s%s_best_model_loss.epoch", tu_path(""), prefix);
    cbs[RLR] = cnn_callback_reduce_lr_on_plateau("monitor=val_loss, factor=0.2, patience=2, min_lr=1e-8");
    snprintf(opts, sizeof opts,
             "monitor=val_loss, patience=5, restore_best_weights=true, start_from_epoch=%d", es_loss_start);
    cbs[ES_LOSS] = cnn_callback_early_stopping(opts);
    cbs[ES_ACC] = cnn_callback_early_stopping("monitor=val_accuracy, patience=10, restore_best_weights=true");
    cbs[CK_ACC] = cnn_callback_model_checkpoint(
        a, b, "monitor=val_accuracy, save_best_only=true, save_weights_only=true");
    cbs[CK_LOSS] =
        cnn_callback_model_checkpoint(c, d, "monitor=val_loss, save_best_only=true, save_weights_only=true");
    static const cnn_step_schedule step = {.thresh = 7, .lr_after = 0.001};
    cbs[SCHED] = cnn_callback_lr_scheduler(cnn_schedule_step, &step, sizeof step);
    for (int i = 0; i < NSTUDY; i++)
        if (!cbs[i]) fail_msg("callback %d: %s", i, cnn_errmsg());
}

/* Scenario A. Hand trace (w = wait):
 *  ReduceLROnPlateau: best 1.00 (e0), 0.70 (e1); then never below 0.70 - 1e-4, so w = 1, 2 (reduce), 1, 2
 * ...: reductions at the end of e3 (0.005 -> R1), e5 (R1 -> R2), e7, e9, e11 (0.001 -> R3, undone by the step
 *    schedule at the next epoch's start).
 *  EarlyStopping(val_loss, start 4): ignores e0-e3 (whose 0.70 would otherwise be the best); best 0.80 at e4,
 *    0.79995 at e6 (strict improvement, min_delta 0); w = 1..5 over e7-e11: stops at e11, restores e6.
 *  EarlyStopping(val_accuracy): best 0.68 at e8 (the tie at e9 is no improvement); w = 3 at e11: no stop.
 *  Checkpoint(val_accuracy): saves at e0 1 2 4 5 6 8 (7 files), epoch file rewritten on the e9 tie -> "9".
 *  Checkpoint(val_loss): saves at e0 and e1; epoch file "1". */
static const double A_VL[] = {1.00, 0.70, 0.95, 0.96, 0.80, 0.85, 0.79995, 0.81, 0.82, 0.83, 0.84, 0.85, 0.5};
static const double A_VA[] = {0.50, 0.60, 0.62, 0.61, 0.65, 0.66, 0.67, 0.66, 0.68, 0.68, 0.66, 0.66, 0.9};

static void test_study_val_loss_stop(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.005);
    cnn_callback *cbs[NSTUDY];
    study_callbacks(cbs, "A", 4);
    run r = drive(m, cbs, NSTUDY, A_VL, A_VA, LEN(A_VL));

    assert_int_equal(r.stopped, 11);
    assert_string_equal(r.reason, "EarlyStopping(val_loss) best epoch 6, restored epoch 6");
    assert_int_equal(model_marker(m), 6);

    const double used[] = {0.005, 0.005, 0.005, 0.005, R1, R1, R2, LR_1E3, LR_1E3, LR_1E3, LR_1E3, LR_1E3};
    const double end[] = {0.005, 0.005, 0.005, R1, R1, R2, R2, R3, LR_1E3, R3, LR_1E3, R3};
    for (int e = 0; e < 12; e++) {
        assert_float_equal((float)r.used[e], (float)used[e], 0);
        assert_float_equal((float)r.end[e], (float)end[e], 0);
    }
    assert_true(r.end[3] != LR_1E3); /* the float64 product, not a float32 one */
    cnn_reduce_lr_info ri = rlr_info(cbs[RLR]);
    assert_int_equal(ri.reductions, 5);
    assert_int_equal(ri.last_epoch, 11);
    assert_float_equal(ri.best, 0.70, 0);

    cnn_early_stopping_info li = es_info(cbs[ES_LOSS]), ai = es_info(cbs[ES_ACC]);
    assert_int_equal(li.best_epoch, 6);
    assert_int_equal(li.stopped_epoch, 11);
    assert_int_equal(li.restored_epoch, 6);
    assert_int_equal(li.wait, 5);
    assert_float_equal(li.best, 0.79995, 0);
    assert_int_equal(ai.best_epoch, 8);
    assert_int_equal(ai.wait, 3);
    assert_int_equal(ai.stopped_epoch, -1);
    assert_int_equal(ai.restored_epoch, -1);

    cnn_checkpoint_info ca = ck_info(cbs[CK_ACC]), cl = ck_info(cbs[CK_LOSS]);
    assert_int_equal(ca.saves, 7);
    assert_int_equal(ca.saved_epoch, 8);
    assert_int_equal(ca.epoch_file, 9);
    assert_int_equal(read_int_file(tu_path("A_best_model_acc.epoch")), 9);
    assert_int_equal(file_marker(tu_path("A_best_model_acc.keras")), 8);
    cnn_checkpoint_info rec; /* the file's own record: its weights' epoch and the (tie) epoch of its copy */
    assert_int_equal(cnn_checkpoint_read(tu_path("A_best_model_acc.keras"), &rec), 0);
    assert_int_equal(rec.saved_epoch, 8);
    assert_int_equal(rec.epoch_file, 9);
    assert_int_equal(rec.saves, 7);
    assert_float_equal(rec.best, 0.68, 0);
    assert_int_equal(cl.saves, 2);
    assert_int_equal(cl.epoch_file, 1);
    assert_int_equal(read_int_file(tu_path("A_best_model_loss.epoch")), 1);
    assert_int_equal(file_marker(tu_path("A_best_model_loss.keras")), 1);
    free_all(cbs, NSTUDY);
    cnn_model_free(m);
}

/* Without start_from_epoch the 0.70 of e1 is EarlyStopping(val_loss)'s best: w = 1..5 over e2-e6, stop at e6.
 */
static void test_start_from_epoch_ignores_early_epochs(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.005);
    cnn_callback *cbs[NSTUDY];
    study_callbacks(cbs, "A0", 0);
    run r = drive(m, cbs, NSTUDY, A_VL, A_VA, LEN(A_VL));
    assert_int_equal(r.stopped, 6);
    assert_int_equal(model_marker(m), 1);
    assert_int_equal(es_info(cbs[ES_LOSS]).best_epoch, 1);
    free_all(cbs, NSTUDY);
    cnn_model_free(m);
}

/* Reaching the last epoch restores nothing: the same script cut to 11 epochs (e0-e10) ends with e10's
 * weights. */
static void test_max_epochs_restores_nothing(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.005);
    cnn_callback *cbs[NSTUDY];
    study_callbacks(cbs, "C", 4);
    run r = drive(m, cbs, NSTUDY, A_VL, A_VA, 11);
    assert_int_equal(r.stopped, -1);
    assert_int_equal(r.epochs, 11);
    assert_int_equal(model_marker(m), 10);
    cnn_early_stopping_info li = es_info(cbs[ES_LOSS]);
    assert_int_equal(li.wait, 4);
    assert_int_equal(li.best_epoch, 6);
    assert_int_equal(li.restored_epoch, -1);
    assert_int_equal(es_info(cbs[ES_ACC]).restored_epoch, -1);
    free_all(cbs, NSTUDY);
    cnn_model_free(m);
}

/* Scenario B: val_accuracy peaks at e2 and val_loss (from e4 on) at e7, so at e12 EarlyStopping(val_loss) has
 * waited 5 epochs and EarlyStopping(val_accuracy) 10: both stop in the same epoch and restore in list order,
 * so val_accuracy's e2 weights remain. With the two swapped in the list, val_loss's e7 weights remain. */
static const double B_VL[] = {1.0, 0.9, 0.8, 0.85, 0.75, 0.76, 0.77, 0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.1};
static const double B_VA[] = {0.5,  0.6,  0.8,  0.70, 0.71, 0.72, 0.73,
                              0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.99};

static void test_both_stop_same_epoch(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.005);
    cnn_callback *cbs[NSTUDY];
    study_callbacks(cbs, "B", 4);
    run r = drive(m, cbs, NSTUDY, B_VL, B_VA, LEN(B_VL));
    assert_int_equal(r.stopped, 12);
    assert_string_equal(r.reason, "EarlyStopping(val_loss) best epoch 7, restored epoch 7; "
                                  "EarlyStopping(val_accuracy) best epoch 2, restored epoch 2");
    assert_int_equal(model_marker(m), 2);
    assert_int_equal(es_info(cbs[ES_LOSS]).restored_epoch, 7);
    assert_int_equal(es_info(cbs[ES_ACC]).restored_epoch, 2);

    cnn_callback *swapped[NSTUDY];
    memcpy(swapped, cbs, sizeof cbs);
    swapped[ES_LOSS] = cbs[ES_ACC];
    swapped[ES_ACC] = cbs[ES_LOSS];
    r = drive(m, swapped, NSTUDY, B_VL, B_VA, LEN(B_VL));
    assert_int_equal(r.stopped, 12);
    assert_int_equal(model_marker(m), 7);
    free_all(cbs, NSTUDY);
    cnn_model_free(m);
}

/* The spec's 0.0005 <-> 0.0010 alternation (1e05cd3: factor 0.5, patience 2, min_lr 1e-4, min_delta 0.005)
 * with a flat val_loss: reductions at the end of e2 (0.005 -> 0.0025), e4, e6, then every second epoch from
 * e8 on, each undone by the step schedule at the next epoch's start. The lr used in training stays 0.001 from
 * e7 on; the lr after the epoch's callbacks (Keras's logged lr) alternates. */
static void test_plateau_alternates_with_step_schedule(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.005);
    static const cnn_step_schedule step = {.thresh = 7, .lr_after = 0.001};
    cnn_callback *cbs[] = {
        cnn_callback_reduce_lr_on_plateau("factor=0.5, patience=2, min_lr=1e-4, min_delta=0.005"),
        cnn_callback_lr_scheduler(cnn_schedule_step, &step, sizeof step),
    };
    double vl[14], va[14];
    for (int e = 0; e < 14; e++) vl[e] = 0.5, va[e] = 0.8;
    run r = drive(m, cbs, 2, vl, va, 14);
    float h = (float)LR_1E3 * 0.5f, f0 = (float)LR0;
    const float end[] = {f0,     f0, f0 / 2,        f0 / 2, f0 / 4,        f0 / 4, f0 / 8,
                         LR_1E3, h,  (float)LR_1E3, h,      (float)LR_1E3, h,      (float)LR_1E3};
    for (int e = 0; e < 14; e++) {
        assert_float_equal((float)r.end[e], end[e], 0);
        if (e >= 7) assert_float_equal((float)r.used[e], (float)LR_1E3, 0);
    }
    assert_int_equal(rlr_info(cbs[0]).reductions, 6);
    free_all(cbs, 2);
    cnn_model_free(m);
}

/* ------------------------------------------------------------------ EarlyStopping details */

static run es_run(const char *options, const double *vl, const double *va, int n,
                  cnn_early_stopping_info *info, int *marker)
{
    cnn_model *m = tiny_model(0.01);
    cnn_callback *cb = cnn_callback_early_stopping(options);
    if (!cb) fail_msg("%s", cnn_errmsg());
    run r = drive(m, &cb, 1, vl, va, n);
    *info = es_info(cb);
    *marker = model_marker(m);
    cnn_callback_free(cb);
    cnn_model_free(m);
    return r;
}

/* min: improvement iff current + |min_delta| < best. 0.95 and 0.92 improve on 1.0 by less than 0.1: w = 1, 2
 * -> stop at e2, nothing restored (restore off). Without min_delta every epoch improves. */
static void test_es_min_delta(void **state)
{
    (void)state;
    const double vl[] = {1.0, 0.95, 0.92, 0.85, 0.80}, va[] = {0, 0, 0, 0, 0};
    cnn_early_stopping_info info;
    int marker;
    run r = es_run("min_delta=0.1, patience=2", vl, va, 5, &info, &marker);
    assert_int_equal(r.stopped, 2);
    assert_int_equal(info.best_epoch, 0);
    assert_int_equal(marker, 2);
    assert_int_equal(info.restored_epoch, -1);
    r = es_run("min_delta=-0.1, patience=2", vl, va, 5, &info, &marker); /* Keras takes |min_delta| */
    assert_int_equal(r.stopped, 2);
    r = es_run("patience=2", vl, va, 5, &info, &marker);
    assert_int_equal(r.stopped, -1);
    assert_int_equal(info.best_epoch, 4);

    /* max: improvement iff current - 0.1 > best: 0.55 is not (w = 1 >= patience 1, stop at e1), 0.65 is */
    const double a1[] = {0.5, 0.55, 0.9}, a2[] = {0.5, 0.65, 0.6};
    r = es_run("monitor=val_accuracy, min_delta=0.1, patience=1, restore_best_weights=1", vl, a1, 3, &info,
               &marker);
    assert_int_equal(r.stopped, 1);
    assert_int_equal(marker, 0);
    r = es_run("monitor=val_accuracy, min_delta=0.1, patience=1, restore_best_weights=1", vl, a2, 3, &info,
               &marker);
    assert_int_equal(r.stopped, 2);
    assert_int_equal(marker, 1);
}

/* baseline: improving epochs that do not beat the baseline leave wait counting (1, 2, 3, 4), but Keras checks
 * patience only on epochs without improvement, so training runs on until e4 (0.75) and stops there, restoring
 * e3. */
static void test_es_baseline(void **state)
{
    (void)state;
    const double vl[] = {1, 1, 1, 1, 1, 1}, va[] = {0.5, 0.6, 0.7, 0.8, 0.75, 0.76};
    cnn_early_stopping_info info;
    int marker;
    run r = es_run("monitor=val_accuracy, baseline=0.9, patience=3, restore_best_weights=true", vl, va, 6,
                   &info, &marker);
    assert_int_equal(r.stopped, 4);
    assert_int_equal(info.wait, 5);
    assert_int_equal(info.best_epoch, 3);
    assert_int_equal(marker, 3);
    r = es_run("monitor=val_accuracy, patience=3, restore_best_weights=true", vl, va, 6, &info, &marker);
    assert_int_equal(r.stopped, -1);
    assert_int_equal(info.wait, 2);
    /* beating the baseline resets wait as usual */
    const double vb[] = {0.5, 0.95, 0.94, 0.93, 0.92, 0.91};
    r = es_run("monitor=val_accuracy, baseline=0.9, patience=3", vl, vb, 6, &info, &marker);
    assert_int_equal(r.stopped, 4);
    assert_int_equal(info.best_epoch, 1);
}

/* mode=max on a loss: every decrease is a non-improvement. patience 0 stops at the first non-improving epoch,
 * but never at epoch 0 (Keras: "only check after the first epoch"). */
static void test_es_mode_and_patience_zero(void **state)
{
    (void)state;
    const double vl[] = {1.0, 0.9, 0.8}, va[] = {0.1, 0.2, 0.3};
    cnn_early_stopping_info info;
    int marker;
    run r = es_run("mode=max, restore_best_weights=true", vl, va, 3, &info, &marker);
    assert_int_equal(r.stopped, 1);
    assert_int_equal(marker, 0);
    r = es_run("restore_best_weights=true", vl, va, 3, &info, &marker); /* auto = min on val_loss */
    assert_int_equal(r.stopped, -1);
    assert_int_equal(marker, 2);
    r = es_run("monitor=val_accuracy, mode=min", vl, va, 3, &info, &marker);
    assert_int_equal(r.stopped, 1);
    /* epoch 0 never stops, even when it is no improvement (NaN) and patience is 0 */
    const double nan0[] = {NAN, 0.9, 0.8};
    r = es_run("", nan0, va, 3, &info, &marker);
    assert_int_equal(r.stopped, -1);
    assert_int_equal(info.best_epoch, 2);
}

/* A NaN val_loss is a value that never improves: with restore on, the copy of the first tracked epoch is what
 * gets restored (Keras's best_weights taken "in case no progress is ever made"), with no best epoch. */
static void test_es_restores_first_tracked_epoch_without_improvement(void **state)
{
    (void)state;
    const double vl[] = {0.1, 0.1, NAN, NAN, NAN}, va[] = {0.5, 0.5, 0.5, 0.5, 0.5};
    cnn_model *m = tiny_model(0.01);
    cnn_callback *cb =
        cnn_callback_early_stopping("patience=2, start_from_epoch=2, restore_best_weights=true");
    run r = drive(m, &cb, 1, vl, va, 5);
    assert_int_equal(r.stopped, 3);
    assert_int_equal(model_marker(m), 2);
    assert_string_equal(cb->name, "EarlyStopping(val_loss) no improvement, restored epoch 2");
    cnn_early_stopping_info info = es_info(cb);
    assert_int_equal(info.best_epoch, -1);
    assert_int_equal(info.restored_epoch, 2);
    /* a second fit starts afresh: best at e2, w = 1, 2 over e3, e4 */
    r = drive(m, &cb, 1, va, va, 5);
    assert_int_equal(r.stopped, 4);
    assert_string_equal(cb->name, "EarlyStopping(val_loss) best epoch 2, restored epoch 2");
    cnn_callback_free(cb);
    cnn_model_free(m);
}

/* Validation quantities of a fit without validation data are skipped (Keras warns and returns); loss works.
 */
static void test_missing_validation_is_skipped(void **state)
{
    (void)state;
    const double vl[] = {1, 2, 3, 4, 5};
    cnn_model *m = tiny_model(0.01);
    cnn_callback *cbs[] = {
        cnn_callback_early_stopping("restore_best_weights=true"),
        cnn_callback_reduce_lr_on_plateau("patience=0"),
        cnn_callback_early_stopping("monitor=loss, mode=max"),
        cnn_callback_model_checkpoint(tu_path("nv.cnn"), tu_path("nv.epoch"), "save_best_only=1")};
    run r = drive(m, cbs, 4, vl, NULL, 5);
    assert_int_equal(r.stopped, 1); /* loss 1/(e+1) falls: no improvement for mode max */
    assert_string_equal(r.reason, "EarlyStopping(loss) best epoch 0");
    cnn_early_stopping_info info = es_info(cbs[0]);
    assert_int_equal(info.wait, 0);
    assert_int_equal(info.best_epoch, -1);
    assert_true(isinf(info.best));
    assert_int_equal(rlr_info(cbs[1]).reductions, 0);
    assert_int_equal(ck_info(cbs[3]).saves, 0);
    assert_int_equal(ck_info(cbs[3]).epoch_file, -1);
    free_all(cbs, 4);
    cnn_model_free(m);
}

/* ------------------------------------------------------------------ ReduceLROnPlateau details */

static run rlr_run(const char *options, const double *v, int n, double lr, cnn_reduce_lr_info *info)
{
    cnn_model *m = tiny_model(lr);
    cnn_callback *cb = cnn_callback_reduce_lr_on_plateau(options);
    if (!cb) fail_msg("%s", cnn_errmsg());
    run r = drive(m, &cb, 1, v, v, n);
    *info = rlr_info(cb);
    cnn_callback_free(cb);
    cnn_model_free(m);
    return r;
}

/* cooldown 2, patience 1, flat values: e0 is the best; e1 reduces and starts the cooldown; e2 counts it down
 * (2 -> 1) and may not wait; e3 counts it to 0, then waits (w = 1) and reduces. So every second epoch. */
static void test_rlr_cooldown(void **state)
{
    (void)state;
    const double v[] = {1, 1, 1, 1, 1, 1, 1, 1};
    cnn_reduce_lr_info info;
    run r = rlr_run("factor=0.5, patience=1, cooldown=2, min_delta=0", v, 8, 0.1, &info);
    float f = 0.1f;
    const float end[] = {f, f / 2, f / 2, f / 4, f / 4, f / 8, f / 8, f / 16};
    for (int e = 0; e < 8; e++) assert_float_equal((float)r.end[e], end[e], 0);
    assert_int_equal(info.reductions, 4);
    assert_int_equal(info.cooldown, 2);
    r = rlr_run("factor=0.5, patience=1, min_delta=0", v, 8, 0.1, &info);
    for (int e = 1; e < 8; e++) assert_float_equal((float)r.end[e], ldexpf(f, -e), 0);
}

/* min_lr 0.03 from 0.1 by halves: 0.05, then max(0.025, 0.03) = 0.03, then lr is not above float32(min_lr):
 * no more reductions, and wait keeps growing (Keras resets it only when it reduces). */
static void test_rlr_min_lr(void **state)
{
    (void)state;
    const double v[] = {1, 1, 1, 1, 1, 1, 1, 1};
    cnn_reduce_lr_info info;
    run r = rlr_run("factor=0.5, patience=2, min_lr=0.03", v, 8, 0.1, &info);
    assert_float_equal((float)r.end[2], 0.05f, 0);
    assert_float_equal((float)r.end[4], 0.03f, 0);
    assert_float_equal((float)r.end[7], 0.03f, 0);
    assert_int_equal(info.reductions, 2);
    assert_int_equal(info.last_epoch, 4);
    assert_int_equal(info.wait, 3);
}

/* min_delta 0.01: 0.995 is no improvement on 1.0 (needs < 0.99), 0.985 is. Mode max on val_accuracy (auto):
 * 0.5, 0.6 improve, 0.6, 0.6 wait 1, 2 -> reduce at e3; mode=min on it: 0.6 is worse, reduce at e2. */
static void test_rlr_min_delta_and_modes(void **state)
{
    (void)state;
    cnn_reduce_lr_info info;
    const double a[] = {1.0, 0.995, 0.5}, b[] = {1.0, 0.985, 0.5};
    rlr_run("factor=0.5, patience=1, min_delta=0.01", a, 3, 0.1, &info);
    assert_int_equal(info.reductions, 1);
    assert_int_equal(info.last_epoch, 1);
    rlr_run("factor=0.5, patience=1, min_delta=0.01", b, 3, 0.1, &info);
    assert_int_equal(info.reductions, 0);
    assert_float_equal(info.best, 0.5, 0);
    const double acc[] = {0.5, 0.6, 0.6, 0.6};
    rlr_run("monitor=val_accuracy, factor=0.5, patience=2, min_delta=0", acc, 4, 0.1, &info);
    assert_int_equal(info.last_epoch, 3);
    rlr_run("monitor=val_accuracy, mode=min, factor=0.5, patience=2, min_delta=0", acc, 4, 0.1, &info);
    assert_int_equal(info.last_epoch, 2);
}

/* ------------------------------------------------------------------ ModelCheckpoint details */

/* val_loss 1.0, 0.8, 0.8 (tie), 0.9, 0.7: saves at e0, e1, e4; the epoch file is rewritten at the tie (e2)
 * without a save, and at e4. The best value survives into a second fit (Keras sets it once, in __init__). */
static void test_checkpoint_ties_and_best(void **state)
{
    (void)state;
    cnn_model *m = tiny_model(0.01);
    const char *file = tu_path("sub/dir/ck.cnn"), *epoch = tu_path("sub/ck.epoch");
    char f[512], ef[512];
    snprintf(f, sizeof f, "%s", file);
    snprintf(ef, sizeof ef, "%s", epoch);
    cnn_callback *cb = cnn_callback_model_checkpoint(f, ef, "save_best_only=true, save_weights_only=true");
    const double vl[] = {1.0, 0.8, 0.8, 0.9}, va[] = {0, 0, 0, 0};
    drive(m, &cb, 1, vl, va, 3);
    assert_int_equal(read_int_file(ef), 2);
    assert_int_equal(file_marker(f), 1);
    cnn_checkpoint_info rec; /* the tie rewrote the file's record (and kept its weights) */
    assert_int_equal(cnn_checkpoint_read(f, &rec), 0);
    assert_int_equal(rec.saved_epoch, 1);
    assert_int_equal(rec.epoch_file, 2);
    assert_float_equal(rec.best, 0.8, 0);
    assert_int_not_equal(cnn_checkpoint_read(tu_path("no-such.cnn"), &rec), 0);
    assert_int_equal(cnn_model_save(m, tu_path("plain.cnn")), 0);
    assert_int_equal(cnn_checkpoint_read(tu_path("plain.cnn"), &rec), CNN_ERR_FORMAT);
    assert_non_null(strstr(cnn_errmsg(), "without a checkpoint record"));
    cnn_checkpoint_info info = ck_info(cb);
    assert_int_equal(info.saves, 2);
    assert_int_equal(info.saved_epoch, 1);
    drive(m, &cb, 1, vl, va, 4); /* 1.0, 0.8 and 0.9 do not beat 0.8; the tie at e1 and e2 rewrite the file */
    info = ck_info(cb);
    assert_int_equal(info.saves, 2);
    assert_int_equal(info.epoch_file, 2);
    assert_int_equal(file_marker(f), 1);
    cnn_callback_free(cb);

    /* every epoch without save_best_only; best stays +inf, so the epoch file follows every epoch too */
    cb = cnn_callback_model_checkpoint(f, ef, "monitor=val_accuracy");
    drive(m, &cb, 1, vl, va, 4);
    assert_int_equal(ck_info(cb).saves, 4);
    assert_int_equal(read_int_file(ef), 3);
    assert_int_equal(file_marker(f), 3);
    cnn_callback_free(cb);

    /* initial_value_threshold: nothing saved until val_accuracy exceeds 0.6; no epoch file */
    const double acc[] = {0.5, 0.7, 0.65};
    cb = cnn_callback_model_checkpoint(tu_path("thr.cnn"), NULL,
                                       "monitor=val_accuracy, save_best_only=1, "
                                       "initial_value_threshold=0.6");
    drive(m, &cb, 1, acc, acc, 3);
    info = ck_info(cb);
    assert_int_equal(info.saves, 1);
    assert_int_equal(info.saved_epoch, 1);
    assert_int_equal(info.epoch_file, -1);
    cnn_callback_free(cb);
    cnn_model_free(m);
}

/* ------------------------------------------------------------------ options */

static void test_option_errors(void **state)
{
    (void)state;
    assert_null(cnn_callback_early_stopping("patiense=3"));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "did you mean 'patience'");
    assert_null(cnn_callback_early_stopping("monitor=val_acc"));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "not one of: loss, accuracy, val_loss, val_accuracy");
    assert_null(cnn_callback_reduce_lr_on_plateau("factor=1"));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "factor=1 must be below 1");
    assert_null(cnn_callback_reduce_lr_on_plateau("mode=biggest"));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "auto, min, max");
    assert_null(cnn_callback_model_checkpoint(NULL, NULL, ""));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "no file path");
    assert_null(cnn_callback_model_checkpoint("x.cnn", NULL, "save_best_onl=1"));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "did you mean 'save_best_only'");

    cnn_callback *es = cnn_callback_early_stopping(NULL), *rlr = cnn_callback_reduce_lr_on_plateau("");
    cnn_reduce_lr_info ri;
    tu_assert_error(cnn_reduce_lr_get_info(es, &ri), CNN_ERR_INVALID, "not a ReduceLROnPlateau");
    cnn_early_stopping_info ei;
    tu_assert_error(cnn_early_stopping_get_info(rlr, &ei), CNN_ERR_INVALID, "not an EarlyStopping");
    /* Keras defaults before any fit */
    ei = es_info(es);
    assert_true(isinf(ei.best) && ei.best > 0);
    assert_int_equal(ei.best_epoch, -1);
    ri = rlr_info(rlr);
    assert_true(isinf(ri.best) && ri.best > 0);
    assert_string_equal(es->name, "EarlyStopping(val_loss)");
    assert_string_equal(rlr->name, "ReduceLROnPlateau(val_loss)");
    cnn_callback_free(es);
    cnn_callback_free(rlr);
}

/* ------------------------------------------------------------------ schedules */

/* Keras CosineDecay(0.1, decay_steps=10, alpha=0.1): 0.1 * (0.9 * 0.5 * (1 + cos(pi e / 10)) + 0.1). */
static void test_cosine_schedule(void **state)
{
    (void)state;
    cnn_cosine_schedule p = {.initial_lr = 0.1, .decay_steps = 10, .alpha = 0.1};
    assert_float_equal(cnn_schedule_cosine(0, 0, &p), 0.1, 1e-8);
    assert_float_equal(cnn_schedule_cosine(5, 0, &p), 0.055, 1e-8);
    assert_float_equal(cnn_schedule_cosine(2, 0, &p), 0.1 * (0.9 * 0.5 * (1 + 0.80901699437) + 0.1), 1e-8);
    assert_float_equal(cnn_schedule_cosine(10, 0, &p), 0.01, 1e-8);
    assert_float_equal(cnn_schedule_cosine(25, 0, &p), 0.01, 1e-8); /* clamped at decay_steps */
    double v = cnn_schedule_cosine(3, 0, &p);
    assert_true(v == (double)(float)v); /* a float32 value */
    /* warm-up: 0 -> 0.2 linearly over 4 epochs, then cosine from 0.2 over 10 */
    cnn_cosine_schedule w = {.initial_lr = 0.0, .decay_steps = 10, .warmup_steps = 4, .warmup_target = 0.2};
    assert_float_equal(cnn_schedule_cosine(1, 0, &w), 0.05, 1e-8);
    assert_float_equal(cnn_schedule_cosine(4, 0, &w), 0.2, 1e-8);
    assert_float_equal(cnn_schedule_cosine(9, 0, &w), 0.1, 1e-8);
    assert_float_equal(cnn_schedule_cosine(14, 0, &w), 0.0, 1e-8);
    cnn_cosine_schedule bad = {.initial_lr = 0.1, .decay_steps = 0};
    assert_true(isnan(cnn_schedule_cosine(0, 0, &bad)));
}

/* PyTorch OneCycleLR(max_lr=0.01, total_steps=10): initial 4e-4, min 4e-8; phase ends at step 2 (0.3 * 10 -
 * 1) and
 * 9. Cosine annealing: end + (start - end) / 2 * (cos(pi pct) + 1). */
static void test_one_cycle_schedule(void **state)
{
    (void)state;
    cnn_one_cycle_schedule p = cnn_one_cycle_default(0.01, 10);
    assert_float_equal(cnn_schedule_one_cycle(0, 0, &p), 4e-4, 1e-15);
    assert_float_equal(cnn_schedule_one_cycle(1, 0, &p), 0.0052, 1e-15); /* pct 0.5 */
    assert_float_equal(cnn_schedule_one_cycle(2, 0, &p), 0.01, 1e-15);
    /* e5: pct 3/7, cos(3 pi / 7) = 0.22252093395631434 */
    assert_float_equal(cnn_schedule_one_cycle(5, 0, &p), 4e-8 + (0.01 - 4e-8) / 2 * 1.22252093395631434,
                       1e-15);
    assert_float_equal(cnn_schedule_one_cycle(9, 0, &p), 4e-8, 1e-15);
    assert_true(isnan(cnn_schedule_one_cycle(11, 0, &p))); /* PyTorch: ValueError past total_steps */
    p.linear = 1;
    assert_float_equal(cnn_schedule_one_cycle(1, 0, &p), 0.0052, 1e-15);
    assert_float_equal(cnn_schedule_one_cycle(4, 0, &p), 0.01 + (4e-8 - 0.01) * 2 / 7, 1e-15);
    /* three phases: up to e2, down to 4e-4 at e4 (2 * 0.3 * 10 - 2), then to 4e-8 at e9 */
    p = cnn_one_cycle_default(0.01, 10);
    p.three_phase = 1;
    assert_float_equal(cnn_schedule_one_cycle(3, 0, &p), 0.0052, 1e-15);
    assert_float_equal(cnn_schedule_one_cycle(4, 0, &p), 4e-4, 1e-15);
    assert_float_equal(cnn_schedule_one_cycle(9, 0, &p), 4e-8, 1e-15);
    /* warm-up of zero length (0.1 * 10 - 1 = 0): PyTorch divides by zero */
    p = cnn_one_cycle_default(0.01, 10);
    p.pct_start = 0.1;
    assert_true(isnan(cnn_schedule_one_cycle(0, 0, &p)));
}

/* Keras PiecewiseConstantDecay([3, 6], [0.1, 0.01, 0.001]): e <= 3 -> 0.1, 3 < e <= 6 -> 0.01, e > 6 ->
 * 0.001. */
static void test_piecewise_schedule(void **state)
{
    (void)state;
    cnn_piecewise_schedule p = {.n = 2, .boundaries = {3, 6}, .values = {0.1, 0.01, 0.001}};
    const double want[] = {0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001};
    for (int e = 0; e < LEN(want); e++)
        assert_float_equal(cnn_schedule_piecewise(e, 0, &p), (float)want[e], 0);
    cnn_piecewise_schedule bad = {.n = 2, .boundaries = {6, 3}, .values = {0.1, 0.01, 0.001}};
    assert_true(isnan(cnn_schedule_piecewise(0, 0, &bad)));
}

/* ------------------------------------------------------------------ the recorded Keras reference */

/* tests/data/keras_callbacks_ref.txt, written by scripts/keras_callbacks_ref.py with Keras 2.15 (the format
 * is described there). Every scenario is driven here with the same callbacks and scripted logs, and every
 * recorded outcome must match: the stop epoch, the weights left, the lr of each epoch bit for bit (float32),
 * the callbacks' counters and best values, and what each checkpoint file and epoch file held after each
 * epoch. The schedules' values must match bit for bit too. A missing or malformed file fails the test. */

#define REF_MAXCB    8
#define REF_MAXSCEN  64
#define REF_MAXSCHED 16

typedef struct ref_callback {
    char kind[32];
    char args[256];  /* cnnlab's option text, or the schedule's "step T LR" / "exp T" */
    char state[256]; /* "KEY VALUE ..." after the fit, "" when none was recorded */
    int has_ck;
    int ck_file[MAXE], ck_epoch[MAXE];
} ref_callback;

typedef struct ref_scenario {
    char name[64];
    double lr;
    int epochs, has_val, ncb, stopped, marker, nused, nend;
    double vl[MAXE], va[MAXE], used[MAXE], end[MAXE];
    ref_callback cb[REF_MAXCB];
} ref_scenario;

typedef struct ref_schedule {
    char head[256]; /* "cosine ..." or "piecewise ..." */
    int n;
    double lr[MAXE];
} ref_schedule;

static ref_scenario g_scen[REF_MAXSCEN];
static ref_schedule g_sched[REF_MAXSCHED];
static int g_nscen, g_nsched, g_loaded;

/* Reads up to max numbers; fails on anything that is not one. */
static int parse_numbers(const char *text, double *out, int max, const char *what)
{
    int n = 0;
    for (char *end;; text = end) {
        while (*text == ' ') text++;
        if (!*text) return n;
        if (n == max) fail_msg("%s: more than %d values", what, max);
        out[n++] = strtod(text, &end);
        if (end == text) fail_msg("%s: '%s' is not a number", what, text);
    }
}

static int parse_int(const char *text, const char *what)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || (*end && *end != ' ')) fail_msg("%s: '%s' is not an integer", what, text);
    return (int)v;
}

static void parse_ints(const char *text, int *out, const char *what)
{
    double v[MAXE];
    int n = parse_numbers(text, v, MAXE, what);
    for (int i = 0; i < n; i++) out[i] = (int)v[i];
}

/* "none" (a fit without validation data: 0) or the scripted values (1). */
static int parse_values(const char *text, double *out, const char *what)
{
    if (!strcmp(text, "none")) return 0;
    parse_numbers(text, out, MAXE, what);
    return 1;
}

/* The callback index that starts text, checked against the scenario's list. */
static ref_callback *indexed_callback(ref_scenario *s, const char *text)
{
    int i = parse_int(text, s->name);
    if (i < 0 || i >= s->ncb || !strchr(text, ' ')) fail_msg("%s: bad callback index in '%s'", s->name, text);
    return &s->cb[i];
}

/* "checkpoint I file E... epoch E..." (rest starts at I) */
static void parse_checkpoint(ref_scenario *s, char *text)
{
    ref_callback *cb = indexed_callback(s, text);
    char *file = strstr(text, " file "), *epoch = strstr(text, " epoch ");
    if (!file || !epoch) fail_msg("%s: bad checkpoint line '%s'", s->name, text);
    *epoch = '\0';
    cb->has_ck = 1;
    parse_ints(file + 6, cb->ck_file, s->name);
    parse_ints(epoch + 7, cb->ck_epoch, s->name);
}

static void parse_callback(ref_scenario *s, const char *text)
{
    if (s->ncb == REF_MAXCB) fail_msg("%s: more than %d callbacks", s->name, REF_MAXCB);
    ref_callback *cb = &s->cb[s->ncb++];
    const char *sp = strchr(text, ' ');
    if (!sp || sp - text >= (int)sizeof cb->kind) fail_msg("%s: bad callback line '%s'", s->name, text);
    snprintf(cb->kind, sizeof cb->kind, "%.*s", (int)(sp - text), text);
    snprintf(cb->args, sizeof cb->args, "%s", sp + 1);
}

/* One line of a scenario; returns 1 at its closing "end". */
static int parse_scenario_line(ref_scenario *s, const char *key, char *rest)
{
    if (!strcmp(key, "end") && !*rest) return 1;
    if (!strcmp(key, "lr"))
        parse_numbers(rest, &s->lr, 1, s->name);
    else if (!strcmp(key, "epochs"))
        s->epochs = parse_int(rest, s->name);
    else if (!strcmp(key, "val_loss"))
        s->has_val = parse_values(rest, s->vl, s->name);
    else if (!strcmp(key, "val_accuracy"))
        parse_values(rest, s->va, s->name);
    else if (!strcmp(key, "callback"))
        parse_callback(s, rest);
    else if (!strcmp(key, "stopped"))
        s->stopped = parse_int(rest, s->name);
    else if (!strcmp(key, "marker"))
        s->marker = parse_int(rest, s->name);
    else if (!strcmp(key, "used"))
        s->nused = parse_numbers(rest, s->used, MAXE, s->name);
    else if (!strcmp(key, "end"))
        s->nend = parse_numbers(rest, s->end, MAXE, s->name);
    else if (!strcmp(key, "state"))
        snprintf(indexed_callback(s, rest)->state, 256, "%s", strchr(rest, ' ') + 1);
    else if (!strcmp(key, "checkpoint"))
        parse_checkpoint(s, rest);
    else
        fail_msg("%s: unknown line '%s %s'", s->name, key, rest);
    return 0;
}

static void read_scenario(FILE *f, char **line, size_t *cap, const char *name)
{
    if (g_nscen == REF_MAXSCEN) fail_msg("more than %d scenarios", REF_MAXSCEN);
    ref_scenario *s = &g_scen[g_nscen++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    char *rest = NULL, *key;
    do {
        if (!(key = tu_next_entry(f, line, cap, &rest))) fail_msg("%s: the file ends inside it", s->name);
    } while (!parse_scenario_line(s, key, rest));
}

static void read_schedule(FILE *f, char **line, size_t *cap, const char *head)
{
    if (g_nsched == REF_MAXSCHED) fail_msg("more than %d schedules", REF_MAXSCHED);
    ref_schedule *s = &g_sched[g_nsched++];
    snprintf(s->head, sizeof s->head, "%s", head);
    char *rest = NULL, *key = tu_next_entry(f, line, cap, &rest);
    if (!key || strcmp(key, "lr")) fail_msg("schedule %s: no lr line after it", s->head);
    s->n = parse_numbers(rest, s->lr, MAXE, s->head);
}

/* Reads the file once for all the tests that use it (again in each while it fails). */
static void load_callbacks_ref(void)
{
    if (g_loaded) return;
    g_nscen = g_nsched = 0;
    FILE *f = tu_open_data("keras_callbacks_ref.txt", "CNN_CALLBACKS_REF", "scripts/keras_callbacks_ref.py");
    char *line = NULL, *rest = NULL, *key;
    size_t cap = 0;
    while ((key = tu_next_entry(f, &line, &cap, &rest))) {
        if (!strcmp(key, "scenario"))
            read_scenario(f, &line, &cap, rest);
        else if (!strcmp(key, "schedule"))
            read_schedule(f, &line, &cap, rest);
        else
            fail_msg("keras_callbacks_ref.txt: unexpected line '%s %s'", key, rest);
    }
    free(line);
    fclose(f);
    g_loaded = 1;
}

/* ---- driving a scenario */

typedef struct ref_watch {
    const ref_scenario *s;
    char file[REF_MAXCB][256], epoch[REF_MAXCB][256]; /* checkpoint paths ("" for other callbacks) */
    int file_at[REF_MAXCB][MAXE], epoch_at[REF_MAXCB][MAXE];
} ref_watch;

static int exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* After each epoch: whose weights each checkpoint file holds, and what its epoch file says (-1: none). */
static void watch_checkpoints(cnn_model *m, int epoch, void *ctx)
{
    (void)m;
    ref_watch *w = ctx;
    for (int i = 0; i < w->s->ncb; i++) {
        if (!w->file[i][0]) continue;
        w->file_at[i][epoch] = exists(w->file[i]) ? file_marker(w->file[i]) : -1;
        w->epoch_at[i][epoch] = exists(w->epoch[i]) ? read_int_file(w->epoch[i]) : -1;
    }
}

static cnn_callback *ref_scheduler(const ref_scenario *s, const char *args)
{
    cnn_step_schedule step;
    int thresh;
    if (sscanf(args, "step %d %lf", &step.thresh, &step.lr_after) == 2)
        return cnn_callback_lr_scheduler(cnn_schedule_step, &step, sizeof step);
    if (sscanf(args, "exp %d", &thresh) == 1)
        return cnn_callback_lr_scheduler(cnn_schedule_exp, &thresh, sizeof thresh);
    fail_msg("%s: unknown schedule '%s'", s->name, args);
    return NULL;
}

static cnn_callback *ref_make_callback(ref_watch *w, int i)
{
    const ref_callback *rc = &w->s->cb[i];
    if (!strcmp(rc->kind, "EarlyStopping")) return cnn_callback_early_stopping(rc->args);
    if (!strcmp(rc->kind, "ReduceLROnPlateau")) return cnn_callback_reduce_lr_on_plateau(rc->args);
    if (!strcmp(rc->kind, "LearningRateScheduler")) return ref_scheduler(w->s, rc->args);
    if (strcmp(rc->kind, "ModelCheckpoint")) fail_msg("%s: unknown callback %s", w->s->name, rc->kind);
    char base[96];
    snprintf(base, sizeof base, "%s_%d", w->s->name, i);
    snprintf(w->file[i], sizeof w->file[i], "%s.cnn", tu_path(base));
    snprintf(w->epoch[i], sizeof w->epoch[i], "%s.epoch", tu_path(base));
    return cnn_callback_model_checkpoint(w->file[i], w->epoch[i], rc->args);
}

/* cnnlab's value of one recorded state key. */
static double ref_state_value(const ref_scenario *s, const cnn_callback *cb, const char *kind,
                              const char *key)
{
    if (!strcmp(kind, "EarlyStopping")) {
        cnn_early_stopping_info e = es_info(cb);
        if (!strcmp(key, "wait")) return e.wait;
        if (!strcmp(key, "best")) return e.best;
        if (!strcmp(key, "best_epoch")) return e.best_epoch;
    } else if (!strcmp(kind, "ReduceLROnPlateau")) {
        cnn_reduce_lr_info r = rlr_info(cb);
        if (!strcmp(key, "wait")) return r.wait;
        if (!strcmp(key, "best")) return r.best;
        if (!strcmp(key, "cooldown")) return r.cooldown;
    } else if (!strcmp(kind, "ModelCheckpoint") && !strcmp(key, "best")) {
        return ck_info(cb).best;
    }
    fail_msg("%s: no state '%s' for %s", s->name, key, kind);
    return NAN;
}

static void ref_check_state(const ref_scenario *s, int i, const cnn_callback *cb)
{
    char key[32], value[64];
    int used;
    for (const char *p = s->cb[i].state; sscanf(p, "%31s %63s%n", key, value, &used) == 2; p += used) {
        double want = strtod(value, NULL), got = ref_state_value(s, cb, s->cb[i].kind, key);
        if (!(got == want))
            fail_msg("%s: callback %d (%s) %s = %.17g, Keras %.17g", s->name, i, s->cb[i].kind, key, got,
                     want);
    }
}

static void ref_check_lrs(const ref_scenario *s, const run *r)
{
    if (r->epochs != s->nused || r->epochs != s->nend)
        fail_msg("%s: ran %d epochs, Keras %d", s->name, r->epochs, s->nused);
    for (int e = 0; e < r->epochs; e++)
        if ((float)r->used[e] != (float)s->used[e] || (float)r->end[e] != (float)s->end[e])
            fail_msg("%s: epoch %d lr used %.9g, after callbacks %.9g; Keras %.9g, %.9g", s->name, e,
                     r->used[e], r->end[e], s->used[e], s->end[e]);
}

static void ref_check_checkpoints(const ref_scenario *s, const ref_watch *w, int epochs)
{
    for (int i = 0; i < s->ncb; i++) {
        if (!w->file[i][0] || !s->cb[i].has_ck) continue;
        for (int e = 0; e < epochs; e++)
            if (w->file_at[i][e] != s->cb[i].ck_file[e] || w->epoch_at[i][e] != s->cb[i].ck_epoch[e])
                fail_msg("%s: after epoch %d checkpoint %d holds epoch %d, epoch file %d; Keras %d, %d",
                         s->name, e, i, w->file_at[i][e], w->epoch_at[i][e], s->cb[i].ck_file[e],
                         s->cb[i].ck_epoch[e]);
    }
}

static void ref_run_scenario(const ref_scenario *s)
{
    static ref_watch w;
    memset(&w, 0, sizeof w);
    w.s = s;
    cnn_model *m = tiny_model(s->lr);
    cnn_callback *cbs[REF_MAXCB];
    for (int i = 0; i < s->ncb; i++)
        if (!(cbs[i] = ref_make_callback(&w, i))) fail_msg("%s: callback %d: %s", s->name, i, cnn_errmsg());
    run r =
        drive_observed(m, cbs, s->ncb, s->vl, s->has_val ? s->va : NULL, s->epochs, watch_checkpoints, &w);
    if (r.stopped != s->stopped) fail_msg("%s: stopped at %d, Keras at %d", s->name, r.stopped, s->stopped);
    if (model_marker(m) != s->marker)
        fail_msg("%s: weights of epoch %d left, Keras %d", s->name, model_marker(m), s->marker);
    ref_check_lrs(s, &r);
    for (int i = 0; i < s->ncb; i++) ref_check_state(s, i, cbs[i]);
    ref_check_checkpoints(s, &w, r.epochs);
    free_all(cbs, s->ncb);
    cnn_model_free(m);
}

static void test_keras_reference_scenarios(void **state)
{
    (void)state;
    load_callbacks_ref();
    for (int i = 0; i < g_nscen; i++) ref_run_scenario(&g_scen[i]);
}

static double ref_schedule_value(const ref_schedule *s, int epoch)
{
    cnn_cosine_schedule c = {0};
    cnn_piecewise_schedule p = {0};
    int used = 0;
    if (sscanf(s->head, "cosine %lf %d %lf %d %lf", &c.initial_lr, &c.decay_steps, &c.alpha, &c.warmup_steps,
               &c.warmup_target) == 5)
        return cnn_schedule_cosine(epoch, 0, &c);
    if (strncmp(s->head, "piecewise ", 10)) fail_msg("unknown schedule '%s'", s->head);
    const char *t = s->head + 10;
    for (; p.n < CNN_PIECEWISE_MAX - 1 && sscanf(t, "%d%n", &p.boundaries[p.n], &used) == 1; t += used) p.n++;
    for (int i = 0; *(t = strchr(t, '/') ? strchr(t, '/') + 1 : t) && i <= p.n; i++, t += used)
        if (sscanf(t, "%lf%n", &p.values[i], &used) != 1) fail_msg("bad piecewise schedule '%s'", s->head);
    return cnn_schedule_piecewise(epoch, 0, &p);
}

static void test_keras_reference_schedules(void **state)
{
    (void)state;
    load_callbacks_ref();
    for (int i = 0; i < g_nsched; i++)
        for (int e = 0; e < g_sched[i].n; e++) {
            double got = ref_schedule_value(&g_sched[i], e);
            if ((float)got != (float)g_sched[i].lr[e])
                fail_msg("schedule %s, epoch %d: %.9g, Keras %.9g", g_sched[i].head, e, got,
                         g_sched[i].lr[e]);
        }
}

/* The file covers every callback kind, both study schedules, the checkpoints and both Keras schedules. */
static void test_keras_reference_coverage(void **state)
{
    (void)state;
    load_callbacks_ref();
    const char *need[] = {"EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "step ", "exp "};
    for (size_t k = 0; k < LEN(need); k++) {
        int found = 0;
        for (int i = 0; i < g_nscen; i++)
            for (int j = 0; j < g_scen[i].ncb; j++)
                found |= !strcmp(g_scen[i].cb[j].kind, need[k]) || !strncmp(g_scen[i].cb[j].args, need[k], 4);
        if (!found) fail_msg("keras_callbacks_ref.txt has no scenario with %s", need[k]);
    }
    int cosine = 0, piecewise = 0;
    for (int i = 0; i < g_nsched; i++) {
        cosine += !strncmp(g_sched[i].head, "cosine", 6);
        piecewise += !strncmp(g_sched[i].head, "piecewise", 9);
    }
    assert_true(g_nscen >= 30 && cosine >= 2 && piecewise >= 2);
}

/* ------------------------------------------------------------------ with cnn_model_fit */

/* Three separable classes in 4 features, with a little deterministic jitter. */
static cnn_dataset blobs(int n, int offset)
{
    cnn_dataset d = {.n = n, .h = 1, .w = 1, .c = 4, .num_classes = 3};
    d.x = malloc(sizeof(float) * 4 * (size_t)n);
    d.y = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int k = (i + offset) % 3;
        d.y[i] = k;
        for (int j = 0; j < 4; j++)
            d.x[4 * i + j] = (j == k ? 0.8f : 0.2f) + 0.1f * (float)(((i + offset) * 7 + j * 3) % 5) / 5.0f;
    }
    return d;
}

typedef struct capture {
    cnn_callback cb;
    float params[64];
    int epoch;
} capture;

/* Keeps the parameters of the end of epoch `epoch` (placed first in the list, before anything restores). */
static int capture_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)stop;
    capture *c = (capture *)cb;
    if (log->epoch == c->epoch)
        memcpy(c->params, cnn_model_params(m), sizeof(float) * cnn_model_num_params(m, 0));
    return CNN_OK;
}

static cnn_model *blob_model(double lr)
{
    cnn_model *m = cnn_model_create("blobs", 1, 1, 4);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 3), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, lr);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    assert_true(cnn_model_num_params(m, 0) <= 64);
    return m;
}

/* EarlyStopping(loss, mode max, patience 1): the training loss falls, so epoch 1 is no improvement and
 * training stops there with the end-of-epoch-0 parameters restored; the history names the callback. */
static void test_fit_early_stopping_restores(void **state)
{
    (void)state;
    cnn_dataset train = blobs(48, 0), val = blobs(24, 1);
    cnn_model *m = blob_model(0.05);
    capture cap = {.cb = {.name = "capture", .on_epoch_end = capture_end}, .epoch = 0};
    cnn_callback *cbs[] = {&cap.cb, cnn_callback_early_stopping("monitor=loss, mode=max, patience=1, "
                                                                "restore_best_weights=true")};
    cnn_fit_config cfg = cnn_fit_default();
    cfg.epochs = 10;
    cfg.batch_size = 8;
    cfg.validation = &val;
    cfg.verbose = CNN_VERBOSE_SILENT;
    cfg.callbacks = cbs;
    cfg.num_callbacks = 2;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &cfg, &h), 0);
    assert_true(h.epochs[1].loss < h.epochs[0].loss);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.stopped_epoch, 1);
    assert_string_equal(h.stop_reason, "EarlyStopping(loss) best epoch 0, restored epoch 0");
    assert_memory_equal(cnn_model_params(m), cap.params, sizeof(float) * cnn_model_num_params(m, 0));
    cnn_history_free(&h);
    cnn_callback_free(cbs[1]);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

/* The history's lr column is the schedule's value of each epoch (the lr used during it). */
static void test_fit_lr_column_follows_schedule(void **state)
{
    (void)state;
    cnn_dataset train = blobs(48, 0);
    cnn_model *m = blob_model(0.05);
    cnn_cosine_schedule cs = {.initial_lr = 0.05, .decay_steps = 6, .alpha = 0.1};
    cnn_one_cycle_schedule oc = cnn_one_cycle_default(0.05, 6);
    cnn_callback *cbs[] = {cnn_callback_lr_scheduler(cnn_schedule_cosine, &cs, sizeof cs),
                           cnn_callback_lr_scheduler(cnn_schedule_one_cycle, &oc, sizeof oc)};
    cnn_fit_config cfg = cnn_fit_default();
    cfg.epochs = 6;
    cfg.batch_size = 16;
    cfg.verbose = CNN_VERBOSE_SILENT;
    for (int k = 0; k < 2; k++) {
        cfg.callbacks = &cbs[k];
        cfg.num_callbacks = 1;
        cnn_history h;
        assert_int_equal(cnn_model_fit(m, &train, &cfg, &h), 0);
        assert_int_equal(h.count, 6);
        assert_int_equal(h.stopped_epoch, -1);
        assert_string_equal(h.stop_reason, "");
        for (int e = 0; e < 6; e++) {
            double want = k ? cnn_schedule_one_cycle(e, 0, &oc) : cnn_schedule_cosine(e, 0, &cs);
            assert_float_equal(h.epochs[e].lr, want, 0);
        }
        assert_float_equal(h.epochs[5].lr,
                           k ? 0.05 / 25 / 1e4 : 0.05 * (0.9 * 0.5 * (1 + cos(M_PI * 5 / 6)) + 0.1),
                           k ? 1e-18 : 1e-8);
        cnn_history_free(&h);
    }
    free_all(cbs, 2);
    cnn_model_free(m);
    cnn_dataset_free(&train);
}

/* A failing schedule ends the fit with its error, and fit skips on_train_end then (as Keras does on an
 * exception), so EarlyStopping keeps its copy of the weights; its next fit reuses it and frees it at the end
 * (the sanitizer build's leak check fails otherwise). */
static void test_fit_error_then_fit_again(void **state)
{
    (void)state;
    cnn_dataset train = blobs(24, 0);
    cnn_model *m = blob_model(0.05);
    cnn_piecewise_schedule bad = {.n = 2, .boundaries = {5, 1}, .values = {0.1, 0.2, 0.3}};
    cnn_callback *cbs[] = {cnn_callback_early_stopping("monitor=loss, mode=max, restore_best_weights=true"),
                           cnn_callback_lr_scheduler(cnn_schedule_piecewise, &bad, sizeof bad)};
    cnn_fit_config cfg = cnn_fit_default();
    cfg.epochs = 3;
    cfg.verbose = CNN_VERBOSE_SILENT;
    cfg.callbacks = cbs;
    cfg.num_callbacks = 2;
    cnn_history h;
    tu_assert_error(cnn_model_fit(m, &train, &cfg, &h), CNN_ERR_INVALID,
                    "schedule returned lr nan at epoch 0");
    cnn_history_free(&h);
    cfg.num_callbacks = 1;
    assert_int_equal(cnn_model_fit(m, &train, &cfg, &h), 0);
    assert_int_equal(h.stopped_epoch, 1);
    assert_int_equal(es_info(cbs[0]).restored_epoch, 0);
    cnn_history_free(&h);
    free_all(cbs, 2);
    cnn_model_free(m);
    cnn_dataset_free(&train);
}

/* The whole study list in a real fit: the step schedule's 0.001 from epoch 7, and checkpoint epoch files that
 * name the last epoch reaching the best val_loss / val_accuracy of the history. */
static void test_fit_study_list(void **state)
{
    (void)state;
    cnn_dataset train = blobs(60, 0), val = blobs(30, 2);
    cnn_model *m = blob_model(0.005);
    cnn_callback *cbs[NSTUDY];
    study_callbacks(cbs, "fit", 4);
    cnn_fit_config cfg = cnn_fit_default();
    cfg.epochs = 10;
    cfg.batch_size = 16;
    cfg.validation = &val;
    cfg.verbose = CNN_VERBOSE_SILENT;
    cfg.callbacks = cbs;
    cfg.num_callbacks = NSTUDY;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &cfg, &h), 0);
    for (int e = 7; e < h.count; e++) assert_float_equal(h.epochs[e].lr, LR_1E3, 0);
    int le = 0, ta = 0;
    for (int e = 1; e < h.count; e++) {
        if (h.epochs[e].val_loss <= h.epochs[le].val_loss) le = e;
        if (h.epochs[e].val_accuracy >= h.epochs[ta].val_accuracy) ta = e;
    }
    assert_int_equal(read_int_file(tu_path("fit_best_model_loss.epoch")), le);
    assert_int_equal(read_int_file(tu_path("fit_best_model_acc.epoch")), ta);
    for (int e = 0; e < 3; e++)
        assert_float_equal(h.epochs[e].lr, 0.005, 0); /* patience 2: no reduction yet */
    if (h.stopped_epoch >= 0) assert_non_null(strstr(h.stop_reason, "EarlyStopping"));
    cnn_history_free(&h);
    free_all(cbs, NSTUDY);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_study_val_loss_stop),
        cmocka_unit_test(test_start_from_epoch_ignores_early_epochs),
        cmocka_unit_test(test_max_epochs_restores_nothing),
        cmocka_unit_test(test_both_stop_same_epoch),
        cmocka_unit_test(test_plateau_alternates_with_step_schedule),
        cmocka_unit_test(test_es_min_delta),
        cmocka_unit_test(test_es_baseline),
        cmocka_unit_test(test_es_mode_and_patience_zero),
        cmocka_unit_test(test_es_restores_first_tracked_epoch_without_improvement),
        cmocka_unit_test(test_missing_validation_is_skipped),
        cmocka_unit_test(test_rlr_cooldown),
        cmocka_unit_test(test_rlr_min_lr),
        cmocka_unit_test(test_rlr_min_delta_and_modes),
        cmocka_unit_test(test_checkpoint_ties_and_best),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_cosine_schedule),
        cmocka_unit_test(test_one_cycle_schedule),
        cmocka_unit_test(test_piecewise_schedule),
        cmocka_unit_test(test_keras_reference_scenarios),
        cmocka_unit_test(test_keras_reference_schedules),
        cmocka_unit_test(test_keras_reference_coverage),
        cmocka_unit_test(test_fit_early_stopping_restores),
        cmocka_unit_test(test_fit_lr_column_follows_schedule),
        cmocka_unit_test(test_fit_error_then_fit_again),
        cmocka_unit_test(test_fit_study_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
