/* The kernel paths of kernels/isa.h on this machine: choosing them (names, errors), each path's GEMM against
 * the portable one, in-place gathering against strided reading, and for every path the machine has,
 * bit-identical results for 1 and 2 threads: the GEMM alone, then whole models (the study's Model_1 and a
 * small model with every convolution kind) trained a few steps, their parameters compared byte for byte. */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"

static float *floats(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

static void fill(float *v, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) v[i] = cnn_rng_uniform(31, stream, i) * 2.0f - 1.0f;
}

/* The paths to check: every one this CPU has, the portable one always. */
static int paths(cnn_isa *out)
{
    int k = 0;
    for (int i = 0; i < CNN_ISA_COUNT; i++)
        if (cnn_isa_supported((cnn_isa)i)) out[k++] = (cnn_isa)i;
    return k;
}

static void use(cnn_isa isa)
{
    assert_int_equal(cnn_isa_use(isa), 0);
    assert_string_equal(cnn_isa_name(), cnn_isa_label(isa));
}

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
    assert_int_equal(cnn_isa_check(), 0);
}

/* Shapes with row, column (for each path's panel width: 8, 16, 64) and p-block (512) tails. */
static const int SHAPES[][3] = {{1, 1, 1},   {7, 9, 3},       {13, 17, 33},  {24, 64, 16},
                                {50, 70, 5}, {30, 130, 1030}, {97, 10, 600}, {6, 200, 64}};

/* C of every path against the portable path's C: the same sums in the same order, rounded differently. The
 * AVX2 and AVX-512 kernels both fuse every multiply-add in that order: their C is the same bit for bit. */
static void test_paths_against_generic(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = paths(p);
    for (size_t t = 0; t < sizeof SHAPES / sizeof SHAPES[0]; t++) {
        const int M = SHAPES[t][0], N = SHAPES[t][1], P = SHAPES[t][2];
        float *a = floats((size_t)M * P), *b = floats((size_t)P * N), *ref = floats((size_t)M * N),
              *c = floats((size_t)M * N), *fused = floats((size_t)M * N);
        fill(a, (size_t)M * P, 1);
        fill(b, (size_t)P * N, 2);
        for (int trans = 0; trans < 2; trans++) {
            const long sai = trans ? 1 : P, sap = trans ? M : 1;
            use(CNN_ISA_GENERIC);
            fill(ref, (size_t)M * N, 3);
            cnn_gemm(M, N, P, a, sai, sap, b, N, ref, N, 1);
            for (int k = 0; k < np; k++) {
                use(p[k]);
                fill(c, (size_t)M * N, 3);
                cnn_gemm(M, N, P, a, sai, sap, b, N, c, N, 1);
                if (p[k] == CNN_ISA_AVX2) memcpy(fused, c, sizeof(float) * (size_t)M * N);
                if (p[k] == CNN_ISA_AVX512 && cnn_isa_supported(CNN_ISA_AVX2))
                    assert_memory_equal(fused, c, sizeof(float) * (size_t)M * N);
                for (int i = 0; i < M * N; i++)
                    if (fabsf(c[i] - ref[i]) > 2e-6f * P)
                        fail_msg("%s %dx%dx%d trans %d: C[%d] = %.9g, generic %.9g", cnn_isa_label(p[k]), M,
                                 N, P, trans, i, c[i], ref[i]);
            }
        }
        free(a), free(b), free(ref), free(c), free(fused);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* Gathering A through offset tables that describe a strided layout is the strided GEMM, bit for bit. */
static void test_gather_is_strided(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = paths(p);
    enum { M = 29, N = 37, P = 45 };
    float *a = floats(M * P), *b = floats(P * N), *s = floats(M * N), *g = floats(M * N);
    int ri[M], po[P];
    for (int i = 0; i < M; i++) ri[i] = i * P;
    for (int q = 0; q < P; q++) po[q] = q;
    fill(a, M * P, 4);
    fill(b, P * N, 5);
    for (int k = 0; k < np; k++) {
        use(p[k]);
        cnn_gemm(M, N, P, a, P, 1, b, N, s, N, 0);
        cnn_gemm_gather(M, N, P, a, ri, po, b, N, g, N, 0);
        assert_memory_equal(s, g, sizeof(float) * M * N);
    }
    free(a), free(b), free(s), free(g);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* On every path the parallel GEMM equals the single-threaded one, at 1 and 2 threads. */
static void test_gemm_threads(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = paths(p), keep = cnn_get_threads();
    enum { M = 300, N = 70, P = 600 };
    float *a = floats(M * P), *b = floats(P * N), *one = floats(M * N), *two = floats(M * N),
          *serial = floats(M * N);
    fill(a, M * P, 6);
    fill(b, P * N, 7);
    for (int k = 0; k < np; k++) {
        use(p[k]);
        for (int trans = 0; trans < 2; trans++) {
            const long sai = trans ? 1 : P, sap = trans ? M : 1;
            cnn_set_threads(1);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, one, N, 0, NULL, NULL);
            cnn_set_threads(2);
            cnn_gemm_parallel(M, N, P, a, sai, sap, b, N, two, N, 0, NULL, NULL);
            cnn_gemm(M, N, P, a, sai, sap, b, N, serial, N, 0);
            assert_memory_equal(one, two, sizeof(float) * M * N);
            assert_memory_equal(serial, two, sizeof(float) * M * N);
        }
    }
    free(a), free(b), free(one), free(two), free(serial);
    cnn_set_threads(keep);
    assert_int_equal(cnn_set_isa(NULL), 0);
}

/* The peak microbenchmark runs on every path and gives a rate (its value is machine-dependent). */
static void test_peak(void **state)
{
    (void)state;
    cnn_isa p[CNN_ISA_COUNT];
    const int np = paths(p);
    for (int k = 0; k < np; k++) {
        use(p[k]);
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
    float *x = floats((size_t)n * in);
    int32_t *y = calloc((size_t)n, sizeof(int32_t));
    assert_non_null(y);
    for (size_t i = 0; i < (size_t)n * in; i++) x[i] = cnn_rng_uniform(8, 1, i);
    for (int i = 0; i < n; i++) y[i] = i % 10;
    for (int k = 0; k < steps; k++) {
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(m, x, y, n, &loss, &correct), 0);
        assert_true(isfinite(loss));
    }
    *count = cnn_model_num_params(m, 0);
    float *p = floats(*count);
    memcpy(p, cnn_model_params(m), sizeof(float) * *count);
    cnn_model_free(m);
    free(x), free(y);
    return p;
}

/* Model s trained with 1 and with 2 threads, on every path: the same bytes. The vector paths differ from the
 * portable one by rounding only, and not from each other (all the code outside the GEMM kernels is the same
 * baseline code on every path). */
static void check_model_threads(cnn_spec *s, int n, int steps)
{
    cnn_isa p[CNN_ISA_COUNT];
    const int np = paths(p), keep = cnn_get_threads();
    float *at[CNN_ISA_COUNT] = {NULL};
    size_t count = 0;
    for (int k = 0; k < np; k++) {
        use(p[k]);
        size_t n1, n2;
        float *one = train(s, n, steps, 1, &n1), *two = train(s, n, steps, 2, &n2);
        assert_int_equal(n1, n2);
        if (memcmp(one, two, sizeof(float) * n1))
            fail_msg("%s: parameters after %d steps differ between 1 and 2 threads", cnn_isa_label(p[k]),
                     steps);
        at[p[k]] = one, count = n1;
        free(two);
    }
    /* measured: at most 3.5e-6 apart, 6e-9 on average */
    double sum = 0;
    for (int k = 1; k < CNN_ISA_COUNT; k++)
        for (size_t i = 0; at[k] && i < count; i++) {
            assert_true(fabsf(at[k][i] - at[CNN_ISA_GENERIC][i]) < 1e-4f);
            sum += fabsf(at[k][i] - at[CNN_ISA_GENERIC][i]);
        }
    assert_true(sum / (double)count < 2e-7);
    if (at[CNN_ISA_AVX2] && at[CNN_ISA_AVX512])
        assert_memory_equal(at[CNN_ISA_AVX2], at[CNN_ISA_AVX512], sizeof(float) * count);
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
        cmocka_unit_test(test_paths_against_generic),
        cmocka_unit_test(test_gather_is_strided),
        cmocka_unit_test(test_gemm_threads),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_model_1_threads),
        cmocka_unit_test(test_conv_model_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
