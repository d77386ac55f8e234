/* Dense and the activations: finite-difference gradient checks, shapes, options. */
#include "gradcheck.h"
#include <math.h>

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

static void test_dense_bad_options(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("bad", 1, 1, 4);
    tu_assert_error(cnn_model_add(m, "Dense", "unit=3"), CNN_ERR_INVALID, "did you mean 'units'");
    tu_assert_error(cnn_model_add(m, "Dense", "units=0"), CNN_ERR_INVALID, "units=0 is out of range");
    tu_assert_error(cnn_model_add(m, "Dense", "units=3, activation=relux"), CNN_ERR_INVALID, "unknown activation");
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
        cmocka_unit_test(test_dense_bad_options),
        cmocka_unit_test(test_glorot_uniform_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
