/* Dense and the activations: finite-difference gradient checks, the GEMMs at multi-block shapes against a
 * double reference, thread-count independence, shapes, options. */
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "model/model.h"
#include "probe.h"
#include "util.h"

static const double TOL = 2e-3;

static void test_dense_activations(void **state)
{
    (void)state;
    const char *acts[] = {"linear", "relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softmax"};
    char opts[96];
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        snprintf(opts, sizeof opts, "units=7, activation=%s", acts[i]);
        gc_assert_layer("Dense", opts, 1, 1, 5, 3, 1, TOL);
    }
}

static void test_dense_batch_one_and_no_bias(void **state)
{
    (void)state;
    gc_assert_layer("Dense", "units=4, activation=relu", 1, 1, 9, 1, 1, TOL);
    gc_assert_layer("Dense", "units=4, use_bias=false", 1, 1, 9, 2, 1, TOL);
}

/* Keras semantics: a Dense on an image acts on the channel axis of every pixel. */
static void test_dense_on_image_acts_per_pixel(void **state)
{
    (void)state;
    gc_assert_layer("Dense", "units=3, activation=relu", 4, 5, 2, 2, 1, TOL);
    cnn_model *m = cnn_model_create("img", 28, 28, 1);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3, activation=relu, name=gray_rgb"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(cnn_model_num_params(m, 0), 1 * 3 + 3);
    cnn_model_free(m);
}

static void assert_near(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-5 * (1.0 + fabs(want[i])))
            fail_msg("%s[%zu] = %.9g, expected %.9g", what, i, got[i], want[i]);
}

/* Shapes that span several row blocks, column panels with a masked tail, and p blocks, on all three GEMMs:
 * y = x W + b, dW = x^T dy, db, dx = dy W^T against float64 sums. Linear, so dy reaches the GEMMs as is. */
static void test_dense_gemms_against_reference(void **state)
{
    (void)state;
    const struct {
        int h, w, c, n, units;
    } cases[] = {{1, 1, 70, 150, 130}, {1, 1, 600, 40, 10}, {3, 4, 9, 50, 67}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        char opts[64];
        snprintf(opts, sizeof opts, "units=%d", cases[t].units);
        probe p;
        probe_open(&p, "Dense", opts, cases[t].h, cases[t].w, cases[t].c, cases[t].n);
        probe_step(&p, 1);
        const int rows = cases[t].n * cases[t].h * cases[t].w, in = cases[t].c, units = cases[t].units;
        const float *W = p.m->params, *b = W + (size_t)in * units, *dW = p.m->grads,
                    *db = dW + (size_t)in * units;
        double *y = calloc((size_t)rows * units, sizeof(double)),
               *gw = calloc((size_t)in * units, sizeof(double)), *gb = calloc((size_t)units, sizeof(double)),
               *gx = calloc((size_t)rows * in, sizeof(double));
        assert_true(y && gw && gb && gx);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < units; j++) {
                double s = b[j];
                for (int i = 0; i < in; i++) s += (double)p.x[(size_t)r * in + i] * W[(size_t)i * units + j];
                y[(size_t)r * units + j] = s;
                const double d = p.dy[(size_t)r * units + j];
                gb[j] += d;
                for (int i = 0; i < in; i++) {
                    gw[(size_t)i * units + j] += p.x[(size_t)r * in + i] * d;
                    gx[(size_t)r * in + i] += d * W[(size_t)i * units + j];
                }
            }
        assert_near(p.y, y, (size_t)rows * units, "y");
        assert_near(dW, gw, (size_t)in * units, "dW");
        assert_near(db, gb, (size_t)units, "db");
        assert_near(p.dx, gx, (size_t)rows * in, "dx");
        free(y), free(gw), free(gb), free(gx);
        probe_close(&p);
    }
}

/* The first trained layer runs backward without dx, and a frozen layer gives dx only (W^T then comes from a
 * loop of its own instead of the dW GEMM's row blocks): the results that remain must not change. */
static void test_dense_backward_without_dx_and_frozen(void **state)
{
    (void)state;
    const struct {
        const char *opts;
        int c, n;
    } cases[] = {{"units=70, activation=relu", 300, 64}, {"units=256, activation=gelu", 784, 40}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        probe_assert_without_dx_and_frozen("Dense", cases[i].opts, 1, 1, cases[i].c, cases[i].n);
}

/* Outputs, kept pre-activations, parameter and input gradients are bit-identical for 1 and 2 threads, on
 * every kernel path this CPU has: the GEMMs split rows into blocks fixed by the shape and every sum runs in a
 * fixed order. */
static void test_dense_threads_bit_identical(void **state)
{
    (void)state;
    const struct {
        const char *opts;
        int h, w, c, n;
    } cases[] = {
        {"units=256, activation=relu", 1, 1, 784, 200},   /* Model_1's first layer */
        {"units=10, activation=softmax", 1, 1, 512, 300}, /* its output layer */
        {"units=33, activation=gelu", 1, 1, 100, 129},    /* pre-activation kept in scratch */
        {"units=48, use_bias=false", 1, 1, 64, 97},
        {"units=5, activation=tanh", 8, 8, 3, 400}, /* per pixel: few multiply-adds per row, tall blocks */
    };
    for (int isa = 0; isa < CNN_ISA_COUNT; isa++) {
        if (!cnn_isa_supported((cnn_isa)isa)) continue;
        assert_int_equal(cnn_isa_use((cnn_isa)isa), 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            probe_assert_threads_bit_identical("Dense", cases[i].opts, cases[i].h, cases[i].w, cases[i].c,
                                               cases[i].n, 1);
    }
    assert_int_equal(cnn_set_isa(NULL), 0);
}

static void test_dense_bad_options(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("bad", 1, 1, 4);
    tu_assert_error(cnn_model_add(m, "Dense", "unit=3"), CNN_ERR_INVALID, "did you mean 'units'");
    tu_assert_error(cnn_model_add(m, "Dense", "units=0"), CNN_ERR_INVALID, "units=0 is out of range");
    tu_assert_error(cnn_model_add(m, "Dense", "units=3, activation=relux"), CNN_ERR_INVALID,
                    "unknown activation");
    tu_assert_error(cnn_model_add(m, "Dens", "units=3"), CNN_ERR_INVALID, "did you mean 'Dense'");
    tu_assert_error(cnn_model_add(m, "Dense", "units=3, kernel_regularizer=l3(1)"), CNN_ERR_INVALID, "l1(c)");
    assert_int_equal(cnn_model_add(m, "Dense", "units=3, name=a"), 0);
    tu_assert_error(cnn_model_add(m, "Dense", "units=3, name=a"), CNN_ERR_INVALID, "already used");
    cnn_model_free(m);
}

static void test_glorot_uniform_bounds(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("init", 1, 1, 784);
    assert_int_equal(cnn_model_add_dense(m, NULL, 256, CNN_ACT_RELU), 0);
    assert_int_equal(cnn_model_build(m, 42), 0);
    const float *w = cnn_model_params(m);
    float limit = sqrtf(6.0f / (784 + 256)), lo = 1, hi = -1;
    double mean = 0;
    for (int i = 0; i < 784 * 256; i++) {
        lo = fminf(lo, w[i]);
        hi = fmaxf(hi, w[i]);
        mean += w[i];
    }
    assert_true(lo >= -limit && hi <= limit);
    assert_true(hi > 0.99f * limit && lo < -0.99f * limit); /* the whole range is used */
    assert_true(fabs(mean / (784 * 256)) < 1e-3);
    for (int i = 784 * 256; i < 784 * 256 + 256; i++) assert_true(w[i] == 0.0f); /* zero biases */
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_activations),
        cmocka_unit_test(test_dense_batch_one_and_no_bias),
        cmocka_unit_test(test_dense_on_image_acts_per_pixel),
        cmocka_unit_test(test_dense_gemms_against_reference),
        cmocka_unit_test(test_dense_backward_without_dx_and_frozen),
        cmocka_unit_test(test_dense_threads_bit_identical),
        cmocka_unit_test(test_dense_bad_options),
        cmocka_unit_test(test_glorot_uniform_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
