/* From a parsed spec to objects: the compiled model and the fit settings. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/opts.h"
#include "model/model.h"
#include "optim/optimizer.h"
#include "spec/spec.h"

int cnn_spec_fail_call(const cnn_spec *s, const spec_call *c)
{
    return cnn_fail_context("%s:%d:%d: ", s->origin, c->line, cnn_spec_call_error_col(c));
}

static int optimizer_config(const cnn_spec *s, cnn_optimizer_config *cfg)
{
    /* Keras's default optimizer when a spec names none: Adam(learning_rate=0.001). */
    const spec_call *c = &s->optimizer;
    const char *name = s->has_optimizer ? c->name : "Adam";
    const cnn_optimizer_ops *ops = cnn_optimizer_find(name);
    if (!ops) {
        cnn_fail(CNN_ERR_FORMAT, "unknown optimizer '%s' (expected %s)", name, cnn_optimizer_types());
        return cnn_spec_fail_call(s, c);
    }
    char ctx[64];
    snprintf(ctx, sizeof ctx, "optimizer %s", name);
    cnn_opts o;
    int rc = cnn_opts_parse(&o, s->has_optimizer ? c->args : "", ctx);
    if (!rc) rc = ops->configure(&o, cfg);
    if (!rc) rc = cnn_opts_finish(&o);
    return rc ? cnn_spec_fail_call(s, c) : CNN_OK;
}

/* loss: SparseCategoricalCrossentropy(from_logits=...) or its function name; Keras's default
 * from_logits=False. */
static int loss_config(const cnn_spec *s, cnn_loss_config *loss)
{
    const spec_call *c = &s->loss;
    *loss = (cnn_loss_config){CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0};
    if (!s->has_loss) return CNN_OK;
    if (strcmp(c->name, "SparseCategoricalCrossentropy") &&
        strcmp(c->name, "sparse_categorical_crossentropy")) {
        cnn_fail(
            CNN_ERR_FORMAT,
            "unknown loss '%s' (labels are class indices: SparseCategoricalCrossentropy(from_logits=...))",
            c->name);
        return cnn_spec_fail_call(s, c);
    }
    cnn_opts o;
    int rc = cnn_opts_parse(&o, c->args, "loss");
    if (!rc) rc = cnn_opts_bool(&o, "from_logits", 0, &loss->from_logits);
    if (!rc) rc = cnn_opts_finish(&o);
    return rc ? cnn_spec_fail_call(s, c) : CNN_OK;
}

/* Model layers that call i of the spec adds (VGG16(...) adds the 18 of its base). */
static int call_layers(const spec_call *c)
{
    return cnn_spec_is_vgg16(c->name) ? cnn_spec_vgg16_layers() : 1;
}

/* The spec call that made model layer i. */
static const spec_call *call_of_layer(const cnn_spec *s, int layer)
{
    for (int i = 0, first = 0; i < s->nlayers; first += call_layers(&s->layers[i++]))
        if (layer < first + call_layers(&s->layers[i])) return &s->layers[i];
    return NULL;
}

/* The layer a build error names ("layer 'conv2d_1' ..."), so the error can point at its line. */
static const spec_call *layer_named_in_error(const cnn_spec *s, const cnn_model *m)
{
    const char *msg = cnn_errmsg();
    for (int i = 0; i < cnn_model_num_layers(m); i++) {
        char quoted[80];
        snprintf(quoted, sizeof quoted, "'%s'", cnn_model_layer_name(m, i));
        if (strstr(msg, quoted)) return call_of_layer(s, i);
    }
    return NULL;
}

static int add_layers(const cnn_spec *s, cnn_model *m)
{
    for (int i = 0; i < s->nlayers; i++) {
        const spec_call *c = &s->layers[i];
        int rc = cnn_spec_is_vgg16(c->name) ? cnn_spec_vgg16_add(m, c) : cnn_model_add(m, c->name, c->args);
        if (rc) return cnn_spec_fail_call(s, c);
    }
    return CNN_OK;
}

/* After build: the VGG16 bases' input checks and, with load, their weights. */
static int finish_bases(const cnn_spec *s, cnn_model *m, int load)
{
    for (int i = 0, first = 0; i < s->nlayers; first += call_layers(&s->layers[i++])) {
        const spec_call *c = &s->layers[i];
        if (cnn_spec_is_vgg16(c->name) && cnn_spec_vgg16_finish(s, c, m, first, load))
            return cnn_fail_context("%s:%d:%d: ", s->origin, c->line, c->col);
    }
    return CNN_OK;
}

/* A build error restated at the spec line of the layer it names (or at the spec as a whole). */
static int fail_in_spec(const cnn_spec *s, const cnn_model *m)
{
    const spec_call *c = layer_named_in_error(s, m);
    if (c) return cnn_fail_context("%s:%d:%d: ", s->origin, c->line, c->col);
    return cnn_fail_context("%s: ", s->origin);
}

int cnn_spec_check_unbuilt(const cnn_spec *s, size_t *nparams)
{
    cnn_optimizer_config opt;
    cnn_loss_config loss;
    if (optimizer_config(s, &opt) || loss_config(s, &loss)) return cnn_errcode();
    cnn_model *m = cnn_model_create(s->name, s->h, s->w, s->c);
    if (!m) return cnn_errcode();
    int rc = add_layers(s, m);
    if (!rc && (cnn_model_infer(m) || cnn_optimizer_check(&opt) || cnn_model_check_loss(m, &loss)))
        rc = fail_in_spec(s, m);
    if (!rc) rc = finish_bases(s, m, 0);
    *nparams = m->nparams;
    cnn_model_free(m);
    return rc;
}

cnn_model *cnn_spec_build(const cnn_spec *s, uint64_t seed, int load)
{
    cnn_optimizer_config opt;
    cnn_loss_config loss;
    if (optimizer_config(s, &opt) || loss_config(s, &loss)) return NULL;
    cnn_model *m = cnn_model_create(s->name, s->h, s->w, s->c);
    if (!m) return NULL;
    if (add_layers(s, m)) goto fail;
    if (cnn_model_build(m, seed) || cnn_model_compile_loss(m, &opt, &loss) ||
        cnn_model_set_spec_text(m, s->text)) {
        fail_in_spec(s, m);
        goto fail;
    }
    if (finish_bases(s, m, load)) goto fail;
    return m;
fail:
    cnn_model_free(m);
    return NULL;
}

cnn_model *cnn_spec_build_model(const cnn_spec *s, uint64_t seed)
{
    return cnn_spec_build(s, seed, 1);
}

int cnn_spec_layer_groups(const cnn_spec *s, cnn_layer_group *groups, int cap)
{
    int n = 0;
    for (int i = 0, first = 0; i < s->nlayers; first += call_layers(&s->layers[i++]))
        if (cnn_spec_is_vgg16(s->layers[i].name) && n < cap)
            cnn_spec_vgg16_group(&s->layers[i], first, &groups[n++]);
    return n;
}

static int fit_options(const cnn_spec *s, cnn_spec_fit *f)
{
    static const char *const modes[] = {"test", "split", "none"}, *const precisions[] = {"fp32", "bf16"};
    cnn_opts o;
    int mode = 0, seed = 1, precision = 0;
    int rc = cnn_opts_parse(&o, s->has_fit ? s->fit.args : "", "fit");
    if (!rc) rc = cnn_opts_int(&o, "epochs", 1, 0, 1000000, &f->epochs);
    if (!rc) rc = cnn_opts_int(&o, "batch_size", 32, 1, 1 << 20, &f->batch_size);
    if (!rc) rc = cnn_opts_bool(&o, "shuffle", 1, &f->shuffle);
    if (!rc) rc = cnn_opts_int(&o, "seed", 1, 0, 2147483647, &seed);
    if (!rc) rc = cnn_opts_double(&o, "validation_split", 0, 0, 0.999999, &f->validation_split);
    if (!rc) rc = cnn_opts_enum(&o, "validation", modes, 3, f->validation_split > 0 ? 1 : 0, &mode);
    if (!rc && mode == 1 && !(f->validation_split > 0))
        rc = cnn_fail(CNN_ERR_INVALID, "fit: validation=\"split\" needs validation_split=F with 0 < F < 1");
    if (!rc) rc = cnn_opts_enum(&o, "precision", precisions, 2, 0, &precision);
    if (!rc) rc = cnn_opts_finish(&o);
    f->seed = (uint64_t)seed;
    snprintf(f->precision, sizeof f->precision, "%s", precisions[precision]);
    snprintf(f->validation, sizeof f->validation, "%s", modes[mode]);
    return rc;
}

int cnn_spec_fit_check(const cnn_spec *s)
{
    cnn_spec_fit f;
    return fit_options(s, &f) ? cnn_spec_fail_call(s, &s->fit) : CNN_OK;
}

void cnn_spec_fit_settings(const cnn_spec *s, cnn_spec_fit *out)
{
    memset(out, 0, sizeof *out);
    fit_options(s, out); /* checked when the spec was loaded */
}
