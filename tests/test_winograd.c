/* Winograd F(2x2, 3x3) (kernels/winograd.h, chosen by layers/conv2d.c): forward and dx against the direct
 * path on every kernel path this CPU has, with edge tiles (odd sizes), channel counts that are not multiples
 * of 16, batches 1 and 3, 'same' and 'valid' padding; the same with BF16 products; bit-identical results for
 * 1 and 2 threads; the selection rule and CNNLAB_CONV. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnnlab.h"
#include "gradcheck.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"
#include "kernels/winograd.h"
#include "probe.h"
#include "util.h"

/* The tolerance, relative to S = sum over the output's terms of |x w| (plus |b|): both algorithms sum the
 * same cin * 9 products, each with relative rounding of order sqrt(terms) * eps in practice (the GEMM's
 * blocks). Winograd's transforms add a few roundings per value (B^T d B sums 4 inputs, G g G^T 9 taps, A^T m
 * A 9 products), and its transform-domain terms are up to 4 x 9/4 x 9 = 81 times the size of the direct ones
 * before they cancel; with eps = 6e-8 and at most 80 x 9 terms, 81 x 4 x sqrt(720) x eps = 2.1e-3 bounds it
 * loosely, and the errors seen here are about 1e-6 of S. A wrong tap, tile or transform errs by O(S). */
static const double TOL = 5e-5;

typedef struct wino_case {
    int h, w, cin, cout, n;
    const char *opts; /* padding and activation */
} wino_case;

/* S for every output element of the probe's layer (no activation: the sum of |terms| of the pre-activation).
 */
static void abs_sums(const probe *p, const wino_case *t, int same, double *s)
{
    const cnn_layer *l = p->l;
    const int oh = l->out.h, ow = l->out.w, pt = same, pl = same;
    const float *k = cnn_layer_param(l, 0), *b = l->nparams > 1 ? cnn_layer_param(l, 1) : NULL;
    for (int i = 0; i < t->n; i++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int f = 0; f < t->cout; f++) {
                    double a = b ? fabs(b[f]) : 0.0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int iy = oy - pt + ky, ix = ox - pl + kx;
                            if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                            const float *px = p->x + (((size_t)i * t->h + iy) * t->w + ix) * t->cin;
                            for (int c = 0; c < t->cin; c++)
                                a += fabs(px[c] * k[((ky * 3 + kx) * t->cin + c) * t->cout + f]);
                        }
                    s[(((size_t)i * oh + oy) * ow + ox) * t->cout + f] = a;
                }
}

/* With the BF16 products (Winograd's V and U rounded to BF16, against the FP32 direct path): each
 * transform-domain product is off by up to 2^-8 of itself, and those are up to 81 times the direct terms
 * before they cancel, so 81 x 2^-8 x S = 0.32 S bounds it. Seen here: 1.0e-3 (y), 2.4e-3 (dx) and 9.3e-3 (dW,
 * direct in BF16 on one side, from a dy whose ReLU mask differs where y is near 0). What this catches is a
 * pair or panel of the BF16 layout read from the wrong place: an error of O(S). */
static const double TOL_BF16 = 2e-2;

static double g_tol = TOL, g_worst = 0; /* the largest |a - b| / scale seen */

static void assert_within(const float *a, const float *b, const double *scale, double s, size_t n,
                          const char *what, const wino_case *t)
{
    for (size_t i = 0; i < n; i++) {
        const double bound = g_tol * (scale ? scale[i] : s), err = fabs((double)a[i] - b[i]);
        if (err / (scale ? scale[i] : s) > g_worst) g_worst = err / (scale ? scale[i] : s);
        if (!(fabs((double)a[i] - b[i]) <= bound))
            fail_msg("%s %dx%dx%d->%d n=%d (%s) [%zu] on %s: winograd %.9g, direct %.9g, bound %.3g", what,
                     t->h, t->w, t->cin, t->cout, t->n, t->opts, i, cnn_isa_name(), a[i], b[i], bound);
    }
}

/* One case: forward, then backward with dx, by both algorithms, the same parameters and data; Winograd's
 * products in BF16 where bf16 (the direct path's always FP32). dx's scale is the largest of |dy| |w| summed
 * over one input pixel's terms, bounded by 9 * cout * max|dy| max|w| <= 9 * cout (values in [-1, 1)). */
static void check_case_in(const wino_case *t, int bf16)
{
    char opts[160];
    snprintf(opts, sizeof opts, "filters=%d, kernel_size=3, %s", t->cout, t->opts);
    const int same = strstr(t->opts, "same") != NULL;
    probe w, d;
    cnn_wino_allow(2); /* also the shapes the rule leaves direct (block5's 2x2 and 3x3) */
    probe_open(&w, "Conv2D", opts, t->h, t->w, t->cin, t->n);
    if (!w.l->ops->algorithm || !w.l->ops->algorithm(w.l)) fail_msg("%s: not winograd", opts);
    cnn_gemm_bf16_set(bf16);
    probe_step(&w, 1);
    cnn_gemm_bf16_set(0);
    g_tol = bf16 ? TOL_BF16 : TOL;
    cnn_wino_allow(0);
    probe_open(&d, "Conv2D", opts, t->h, t->w, t->cin, t->n);
    assert_null(d.l->ops->algorithm(d.l));
    probe_step(&d, 1);
    double *s = calloc(w.ny, sizeof(double));
    assert_non_null(s);
    abs_sums(&w, t, same, s);
    assert_within(w.y, d.y, s, 0, w.ny, "y", t);
    assert_within(w.dx, d.dx, NULL, 9.0 * t->cout, w.nx, "dx", t);
    /* dW is direct on both: it sums the same dy (the activation gradient of nearly the same y). */
    assert_within(w.m->grads, d.m->grads, NULL, (double)t->n * t->h * t->w, w.m->nparams, "dW", t);
    free(s);
    probe_close(&w);
    probe_close(&d);
    cnn_wino_allow(-1);
    g_tol = TOL;
}

static void check_case(const wino_case *t)
{
    check_case_in(t, 0);
}

static const wino_case CASES[] = {
    {7, 5, 67, 70, 3, "padding=same, activation=relu"}, /* edge tiles both ways, channels not x16 */
    {9, 8, 64, 80, 1, "padding=valid"},                 /* valid: odd output, dx 'full' */
    {6, 6, 66, 64, 3, "padding=same, activation=gelu"}, /* kept pre-activation */
    {2, 2, 72, 65, 3, "padding=same, activation=relu"}, /* one tile per image (as VGG16's block5 at 32x32) */
    {3, 3, 64, 64, 1, "padding=same, use_bias=false"},  /* (forced) as block5 at 56x56: three edge tiles */
    {5, 4, 64, 64, 3, "padding=valid"},                 /* (forced) a 3x2 output: edge tiles, dx 'full' */
};

static void test_matches_direct_on_every_path(void **state)
{
    (void)state;
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i]);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* cnn_wino_input_bf16 against the FP32 input transform then cnn_bf16_round: the same bits, for cin
 * channels (a tail past the last 16 where cin is not a multiple), nothing written past them. */
static void input_bf16_bits(int cin)
{
    enum { VS = 128 };
    float *x = tu_floats(16 * (size_t)cin), *v = tu_floats(16 * VS);
    uint16_t want[16 * VS], got[16 * 2 * VS];
    const float *src[16];
    tu_fill_uniform(x, 16 * (size_t)cin, 31, 1);
    for (int k = 0; k < 16; k++) src[k] = x + k * cin;
    cnn_wino_tiles_avx512.input(src, cin, v, VS);
    for (int k = 0; k < 16; k++) cnn_bf16_round(v + k * VS, (size_t)cin, want + k * VS);
    memset(got, 0xab, sizeof got);
    cnn_wino_input_bf16(src, cin, got, 2 * VS);
    for (int k = 0; k < 16; k++) {
        assert_memory_equal(got + 2 * k * VS, want + k * VS, sizeof(uint16_t) * (size_t)cin);
        assert_int_equal(got[2 * k * VS + cin], 0xabab);
    }
    free(x), free(v);
}

/* --precision bf16 (where the CPU has AVX512_BF16): the transformed kernel rounded and paired once, each
 * chunk's V rounded in place (kernels/winograd.c), against FP32 direct; outputs, dx and dW bit-identical for
 * 1 and 2 threads over many chunks. (That these are the bits of B rounded per call is test_bf16's
 * test_gemm_paired.) */
static void test_bf16(void **state)
{
    (void)state;
    if (cnn_bf16_check()) {
        print_message("  skipped: %s\n", cnn_errmsg());
        skip();
    }
    g_worst = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case_in(&CASES[i], 1);
    input_bf16_bits(16), input_bf16_bits(37), input_bf16_bits(64);
    print_message("  largest error against FP32 direct: %.2g of its scale\n", g_worst);
    cnn_wino_allow(1);
    cnn_wino_set_budget(64 * 1024);
    cnn_gemm_bf16_set(1);
    probe_assert_threads_bit_identical("Conv2D", "filters=70, kernel_size=3, padding=same, activation=relu",
                                       9, 7, 67, 3, 1);
    cnn_gemm_bf16_set(0);
    cnn_wino_set_budget(0);
    cnn_wino_allow(-1);
}

/* Finite differences through Winograd's forward and dx (forced on small layers, cnn_wino_allow(2), so that
 * every parameter can be nudged), trainable and frozen, with edge tiles; tolerance as test_conv's. */
static void test_gradients(void **state)
{
    (void)state;
    cnn_wino_allow(2);
    gc_assert_layer("Conv2D", "filters=4, kernel_size=3, padding=same, activation=tanh", 5, 5, 3, 2, 1, 2e-3);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, padding=valid", 6, 5, 2, 2, 1, 2e-3);
    gc_assert_layer("Conv2D", "filters=3, kernel_size=3, padding=same, activation=tanh, trainable=false", 5,
                    6, 4, 1, 1, 2e-3);
    cnn_wino_allow(-1);
}

/* Many chunks (a small chunk budget) so that both threads work: outputs, dx and dW bit-identical for 1 and 2
 * threads, trainable and frozen, on every path. */
static void test_threads_bit_identical(void **state)
{
    (void)state;
    cnn_wino_allow(1);
    cnn_wino_set_budget(64 * 1024);
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        probe_assert_threads_bit_identical(
            "Conv2D", "filters=70, kernel_size=3, padding=same, activation=relu", 9, 7, 67, 3, 1);
        probe_assert_threads_bit_identical("Conv2D", "filters=64, kernel_size=3, trainable=false", 8, 9, 64,
                                           3, 1);
    }
    cnn_wino_set_budget(0);
    cnn_wino_allow(-1);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* The chunking (tiles per chunk) changes no bit: the GEMM's sums do not depend on the rows a call covers. */
static void test_chunks_change_no_bit(void **state)
{
    (void)state;
    const char *opts = "filters=70, kernel_size=3, padding=same, activation=relu";
    probe a, b;
    cnn_wino_allow(1);
    probe_open(&a, "Conv2D", opts, 9, 7, 67, 3);
    probe_step(&a, 1);
    cnn_wino_set_budget(32 * 1024);
    probe_open(&b, "Conv2D", opts, 9, 7, 67, 3);
    probe_step(&b, 1);
    assert_memory_equal(a.y, b.y, sizeof(float) * a.ny);
    assert_memory_equal(a.dx, b.dx, sizeof(float) * a.nx);
    cnn_wino_set_budget(0);
    cnn_wino_allow(-1);
    probe_close(&a);
    probe_close(&b);
}

/* The name of the algorithm layer 0 of a model on h x w x c with `opts` runs. */
static const char *algorithm(const char *opts, int h, int w, int c)
{
    static char name[32];
    cnn_model *m = cnn_model_create("rule", h, w, c);
    if (cnn_model_add(m, "Conv2D", opts) || cnn_model_build(m, 1)) fail_msg("%s: %s", opts, cnn_errmsg());
    const char *a = m->layers[0].ops->algorithm(&m->layers[0]);
    snprintf(name, sizeof name, "%s", a ? a : "direct");
    cnn_model_free(m);
    return name;
}

static void test_selection_rule(void **state)
{
    (void)state;
    cnn_wino_allow(-1);
    unsetenv("CNNLAB_CONV");
    /* VGG16's block3_conv2 at 56x56 input, its block4 at 32x32 */
    assert_string_equal(algorithm("filters=256, kernel_size=3, padding=same, activation=relu", 14, 14, 256),
                        "winograd");
    assert_string_equal(algorithm("filters=512, kernel_size=3, padding=same", 4, 4, 512), "winograd");
    /* its block5 at 32x32 (2x2: one tile per image) and 7x7 outputs (16 tiles for 49) */
    assert_string_equal(algorithm("filters=512, kernel_size=3, padding=same", 2, 2, 512), "winograd");
    assert_string_equal(algorithm("filters=256, kernel_size=3, padding=same", 7, 7, 256), "winograd");
    /* outputs that waste too much of their tiles: block5 at 56x56 (3x3), 3x3 by valid padding, 1x2 */
    assert_string_equal(algorithm("filters=512, kernel_size=3, padding=same", 3, 3, 512), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, padding=valid", 5, 5, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, padding=same", 1, 2, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, padding=valid", 8, 8, 64), "winograd");
    /* too few channels, other kernels, strides, dilations */
    assert_string_equal(algorithm("filters=32, kernel_size=3, padding=same", 14, 14, 32), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, padding=same", 14, 14, 32), "direct");
    assert_string_equal(algorithm("filters=32, kernel_size=3, padding=same", 14, 14, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, padding=same", 32, 32, 3), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, strides=2", 14, 14, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=3, dilation_rate=2", 14, 14, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=5, padding=same", 14, 14, 64), "direct");
    assert_string_equal(algorithm("filters=64, kernel_size=1", 14, 14, 64), "direct");
}

/* The specs in dir whose models (not VGG16's) have a layer on Winograd, appended to list as " name". */
static void scan_specs(const char *dir, char *list, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot open (run from the repository root)", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        const size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".spec")) continue;
        char path[512], buf[64];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cnn_spec *sp = cnn_spec_load(path);
        if (!sp) fail_msg("%s", cnn_errmsg());
        if (!cnn_spec_pretrained(sp, buf, sizeof buf)) {
            cnn_model *m = cnn_spec_build_model(sp, 1);
            if (!m) fail_msg("%s: %s", path, cnn_errmsg());
            int uses = 0;
            for (int i = 0; i < m->nlayers; i++)
                uses += m->layers[i].ops->algorithm && m->layers[i].ops->algorithm(&m->layers[i]);
            if (uses) snprintf(list + strlen(list), cap - strlen(list), " %.*s", (int)(len - 5), e->d_name);
            cnn_model_free(m);
        }
        cnn_spec_free(sp);
    }
    closedir(d);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The study's models (other than VGG16's) whose results change in the last bits with Winograd: exactly these.
 * A new spec with a wide 3x3 layer shows up here, to be added knowingly. */
static void test_study_models_on_winograd(void **state)
{
    (void)state;
    static const char *const EXPECTED =
        "Model_11 Model_11_aug Model_11_aug2 Model_11_igen Model_11_igen_f Model_3";
    char list[4096] = "";
    cnn_wino_allow(1);
    scan_specs("models/seed", list, sizeof list);
    scan_specs("models/extra", list, sizeof list);
    cnn_wino_allow(-1);
    const char *names[64];
    int k = 0;
    for (char *t = strtok(list, " "); t && k < 64; t = strtok(NULL, " ")) names[k++] = t;
    qsort(names, (size_t)k, sizeof names[0], by_name);
    char sorted[4096] = "";
    for (int i = 0; i < k; i++)
        snprintf(sorted + strlen(sorted), sizeof sorted - strlen(sorted), "%s%s", i ? " " : "", names[i]);
    assert_string_equal(sorted, EXPECTED);
}

static void test_environment_switch(void **state)
{
    (void)state;
    const char *opts = "filters=64, kernel_size=3, padding=same";
    setenv("CNNLAB_CONV", "direct", 1);
    cnn_wino_allow(-1);
    assert_string_equal(algorithm(opts, 8, 8, 64), "direct");
    setenv("CNNLAB_CONV", "auto", 1);
    cnn_wino_allow(-1);
    assert_string_equal(algorithm(opts, 8, 8, 64), "winograd");
    setenv("CNNLAB_CONV", "fast", 1);
    cnn_wino_allow(-1);
    cnn_model *m = cnn_model_create("env", 8, 8, 64);
    assert_int_equal(cnn_model_add(m, "Conv2D", opts), 0);
    assert_true(cnn_model_build(m, 1) < 0);
    assert_non_null(strstr(cnn_errmsg(), "CNNLAB_CONV=fast"));
    assert_non_null(strstr(cnn_errmsg(), "expected auto or direct"));
    cnn_model_free(m);
    unsetenv("CNNLAB_CONV");
    cnn_wino_allow(-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_direct_on_every_path),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_chunks_change_no_bit),
        cmocka_unit_test(test_selection_rule),
        cmocka_unit_test(test_study_models_on_winograd),
        cmocka_unit_test(test_environment_switch),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
