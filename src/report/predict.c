/* predict.png: 50 random test images with the model's predictions (spec 6), the wrong ones in red. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "report/canvas.h"

/* A stream of its own, so the sample does not move when other uses of the seed change. */
enum { STREAM_PREDICT_SAMPLE = 0x50 };
static const double TOP = 60, ROW_H = 191, COL_W = 159, IMG_TOP = 62;

void cnn_predict_tile_origin(int row, int col, double *x, double *y)
{
    *x = round(col * COL_W + (COL_W - 28 * CNN_PRED_SCALE) / 2);
    *y = TOP + row * ROW_H + IMG_TOP;
}

int cnn_predict_sample(int n_test, uint64_t seed, int32_t *idx, int n)
{
    if (!idx || n < 1 || n > n_test)
        return cnn_fail(CNN_ERR_INVALID, "cannot draw %d images from a test set of %d", n, n_test);
    int32_t *all = malloc((size_t)n_test * sizeof *all);
    if (!all) return cnn_fail(CNN_ERR_NOMEM, "out of memory drawing %d test images", n);
    for (int i = 0; i < n_test; i++) all[i] = i;
    /* A partial Fisher-Yates shuffle: the first n places are a uniform sample without repetition. */
    uint64_t stream = cnn_rng_stream(STREAM_PREDICT_SAMPLE, 0);
    for (int i = 0; i < n; i++) {
        int j = i + (int)cnn_rng_below(seed, stream, (uint64_t)i, (uint32_t)(n_test - i));
        int32_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    memcpy(idx, all, (size_t)n * sizeof *idx);
    free(all);
    return CNN_OK;
}

/* pixels: room for one image, as floats. */
static void draw_tile(cairo_t *cr, const cnn_run *r, const cnn_dataset *test, int k, int i, cnn_labels lang,
                      float *pixels)
{
    double x, y;
    cnn_predict_tile_origin(k / CNN_PRED_COLS, k % CNN_PRED_COLS, &x, &y);
    const char *t = cnn_fashion_class_name_in(r->y_true[i], lang);
    const char *p = cnn_fashion_class_name_in(r->y_pred[i], lang);
    char tn[16], pn[16], text[160];
    snprintf(tn, sizeof tn, "%d", r->y_true[i]);
    snprintf(pn, sizeof pn, "%d", r->y_pred[i]);
    int wrong = r->y_true[i] != r->y_pred[i];
    double scale = 28.0 * CNN_PRED_SCALE / (test->h > test->w ? test->h : test->w);
    cnn_dataset_sample(test, (size_t)i, pixels);
    cnn_draw_channel(cr, pixels, test->h, test->w, test->c, 0, x, y, scale,
                     wrong ? cnn_cmap_reds : cnn_cmap_gray_r);
    if (wrong)
        snprintf(text, sizeof text, "%s\n[%s]", t ? t : tn, p ? p : pn);
    else
        snprintf(text, sizeof text, "%s", p ? p : pn);
    cnn_text(cr, x + 14.0 * CNN_PRED_SCALE, y - 4, 16, 0.5, 1, 0, wrong ? 0xff0000 : 0, text);
}

static int check_match(const cnn_run *r, const cnn_dataset *test, const char *path)
{
    if (!r->evaluated || !r->y_true || !r->y_pred)
        return cnn_fail(CNN_ERR_INVALID, "%s: run '%s' has no test predictions", path, r->model);
    if (!test || !cnn_dataset_has_pixels(test) || test->n != r->n_test)
        return cnn_fail(CNN_ERR_INVALID, "%s: the test set has %d images, run '%s' was evaluated on %d", path,
                        test ? test->n : 0, r->model, r->n_test);
    for (int i = 0; i < test->n; i++)
        if (test->y[i] != r->y_true[i])
            return cnn_fail(CNN_ERR_INVALID,
                            "%s: test label %d is %d, run '%s' has %d: not the run's test set", path, i,
                            test->y[i], r->model, r->y_true[i]);
    return CNN_OK;
}

int cnn_plot_predictions(const cnn_run *r, const cnn_dataset *test, uint64_t seed, cnn_labels lang,
                         const char *path)
{
    if (!r || !path) return cnn_fail(CNN_ERR_INVALID, "predictions picture: NULL run or path");
    int32_t idx[CNN_PRED_N];
    int rc = check_match(r, test, path);
    if (!rc) rc = cnn_predict_sample(r->n_test, seed, idx, CNN_PRED_N);
    float *pixels = rc ? NULL : malloc(sizeof(float) * cnn_dataset_sample_size(test));
    if (!rc && !pixels) rc = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for one test image", path);
    cnn_canvas c;
    if (!rc) rc = cnn_canvas_open_for(&c, CNN_PRED_W, CNN_PRED_H, path);
    if (rc) return free(pixels), rc;
    int right = 0;
    for (int k = 0; k < CNN_PRED_N; k++) {
        draw_tile(c.cr, r, test, k, idx[k], lang, pixels);
        right += r->y_true[idx[k]] == r->y_pred[idx[k]];
    }
    free(pixels);
    char title[200];
    snprintf(title, sizeof title, "Accuracy of %d selections: %.2f%%, Accuracy of test dataset: %.2f%% [%s]",
             CNN_PRED_N, 100.0 * right / CNN_PRED_N, 100 * r->test_accuracy, r->model);
    cnn_text(c.cr, CNN_PRED_W / 2.0, 14, 21, 0.5, 0, 0, 0, title);
    rc = cnn_canvas_save(&c, path);
    cnn_canvas_close(&c);
    return rc;
}
