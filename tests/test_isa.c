/* The kernel paths of kernels/isa.h on this machine: choosing them (names, errors), the peak microbenchmark,
 * and for every path the machine has, bit-identical results for 1 and 2 threads and across paths of whole
 * models (the study's Model_1 and a small model with every convolution kind) trained a few steps, their
 * parameters compared byte for byte. (Each path's GEMM is checked in test_gemm.c.) */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/isa.h"

static void test_select(void **state)
{
    (void)state;
    const char *start = cnn_isa_name();
    assert_true(!strcmp(start, "avx512") || !strcmp(start, "avx2") || !strcmp(start, "generic"));
    tu_assert_error(cnn_set_isa("sse9"), CNN_ERR_INVALID, "unknown kernel path 'sse9' (expected auto");
    assert_string_equal(cnn_isa_name(), start); /* a failure changes nothing */
    assert_true(cnn_isa_supported(CNN_ISA_GENERIC));
    assert_false(cnn_isa_supported(CNN_ISA_COUNT));
    for (int i = 0; i < CNN_ISA_COUNT; i++) {
        const int rc = cnn_set_isa(cnn_isa_label((cnn_isa)i));
        if (cnn_isa_supported((cnn_isa)i)) {
            assert_int_equal(rc, 0);
            assert_string_equal(cnn_isa_name(), cnn_isa_label((cnn_isa)i));
        } else {
            tu_assert_error(rc, CNN_ERR_INVALID, "which this CPU lacks");
        }
    }
    /* auto is the widest path the CPU has */
    assert_int_equal(cnn_set_isa("auto"), 0);
    const cnn_isa best = cnn_isa_supported(CNN_ISA_AVX512) ? CNN_ISA_AVX512
                         : cnn_isa_supported(CNN_ISA_AVX2) ? CNN_ISA_AVX2
                                                           : CNN_ISA_GENERIC;
    assert_string_equal(cnn_isa_name(), cnn_isa_label(best));
    cnn_isa list[CNN_ISA_COUNT];
    const int n = cnn_isa_list(list);
    assert_true(n >= 1 && list[0] == CNN_ISA_GENERIC && list[n - 1] == best);
    assert_int_equal(cnn_isa_check(), 0);
}

/* The peak microbenchmark runs on every path and gives a rate (its value is machine-dependent). */
static void test_peak(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p);
    for (int k = 0; k < np; k++) {
        assert_int_equal(cnn_isa_use(p[k]), 0);
        const double peak = cnn_fma_peak_gflops();
        assert_true(isfinite(peak) && peak > 0.1);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* Every convolution kind: a thin first convolution (9 taps), gathered ones with and without padding and
 * stride, a separable and a depthwise one, then Dense. */
static const char *const CONV_SPEC =
    "model: small_conv\n"
    "input: (16, 16, 1)\n"
    "layers:\n"
    "    Conv2D(8, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
    "    Conv2D(16, kernel_size=3, strides=2, activation=\"relu\")\n"
    "    SeparableConv2D(24, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
    "    DepthwiseConv2D(kernel_size=3, activation=\"relu\")\n"
    "    MaxPooling2D(2, strides=2)\n"
    "    Flatten()\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\n";

/* The parameters of spec s after `steps` training steps on a fixed batch of n, at `threads` threads. */
static float *train(const cnn_spec *s, int n, int steps, int threads, size_t *count)
{
    cnn_set_threads(threads);
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    int h, w, c;
    cnn_spec_input_shape(s, &h, &w, &c);
    const size_t in = (size_t)h * w * c;
    float *x = calloc((size_t)n * in, sizeof(float));
    int32_t *y = calloc((size_t)n, sizeof(int32_t));
    assert_non_null(y);
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)n * in; i++) x[i] = cnn_rng_uniform(8, 1, i);
    for (int i = 0; i < n; i++) y[i] = i % 10;
    for (int k = 0; k < steps; k++) {
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(m, x, y, n, &loss, &correct), 0);
        assert_true(isfinite(loss));
    }
    *count = cnn_model_num_params(m, 0);
    float *p = malloc(sizeof(float) * *count);
    assert_non_null(p);
    memcpy(p, cnn_model_params(m), sizeof(float) * *count);
    cnn_model_free(m);
    free(x), free(y);
    return p;
}

/* Model s trained with 1 and with 2 threads, on every path: the same bytes, on every path (the GEMM kernels
 * round each multiply-add once on every path; the other loops are the same C without fused multiply-adds). */
static void check_model_threads(cnn_spec *s, int n, int steps)
{
    cnn_isa p[CNN_ISA_COUNT];
    const int np = cnn_isa_list(p), keep = cnn_get_threads();
    float *at[CNN_ISA_COUNT] = {NULL};
    size_t count = 0;
    for (int k = 0; k < np; k++) {
        assert_int_equal(cnn_isa_use(p[k]), 0);
        size_t n1, n2;
        float *one = train(s, n, steps, 1, &n1), *two = train(s, n, steps, 2, &n2);
        assert_int_equal(n1, n2);
        if (memcmp(one, two, sizeof(float) * n1))
            fail_msg("%s: parameters after %d steps differ between 1 and 2 threads", cnn_isa_label(p[k]),
                     steps);
        at[p[k]] = one, count = n1;
        free(two);
    }
    for (int k = 1; k < CNN_ISA_COUNT; k++)
        if (at[k] && memcmp(at[k], at[CNN_ISA_GENERIC], sizeof(float) * count))
            fail_msg("%s: parameters after %d steps differ from the portable path's",
                     cnn_isa_label((cnn_isa)k), steps);
    for (int k = 0; k < CNN_ISA_COUNT; k++) free(at[k]);
    cnn_set_threads(keep);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

static void test_model_1_threads(void **state)
{
    (void)state;
    const char *paths_[] = {getenv("CNN_MODEL_1_SPEC"), "models/seed/Model_1.spec",
                            "../models/seed/Model_1.spec"};
    cnn_spec *s = NULL;
    for (size_t i = 0; i < 3 && !s; i++)
        if (paths_[i]) s = cnn_spec_load(paths_[i]);
    if (!s)
        fail_msg("models/seed/Model_1.spec not found (run from the repository root or set CNN_MODEL_1_SPEC)");
    check_model_threads(s, 256, 3);
    cnn_spec_free(s);
}

static void test_conv_model_threads(void **state)
{
    (void)state;
    cnn_spec *s = cnn_spec_parse(CONV_SPEC, "small_conv.spec");
    assert_non_null(s);
    check_model_threads(s, 70, 3);
    cnn_spec_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_model_1_threads),
        cmocka_unit_test(test_conv_model_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
