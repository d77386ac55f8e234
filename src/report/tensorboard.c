/* Keras's TensorBoard callback (histogram_freq=1, write_images=True) as cnnlab writes it: per epoch, the
 * scalars epoch_loss, epoch_accuracy (both writers), epoch_learning_rate and epoch_lr (train) and
 * evaluation_{loss,accuracy}_vs_iterations (validation), a histogram and an image of every weight tensor, in
 * TensorFlow 2's summary format (tensors with plugin metadata), so that TensorBoard shows them as it shows a
 * Keras run. Tags, plugins and shapes were compared with what Keras 2.15 writes for the same model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "report/canvas.h"
#include "report/tfevents.h"
#include "tensorboard.pb-c.h"

/* TensorFlow's DataType and SummaryMetadata.DataClass values. */
enum { DT_FLOAT = 1, DT_DOUBLE = 2, DT_STRING = 7 };
enum { CLASS_SCALAR = 1, CLASS_TENSOR = 2, CLASS_BLOB_SEQUENCE = 3 };
/* tf.summary.histogram's default bucket count and tf.summary.image's default max_outputs. */
enum { BUCKETS = 30, MAX_IMAGES = 3 };

typedef struct tb_state {
    cnn_callback cb; /* first, so that cnn_callback_free frees the whole block */
    char dir[4096];
    cnn_tb_file train, val;
    int fits; /* fits so far: each starts a new pair of files, as Keras's does */
} tb_state;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One Event holding one summary value, framed into the file. */
static int emit(cnn_tb_file *f, int64_t step, Cnnlab__Tb__TensorProto *t, const char *tag, const char *plugin,
                int data_class)
{
    Cnnlab__Tb__SummaryMetadata__PluginData pd = CNNLAB__TB__SUMMARY_METADATA__PLUGIN_DATA__INIT;
    Cnnlab__Tb__SummaryMetadata md = CNNLAB__TB__SUMMARY_METADATA__INIT;
    Cnnlab__Tb__Summary__Value v = CNNLAB__TB__SUMMARY__VALUE__INIT, *vp = &v;
    Cnnlab__Tb__Summary sum = CNNLAB__TB__SUMMARY__INIT;
    Cnnlab__Tb__Event ev = CNNLAB__TB__EVENT__INIT;
    pd.plugin_name = (char *)plugin;
    md.plugin_data = &pd;
    md.data_class = data_class;
    v.tag = (char *)tag;
    v.metadata = &md;
    v.tensor = t;
    sum.n_value = 1;
    sum.value = &vp;
    ev.wall_time = now();
    ev.step = step;
    ev.what_case = CNNLAB__TB__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    size_t n = cnnlab__tb__event__get_packed_size(&ev);
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", f->path);
    cnnlab__tb__event__pack(&ev, buf);
    int rc = cnn_tb_append(f, buf, n);
    free(buf);
    return rc;
}

/* A tensor of the given shape (rank <= 2). */
static void shape(Cnnlab__Tb__TensorShapeProto *sh, Cnnlab__Tb__TensorShapeProto__Dim *d,
                  Cnnlab__Tb__TensorShapeProto__Dim **dp, const int64_t *dims, int rank)
{
    for (int i = 0; i < rank; i++) {
        cnnlab__tb__tensor_shape_proto__dim__init(&d[i]);
        d[i].size = dims[i];
        dp[i] = &d[i];
    }
    sh->n_dim = (size_t)rank;
    sh->dim = dp;
}

static int scalar(cnn_tb_file *f, int64_t step, const char *tag, double value)
{
    Cnnlab__Tb__TensorShapeProto sh = CNNLAB__TB__TENSOR_SHAPE_PROTO__INIT;
    Cnnlab__Tb__TensorProto t = CNNLAB__TB__TENSOR_PROTO__INIT;
    float v = (float)value;
    t.dtype = DT_FLOAT;
    t.tensor_shape = &sh;
    t.n_float_val = 1;
    t.float_val = &v;
    return emit(f, step, &t, tag, "scalars", CLASS_SCALAR);
}

/* TensorBoard's histogram buckets: BUCKETS equal ranges from min to max, each row (left, right, count); a
 * constant tensor puts all its values in the last bucket of zero width. */
static void buckets(const float *x, size_t n, double *rows)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    double width = (hi - lo) / BUCKETS;
    for (int b = 0; b < BUCKETS; b++) {
        rows[3 * b] = width > 0 ? lo + width * b : lo;
        rows[3 * b + 1] = width > 0 ? (b == BUCKETS - 1 ? hi : lo + width * (b + 1)) : lo;
        rows[3 * b + 2] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int b = width > 0 ? (int)floor((x[i] - lo) / width) : BUCKETS - 1;
        rows[3 * (b < BUCKETS ? b : BUCKETS - 1) + 2] += 1;
    }
}

static int histogram(cnn_tb_file *f, int64_t step, const cnn_tensor *w)
{
    double rows[3 * BUCKETS];
    static const int64_t dims[2] = {BUCKETS, 3};
    Cnnlab__Tb__TensorShapeProto sh = CNNLAB__TB__TENSOR_SHAPE_PROTO__INIT;
    Cnnlab__Tb__TensorShapeProto__Dim d[2], *dp[2];
    Cnnlab__Tb__TensorProto t = CNNLAB__TB__TENSOR_PROTO__INIT;
    if (w->size == 0) return CNN_OK;
    buckets(w->data, w->size, rows);
    shape(&sh, d, dp, dims, 2);
    t.dtype = DT_DOUBLE;
    t.tensor_shape = &sh;
    t.n_double_val = 3 * BUCKETS;
    t.double_val = rows;
    char tag[160];
    snprintf(tag, sizeof tag, "%s_0/histogram", w->name);
    return emit(f, step, &t, tag, "histograms", CLASS_TENSOR);
}

/* How Keras's _log_weight_as_image sees a weight: squeezed of its size-1 dimensions, a vector is one image of
 * n x 1, a matrix one image with the longer side across (transposed when taller than wide), a rank-3 tensor
 * (a convolution kernel with one input channel) c images of a x b; anything else is not logged. Pixel (y, x)
 * of image i is data[i * si + y * sy + x * sx]. */
typedef struct weight_view {
    int n, h, w;
    size_t si, sy, sx;
} weight_view;

static int image_view(const cnn_tensor *t, weight_view *v)
{
    int d[4], r = 0;
    for (int i = 0; i < t->rank; i++)
        if (t->dim[i] != 1) d[r++] = t->dim[i];
    if (r == 1)
        *v = (weight_view){1, d[0], 1, 0, 1, 0};
    else if (r == 2 && d[0] > d[1])
        *v = (weight_view){1, d[1], d[0], 0, 1, (size_t)d[1]};
    else if (r == 2)
        *v = (weight_view){1, d[0], d[1], 0, (size_t)d[1], 1};
    else if (r == 3)
        *v = (weight_view){d[2], d[0], d[1], 1, (size_t)d[1] * (size_t)d[2], (size_t)d[2]};
    else
        return 0;
    return 1;
}

/* Image i of the view as a grayscale PNG, converted as tf.image.convert_image_dtype converts floats to uint8
 * (times 255.5, saturated). */
static int weight_png(const cnn_tensor *t, const weight_view *v, int i, unsigned char **png, size_t *len)
{
    cnn_canvas c;
    int rc = cnn_canvas_open(&c, v->w, v->h);
    if (rc) return rc;
    unsigned char *px = cairo_image_surface_get_data(c.surface);
    size_t stride = (size_t)cairo_image_surface_get_stride(c.surface);
    for (int y = 0; y < v->h; y++)
        for (int x = 0; x < v->w; x++) {
            float f = t->data[(size_t)i * v->si + (size_t)y * v->sy + (size_t)x * v->sx];
            uint32_t g = (uint32_t)fmin(fmax(f * 255.5, 0), 255);
            *(uint32_t *)(px + (size_t)y * stride + (size_t)x * 4) = g << 16 | g << 8 | g;
        }
    cairo_surface_mark_dirty(c.surface);
    rc = cnn_canvas_png(&c, png, len);
    cnn_canvas_close(&c);
    return rc;
}

/* tf.summary.image's string tensor [width, height, png...] of at most MAX_IMAGES images. */
static int weight_images(cnn_tb_file *f, int64_t step, const cnn_tensor *t)
{
    weight_view v;
    if (!image_view(t, &v)) return CNN_OK;
    int n = v.n < MAX_IMAGES ? v.n : MAX_IMAGES, rc = CNN_OK;
    char wh[2][16];
    ProtobufCBinaryData s[2 + MAX_IMAGES] = {{0, NULL}};
    snprintf(wh[0], sizeof wh[0], "%d", v.w);
    snprintf(wh[1], sizeof wh[1], "%d", v.h);
    for (int i = 0; i < 2; i++) s[i] = (ProtobufCBinaryData){strlen(wh[i]), (uint8_t *)wh[i]};
    for (int j = 0; j < n && !rc; j++) rc = weight_png(t, &v, j, &s[2 + j].data, &s[2 + j].len);
    if (!rc) {
        const int64_t dims[1] = {2 + n};
        Cnnlab__Tb__TensorShapeProto sh = CNNLAB__TB__TENSOR_SHAPE_PROTO__INIT;
        Cnnlab__Tb__TensorShapeProto__Dim d[1], *dp[1];
        Cnnlab__Tb__TensorProto tp = CNNLAB__TB__TENSOR_PROTO__INIT;
        shape(&sh, d, dp, dims, 1);
        tp.dtype = DT_STRING;
        tp.tensor_shape = &sh;
        tp.n_string_val = (size_t)(2 + n);
        tp.string_val = s;
        char tag[160];
        snprintf(tag, sizeof tag, "%s_0/image", t->name);
        rc = emit(f, step, &tp, tag, "images", CLASS_BLOB_SEQUENCE);
    }
    for (int j = 0; j < n; j++) free(s[2 + j].data);
    return rc;
}

/* Keras's _log_weights: per weight, its histogram and its image. */
static int weights(cnn_tb_file *f, cnn_model *m, int64_t step)
{
    int rc = CNN_OK;
    for (int i = 0, n = cnn_model_num_tensors(m); i < n && !rc; i++) {
        cnn_tensor t;
        rc = cnn_model_tensor(m, i, &t);
        if (!rc) rc = histogram(f, step, &t);
        if (!rc) rc = weight_images(f, step, &t);
    }
    return rc;
}

/* The validation scalars, per epoch and (as Keras's evaluation_*_vs_iterations) per optimizer step. */
static int validation(cnn_tb_file *f, cnn_model *m, int64_t step, const cnn_epoch_log *log)
{
    int64_t it = cnn_model_iterations(m);
    int rc = scalar(f, step, "epoch_loss", log->val_loss);
    if (!rc) rc = scalar(f, step, "epoch_accuracy", log->val_accuracy);
    if (!rc) rc = scalar(f, it, "evaluation_loss_vs_iterations", log->val_loss);
    if (!rc) rc = scalar(f, it, "evaluation_accuracy_vs_iterations", log->val_accuracy);
    return rc;
}

static int tb_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)stop;
    tb_state *s = cb->state;
    int64_t step = log->epoch;
    int rc = scalar(&s->train, step, "epoch_loss", log->loss);
    if (!rc) rc = scalar(&s->train, step, "epoch_accuracy", log->accuracy);
    /* Keras logs the optimizer's rate as it stands at the epoch's end, after the callbacks before this one
     * (ReduceLROnPlateau) have acted. Keras 2.15 names it epoch_lr when a callback put "lr" in the logs (the
     * study's ReduceLROnPlateau and LearningRateScheduler do) and epoch_learning_rate for a schedule object:
     * both are written, so either reader finds it. */
    double lr = cnn_model_learning_rate(m);
    if (!rc) rc = scalar(&s->train, step, "epoch_learning_rate", lr);
    if (!rc) rc = scalar(&s->train, step, "epoch_lr", lr);
    if (!rc) rc = weights(&s->train, m, step);
    if (!rc && isfinite(log->val_loss)) rc = validation(&s->val, m, step, log);
    if (!rc) rc = cnn_tb_flush(&s->train);
    if (!rc) rc = cnn_tb_flush(&s->val);
    return rc ? cnn_fail_context("TensorBoard at epoch %d: ", log->epoch) : CNN_OK;
}

static int tb_train_begin(cnn_callback *cb, cnn_model *m)
{
    (void)m;
    tb_state *s = cb->state;
    char dir[4200];
    cnn_tb_close(&s->train);
    cnn_tb_close(&s->val);
    snprintf(dir, sizeof dir, "%s/train", s->dir);
    int rc = cnn_tb_open(&s->train, dir, s->fits);
    snprintf(dir, sizeof dir, "%s/validation", s->dir);
    if (!rc) rc = cnn_tb_open(&s->val, dir, s->fits);
    if (!rc) rc = cnn_tb_flush(&s->train);
    if (!rc) rc = cnn_tb_flush(&s->val);
    s->fits++;
    return rc;
}

static void tb_destroy(cnn_callback *cb)
{
    tb_state *s = cb->state;
    cnn_tb_close(&s->train);
    cnn_tb_close(&s->val);
}

cnn_callback *cnn_callback_tensorboard(const char *log_dir)
{
    if (!log_dir || !*log_dir || strlen(log_dir) >= 4000) {
        cnn_fail(CNN_ERR_INVALID, "TensorBoard: log_dir must be a path of 1 to 3999 characters");
        return NULL;
    }
    tb_state *s = calloc(1, sizeof *s);
    if (!s) {
        cnn_fail(CNN_ERR_NOMEM, "TensorBoard: out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", log_dir);
    cnn_callback *cb = &s->cb;
    cb->name = "TensorBoard";
    cb->state = s;
    cb->on_train_begin = tb_train_begin;
    cb->on_epoch_end = tb_epoch_end;
    cb->destroy = tb_destroy;
    return cb;
}
