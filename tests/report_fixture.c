#include "report_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static const int64_t CM[10][10] = {
    {890, 0, 12, 12, 5, 1, 72, 0, 8, 0},   {2, 986, 0, 10, 0, 0, 1, 0, 1, 0},
    {16, 2, 865, 6, 60, 0, 50, 0, 1, 0},   {7, 2, 11, 938, 23, 0, 18, 0, 1, 0},
    {1, 1, 24, 18, 909, 0, 47, 0, 0, 0},   {1, 0, 0, 0, 0, 984, 0, 7, 0, 8},
    {107, 2, 51, 23, 65, 0, 748, 0, 4, 0}, {0, 0, 0, 0, 0, 7, 0, 969, 0, 24},
    {3, 1, 1, 3, 1, 1, 2, 3, 985, 0},      {1, 0, 0, 0, 0, 5, 0, 19, 0, 975},
};

/* Model_2_s2's 14 epochs: loss, val_loss, accuracy, val_accuracy. */
static const double HIST[14][4] = {
    {.575, .352, .790, .873},  {.305, .292, .889, .893}, {.255, .272, .906, .901}, {.225, .252, .917, .905},
    {.202, .251, .925, .908},  {.183, .236, .932, .915}, {.167, .248, .937, .915}, {.121, .235, .957, .921},
    {.105, .227, .962, .9249}, {.098, .241, .965, .922}, {.091, .236, .968, .923}, {.083, .240, .971, .924},
    {.077, .247, .973, .926},  {.070, .249, .976, .924},
};

static void fill_history(cnn_run *r)
{
    r->history.epochs = calloc(14, sizeof *r->history.epochs);
    assert_non_null(r->history.epochs);
    r->history.count = r->history.cap = 14;
    for (int e = 0; e < 14; e++)
        r->history.epochs[e] = (cnn_epoch_log){
            e, HIST[e][0], HIST[e][2], HIST[e][1], HIST[e][3], e < 7 ? 0.005 : 0.001, 20.0, 2.0};
    r->history.stopped_epoch = 13;
    snprintf(r->history.stop_reason, sizeof r->history.stop_reason, "EarlyStopping(val_loss) best 8");
    r->best_epoch = r->best_val_loss_epoch = 8;
    r->best_val_accuracy_epoch = 12;
    r->seconds_per_epoch = 20;
    r->images_per_second = 3000;
    r->total_seconds = 308;
}

/* Synthetic images: a class-dependent stripe pattern, so that tiles differ. */
static void synthetic_test(cnn_dataset *t)
{
    memset(t, 0, sizeof *t);
    t->n = 10000, t->h = t->w = 28, t->c = 1, t->num_classes = 10;
    t->x = malloc(sizeof(float) * 784 * 10000);
    t->y = malloc(sizeof(int32_t) * 10000);
    assert_true(t->x && t->y);
    for (int i = 0; i < 10000; i++) {
        t->y[i] = (int32_t)((i * 7) % 10);
        for (int p = 0; p < 784; p++)
            t->x[(size_t)i * 784 + p] = (float)(((p / 28 + p % 28 + i) % (t->y[i] + 3)) / 12.0);
    }
}

static void load_test(cnn_dataset *t, int *real)
{
    struct stat st;
    cnn_dataset train;
    *real =
        stat(CNN_FASHION_MNIST_DIR, &st) == 0 && cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &train, t) == 0;
    if (*real)
        cnn_dataset_free(&train);
    else
        synthetic_test(t);
}

/* Predictions that reproduce CM exactly: the i-th test image of class t takes the next prediction of row t.
 */
static void fill_predictions(cnn_run *r, const cnn_dataset *t)
{
    int64_t used[10][10] = {{0}};
    r->n_test = t->n, r->classes = 10, r->evaluated = 1;
    r->y_true = malloc(sizeof(int32_t) * (size_t)t->n);
    r->y_pred = malloc(sizeof(int32_t) * (size_t)t->n);
    r->probs = calloc((size_t)t->n * 10, sizeof(float));
    r->confusion = calloc(100, sizeof(int64_t));
    assert_true(r->y_true && r->y_pred && r->probs && r->confusion);
    for (int i = 0; i < t->n; i++) {
        int c = t->y[i], p = 0;
        while (p < 9 && used[c][p] >= CM[c][p]) p++;
        used[c][p]++;
        r->y_true[i] = c, r->y_pred[i] = p;
        r->confusion[c * 10 + p]++;
        for (int k = 0; k < 10; k++) r->probs[(size_t)i * 10 + k] = k == p ? 0.91f : 0.01f;
    }
    int right = 0;
    for (int i = 0; i < t->n; i++) right += r->y_true[i] == r->y_pred[i];
    r->test_accuracy = (double)right / t->n;
    r->test_loss = 0.227;
    r->roc_auc_ovo = 0.9956, r->roc_auc_ovr = 0.9950;
}

void rf_model_2_s2(cnn_run *r, cnn_dataset *test, int *real)
{
    cnn_dataset local;
    cnn_dataset *t = test ? test : &local;
    int dummy;
    cnn_run_init(r, "Model_2_s2");
    snprintf(r->weights, sizeof r->weights, "init seed 1");
    r->seed = 1, r->threads = 2, r->batch_size = 512, r->train_images = 60000;
    fill_history(r);
    load_test(t, real ? real : &dummy);
    fill_predictions(r, t);
    if (!test) cnn_dataset_free(&local);
}

void rf_small(cnn_run *r, const char *name, double accuracy, double roc_auc)
{
    cnn_run_init(r, name);
    r->evaluated = 1, r->classes = 10, r->best_epoch = -1;
    r->test_accuracy = accuracy, r->roc_auc_ovo = roc_auc;
}

void rf_free(cnn_run *r)
{
    free(r->history.epochs);
    free(r->confusion);
    free(r->y_true);
    free(r->y_pred);
    free(r->probs);
    memset(r, 0, sizeof *r);
}
