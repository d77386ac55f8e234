/* Internal view of a parsed spec: calls with their source positions. */
#ifndef CNN_SPEC_SPEC_H
#define CNN_SPEC_SPEC_H

#include "cnnlab.h"

enum { SPEC_MAX_LAYERS = 128, SPEC_MAX_CALLBACKS = 16, SPEC_MAX_ARGS = 24, SPEC_MAX_LINE = 1000 };
enum { SPEC_MAX_FILE = 1 << 20, SPEC_MAX_AUGMENT = 4 };

/* One call such as Conv2D(32, kernel_size=3): its name, its arguments rewritten as "key=value, ..." and
 * where each argument came from. */
typedef struct spec_call {
    char name[48];
    char args[512];
    int line, col;
    int nargs;
    int arg_offset[SPEC_MAX_ARGS]; /* start of argument i in args */
    int arg_col[SPEC_MAX_ARGS];    /* its column in the file */
} spec_call;

struct cnn_spec {
    char *text;
    char origin[256];
    char name[64];
    int h, w, c, has_input;
    spec_call layers[SPEC_MAX_LAYERS];
    int nlayers;
    spec_call optimizer, fit, loss;
    int has_optimizer, has_fit, has_loss;
    spec_call callbacks[SPEC_MAX_CALLBACKS];
    int ncallbacks;
    char pretrained[256];                /* cnn_spec_set_pretrained's override ("" none given) */
    spec_call augment[SPEC_MAX_AUGMENT]; /* the augment: section (spec_augment.c) */
    int naugment;
    char initial_weights[64]; /* initial_weights: the model whose trained weights it starts from, or "" */
};

typedef enum { SECTION_NONE, SECTION_LAYERS, SECTION_CALLBACKS, SECTION_AUGMENT } spec_section;

typedef struct spec_parser {
    char origin[256];
    spec_section section;
    char pending[SPEC_MAX_LINE * 4]; /* a call that spans lines, joined */
    size_t pending_len;
    int pending_line, pending_col, depth;
} spec_parser;

/* Column (1-based) in the file of the argument that the last option error points at. */
int cnn_spec_call_error_col(const spec_call *c);
/* Checks the fit line's options. */
int cnn_spec_fit_check(const cnn_spec *s);
/* Checks the augment: section (names, options, combinations). */
int cnn_spec_augment_check(const cnn_spec *s);
/* Prefixes the current error with "origin:line:col: " for call c. */
int cnn_spec_fail_call(const cnn_spec *s, const spec_call *c);

/* VGG16(...) (spec_vgg16.c): a call that expands into the 18 layers of Keras's VGG16 base. */
int cnn_spec_is_vgg16(const char *type);
int cnn_spec_vgg16_layers(void);
/* Adds the base's layers for call c to m. */
int cnn_spec_vgg16_add(cnn_model *m, const spec_call *c);
/* After build: checks the base's input (layer first is its first layer) and, with load, loads its weights. */
int cnn_spec_vgg16_finish(const cnn_spec *s, const spec_call *c, cnn_model *m, int first, int load);
/* The group (one Keras layer) the base forms. */
int cnn_spec_vgg16_group(const spec_call *c, int first, cnn_layer_group *g);
/* Builds the model; load = 0 leaves pretrained bases at their random initialisation (checking a spec). */
cnn_model *cnn_spec_build(const cnn_spec *s, uint64_t seed, int load);
/* The checks of cnn_spec_build (layers, shapes, optimizer, loss, the VGG16 bases' inputs) without allocating
 * or initialising a parameter; *nparams: the model's parameter count. */
int cnn_spec_check_unbuilt(const cnn_spec *s, size_t *nparams);
/* cnn_spec_parse, but a model of more than max_params parameters is checked unbuilt (cnn_spec_check_unbuilt)
 * instead of built: building allocates and initialises every parameter, seconds for VGG16 under the
 * sanitizers, which would make the spec fuzz harness spend its time in calloc. 0: build always. */
cnn_spec *cnn_spec_parse_budget(const char *text, const char *origin, size_t max_params);

#endif
