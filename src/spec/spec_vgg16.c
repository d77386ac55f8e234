/* VGG16(...) in a spec: Keras's applications.VGG16 convolutional base (include_top=False), expanded into its
 * 13 Conv2D and 5 MaxPooling2D layers under Keras's names (block1_conv1 ... block5_pool), shown and saved as
 * one nested model "vgg16 (Functional)", with its weights from a Keras HDF5 file.
 *
 *   VGG16(weights="imagenet" | "FILE.h5" | None, include_top=False, input_shape=(56, 56, 3),
 *         trainable=True, trainable_from="block5_conv1", name="vgg16")
 *
 * trainable_from writes the study's fine-tuning loop (Model_10): the base set trainable, then every layer
 * before the named one frozen. With weights=None the base starts from Keras's random initialisation
 * (glorot_uniform kernels, zero biases), drawn from the build seed like any layer's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/opts.h"
#include "io/keras_h5.h"
#include "model/model.h"
#include "spec/spec.h"

enum { VGG_LAYERS = 18 };

static const char *const VGG_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5";
static const char *const VGG_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/";
static const int FILTERS[5] = {64, 128, 256, 512, 512}, CONVS[5] = {2, 2, 3, 3, 3};

typedef struct vgg_args {
    char weights[256]; /* "imagenet", a path, or "" (None) */
    char from[64];     /* trainable_from, or "" */
    char name[64];
    int trainable;
    int shape[3]; /* input_shape; 0 where free (None) or not given */
} vgg_args;

int cnn_spec_is_vgg16(const char *type)
{
    return !strcmp(type, "VGG16");
}

static void layer_name(int i, char *buf, size_t cap)
{
    int k = i;
    for (int b = 0; b < 5; b++) {
        if (k < CONVS[b]) {
            snprintf(buf, cap, "block%d_conv%d", b + 1, k + 1);
            return;
        }
        if (k == CONVS[b]) {
            snprintf(buf, cap, "block%d_pool", b + 1);
            return;
        }
        k -= CONVS[b] + 1;
    }
}

/* "(56, 56, 3)" or "(None, None, 3)" */
static int read_shape(cnn_opts *o, int shape[3])
{
    char v[80], d[3][16];
    int rc = cnn_opts_str(o, "input_shape", "", v, sizeof v);
    if (rc || !v[0]) return rc;
    if (sscanf(v, " ( %15[^, ] , %15[^, ] , %15[^,) ] )", d[0], d[1], d[2]) != 3)
        return cnn_opts_fail(o, "input_shape", "VGG16: input_shape=%s: expected (height, width, 3)", v);
    for (int i = 0; i < 3; i++) {
        char *end;
        long x = strtol(d[i], &end, 10);
        if (!strcmp(d[i], "None") && i < 2)
            x = 0;
        else if (*end || x < 1 || x > 65536 || (i == 2 && x != 3))
            return cnn_opts_fail(o, "input_shape", "VGG16: input_shape=%s: expected (height, width, 3)", v);
        shape[i] = (int)x;
    }
    return CNN_OK;
}

/* Reads the weights argument apart from the others (a file's path may be longer than an option value) and
 * leaves in rest the arguments with its value blanked, at the same offsets, so errors keep their columns. */
static int split_weights(const spec_call *c, char *rest, size_t cap, vgg_args *a)
{
    snprintf(rest, cap, "%s", c->args);
    snprintf(a->weights, sizeof a->weights, "imagenet");
    for (int i = 0; i < c->nargs; i++) {
        char *arg = rest + c->arg_offset[i], *eq = strchr(arg, '=');
        char *stop = i + 1 < c->nargs ? rest + c->arg_offset[i + 1] - 2 : arg + strlen(arg);
        if (strncmp(arg, "weights", 7) || !eq || eq >= stop || strspn(arg + 7, " ") != (size_t)(eq - arg - 7))
            continue;
        const char *v = eq + 1, *end = stop;
        while (*v == ' ') v++;
        while (end > v && end[-1] == ' ') end--;
        if (end - v >= 2 && (*v == '"' || *v == '\'') && end[-1] == *v) v++, end--;
        size_t n = end > v ? (size_t)(end - v) : 0;
        if (n == 0 || n >= sizeof a->weights)
            return cnn_fail(CNN_ERR_INVALID,
                            "VGG16: weights must be \"imagenet\", None or a file name (under %zu characters)",
                            sizeof a->weights);
        memcpy(a->weights, v, n);
        a->weights[n] = '\0';
        memset(eq + 1, ' ', (size_t)(stop - eq - 1));
        eq[1] = 'F';
    }
    return CNN_OK;
}

static int read_args(const spec_call *c, vgg_args *a)
{
    cnn_opts o;
    char rest[sizeof c->args], unused[8];
    int top = 0;
    memset(a, 0, sizeof *a);
    int rc = split_weights(c, rest, sizeof rest, a);
    if (!rc) rc = cnn_opts_parse(&o, rest, "VGG16");
    if (!rc) rc = cnn_opts_str(&o, "weights", "", unused, sizeof unused);
    if (!rc) rc = cnn_opts_bool(&o, "include_top", 1, &top);
    if (!rc && top)
        rc = cnn_opts_fail(&o, "include_top",
                           "VGG16: include_top=True (the 1000-class ImageNet head) is not supported: "
                           "write include_top=False and a head of your own");
    if (!rc) rc = read_shape(&o, a->shape);
    if (!rc) rc = cnn_opts_bool(&o, "trainable", 1, &a->trainable);
    if (!rc) rc = cnn_opts_str(&o, "trainable_from", "", a->from, sizeof a->from);
    if (!rc) rc = cnn_opts_str(&o, "name", "vgg16", a->name, sizeof a->name);
    if (!rc) rc = cnn_opts_finish(&o);
    if (!strcmp(a->weights, "None") || !strcmp(a->weights, "none")) a->weights[0] = '\0';
    return rc;
}

static int check_from(const vgg_args *a)
{
    char name[32];
    if (!a->from[0]) return CNN_OK;
    if (!a->trainable)
        return cnn_fail(CNN_ERR_INVALID,
                        "VGG16: trainable_from needs trainable=True (the base trainable, then "
                        "the layers before '%s' frozen)",
                        a->from);
    for (int i = 0; i < VGG_LAYERS; i++) {
        layer_name(i, name, sizeof name);
        if (!strcmp(name, a->from)) return CNN_OK;
    }
    return cnn_fail(CNN_ERR_INVALID,
                    "VGG16: trainable_from=\"%s\" is not a layer of the base (block1_conv1 ... "
                    "block5_pool)",
                    a->from);
}

int cnn_spec_vgg16_add(cnn_model *m, const spec_call *c)
{
    vgg_args a;
    int rc = read_args(c, &a);
    if (!rc) rc = check_from(&a);
    int frozen = !a.trainable || a.from[0];
    char name[32], opts[200];
    for (int i = 0; !rc && i < VGG_LAYERS; i++) {
        layer_name(i, name, sizeof name);
        if (a.from[0] && !strcmp(name, a.from)) frozen = 0;
        const char *train = frozen ? ", trainable=False" : "";
        if (strstr(name, "pool")) {
            snprintf(opts, sizeof opts, "pool_size=2, strides=2, name=%s%s", name, train);
            rc = cnn_model_add(m, "MaxPooling2D", opts);
        } else {
            snprintf(opts, sizeof opts, "filters=%d, kernel_size=3, padding=same, activation=relu, name=%s%s",
                     FILTERS[name[5] - '1'], name, train);
            rc = cnn_model_add(m, "Conv2D", opts);
        }
    }
    return rc;
}

int cnn_spec_vgg16_layers(void)
{
    return VGG_LAYERS;
}

/* ---------------------------------------------------------------- weights */

static int exists(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* Where Keras keeps downloaded weights: $KERAS_HOME/models/, else ~/.keras/models/. */
static int find_imagenet(char *path, size_t cap)
{
    const char *kh = getenv("KERAS_HOME"), *home = getenv("HOME");
    if (kh && *kh && snprintf(path, cap, "%s/models/%s", kh, VGG_FILE) < (int)cap && exists(path))
        return CNN_OK;
    if (home && *home && snprintf(path, cap, "%s/.keras/models/%s", home, VGG_FILE) < (int)cap &&
        exists(path))
        return CNN_OK;
    return cnn_fail(
        CNN_ERR_IO,
        "VGG16(weights=\"imagenet\"): %s (58,889,256 bytes, MD5 6d6bbae143d832006294945121d1f1fc) is "
        "neither in $KERAS_HOME/models/ nor in ~/.keras/models/; download it from %s%s and put it "
        "in ~/.keras/models/ (or give weights=None, or --vgg-weights none, to start from Keras's random "
        "initialisation)",
        VGG_FILE, VGG_URL, VGG_FILE);
}

/* The weights a VGG16 call loads, after the spec's override: 0 with path "" for none. */
static int weights_path(const cnn_spec *s, const vgg_args *a, char *path, size_t cap)
{
    const char *w = s->pretrained[0] ? s->pretrained : a->weights;
    path[0] = '\0';
    if (!strcmp(w, "none") || !w[0]) return CNN_OK;
    if (!strcmp(w, "imagenet")) return find_imagenet(path, cap);
    if (snprintf(path, cap, "%s", w) >= (int)cap)
        return cnn_fail(CNN_ERR_INVALID, "VGG16: weights path too long");
    return exists(path) ? CNN_OK : cnn_fail(CNN_ERR_IO, "VGG16: weights file %s not found", path);
}

/* The base's input must be what VGG16 takes: 3 channels, and input_shape when given. */
static int check_input(const cnn_model *m, int first, const vgg_args *a)
{
    /* The shape inferred so far (the model may be checked without being built: cnn_model_infer). */
    cnn_shape in = first > 0 ? m->layers[first - 1].out : m->input;
    int h = in.h, w = in.w, c = in.c;
    if (c != 3 || (a->shape[0] && a->shape[0] != h) || (a->shape[1] && a->shape[1] != w))
        return cnn_fail(CNN_ERR_SHAPE, "VGG16: its input is (%d, %d, %d), expected %s", h, w, c,
                        a->shape[0] ? "its input_shape" : "3 channels (RGB)");
    return CNN_OK;
}

int cnn_spec_vgg16_finish(const cnn_spec *s, const spec_call *c, cnn_model *m, int first, int load)
{
    vgg_args a;
    char path[4096];
    int rc = read_args(c, &a);
    if (!rc) rc = check_input(m, first, &a);
    if (!rc && load) rc = weights_path(s, &a, path, sizeof path);
    if (!rc && load && path[0]) rc = cnn_keras_h5_load_layers(m, path, first, VGG_LAYERS);
    return rc;
}

int cnn_spec_vgg16_group(const spec_call *c, int first, cnn_layer_group *g)
{
    vgg_args a;
    int rc = read_args(c, &a);
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", rc ? "vgg16" : a.name);
    snprintf(g->type, sizeof g->type, "Functional");
    g->first = first;
    g->count = VGG_LAYERS;
    return rc;
}

/* ---------------------------------------------------------------- the public side */

int cnn_spec_set_pretrained(cnn_spec *s, const char *weights)
{
    if (!s || !weights || !*weights || strlen(weights) >= sizeof s->pretrained)
        return cnn_fail(CNN_ERR_INVALID, "pretrained weights: expected none, imagenet or a file name");
    snprintf(s->pretrained, sizeof s->pretrained, "%s", weights);
    return CNN_OK;
}

const char *cnn_spec_pretrained(const cnn_spec *s, char *buf, size_t cap)
{
    vgg_args a;
    for (int i = 0; i < s->nlayers; i++) {
        if (!cnn_spec_is_vgg16(s->layers[i].name) || read_args(&s->layers[i], &a)) continue;
        const char *w = s->pretrained[0] ? s->pretrained : a.weights;
        snprintf(buf, cap, "%s", !w[0] || !strcmp(w, "none") ? "none" : w);
        return buf;
    }
    return NULL;
}

int cnn_spec_check_pretrained(const cnn_spec *s)
{
    vgg_args a;
    char path[4096];
    for (int i = 0; i < s->nlayers; i++) {
        if (!cnn_spec_is_vgg16(s->layers[i].name)) continue;
        int rc = read_args(&s->layers[i], &a);
        if (!rc) rc = weights_path(s, &a, path, sizeof path);
        if (rc) return cnn_fail_context("%s:%d:%d: ", s->origin, s->layers[i].line, s->layers[i].col);
    }
    return CNN_OK;
}
