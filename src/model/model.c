/* Model construction: layers, shape inference, the parameter buffer and its initialisation. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"

cnn_model *cnn_model_create(const char *name, int h, int w, int c)
{
    _Static_assert(sizeof((cnn_model *)0)->name > CNN_MAX_NAME, "a model name must fit");
    size_t at;
    const char *why = name ? cnn_file_name_problem(name, strlen(name), &at) : NULL;
    if (why) {
        cnn_fail(CNN_ERR_INVALID, "model name \"%.40s%s\" %s", name, strlen(name) > 40 ? "..." : "", why);
        return NULL;
    }
    if (h < 1 || w < 1 || c < 1 || (size_t)h * w * c > (1u << 28)) {
        cnn_fail(CNN_ERR_INVALID, "model: input shape (%d, %d, %d) must be positive and at most 2^28 values",
                 h, w, c);
        return NULL;
    }
    cnn_model *m = calloc(1, sizeof *m);
    if (!m) {
        cnn_fail(CNN_ERR_NOMEM, "model: out of memory");
        return NULL;
    }
    snprintf(m->name, sizeof m->name, "%s", name ? name : "sequential");
    m->input = (h == 1 && w == 1) ? cnn_shape_vec(c) : cnn_shape_hwc(h, w, c);
    return m;
}

void cnn_model_free(cnn_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->nlayers; i++) free(m->layers[i].cfg);
    free(m->layers);
    free(m->params);
    free(m->grads);
    cnn_optimizer_free(&m->x.opt);
    free(m->x.prof_seconds);
    free(m->x.arena);
    free(m->x.acts);
    free(m->spec_text);
    free(m);
}

int cnn_model_find_layer(const cnn_model *m, const char *name)
{
    for (int i = 0; name && i < m->nlayers; i++)
        if (!strcmp(m->layers[i].name, name)) return i;
    return -1;
}

/* Keras's automatic names: dense, dense_1, dense_2, ...: the first of them not taken in this model. */
static void auto_name(const cnn_model *m, const cnn_layer_ops *ops, char *out, size_t cap)
{
    snprintf(out, cap, "%s", ops->auto_name);
    for (int k = 1; cnn_model_find_layer(m, out) >= 0; k++) snprintf(out, cap, "%s_%d", ops->auto_name, k);
}

static int configure_layer(cnn_model *m, cnn_layer *l, const char *options)
{
    char ctx[96];
    snprintf(ctx, sizeof ctx, "layer %d (%s)", m->nlayers + 1, l->ops->type);
    cnn_opts o;
    int rc = cnn_opts_parse(&o, options, ctx);
    if (rc) return rc;
    rc = cnn_opts_str(&o, "name", l->name, l->name, sizeof l->name);
    if (!rc && cnn_model_find_layer(m, l->name) >= 0)
        rc = cnn_fail(CNN_ERR_INVALID, "%s: the name '%s' is already used by another layer", ctx, l->name);
    if (!rc) rc = cnn_opts_bool(&o, "trainable", 1, &l->trainable);
    if (rc) return rc;
    if (l->ops->configure) rc = l->ops->configure(l, &o);
    /* A misspelt option explains a failure better than the missing option it leaves behind; options left
     * unread because configure stopped early are not misspellings. */
    if ((rc == CNN_OK || cnn_opts_has_misspelling(&o)) && cnn_opts_finish(&o)) return cnn_errcode();
    return rc;
}

int cnn_model_add(cnn_model *m, const char *type, const char *options)
{
    if (m->built) return cnn_fail(CNN_ERR_STATE, "model '%s': layers cannot be added after build", m->name);
    const cnn_layer_ops *ops = cnn_layer_find(type);
    if (!ops) {
        const char *near = cnn_layer_suggest(type);
        if (near)
            return cnn_fail(CNN_ERR_INVALID, "unknown layer type '%s' (did you mean '%s'?)", type, near);
        return cnn_fail(CNN_ERR_INVALID, "unknown layer type '%s' (known: %s)", type, cnn_layer_types());
    }
    if (options && strlen(options) >= sizeof m->layers[0].options)
        return cnn_fail(CNN_ERR_INVALID, "layer %d (%s): options longer than %zu characters", m->nlayers + 1,
                        type, sizeof m->layers[0].options - 1);
    if (m->nlayers == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        cnn_layer *grown = realloc(m->layers, sizeof *grown * (size_t)cap);
        if (!grown) return cnn_fail(CNN_ERR_NOMEM, "model: out of memory");
        m->layers = grown;
        m->cap = cap;
    }
    cnn_layer *l = &m->layers[m->nlayers];
    memset(l, 0, sizeof *l);
    l->ops = ops;
    snprintf(l->options, sizeof l->options, "%s", options ? options : "");
    auto_name(m, ops, l->name, sizeof l->name);
    if (ops->cfg_size && !(l->cfg = calloc(1, ops->cfg_size)))
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int rc = configure_layer(m, l, options);
    if (rc) {
        free(l->cfg);
        return rc;
    }
    m->nlayers++;
    return CNN_OK;
}

int cnn_model_add_flatten(cnn_model *m, const char *name)
{
    char opts[96] = "";
    if (name) snprintf(opts, sizeof opts, "name=\"%s\"", name);
    return cnn_model_add(m, "Flatten", opts);
}

int cnn_model_add_dense(cnn_model *m, const char *name, int units, cnn_activation act)
{
    const char *names[] = {"linear", "relu", "softmax", "tanh", "sigmoid", "leaky_relu", "elu", "gelu"};
    if ((unsigned)act >= sizeof names / sizeof names[0])
        return cnn_fail(CNN_ERR_INVALID, "Dense: unknown activation %d", (int)act);
    char opts[160];
    int k = snprintf(opts, sizeof opts, "units=%d, activation=%s", units, names[act]);
    if (name) snprintf(opts + k, sizeof opts - (size_t)k, ", name=\"%s\"", name);
    return cnn_model_add(m, "Dense", opts);
}

/* glorot_uniform: U(-s, s) with s = sqrt(6 / (fan_in + fan_out)), from the counter RNG of this tensor. */
static void init_param(float *p, const cnn_param *d, uint64_t seed, uint64_t tensor)
{
    uint64_t stream = cnn_rng_stream(CNN_STREAM_INIT, tensor);
    float s = sqrtf(6.0f / (float)(d->fan_in + d->fan_out));
    for (size_t i = 0; i < d->size; i++) {
        switch (d->init) {
        case CNN_INIT_ZEROS:
            p[i] = 0.0f;
            break;
        case CNN_INIT_ONES:
            p[i] = 1.0f;
            break;
        case CNN_INIT_GLOROT_UNIFORM:
            p[i] = s * (2.0f * cnn_rng_uniform(seed, stream, i) - 1.0f);
            break;
        case CNN_INIT_HE_NORMAL: {
            /* Box-Muller from two uniforms; (0,1] keeps the log finite. */
            float u1 = 1.0f - cnn_rng_uniform(seed, stream, 2 * i),
                  u2 = cnn_rng_uniform(seed, stream, 2 * i + 1);
            p[i] = sqrtf(2.0f / (float)d->fan_in) * sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
            break;
        }
        }
    }
}

static int infer_shapes(cnn_model *m)
{
    cnn_shape s = m->input;
    size_t total = 0;
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = &m->layers[i];
        l->in = s;
        l->nparams = 0;
        int rc = l->ops->build(l);
        if (rc) return rc;
        if (l->out.h < 1 || l->out.w < 1 || l->out.c < 1)
            return cnn_layer_fail(l, "output shape (%d, %d, %d) is empty", l->out.h, l->out.w, l->out.c);
        for (int j = 0; j < l->nparams; j++) {
            l->params[j].offset = total;
            total += l->params[j].size;
        }
        s = l->out;
    }
    m->nparams = total;
    return CNN_OK;
}

int cnn_model_infer(cnn_model *m)
{
    if (m->nlayers == 0) return cnn_fail(CNN_ERR_SHAPE, "model '%s' has no layers", m->name);
    int rc = infer_shapes(m);
    if (rc) return rc;
    /* A softmax over a vector output runs in the model, which keeps the logits for a stable loss. */
    cnn_layer *last = &m->layers[m->nlayers - 1];
    m->fused_softmax = last->act == CNN_ACT_SOFTMAX && last->out.h == 1 && last->out.w == 1;
    if (m->fused_softmax) last->act_run = CNN_ACT_LINEAR;
    m->outputs = (int)cnn_shape_size(last->out);
    return CNN_OK;
}

int cnn_model_build(cnn_model *m, uint64_t seed)
{
    if (m->built) return cnn_fail(CNN_ERR_STATE, "model '%s' is already built", m->name);
    int rc = cnn_model_infer(m);
    if (rc) return rc;
    size_t bytes = sizeof(float) * (m->nparams ? m->nparams : 1);
    m->params = calloc(1, bytes);
    m->grads = calloc(1, bytes);
    if (!m->params || !m->grads)
        return cnn_fail(CNN_ERR_NOMEM, "model '%s': out of memory for parameters", m->name);
    uint64_t tensor = 0;
    for (int i = 0; i < m->nlayers; i++) {
        cnn_layer *l = &m->layers[i];
        l->w = m->params;
        l->g = m->grads;
        for (int j = 0; j < l->nparams; j++)
            init_param(m->params + l->params[j].offset, &l->params[j], seed, tensor++);
    }
    m->seed = seed;
    m->built = 1;
    return CNN_OK;
}

/* The optimizer keeps its slots for the whole buffer; only the ranges it updates follow the flags. */
int cnn_model_set_trainable(cnn_model *m, const char *layer_name, int trainable)
{
    int i = cnn_model_find_layer(m, layer_name);
    if (i < 0)
        return cnn_fail(CNN_ERR_INVALID, "model '%s' has no layer named '%s'", m->name,
                        layer_name ? layer_name : "(null)");
    m->layers[i].trainable = trainable != 0;
    return m->x.compiled ? cnn_model_update_ranges(m) : CNN_OK;
}

/* Layers whose output depends on more than their input and their (fixed) weights while training. */
static int varies_in_training(const cnn_layer *l)
{
    if (l->trainable && l->nparams) return 1;
    return l->ops->flags & CNN_LAYER_RANDOM;
}

int cnn_model_frozen_prefix(const cnn_model *m)
{
    int i = 0;
    while (i < m->nlayers && !varies_in_training(&m->layers[i])) i++;
    return i;
}

int cnn_model_layer_shape(const cnn_model *m, int i, int *h, int *w, int *c)
{
    if (!m->built || i < -1 || i >= m->nlayers)
        return cnn_fail(CNN_ERR_INVALID, "model '%s': no layer %d (it has %d, and must be built)", m->name, i,
                        m->nlayers);
    cnn_shape s = i < 0 ? m->input : m->layers[i].out;
    *h = s.h, *w = s.w, *c = s.c;
    return CNN_OK;
}

int cnn_model_num_layers(const cnn_model *m)
{
    return m->nlayers;
}

const char *cnn_model_name(const cnn_model *m)
{
    return m->name;
}

int cnn_model_set_spec_text(cnn_model *m, const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    if (text && !copy) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    free(m->spec_text);
    m->spec_text = copy;
    return CNN_OK;
}

const char *cnn_model_spec_text(const cnn_model *m)
{
    return m->spec_text;
}

const char *cnn_model_layer_name(const cnn_model *m, int i)
{
    return i >= 0 && i < m->nlayers ? m->layers[i].name : NULL;
}

int cnn_model_num_outputs(const cnn_model *m)
{
    return m->outputs;
}

float *cnn_model_params(cnn_model *m)
{
    return m->params;
}

float *cnn_model_grads(cnn_model *m)
{
    return m->grads;
}

size_t cnn_model_num_params(const cnn_model *m, int trainable_only)
{
    size_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            if (!trainable_only || (p->trainable && m->layers[i].trainable)) n += p->size;
        }
    return n;
}
