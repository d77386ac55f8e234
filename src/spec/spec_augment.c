/* The augment: section of a spec and initial_weights:, turned into a training source and a weight copy.
 *
 *   augment:
 *       StudyGenerator()                       # the study's DataImageGenerator_batch (spec §5.2)
 *   augment:
 *       ImageDataGenerator(rotation_range=10, zoom_range=0.1, horizontal_flip=True, fill_mode="nearest")
 *       RandomErasing(p=0.5)
 *       PadAndCrop(padding=2)
 *
 * StudyGenerator stands alone; the other three combine (each at most once). Format: docs/spec-format.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/error.h"
#include "core/opts.h"
#include "model/source.h"
#include "spec/spec.h"

typedef enum { AUG_NONE = 0, AUG_STUDY, AUG_RANDOM } aug_kind;

typedef struct spec_augment {
    aug_kind kind;
    int augmented_only;
    cnn_augment a;
} spec_augment;

/* A (low, high) option: "(a, b)", or a single number x meaning (1 - x, 1 + x) when single_is_spread. */
static int opt_range(cnn_opts *o, const char *key, const double def[2], int single_is_spread, double out[2])
{
    char text[80];
    out[0] = def[0], out[1] = def[1];
    int rc = cnn_opts_str(o, key, "", text, sizeof text);
    if (rc || !text[0]) return rc;
    double a, b;
    int used = 0;
    if (sscanf(text, " ( %lf , %lf ) %n", &a, &b, &used) == 2 && !text[used]) {
        out[0] = a, out[1] = b;
        return CNN_OK;
    }
    if (single_is_spread && sscanf(text, " %lf %n", &a, &used) == 1 && !text[used] && a >= 0 && a < 1) {
        out[0] = 1 - a, out[1] = 1 + a;
        return CNN_OK;
    }
    return cnn_opts_fail(o, key, "%s=%s: expected (low, high)%s", key, text,
                         single_is_spread ? " or a number x in [0, 1) for (1 - x, 1 + x)" : "");
}

static int image_data_generator(cnn_opts *o, cnn_augment *a)
{
    static const char *const modes[] = {"constant", "nearest", "reflect", "wrap"};
    const double one[2] = {1, 1};
    int mode = 0;
    int rc = cnn_opts_double(o, "rotation_range", 0, 0, 360, &a->rotation_range);
    if (!rc) rc = cnn_opts_double(o, "width_shift_range", 0, 0, 1e6, &a->width_shift_range);
    if (!rc) rc = cnn_opts_double(o, "height_shift_range", 0, 0, 1e6, &a->height_shift_range);
    if (!rc) rc = opt_range(o, "zoom_range", one, 1, a->zoom_range);
    if (!rc) rc = cnn_opts_double(o, "shear_range", 0, 0, 360, &a->shear_range);
    if (!rc) rc = cnn_opts_bool(o, "horizontal_flip", 0, &a->horizontal_flip);
    if (!rc) rc = cnn_opts_bool(o, "vertical_flip", 0, &a->vertical_flip);
    if (!rc) rc = cnn_opts_enum(o, "fill_mode", modes, 4, 1, &mode); /* Keras's default: nearest */
    if (!rc) rc = cnn_opts_double(o, "cval", 0, -1e6, 1e6, &a->cval);
    a->fill_mode = (cnn_fill_mode)mode;
    return rc;
}

static int random_erasing(cnn_opts *o, cnn_augment *a)
{
    char value[32];
    int rc = cnn_opts_double(o, "p", 0.5, 0, 1, &a->erasing_p);
    if (!rc) rc = opt_range(o, "scale", a->erasing_scale, 0, a->erasing_scale);
    if (!rc) rc = opt_range(o, "ratio", a->erasing_ratio, 0, a->erasing_ratio);
    if (!rc) rc = cnn_opts_str(o, "value", "random", value, sizeof value);
    if (rc) return rc;
    char *end;
    a->erasing_value = strcmp(value, "random") ? strtod(value, &end) : -1;
    if (strcmp(value, "random") &&
        (*end || end == value || !(a->erasing_value >= 0 && a->erasing_value <= 1e6)))
        return cnn_opts_fail(o, "value", "value=%s: expected \"random\" or a number >= 0", value);
    return CNN_OK;
}

/* One call of the section into cfg; seen[] catches repeats. */
static int augment_call(const spec_call *c, spec_augment *cfg, int seen[4])
{
    static const char *const names[] = {"StudyGenerator", "ImageDataGenerator", "RandomErasing",
                                        "PadAndCrop"};
    int kind = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(c->name, names[i])) kind = i;
    if (kind < 0)
        return cnn_fail(
            CNN_ERR_FORMAT,
            "unknown augmentation '%s' (expected StudyGenerator, ImageDataGenerator, RandomErasing "
            "or PadAndCrop)",
            c->name);
    if (seen[kind]++) return cnn_fail(CNN_ERR_FORMAT, "%s appears twice in augment:", c->name);
    if ((kind == 0 && cfg->kind == AUG_RANDOM) || (kind > 0 && cfg->kind == AUG_STUDY))
        return cnn_fail(CNN_ERR_FORMAT, "StudyGenerator stands alone: it does not combine with %s",
                        kind == 0 ? "the random augmentations" : c->name);
    cnn_opts o;
    int rc = cnn_opts_parse(&o, c->args, c->name);
    cfg->kind = kind == 0 ? AUG_STUDY : AUG_RANDOM;
    if (!rc && kind == 0) rc = cnn_opts_bool(&o, "augmented_only", 0, &cfg->augmented_only);
    if (!rc && kind == 1) rc = image_data_generator(&o, &cfg->a);
    if (!rc && kind == 2) rc = random_erasing(&o, &cfg->a);
    if (!rc && kind == 3) rc = cnn_opts_int(&o, "padding", 4, 1, 1024, &cfg->a.crop_padding);
    if (!rc) rc = cnn_opts_finish(&o);
    if (!rc) rc = cnn_augment_check(&cfg->a);
    return rc;
}

static int augment_config(const cnn_spec *s, spec_augment *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->a = cnn_augment_default();
    int seen[4] = {0};
    for (int i = 0; i < s->naugment; i++)
        if (augment_call(&s->augment[i], cfg, seen)) return cnn_spec_fail_call(s, &s->augment[i]);
    if (cfg->kind == AUG_STUDY && s->c != 1)
        return cnn_fail(CNN_ERR_FORMAT, "%s:%d:%d: StudyGenerator needs one-channel input, not %d channels",
                        s->origin, s->augment[0].line, s->augment[0].col, s->c);
    return CNN_OK;
}

int cnn_spec_augment_check(const cnn_spec *s)
{
    spec_augment cfg;
    return augment_config(s, &cfg);
}

/* The random augmentation's source, cut where it reads when ranks > 1: each rank transforms only its samples.
 */
static int keras_source(const char *origin, const spec_augment *cfg, const cnn_dataset *train,
                        const cnn_spec_fit *f, int rank, int ranks, cnn_source **src)
{
    cnn_augment *a = malloc(sizeof *a);
    if (!a) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for the augmentation", origin);
    *a = cfg->a;
    cnn_transform t = cnn_augment_transform(a);
    cnn_source *inner = cnn_source_transform(train, f->batch_size, f->shuffle, f->seed, &t);
    if (inner && ranks > 1 && cnn_source_make_shard(inner, train->n, rank, ranks))
        cnn_source_free(inner), inner = NULL;
    *src = inner ? aug_source_owning(inner, a) : NULL;
    if (!*src) free(a);
    return *src ? CNN_OK : cnn_errcode();
}

int cnn_spec_train_source_shard(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f, int rank,
                                int ranks, cnn_source **src)
{
    spec_augment cfg;
    *src = NULL;
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return cnn_fail(CNN_ERR_INVALID, "%s: rank %d of %d ranks is out of range", s->origin, rank, ranks);
    int rc = augment_config(s, &cfg);
    if (rc || cfg.kind == AUG_NONE) return rc;
    if (cfg.kind != AUG_STUDY) return keras_source(s->origin, &cfg, train, f, rank, ranks, src);
    /* The study's batches are made once and kept: every rank makes them whole and keeps its slice. */
    *src = cnn_source_study_augment(train, f->batch_size, f->shuffle, f->seed, cfg.augmented_only);
    if (*src && ranks > 1) *src = cnn_source_shard(*src, rank, ranks);
    return *src ? CNN_OK : cnn_errcode();
}

int cnn_spec_train_source(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f,
                          cnn_source **src)
{
    return cnn_spec_train_source_shard(s, train, f, 0, 1, src);
}

const char *cnn_spec_initial_weights(const cnn_spec *s)
{
    return s->initial_weights[0] ? s->initial_weights : NULL;
}

int cnn_model_set_weights_from(cnn_model *dst, cnn_model *src)
{
    int n = cnn_model_num_tensors(dst);
    if (n != cnn_model_num_tensors(src))
        return cnn_fail(CNN_ERR_SHAPE, "set_weights: model '%s' has %d weight tensors, '%s' has %d",
                        cnn_model_name(dst), n, cnn_model_name(src), cnn_model_num_tensors(src));
    for (int i = 0; i < n; i++) {
        cnn_tensor to, from;
        if (cnn_model_tensor(dst, i, &to) || cnn_model_tensor(src, i, &from)) return cnn_errcode();
        int same = to.rank == from.rank && to.size == from.size;
        for (int d = 0; same && d < to.rank; d++) same = to.dim[d] == from.dim[d];
        if (!same)
            return cnn_fail(CNN_ERR_SHAPE,
                            "set_weights: tensor %d ('%s' of '%s') does not have the shape of '%s'", i,
                            to.name, cnn_model_name(dst), from.name);
    }
    for (int i = 0; i < n; i++) {
        cnn_tensor to, from;
        cnn_model_tensor(dst, i, &to), cnn_model_tensor(src, i, &from);
        memcpy(to.data, from.data, sizeof *to.data * to.size);
    }
    return CNN_OK;
}

/* The batch that holds the augmented versions of training images 0 .. B-1 (original batch 0), unshuffled:
 * the study's first augmented batch H (batch 0 itself when all batches are augmented), or the random
 * augmentation's first batch. */
static int sample_batch(const spec_augment *cfg, const cnn_source *src)
{
    return cfg->kind == AUG_STUDY && !cfg->augmented_only ? src->batches / 2 : 0;
}

static int sample_check(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f, int first, int n,
                        const float *out)
{
    int last = train ? (f->batch_size < train->n ? f->batch_size : train->n) : 0; /* images of batch 0 */
    if (!train || !out || first < 0 || n < 1 || first > last - n)
        return cnn_fail(CNN_ERR_INVALID,
                        "%s: cannot show augmented images %d .. %d: the first batch holds images 0 .. %d "
                        "(batch_size %d, %d training images)",
                        s->origin, first, first + n - 1, last - 1, f->batch_size, train ? train->n : 0);
    return CNN_OK;
}

/* Samples first .. first+n-1 of the source's batch `batch` in epoch 0 into out. */
static int fill_part(cnn_source *src, int batch, int first, int n, float *out)
{
    size_t sample = (size_t)src->h * (size_t)src->w * (size_t)src->c;
    float *x = malloc(sizeof *x * sample * (size_t)src->batch_size);
    int32_t *y = malloc(sizeof *y * (size_t)src->batch_size);
    int got = 0;
    int rc = x && y ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for a batch", src->name);
    if (!rc && src->begin_epoch) rc = src->begin_epoch(src, 0);
    if (!rc) rc = src->fill(src, 0, batch, x, y, &got);
    if (!rc) memcpy(out, x + sample * (size_t)first, sizeof *x * sample * (size_t)n);
    free(x), free(y);
    return rc;
}

int cnn_spec_augment_sample(const cnn_spec *s, const cnn_dataset *train, const cnn_spec_fit *f, int first,
                            int n, float *out, int *study)
{
    spec_augment cfg;
    int rc = augment_config(s, &cfg);
    if (!rc && cfg.kind == AUG_NONE)
        rc = cnn_fail(CNN_ERR_INVALID, "%s: the spec has no augment: section, so nothing is augmented",
                      s->origin);
    if (!rc) rc = sample_check(s, train, f, first, n, out);
    if (rc) return rc;
    /* Unshuffled, batch b holds images bB .. bB + B - 1 in order; the augmentation's draws depend on the
     * image and the batch or epoch, not on the order, so these are the images training sees. */
    cnn_spec_fit in_order = *f;
    in_order.shuffle = 0;
    cnn_source *src;
    if ((rc = cnn_spec_train_source(s, train, &in_order, &src))) return rc;
    rc = fill_part(src, sample_batch(&cfg, src), first, n, out);
    if (study) *study = cfg.kind == AUG_STUDY;
    cnn_source_free(src);
    return rc;
}
