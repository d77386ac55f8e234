/* The first convolution fused with the max pooling after it (layers/conv_pool.h): which pairs fuse, that the
 * fused pass really runs (the convolution's own output stays unwritten), and that training with it gives the
 * same bytes as the two layers run one after the other: parameters after a few steps and the outputs, for
 * relu and linear convolutions, with and without bias, windows of 2 and 3 (with rows and columns no window
 * covers), at 1 and 2 threads. */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/model.h"

static const char *const SPECS[] = {
    "model: fused_relu\n"
    "input: (16, 16, 1)\n"
    "layers:\n"
    "    Conv2D(8, kernel_size=3, padding=\"same\", activation=\"relu\")\n"
    "    MaxPooling2D(2)\n"
    "    Conv2D(8, kernel_size=3, activation=\"relu\")\n"
    "    Flatten()\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\n",
    "model: fused_linear\n"
    "input: (15, 15, 1)\n"
    "layers:\n"
    "    Conv2D(6, kernel_size=2, use_bias=False)\n"
    "    MaxPooling2D(3)\n"
    "    Flatten()\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\n",
    "model: fused_wide\n"
    "input: (13, 11, 1)\n"
    "layers:\n"
    "    Conv2D(17, kernel_size=(3, 2), activation=\"relu\")\n"
    "    MaxPooling2D((2, 3))\n"
    "    Flatten()\n"
    "    Dense(10, activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.01)\n",
};

enum { N = 37, STEPS = 3 };

/* The parameters (then the outputs of a forward pass) of spec s after STEPS training steps on a fixed batch,
 * fused or not, at `threads` threads. */
static float *train(const char *spec, int unfused, int threads, size_t *count)
{
    cnn_spec *s = cnn_spec_parse(spec, "fused.spec");
    assert_non_null(s);
    cnn_set_threads(threads);
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_fused(m, 0), 1);
    m->x.unfused = unfused;
    assert_int_equal(cnn_model_fused(m, 0), !unfused);
    const size_t in = cnn_shape_size(m->input), out = (size_t)m->outputs;
    float *x = malloc(sizeof(float) * N * in);
    int32_t *y = malloc(sizeof(int32_t) * N);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < N * in; i++) x[i] = cnn_rng_uniform(5, 1, i) * 2.0f - 0.5f;
    for (int i = 0; i < N; i++) y[i] = i % 10;
    for (int k = 0; k < STEPS; k++) {
        double loss;
        int correct;
        assert_int_equal(cnn_model_plan(m, N), 0);
        /* the fused pass leaves the convolution's output alone */
        const size_t conv_out = cnn_shape_size(m->layers[0].out) * N;
        for (size_t i = 0; i < conv_out; i++) m->x.acts[1][i] = NAN;
        assert_int_equal(cnn_model_train_step(m, x, y, N, &loss, &correct), 0);
        assert_true(isfinite(loss));
        assert_int_equal(isnan(m->x.acts[1][conv_out / 2]), !unfused);
    }
    const size_t np = cnn_model_num_params(m, 0);
    *count = np + N * out;
    float *r = malloc(sizeof(float) * *count);
    assert_non_null(r);
    memcpy(r, cnn_model_params(m), sizeof(float) * np);
    assert_int_equal(cnn_model_forward(m, x, N, 0, r + np), 0);
    cnn_model_free(m);
    cnn_spec_free(s);
    free(x), free(y);
    return r;
}

static void test_fused_is_unfused(void **state)
{
    (void)state;
    const int keep = cnn_get_threads();
    for (size_t k = 0; k < sizeof SPECS / sizeof SPECS[0]; k++)
        for (int threads = 1; threads <= 2; threads++) {
            size_t n1, n2;
            float *fused = train(SPECS[k], 0, threads, &n1), *plain = train(SPECS[k], 1, threads, &n2);
            assert_int_equal(n1, n2);
            if (memcmp(fused, plain, sizeof(float) * n1))
                fail_msg("spec %zu, %d threads: fused and unfused training differ", k, threads);
            free(fused), free(plain);
        }
    cnn_set_threads(keep);
}

/* Only a thin first convolution followed by non-overlapping valid max pooling fuses. */
static void test_which_pairs(void **state)
{
    (void)state;
    static const char *const NOT[] = {
        "    Conv2D(4, kernel_size=3)\n    MaxPooling2D(2, padding=\"same\")\n",
        "    Conv2D(4, kernel_size=3)\n    MaxPooling2D(3, strides=2)\n",
        "    Conv2D(4, kernel_size=3)\n    AveragePooling2D(2)\n",
        "    Conv2D(4, kernel_size=3, activation=\"tanh\")\n    MaxPooling2D(2)\n",
        "    Conv2D(4, kernel_size=5)\n    MaxPooling2D(2)\n", /* 25 taps: the GEMM path */
    };
    for (size_t k = 0; k < sizeof NOT / sizeof NOT[0]; k++) {
        char spec[512];
        snprintf(
            spec, sizeof spec,
            "model: m\ninput: (12, 12, 1)\nlayers:\n%s    Flatten()\n    Dense(3, activation=\"softmax\")\n"
            "optimizer: Adam()\n",
            NOT[k]);
        cnn_spec *s = cnn_spec_parse(spec, "m.spec");
        if (!s) fail_msg("%s", cnn_errmsg());
        cnn_model *m = cnn_spec_build_model(s, 1);
        assert_non_null(m);
        if (cnn_model_fused(m, 0)) fail_msg("fused: %s", NOT[k]);
        cnn_model_free(m);
        cnn_spec_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_pairs),
        cmocka_unit_test(test_fused_is_unfused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
