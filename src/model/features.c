/* Cached features: a frozen, deterministic prefix of the model computed once over a dataset, its outputs
 * served as a source to the layer after it. Feature extraction on a frozen convolutional base then costs one
 * inference pass instead of one per epoch. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/progress.h"
#include "model/source.h"

static int check_prefix(const cnn_model *m, int through)
{
    if (!m->built) return cnn_fail(CNN_ERR_STATE, "cached features: build model '%s' first", m->name);
    if (through < 0 || through >= m->nlayers - 1)
        return cnn_fail(
            CNN_ERR_INVALID,
            "cached features: layer %d of model '%s' must be one of 0..%d (a layer must follow it)", through,
            m->name, m->nlayers - 2);
    int prefix = cnn_model_frozen_prefix(m);
    if (prefix > through) return CNN_OK;
    const cnn_layer *l = &m->layers[prefix];
    return cnn_fail(
        CNN_ERR_INVALID,
        "cached features: layer '%s' (%s) of model '%s' is %s, so the layers up to '%s' cannot be "
        "computed once",
        l->name, l->ops->type, m->name, l->trainable && l->nparams ? "trainable" : "random in training",
        m->layers[through].name);
}

/* Runs layers 0..through over samples [lo, hi) of ds in chunks of the planned batch, into feats (the outputs
 * of sample lo onwards, feature size each). */
static int run_prefix(cnn_model *m, int through, const cnn_dataset *ds, int lo, int hi, int batch,
                      float *feats)
{
    int rc = cnn_model_plan(m, batch);
    if (rc) return rc;
    size_t out = cnn_shape_size(m->layers[through].out);
    for (int s = lo; s < hi; s += batch) {
        int n = hi - s < batch ? hi - s : batch;
        cnn_dataset_images(ds, s, n, m->x.acts[0]);
        cnn_model_forward_range(m, 0, through, n, 0);
        memcpy(feats + out * (size_t)(s - lo), m->x.acts[through + 1], sizeof(float) * out * n);
    }
    return CNN_OK;
}

/* Shared: this rank's block of the samples, then the others' from gather. */
static int run_share(cnn_model *m, int through, const cnn_dataset *ds, int batch, const cnn_feature_share *sh,
                     float *feats)
{
    if (!sh) return run_prefix(m, through, ds, 0, ds->n, batch, feats);
    const int lo = (int)((long)ds->n * sh->rank / sh->ranks),
              hi = (int)((long)ds->n * (sh->rank + 1) / sh->ranks);
    const size_t out = cnn_shape_size(m->layers[through].out);
    int rc = hi > lo ? run_prefix(m, through, ds, lo, hi, batch, feats + out * lo) : CNN_OK;
    return rc ? rc : sh->gather(sh->ctx, feats, out, ds->n);
}

static int make_features(cnn_model *m, int through, const cnn_dataset *ds, int batch,
                         const cnn_feature_share *sh, cnn_dataset *f)
{
    cnn_shape s = m->layers[through].out;
    size_t floats = cnn_shape_size(s) * (size_t)ds->n;
    memset(f, 0, sizeof *f);
    f->x = malloc(sizeof(float) * floats);
    f->y = malloc(sizeof(int32_t) * (size_t)ds->n);
    if (!f->x || !f->y) {
        cnn_dataset_free(f);
        return cnn_fail(CNN_ERR_NOMEM, "cached features: out of memory for %d x %zu floats", ds->n,
                        cnn_shape_size(s));
    }
    memcpy(f->y, ds->y, sizeof(int32_t) * (size_t)ds->n);
    f->n = ds->n, f->h = s.h, f->w = s.w, f->c = s.c, f->num_classes = ds->num_classes;
    int rc = run_share(m, through, ds, batch, sh, f->x);
    if (rc) cnn_dataset_free(f);
    return rc;
}

static cnn_source *features(cnn_model *m, int through, const cnn_dataset *ds, int batch_size, int shuffle,
                            uint64_t seed, const cnn_feature_share *sh, double *seconds)
{
    int rc = check_prefix(m, through);
    if (!rc && (!ds || ds->n < 1 || !cnn_dataset_has_pixels(ds) || !ds->y || batch_size < 1))
        rc = cnn_fail(CNN_ERR_INVALID, "cached features: the dataset is empty or batch_size %d < 1",
                      batch_size);
    if (!rc && (size_t)ds->h * ds->w * ds->c != cnn_shape_size(m->input))
        rc = cnn_fail(CNN_ERR_SHAPE, "cached features: samples of %dx%dx%d do not fit model '%s'", ds->h,
                      ds->w, ds->c, m->name);
    if (rc) return NULL;
    double t0 = cnn_now();
    cnn_dataset f;
    int batch = batch_size < ds->n ? batch_size : ds->n;
    if (make_features(m, through, ds, batch, sh, &f)) return NULL;
    if (seconds) *seconds = cnn_now() - t0;
    cnn_source *s = cnn_source_owned_dataset(&f, batch_size, shuffle, seed, "cached features");
    if (!s) {
        cnn_dataset_free(&f);
        return NULL;
    }
    s->first_layer = through + 1;
    return s;
}

cnn_source *cnn_source_features(cnn_model *m, int through, const cnn_dataset *ds, int batch_size, int shuffle,
                                uint64_t seed, double *seconds)
{
    return features(m, through, ds, batch_size, shuffle, seed, NULL, seconds);
}

cnn_source *cnn_source_features_shard(cnn_model *m, int through, const cnn_dataset *ds, int batch_size,
                                      int shuffle, uint64_t seed, const cnn_feature_share *share,
                                      double *seconds)
{
    if (!share || !share->gather || share->ranks < 1 || share->rank < 0 || share->rank >= share->ranks) {
        cnn_fail(CNN_ERR_INVALID,
                 "cached features: the share needs a gather function and a rank in [0, ranks)");
        return NULL;
    }
    cnn_source *s = features(m, through, ds, batch_size, shuffle, seed, share, seconds);
    if (s && cnn_source_make_shard(s, ds->n, share->rank, share->ranks)) {
        cnn_source_free(s);
        return NULL;
    }
    return s;
}
