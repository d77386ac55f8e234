/* Prediction over a dataset: the images' shape is checked against the model's input first, since
 * cnn_model_predict takes a bare pointer and would read past smaller images (or misread larger ones). */
#include "core/error.h"
#include "model/model.h"

int cnn_model_predict_dataset(cnn_model *m, const cnn_dataset *ds, int batch_size, float *out)
{
    if (!m || !ds || !ds->x || ds->n < 1)
        return cnn_fail(CNN_ERR_INVALID, "predict: the model or the images are missing (or no images)");
    int h, w, c;
    cnn_model_layer_shape(m, -1, &h, &w, &c);
    if (ds->h != h || ds->w != w || ds->c != c)
        return cnn_fail(CNN_ERR_SHAPE, "predict: the images are %dx%dx%d (HxWxC); model '%s' takes %dx%dx%d",
                        ds->h, ds->w, ds->c, m->name, h, w, c);
    return cnn_model_predict(m, ds->x, ds->n, batch_size, out);
}
