/* Prediction over a dataset: the images' shape is checked against the model's input first (a bare pointer
 * would read past smaller images, or misread larger ones), then the images go through the model in batches,
 * converted to floats one batch at a time (a set held as bytes is never expanded whole). */
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "model/model.h"

/* The model's outputs for every image of ds (checked by the caller), in batches of at most batch_size. */
static int predict_images(cnn_model *m, const cnn_dataset *ds, int batch_size, float *out)
{
    int b = batch_size < ds->n ? batch_size : ds->n;
    int rc = cnn_model_plan(m, b);
    size_t k = (size_t)m->outputs;
    for (int s = 0; !rc && s < ds->n; s += b) {
        int cnt = ds->n - s < b ? ds->n - s : b;
        rc = cnn_dataset_images(ds, s, cnt, m->x.acts[0]);
        if (!rc) cnn_model_forward_from(m, 0, cnt, 0);
        if (!rc) memcpy(out + k * (size_t)s, cnn_model_output(m), sizeof(float) * k * (size_t)cnt);
    }
    return rc;
}

int cnn_model_predict(cnn_model *m, const float *x, int n, int batch_size, float *out)
{
    if (n < 1 || batch_size < 1) return cnn_fail(CNN_ERR_INVALID, "predict: n and batch_size must be >= 1");
    if (!x || !out) return cnn_fail(CNN_ERR_INVALID, "predict: x and out must not be NULL");
    /* x as a dataset of the model's input shape */
    cnn_dataset view = {.x = (float *)x, .n = n, .h = m->input.h, .w = m->input.w, .c = m->input.c};
    return predict_images(m, &view, batch_size, out);
}

int cnn_model_predict_dataset(cnn_model *m, const cnn_dataset *ds, int batch_size, float *out)
{
    if (!m || !ds || !cnn_dataset_has_pixels(ds) || ds->n < 1)
        return cnn_fail(CNN_ERR_INVALID, "predict: the model or the images are missing (or no images)");
    if (batch_size < 1 || !out)
        return cnn_fail(CNN_ERR_INVALID, "predict: batch_size %d must be >= 1 and out not NULL", batch_size);
    int h, w, c;
    cnn_model_layer_shape(m, -1, &h, &w, &c);
    if (ds->h != h || ds->w != w || ds->c != c)
        return cnn_fail(CNN_ERR_SHAPE, "predict: the images are %dx%dx%d (HxWxC); model '%s' takes %dx%dx%d",
                        ds->h, ds->w, ds->c, m->name, h, w, c);
    return predict_images(m, ds, batch_size, out);
}
