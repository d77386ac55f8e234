/* A frozen Conv2D's input gradient as a convolution (conv2d.c, dx_conv): for stride 1 and enough input
 * channels a frozen layer convolves the padded dy with the flipped kernel instead of writing patch gradients
 * for col2im. Checked against a double-precision reference and against the trainable layer's dx (col2im)
 * within 1e-5 of dx's scale, for both paddings, odd channel counts, 1x1, 3x3, 5x5 and uneven kernels,
 * batches 1, 3 and 64, on every kernel path this CPU has; bit-identical for 1 and 2 threads and across the
 * paths (the GEMMs sum in the same order everywhere). Deep layers (>= CNN_CONV_DEEP_CIN input channels) take
 * this path trainable or not, with packed kernels: their two dx agree bit for bit. And the promise to the
 * study's recorded results: no model in models/seed or models/extra but the VGG16 ones has a layer on either
 * new path (dx_conv, or the deep layers' plans of conv_common.h), so their bits stay as they were. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/isa.h"
#include "layers/conv_common.h"
#include "probe.h"
#include "util.h"

typedef struct frozen_case {
    int h, w, cin, n;
    int kh, kw, same, filters;
    const char *extra; /* further options */
} frozen_case;

/* Layers with fewer input channels, strides or dilation keep col2im (their dx is bit-identical to the
 * trainable layer's: test_conv's test_backward_without_dx_and_frozen); so do 1x1 kernels, whose dx already is
 * one GEMM without patches. */
static const frozen_case CASES[] = {
    {6, 6, 32, 3, 3, 3, 1, 16, "activation=relu"},
    {7, 5, 33, 1, 3, 3, 1, 5, "activation=relu"},
    {7, 6, 37, 3, 3, 3, 0, 33, "use_bias=false"},
    {8, 7, 32, 3, 5, 5, 1, 7, "activation=tanh"},
    {8, 8, 35, 1, 5, 5, 0, 64, "activation=relu"},
    {6, 7, 40, 3, 2, 3, 1, 9, "activation=gelu"}, /* even height: TensorFlow's padding split */
    {4, 4, 64, 64, 3, 3, 1, 64, "activation=relu"},
    {2, 2, 48, 64, 3, 3, 1, 19, "activation=relu"}, /* VGG16 block5 at 32x32: every tap but the centre pads */
    {5, 5, 47, 64, 1, 1, 0, 21, "activation=relu"},
    {5, 4, 33, 3, 1, 1, 1, 8, ""},
    /* deep layers (conv_common.h): packed kernels, and dx as a convolution when trainable too */
    {2, 2, 256, 64, 3, 3, 1, 70, "activation=relu"},
    {4, 3, 260, 5, 3, 3, 0, 64, "use_bias=false"},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

static void case_options(const frozen_case *t, int frozen, char *buf, size_t cap)
{
    snprintf(buf, cap, "filters=%d, kernel_size=(%d,%d), padding=%s, trainable=%s%s%s", t->filters, t->kh,
             t->kw, t->same ? "same" : "valid", frozen ? "false" : "true", *t->extra ? ", " : "", t->extra);
}

/* dx (double) of the gradient dz of the pre-activation through the layer's kernel, from Keras's rules (the
 * padding before: half the total, the odd pixel after), written independently of conv2d.c. */
static void reference_dx(const frozen_case *t, const float *k, const float *dz, double *dx)
{
    const int oh = t->same ? t->h : t->h - t->kh + 1, ow = t->same ? t->w : t->w - t->kw + 1;
    const int pt = t->same ? (t->kh - 1) / 2 : 0, pl = t->same ? (t->kw - 1) / 2 : 0, F = t->filters;
    memset(dx, 0, sizeof(double) * (size_t)t->n * t->h * t->w * t->cin);
    for (int i = 0; i < t->n; i++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ky = 0; ky < t->kh; ky++)
                    for (int kx = 0; kx < t->kw; kx++) {
                        const int iy = oy - pt + ky, ix = ox - pl + kx;
                        if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                        const float *d = dz + (((size_t)i * oh + oy) * ow + ox) * F;
                        double *o = dx + (((size_t)i * t->h + iy) * t->w + ix) * t->cin;
                        for (int c = 0; c < t->cin; c++)
                            for (int f = 0; f < F; f++)
                                o[c] += (double)d[f] * k[(((size_t)ky * t->kw + kx) * t->cin + c) * F + f];
                    }
}

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* Every value within tol * (the largest reference value) of the reference. */
static void assert_near(const float *a, const double *want, size_t n, double tol, const char *what)
{
    const double scale = fmax(max_abs(want, n), 1e-30);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - want[i]) <= tol * scale))
            fail_msg("%s: dx[%zu] = %.9g, expected %.9g (scale %.3g)", what, i, a[i], want[i], scale);
}

/* One case: the frozen layer's dx against the reference (from the dz its own backward left in dy) and against
 * the trainable layer's dx. Returns whether the two layers' dx differ in any bit (the new path's sums run in
 * another order). */
static int check_case(const frozen_case *t)
{
    char frozen_opts[200], trained_opts[200];
    case_options(t, 1, frozen_opts, sizeof frozen_opts);
    case_options(t, 0, trained_opts, sizeof trained_opts);
    probe frozen, trained;
    probe_open(&frozen, "Conv2D", frozen_opts, t->h, t->w, t->cin, t->n);
    probe_open(&trained, "Conv2D", trained_opts, t->h, t->w, t->cin, t->n);
    assert_int_equal(frozen.l->trainable, 0);
    probe_step(&frozen, 1);
    probe_step(&trained, 1);
    assert_memory_equal(frozen.dy, trained.dy, sizeof(float) * frozen.ny); /* the same dz */
    double *want = malloc(sizeof(double) * frozen.nx);
    assert_non_null(want);
    reference_dx(t, cnn_layer_param(frozen.l, 0), frozen.dy, want);
    assert_near(frozen.dx, want, frozen.nx, 1e-5, frozen_opts);
    assert_near(trained.dx, want, trained.nx, 1e-5, trained_opts);
    for (size_t j = 0; j < frozen.m->nparams; j++) assert_true(frozen.m->grads[j] == 0.0f);
    const int differ = memcmp(frozen.dx, trained.dx, sizeof(float) * frozen.nx) != 0;
    free(want);
    probe_close(&frozen);
    probe_close(&trained);
    return differ;
}

static void test_frozen_dx_matches_trainable(void **state)
{
    (void)state;
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        int differ = 0;
        for (int i = 0; i < NCASES; i++) {
            const int d = check_case(&CASES[i]);
            /* a 1x1 kernel keeps its one GEMM, and a deep layer takes dx_conv trainable or not: the same
             * bits frozen or not */
            if ((CASES[i].kh == 1 && CASES[i].kw == 1) || CASES[i].cin >= CNN_CONV_DEEP_CIN) assert_false(d);
            differ += d;
        }
        /* the frozen layers with taps took the other path (any sum order change shows in some bit) */
        assert_true(differ > 0);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* The frozen layer's dx is the same for 1 and 2 threads on every path, and the same on every path. */
static void test_frozen_dx_bit_identical(void **state)
{
    (void)state;
    const frozen_case *t = &CASES[6]; /* batch 64: 32 units, several per thread */
    char opts[200];
    case_options(t, 1, opts, sizeof opts);
    float *first = NULL;
    size_t nx = 0;
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        for (int i = 0; i < NCASES; i++) {
            case_options(&CASES[i], 1, opts, sizeof opts);
            probe_assert_threads_bit_identical("Conv2D", opts, CASES[i].h, CASES[i].w, CASES[i].cin,
                                               CASES[i].n, 1);
        }
        case_options(t, 1, opts, sizeof opts);
        probe p;
        probe_open(&p, "Conv2D", opts, t->h, t->w, t->cin, t->n);
        probe_step(&p, 1);
        if (!first) {
            nx = p.nx;
            first = probe_floats(nx);
            memcpy(first, p.dx, sizeof(float) * nx);
        } else {
            assert_memory_equal(first, p.dx, sizeof(float) * nx);
        }
        probe_close(&p);
    }
    free(first);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* What the layers of one spec's model use: Conv2D layers whose backward computes dx while frozen (after the
 * first trained layer: step.c runs no backward before it), and deep Conv2D layers. */
typedef struct spec_use {
    int frozen_dx, deep;
} spec_use;

static spec_use model_use(const cnn_model *m)
{
    spec_use u = {0, 0};
    int first = m->nlayers;
    for (int i = m->nlayers - 1; i >= 0; i--)
        if (m->layers[i].trainable && m->layers[i].nparams) first = i;
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        if (strcmp(l->ops->type, "Conv2D")) continue;
        u.frozen_dx += i > first && !l->trainable;
        u.deep += l->in.c >= CNN_CONV_DEEP_CIN;
    }
    return u;
}

/* Adds the use of every spec in dir to *vgg (specs with a VGG16 base, built from Keras's random
 * initialisation) or *other; returns how many specs it read. */
static int scan_specs(const char *dir, spec_use *vgg, spec_use *other)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot open (run from the repository root)", dir);
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".spec")) continue;
        char path[512], buf[64];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cnn_spec *s = cnn_spec_load(path);
        if (!s) fail_msg("%s", cnn_errmsg());
        const int is_vgg = cnn_spec_pretrained(s, buf, sizeof buf) != NULL;
        if (is_vgg) assert_int_equal(cnn_spec_set_pretrained(s, "none"), 0);
        cnn_model *m = cnn_spec_build_model(s, 1);
        if (!m) fail_msg("%s: %s", path, cnn_errmsg());
        const spec_use u = model_use(m);
        spec_use *sum = is_vgg ? vgg : other;
        sum->frozen_dx += u.frozen_dx, sum->deep += u.deep;
        if (!is_vgg && (u.frozen_dx || u.deep))
            fail_msg("%s: %d frozen Conv2D layers compute dx, %d have %d or more input channels: its results "
                     "would no longer be those recorded",
                     path, u.frozen_dx, u.deep, CNN_CONV_DEEP_CIN);
        cnn_model_free(m);
        cnn_spec_free(s);
        count++;
    }
    closedir(d);
    return count;
}

static void test_study_models_keep_their_paths(void **state)
{
    (void)state;
    spec_use vgg = {0, 0}, other = {0, 0};
    const int specs = scan_specs("models/seed", &vgg, &other) + scan_specs("models/extra", &vgg, &other);
    assert_true(specs >= 20);
    /* the VGG16 models do take both paths (blocks 1-4 frozen behind the trainable gray->RGB layer) */
    assert_true(vgg.frozen_dx > 0 && vgg.deep > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_dx_matches_trainable),
        cmocka_unit_test(test_frozen_dx_bit_identical),
        cmocka_unit_test(test_study_models_keep_their_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
