/* Optimizers against hand-computed Keras 2.15 values, through the internal update rules and through the
 * public compile/update path; frozen layers.
 *
 * Every expected number below was worked out from the Keras formulas in double precision, independently of
 * cnnlab (the first step of each rule is derived in the comments); the float32 code must agree to within a
 * few float ulps. Shared inputs: w0 = (1, -0.5, 0.25) and three gradients g1, g2, g3. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "model/model.h"
#include "optim/optimizer.h"

static const float W0[3] = {1.0f, -0.5f, 0.25f};
/* The third component is tiny so that where epsilon goes (inside or outside the square root) matters. */
static const float G_ADAM[3][3] = {{0.5f, -0.25f, 1e-6f}, {0.1f, 0.3f, 1e-6f}, {-0.2f, 0.05f, 1e-6f}};
static const float G_RMS[3][3] = {{0.5f, -0.25f, 1e-4f}, {0.1f, 0.3f, 1e-4f}, {-0.2f, 0.05f, 1e-4f}};

static void assert_near(const float *got, const double *want, int n, double tol, const char *what, int step)
{
    for (int i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= tol * fmax(1.0, fabs(want[i]))))
            fail_msg("%s after step %d, element %d: got %.9g, expected %.9g (error %.3g)", what, step, i,
                     (double)got[i], want[i], err);
    }
}

/* Adam, lr 0.1, Keras defaults b1 0.9, b2 0.999, eps 1e-7 (outside the square root):
 *   step 1, element 0: m = 0.1 * 0.5 = 0.05;  v = 0.001 * 0.25 = 0.00025
 *     alpha = 0.1 * sqrt(1 - 0.999) / (1 - 0.9) = 0.0316227766
 *     w = 1 - 0.0316227766 * 0.05 / (sqrt(0.00025) + 1e-7) = 1 - 0.0316227766 * 0.05 / 0.0158114883 =
 * 0.900000632 step 1, element 2: m = 1e-7, v = 1e-15, sqrt(v) = 3.16227766e-8 w = 0.25 - 0.0316227766 * 1e-7
 * / (3.16227766e-8 + 1e-7) = 0.25 - 0.0240253 = 0.225974693 (with eps inside the square root it would be 0.25
 * - 0.0000100 = 0.24999; with no eps 0.15) steps 2 and 3 likewise with alpha_2 = 0.1 * sqrt(1 - 0.999^2) / (1
 * - 0.9^2) = 0.0235316725 and alpha_3 = 0.1 * sqrt(1 - 0.999^3) / (1 - 0.9^3) = 0.0202010597. */
static const double ADAM_W[3][3] = {{0.900000632, -0.400001265, 0.225974693},
                                    {0.819697033, -0.414295622, 0.195078332},
                                    {0.785261856, -0.433374112, 0.159700829}};
static const double ADAM_M[3][3] = {
    {0.05, -0.025, 1e-07}, {0.055, 0.0075, 1.9e-07}, {0.0295, 0.01175, 2.71e-07}};
static const double ADAM_V[3][3] = {{0.00025, 6.25e-05, 1e-15},
                                    {0.00025975, 0.0001524375, 1.999e-15},
                                    {0.00029949025, 0.000154785063, 2.997001e-15}};

static void test_adam_three_steps(void **state)
{
    (void)state;
    cnn_optimizer_config c = cnn_optimizer_default(CNN_OPT_ADAM, 0.1);
    assert_true(c.beta_1 == 0.9 && c.beta_2 == 0.999 && c.epsilon == 1e-7);
    float w[3], m[3] = {0}, v[3] = {0};
    memcpy(w, W0, sizeof w);
    for (int t = 1; t <= 3; t++) {
        cnn_adam_update(&c, 0.1, t, w, G_ADAM[t - 1], m, v, 3);
        assert_near(w, ADAM_W[t - 1], 3, 1e-6, "Adam w", t);
        assert_near(m, ADAM_M[t - 1], 3, 1e-6, "Adam m", t);
        /* 1 - beta_2 is 0.00100001693 in float32 (as in Keras), hence a relative tolerance above 1.7e-5. */
        for (int i = 0; i < 3; i++) assert_true(fabs(v[i] - ADAM_V[t - 1][i]) <= 3e-5 * ADAM_V[t - 1][i]);
    }
}

/* SGD, lr 0.1.
 *   plain:     w -= 0.1 g                    step 1: (1 - 0.05, -0.5 - 0.025, 0.25 - 1e-7)
 *   momentum:  m = 0.9 m - 0.1 g; w += m     step 2, element 0: m = 0.9 * -0.05 - 0.01 = -0.055, w = 0.95 -
 * 0.055 nesterov:  m as above; w += 0.9 m - 0.1 g  step 1, element 0: w = 1 + 0.9 * -0.05 - 0.05 = 0.905 */
static const double SGD_W[3][3] = {
    {0.95, -0.475, 0.2499999}, {0.94, -0.505, 0.2499998}, {0.96, -0.51, 0.2499997}};
static const double MOM_W[3][3] = {
    {0.95, -0.475, 0.2499999}, {0.895, -0.4825, 0.24999971}, {0.8655, -0.49425, 0.249999439}};
static const double MOM_M[3][3] = {
    {-0.05, 0.025, -1e-07}, {-0.055, -0.0075, -1.9e-07}, {-0.0295, -0.01175, -2.71e-07}};
static const double NES_W[3][3] = {
    {0.905, -0.4525, 0.24999981}, {0.8455, -0.48925, 0.249999539}, {0.83895, -0.504825, 0.249999195}};

static void run_sgd(double momentum, int nesterov, const double want_w[3][3], const double want_m[3][3],
                    const char *what)
{
    cnn_optimizer_config c = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    assert_true(c.momentum == 0.0 && c.nesterov == 0);
    c.momentum = momentum;
    c.nesterov = nesterov;
    float w[3], m[3] = {0};
    memcpy(w, W0, sizeof w);
    for (int t = 1; t <= 3; t++) {
        cnn_sgd_update(&c, 0.1, w, G_ADAM[t - 1], momentum != 0.0 ? m : NULL, 3);
        assert_near(w, want_w[t - 1], 3, 3e-7, what, t);
        if (want_m) assert_near(m, want_m[t - 1], 3, 1e-7, what, t);
    }
}

static void test_sgd_plain_momentum_nesterov(void **state)
{
    (void)state;
    run_sgd(0.0, 0, SGD_W, NULL, "SGD");
    run_sgd(0.9, 0, MOM_W, MOM_M, "SGD momentum");
    run_sgd(0.9, 1, NES_W, MOM_M, "SGD nesterov");
}

/* RMSprop, lr 0.01, rho 0.9, eps 1e-7 inside the square root:
 *   step 1, element 0: v = 0.1 * 0.25 = 0.025;  w = 1 - 0.01 * 0.5 / sqrt(0.025 + 1e-7) = 0.968377287
 *   step 1, element 2: v = 0.1 * 1e-8 = 1e-9;  w = 0.25 - 0.01 * 1e-4 / sqrt(1.01e-7) = 0.246853416
 *     (eps outside the square root would give 0.25 - 0.0312 = 0.2188) */
static const double RMS_W[3][3] = {{0.968377287, -0.468377476, 0.246853416},
                                   {0.96185402, -0.493184338, 0.243720759},
                                   {0.974465328, -0.497501651, 0.240600478}};
static const double RMS_V[3][3] = {
    {0.025, 0.00625, 1e-09}, {0.0235, 0.014625, 1.9e-09}, {0.02515, 0.0134125, 2.71e-09}};

static void test_rmsprop_three_steps(void **state)
{
    (void)state;
    cnn_optimizer_config c = cnn_optimizer_default(CNN_OPT_RMSPROP, 0.01);
    assert_true(c.rho == 0.9 && c.epsilon == 1e-7);
    float w[3], v[3] = {0};
    memcpy(w, W0, sizeof w);
    for (int t = 1; t <= 3; t++) {
        cnn_rmsprop_update(&c, 0.01, w, G_RMS[t - 1], v, 3);
        assert_near(w, RMS_W[t - 1], 3, 5e-7, "RMSprop w", t);
        for (int i = 0; i < 3; i++) assert_true(fabs(v[i] - RMS_V[t - 1][i]) <= 1e-5 * RMS_V[t - 1][i]);
    }
}

/* A 6-parameter model (Dense 2 -> 2: kernel 4 + bias 2) whose parameters are W0 twice. */
static cnn_model *tiny_model(void)
{
    cnn_model *m = cnn_model_create("tiny", 1, 1, 2);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Dense", "units=2, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 7), 0);
    assert_int_equal(cnn_model_num_params(m, 0), 6);
    for (int i = 0; i < 6; i++) cnn_model_params(m)[i] = W0[i % 3];
    return m;
}

static void set_grads(cnn_model *m, const float g[3])
{
    for (int i = 0; i < 6; i++) cnn_model_grads(m)[i] = g[i % 3];
}

static void assert_params(cnn_model *m, const double want[3], double tol, const char *what, int step)
{
    assert_near(cnn_model_params(m), want, 3, tol, what, step);
    assert_near(cnn_model_params(m) + 3, want, 3, tol, what, step);
}

static void test_public_path_matches_hand_values(void **state)
{
    (void)state;
    cnn_model *m = tiny_model();
    tu_assert_error(cnn_model_update(m), CNN_ERR_STATE, "compile it before training");
    cnn_optimizer_config adam = cnn_optimizer_default(CNN_OPT_ADAM, 0.1);
    assert_int_equal(cnn_model_compile(m, &adam), 0);
    assert_true(cnn_model_learning_rate(m) == 0.1);
    for (int t = 1; t <= 3; t++) {
        set_grads(m, G_ADAM[t - 1]);
        assert_int_equal(cnn_model_update(m), 0);
        assert_params(m, ADAM_W[t - 1], 1e-6, "public Adam", t);
    }
    /* Compiling again resets the optimizer: the next update is a first step (t = 1) again. */
    assert_int_equal(cnn_model_compile(m, &adam), 0);
    for (int i = 0; i < 6; i++) cnn_model_params(m)[i] = W0[i % 3];
    set_grads(m, G_ADAM[0]);
    assert_int_equal(cnn_model_update(m), 0);
    assert_params(m, ADAM_W[0], 1e-6, "Adam after recompile", 1);

    cnn_optimizer_config sgd = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    sgd.momentum = 0.9;
    sgd.nesterov = 1;
    assert_int_equal(cnn_model_compile(m, &sgd), 0);
    for (int i = 0; i < 6; i++) cnn_model_params(m)[i] = W0[i % 3];
    for (int t = 1; t <= 3; t++) {
        set_grads(m, G_ADAM[t - 1]);
        assert_int_equal(cnn_model_update(m), 0);
        assert_params(m, NES_W[t - 1], 3e-7, "public SGD nesterov", t);
    }

    cnn_optimizer_config rms = cnn_optimizer_default(CNN_OPT_RMSPROP, 0.01);
    assert_int_equal(cnn_model_compile(m, &rms), 0);
    for (int i = 0; i < 6; i++) cnn_model_params(m)[i] = W0[i % 3];
    for (int t = 1; t <= 3; t++) {
        set_grads(m, G_RMS[t - 1]);
        assert_int_equal(cnn_model_update(m), 0);
        assert_params(m, RMS_W[t - 1], 5e-7, "public RMSprop", t);
    }
    cnn_model_free(m);
}

/* The learning rate a schedule sets is the one the next update uses. */
static void test_learning_rate_change_applies(void **state)
{
    (void)state;
    cnn_model *m = tiny_model();
    cnn_optimizer_config sgd = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    assert_int_equal(cnn_model_compile(m, &sgd), 0);
    cnn_model_set_learning_rate(m, 0.5);
    assert_true(cnn_model_learning_rate(m) == 0.5);
    set_grads(m, G_ADAM[0]);
    assert_int_equal(cnn_model_update(m), 0);
    /* w = (1 - 0.25, -0.5 - 0.125, 0.25 - 5e-7) */
    const double want[3] = {0.75, -0.375, 0.2499995};
    assert_params(m, want, 1e-7, "SGD at lr 0.5", 1);
    cnn_model_free(m);
}

static void test_optimizer_config_errors(void **state)
{
    (void)state;
    cnn_model *m = tiny_model();
    cnn_optimizer_config c = cnn_optimizer_default(CNN_OPT_ADAM, 0.0);
    tu_assert_error(cnn_model_compile(m, &c), CNN_ERR_INVALID, "learning_rate must be > 0");
    c = cnn_optimizer_default(CNN_OPT_ADAM, NAN);
    tu_assert_error(cnn_model_compile(m, &c), CNN_ERR_INVALID, "learning_rate");
    c = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    c.momentum = 1.0;
    tu_assert_error(cnn_model_compile(m, &c), CNN_ERR_INVALID, "momentum");
    c = cnn_optimizer_default(CNN_OPT_ADAM, 0.1);
    c.beta_2 = 1.0;
    tu_assert_error(cnn_model_compile(m, &c), CNN_ERR_INVALID, "beta_2");
    c = cnn_optimizer_default(CNN_OPT_RMSPROP, 0.1);
    c.rho = -0.1;
    tu_assert_error(cnn_model_compile(m, &c), CNN_ERR_INVALID, "rho");
    /* A failed compile leaves the model uncompiled. */
    tu_assert_error(cnn_model_update(m), CNN_ERR_STATE, "compile");
    cnn_model *unbuilt = cnn_model_create("unbuilt", 1, 1, 2);
    assert_int_equal(cnn_model_add(unbuilt, "Dense", "units=2, activation=softmax"), 0);
    c = cnn_optimizer_default(CNN_OPT_ADAM, 0.1);
    tu_assert_error(cnn_model_compile(unbuilt, &c), CNN_ERR_STATE, "build it before compile");
    cnn_model_free(unbuilt);
    cnn_model_free(m);
}

/* 3 -> Dense a (4, relu): 12 + 4 = 16 params -> Dense b (2, softmax): 8 + 2 = 10 params. */
static cnn_model *two_layer_model(void)
{
    cnn_model *m = cnn_model_create("frozen", 1, 1, 3);
    assert_non_null(m);
    assert_int_equal(
        cnn_model_add(m, "Dense", "units=4, activation=relu, name=a, kernel_regularizer=l2(0.5)"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=2, activation=softmax, name=b"), 0);
    assert_int_equal(cnn_model_build(m, 3), 0);
    return m;
}

static char *summary_text(const cnn_model *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cnn_model_summary(m, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void assert_summary_has(const cnn_model *m, const char *line)
{
    char *s = summary_text(m);
    if (!strstr(s, line)) fail_msg("summary lacks \"%s\":\n%s", line, s);
    free(s);
}

static void test_frozen_layer_gets_no_update(void **state)
{
    (void)state;
    cnn_model *m = two_layer_model();
    assert_int_equal(cnn_model_num_params(m, 1), 26);
    assert_summary_has(m, "Trainable params: 26 (104.00 Byte)");
    assert_summary_has(m, "Non-trainable params: 0 (0.00 Byte)");
    tu_assert_error(cnn_model_set_trainable(m, "c", 0), CNN_ERR_INVALID, "no layer named 'c'");

    cnn_optimizer_config sgd = cnn_optimizer_default(CNN_OPT_SGD, 0.5);
    assert_int_equal(cnn_model_compile(m, &sgd), 0);
    /* Freezing after compile takes effect at once (the model recompiles itself). */
    assert_int_equal(cnn_model_set_trainable(m, "a", 0), 0);
    assert_int_equal(cnn_model_num_params(m, 0), 26);
    assert_int_equal(cnn_model_num_params(m, 1), 10);
    assert_summary_has(m, "Total params: 26 (104.00 Byte)");
    assert_summary_has(m, "Trainable params: 10 (40.00 Byte)");
    assert_summary_has(m, "Non-trainable params: 16 (64.00 Byte)");

    float before[26];
    memcpy(before, cnn_model_params(m), sizeof before);
    for (int i = 0; i < 26; i++) cnn_model_grads(m)[i] = 1.0f;
    assert_int_equal(cnn_model_update(m), 0);
    const float *w = cnn_model_params(m);
    assert_memory_equal(w, before, 16 * sizeof(float)); /* layer a: untouched */
    for (int i = 16; i < 26; i++) assert_true(w[i] == before[i] - 0.5f);

    /* A real training step: a's kernel and bias (and its L2 term's gradient) stay as they were. */
    const float x[2 * 3] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    const int32_t y[2] = {1, 0};
    double loss;
    int correct;
    memcpy(before, w, sizeof before);
    assert_int_equal(cnn_model_train_step(m, x, y, 2, &loss, &correct), 0);
    assert_memory_equal(w, before, 16 * sizeof(float));
    assert_memory_not_equal(w + 16, before + 16, 10 * sizeof(float));

    /* Unfreezing brings a back into the updates. */
    assert_int_equal(cnn_model_set_trainable(m, "a", 1), 0);
    assert_int_equal(cnn_model_num_params(m, 1), 26);
    memcpy(before, w, sizeof before);
    assert_int_equal(cnn_model_train_step(m, x, y, 2, &loss, &correct), 0);
    assert_memory_not_equal(w, before, 12 * sizeof(float));
    cnn_model_free(m);
}

/* Freezing the last layer leaves a frozen range in the middle of the buffer skipped, the rest updated. */
static void test_frozen_before_compile(void **state)
{
    (void)state;
    cnn_model *m = two_layer_model();
    assert_int_equal(cnn_model_set_trainable(m, "b", 0), 0);
    cnn_optimizer_config adam = cnn_optimizer_default(CNN_OPT_ADAM, 0.1);
    assert_int_equal(cnn_model_compile(m, &adam), 0);
    assert_summary_has(m, "Trainable params: 16 (64.00 Byte)");
    float before[26];
    memcpy(before, cnn_model_params(m), sizeof before);
    for (int i = 0; i < 26; i++) cnn_model_grads(m)[i] = 0.5f;
    assert_int_equal(cnn_model_update(m), 0);
    const float *w = cnn_model_params(m);
    /* Adam's first step with g = 0.5: 0.1 * sqrt(0.001) / 0.1 * 0.05 / (sqrt(0.00025) + 1e-7) = 0.0999994 */
    for (int i = 0; i < 16; i++) assert_true(fabs((double)(before[i] - w[i]) - 0.0999993676) < 1e-6);
    assert_memory_equal(w + 16, before + 16, 10 * sizeof(float));
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_three_steps),
        cmocka_unit_test(test_sgd_plain_momentum_nesterov),
        cmocka_unit_test(test_rmsprop_three_steps),
        cmocka_unit_test(test_public_path_matches_hand_values),
        cmocka_unit_test(test_learning_rate_change_applies),
        cmocka_unit_test(test_optimizer_config_errors),
        cmocka_unit_test(test_frozen_layer_gets_no_update),
        cmocka_unit_test(test_frozen_before_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
