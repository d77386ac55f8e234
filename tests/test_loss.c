/* Sparse categorical cross-entropy: hand values, extreme logits, its gradient by finite differences, and a
 * whole-model gradient check including the kernel regularisers' loss terms. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "loss/xent.h"

/* Small deterministic generator for test data (uniform in [-1, 1)). */
static float next_uniform(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

/* softmax(1, 2, 3) = (0.0900305732, 0.244728471, 0.665240956); logsumexp(1, 2, 3) = 3.40760596.
 *   row 0: z = (1, 2, 3), y = 2: loss = 3.40760596 - 3 = 0.407605964 (argmax 2: correct)
 *   row 1: z = (1, 2, 3), y = 0: loss = 3.40760596 - 1 = 2.407605964 (wrong)
 *   row 2: z = (0, 0, 0), y = 1: loss = log 3 = 1.098612289 (argmax is the first maximum, 0: wrong) */
static void test_xent_hand_values(void **state)
{
    (void)state;
    const float z[9] = {1, 2, 3, 1, 2, 3, 0, 0, 0};
    const int32_t y[3] = {2, 0, 1};
    const double s[3] = {0.0900305732, 0.244728471, 0.665240956}, third = 1.0 / 3.0;
    const double want_dz[9] = {s[0] / 3, s[1] / 3,  (s[2] - 1) / 3,  (s[0] - 1) / 3, s[1] / 3,
                               s[2] / 3, third / 3, (third - 1) / 3, third / 3};
    double loss = 10.0; /* both outputs accumulate */
    int correct = 5;
    float dz[9];
    cnn_xent(z, y, 3, 3, 1.0f / 3.0f, &loss, &correct, dz);
    assert_true(fabs(loss - (10.0 + 0.407605964 + 2.407605964 + 1.098612289)) < 1e-6);
    assert_int_equal(correct, 6);
    for (int i = 0; i < 9; i++)
        if (fabs(dz[i] - want_dz[i]) > 1e-7)
            fail_msg("dz[%d] = %.9g, expected %.9g", i, (double)dz[i], want_dz[i]);

    /* Without a gradient buffer only the loss and the count are produced. */
    loss = 0.0;
    correct = 0;
    cnn_xent(z, y, 3, 3, 1.0f, &loss, &correct, NULL);
    assert_true(fabs(loss - (0.407605964 + 2.407605964 + 1.098612289)) < 1e-6);
    assert_int_equal(correct, 1);
}

/* Logits of +-1000 overflow a naive exp; loss and gradient must stay finite and as exact as float allows
 * (working on shifted logits, not at the 6e-5 resolution of floats near 1000):
 *   (1000, -1000, 0), y = 1:       loss = 2000, dz = (1, -1, 0)
 *   (-1000, 1000, 999), y = 2:     loss = log(1 + e^-1) + 1 = 1.31326169,
 *                                  softmax = (0, 1 / (1 + e^-1), e^-1 / (1 + e^-1))
 *                                          = (0, 0.731058579, 0.268941421)
 *   (1000, 1000, -1000), y = 0:    loss = log 2, dz = (-0.5, 0.5, 0)
 *   (-1000, -1000, -1000), y = 2:  loss = log 3 */
static void test_xent_extreme_logits(void **state)
{
    (void)state;
    const float z[12] = {1000, -1000, 0, -1000, 1000, 999, 1000, 1000, -1000, -1000, -1000, -1000};
    const int32_t y[4] = {1, 2, 0, 2};
    const double want_loss[4] = {2000.0, 1.31326169, 0.693147181, 1.098612289};
    const double want_dz[12] = {1,    -1,  0, 0,       0.731058579, -0.731058579,
                                -0.5, 0.5, 0, 1.0 / 3, 1.0 / 3,     -2.0 / 3};
    for (int r = 0; r < 4; r++) {
        double loss = 0.0;
        int correct = 0;
        float dz[3];
        cnn_xent(z + 3 * r, y + r, 1, 3, 1.0f, &loss, &correct, dz);
        if (!(fabs(loss - want_loss[r]) < 1e-6))
            fail_msg("row %d: loss %.9g, expected %.9g", r, loss, want_loss[r]);
        for (int j = 0; j < 3; j++) {
            assert_true(isfinite(dz[j]));
            if (fabs(dz[j] - want_dz[3 * r + j]) > 1e-6)
                fail_msg("row %d: dz[%d] = %.9g, expected %.9g", r, j, (double)dz[j], want_dz[3 * r + j]);
        }
    }
}

/* Labels outside [0, k) count as wrong and contribute neither loss nor gradient (callers validate them). */
static void test_xent_invalid_label_contributes_nothing(void **state)
{
    (void)state;
    const float z[6] = {3, 1, 0, 3, 1, 0};
    const int32_t y[2] = {3, -1};
    double loss = 0.0;
    int correct = 0;
    float dz[6] = {9, 9, 9, 9, 9, 9};
    cnn_xent(z, y, 2, 3, 0.5f, &loss, &correct, dz);
    assert_true(loss == 0.0);
    assert_int_equal(correct, 0);
    for (int i = 0; i < 6; i++) assert_true(dz[i] == 0.0f);
}

/* dz = scale * (softmax - onehot) is the gradient of scale * sum of the row losses. */
static void test_xent_gradient_by_finite_differences(void **state)
{
    (void)state;
    enum { N = 4, K = 5 };
    float z[N * K], dz[N * K];
    const int32_t y[N] = {0, 4, 2, 2};
    uint32_t seed = 11;
    for (int i = 0; i < N * K; i++) z[i] = 3.0f * next_uniform(&seed);
    double base = 0.0;
    int correct = 0;
    cnn_xent(z, y, N, K, 1.0f / N, &base, &correct, dz);
    const float eps = 1e-2f;
    double worst = 0.0;
    for (int i = 0; i < N * K; i++) {
        const float keep = z[i];
        double up = 0.0, down = 0.0;
        z[i] = keep + eps;
        cnn_xent(z, y, N, K, 0.0f, &up, &correct, NULL);
        z[i] = keep - eps;
        cnn_xent(z, y, N, K, 0.0f, &down, &correct, NULL);
        z[i] = keep;
        const double numeric = (up - down) / (2.0 * eps) / N;
        worst = fmax(worst, fabs(numeric - dz[i]));
    }
    if (worst > 1e-4) fail_msg("worst |numeric - analytic| = %.3g", worst);
}

/* ------------------------------------------------------------------------------ whole model */

enum { H = 3, W = 2, HIDDEN = 5, CLASSES = 3, BATCH = 8 };
static const double C_L2 = 0.01, C_L1 = 0.02;

/* Flatten -> Dense(5, relu, L2 0.01) -> Dense(3, softmax, L1 0.02) over 3x2x1 images; with reg = 0 the same
 * model without regularisers (same seed, hence the same initial parameters). */
static cnn_model *make_model(int reg)
{
    cnn_model *m = cnn_model_create("gradcheck", H, W, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense",
                                   reg ? "units=5, activation=relu, kernel_regularizer=l2(0.01)"
                                       : "units=5, activation=relu"),
                     0);
    assert_int_equal(cnn_model_add(m, "Dense",
                                   reg ? "units=3, activation=softmax, kernel_regularizer=l1(0.02)"
                                       : "units=3, activation=softmax"),
                     0);
    assert_int_equal(cnn_model_build(m, 5), 0);
    cnn_optimizer_config c = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    assert_int_equal(cnn_model_compile(m, &c), 0);
    return m;
}

/* Parameter layout: kernel1 (6 x 5) at 0, bias1 (5) at 30, kernel2 (5 x 3) at 35, bias2 (3) at 50. */
enum { K1 = 0, B1 = 30, K2 = 35, B2 = 50, NPARAMS = 53 };

static void make_batch(float *x, int32_t *y)
{
    uint32_t seed = 3;
    for (int i = 0; i < BATCH * H * W; i++) x[i] = next_uniform(&seed);
    for (int i = 0; i < BATCH; i++) y[i] = i % CLASSES;
}

static double model_loss(cnn_model *m, const float *x, const int32_t *y)
{
    double loss;
    int correct;
    assert_int_equal(cnn_model_forward(m, x, BATCH, 1, NULL), 0);
    assert_int_equal(cnn_model_backward(m, y, &loss, &correct), 0);
    return loss;
}

static void test_model_gradient_with_regularizers(void **state)
{
    (void)state;
    cnn_model *m = make_model(1);
    assert_int_equal(cnn_model_num_params(m, 0), NPARAMS);
    float x[BATCH * H * W], analytic[NPARAMS];
    int32_t y[BATCH];
    make_batch(x, y);
    model_loss(m, x, y);
    memcpy(analytic, cnn_model_grads(m), sizeof analytic);

    float *w = cnn_model_params(m);
    const float eps = 2e-3f;
    double diff2 = 0.0, norm2 = 0.0, worst = 0.0;
    for (int i = 0; i < NPARAMS; i++) {
        const float keep = w[i];
        w[i] = keep + eps;
        const double up = model_loss(m, x, y);
        w[i] = keep - eps;
        const double down = model_loss(m, x, y);
        w[i] = keep;
        /* The difference actually applied, which float rounding makes differ slightly from 2 eps. */
        const double numeric = (up - down) / ((double)(keep + eps) - (double)(keep - eps));
        diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
        norm2 += numeric * numeric;
        worst = fmax(worst, fabs(numeric - analytic[i]));
    }
    const double rel = sqrt(diff2 / norm2);
    print_message("whole-model gradient: relative error %.3g, worst element %.3g\n", rel, worst);
    if (rel > 1e-3 || worst > 2e-4) fail_msg("relative error %.3g, worst element %.3g", rel, worst);
    cnn_model_free(m);
}

/* Keras: L2(c) adds c * sum(w^2) to the loss and 2 c w to the gradient; L1(c) adds c * sum|w| and c sign(w).
 * Biases are not regularised. Evaluate reports the same regularised loss. */
static void test_regularizer_terms(void **state)
{
    (void)state;
    cnn_model *reg = make_model(1), *plain = make_model(0);
    assert_memory_equal(cnn_model_params(reg), cnn_model_params(plain), NPARAMS * sizeof(float));
    float x[BATCH * H * W];
    int32_t y[BATCH];
    make_batch(x, y);
    const double with = model_loss(reg, x, y), without = model_loss(plain, x, y);
    const float *w = cnn_model_params(reg);
    double sq = 0.0, abs_sum = 0.0;
    for (int i = K1; i < B1; i++) sq += (double)w[i] * w[i];
    for (int i = K2; i < B2; i++) abs_sum += fabs(w[i]);
    const double term = (double)(float)C_L2 * sq + (double)(float)C_L1 * abs_sum;
    assert_true(term > 1e-3);
    if (fabs((with - without) - term) > 1e-9)
        fail_msg("loss difference %.12g, expected %.12g", with - without, term);

    const float *gr = cnn_model_grads(reg), *gp = cnn_model_grads(plain);
    for (int i = 0; i < NPARAMS; i++) {
        double expect = gp[i];
        if (i >= K1 && i < B1) expect += 2.0 * C_L2 * w[i];
        if (i >= K2 && i < B2) expect += C_L1 * (w[i] > 0 ? 1.0 : -1.0);
        if (fabs(gr[i] - expect) > 1e-6) fail_msg("grad[%d] = %.9g, expected %.9g", i, (double)gr[i], expect);
    }

    cnn_dataset ds = {.x = x, .y = y, .n = BATCH, .h = H, .w = W, .c = 1, .num_classes = CLASSES};
    double eval_loss, acc;
    assert_int_equal(cnn_model_evaluate(reg, &ds, BATCH, &eval_loss, &acc), 0);
    assert_true(fabs(eval_loss - with) < 1e-9);
    cnn_model_free(reg);
    cnn_model_free(plain);
}

static void test_label_and_state_errors(void **state)
{
    (void)state;
    cnn_model *m = make_model(1);
    float x[BATCH * H * W];
    int32_t y[BATCH];
    make_batch(x, y);
    double loss;
    int correct;
    tu_assert_error(cnn_model_backward(m, y, &loss, &correct), CNN_ERR_STATE,
                    "needs a training forward pass");
    assert_int_equal(cnn_model_forward(m, x, BATCH, 0, NULL), 0);
    tu_assert_error(cnn_model_backward(m, y, &loss, &correct), CNN_ERR_STATE,
                    "needs a training forward pass");
    assert_int_equal(cnn_model_forward(m, x, BATCH, 1, NULL), 0);
    y[1] = CLASSES;
    tu_assert_error(cnn_model_backward(m, y, &loss, &correct), CNN_ERR_INVALID,
                    "label 3 of sample 1 is outside [0, 3)");
    y[1] = -1;
    tu_assert_error(cnn_model_backward(m, y, &loss, &correct), CNN_ERR_INVALID, "label -1 of sample 1");
    /* A rejected step changes nothing. */
    float before[NPARAMS];
    memcpy(before, cnn_model_params(m), sizeof before);
    tu_assert_error(cnn_model_train_step(m, x, y, BATCH, &loss, &correct), CNN_ERR_INVALID, "outside [0, 3)");
    assert_memory_equal(cnn_model_params(m), before, sizeof before);
    tu_assert_error(cnn_model_forward(m, x, 0, 1, NULL), CNN_ERR_INVALID, "batch size 0");
    cnn_model_free(m);

    cnn_model *raw = cnn_model_create("raw", H, W, 1);
    assert_int_equal(cnn_model_add(raw, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(raw, "Dense", "units=3, activation=softmax"), 0);
    tu_assert_error(cnn_model_forward(raw, x, BATCH, 1, NULL), CNN_ERR_STATE, "not built");
    assert_int_equal(cnn_model_build(raw, 1), 0);
    assert_int_equal(cnn_model_forward(raw, x, BATCH, 1, NULL), 0);
    tu_assert_error(cnn_model_backward(raw, y, &loss, &correct), CNN_ERR_STATE, "compile it before training");
    cnn_model_free(raw);
}

/* The probabilities a forward pass returns are the softmax of the logits the loss reads. */
static void test_forward_probabilities_match_loss(void **state)
{
    (void)state;
    cnn_model *m = make_model(0);
    float x[BATCH * H * W], probs[BATCH * CLASSES];
    int32_t y[BATCH];
    make_batch(x, y);
    assert_int_equal(cnn_model_forward(m, x, BATCH, 1, probs), 0);
    double loss, want = 0.0;
    int correct, hits = 0;
    assert_int_equal(cnn_model_backward(m, y, &loss, &correct), 0);
    for (int i = 0; i < BATCH; i++) {
        const float *p = probs + CLASSES * i;
        double sum = 0.0;
        int arg = 0;
        for (int j = 0; j < CLASSES; j++) {
            sum += p[j];
            if (p[j] > p[arg]) arg = j;
        }
        assert_true(fabs(sum - 1.0) < 1e-6);
        want -= log(p[y[i]]);
        hits += arg == y[i];
    }
    assert_true(fabs(loss - want / BATCH) < 1e-5);
    assert_int_equal(correct, hits);
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xent_hand_values),
        cmocka_unit_test(test_xent_extreme_logits),
        cmocka_unit_test(test_xent_invalid_label_contributes_nothing),
        cmocka_unit_test(test_xent_gradient_by_finite_differences),
        cmocka_unit_test(test_model_gradient_with_regularizers),
        cmocka_unit_test(test_regularizer_terms),
        cmocka_unit_test(test_label_and_state_errors),
        cmocka_unit_test(test_forward_probabilities_match_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
