/* Saved models carry their spec text and, on request, the optimizer's state: a model saved mid-training
 * and loaded again continues bit for bit as if it had never stopped. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

enum { N = 64, SAMPLE = 6 * 6 * 1, CLASSES = 3 };

static cnn_model *make_model(cnn_optimizer_kind kind)
{
    cnn_model *m = cnn_model_create("resume", 6, 6, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=4, kernel_size=3, activation=relu"), 0);
    assert_int_equal(cnn_model_add(m, "BatchNormalization", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3, activation=softmax, kernel_regularizer=l2(0.01)"),
                     0);
    assert_int_equal(cnn_model_build(m, 9), 0);
    cnn_optimizer_config c = cnn_optimizer_default(kind, 0.01);
    c.momentum = kind == CNN_OPT_SGD ? 0.9 : 0.0;
    assert_int_equal(cnn_model_compile(m, &c), 0);
    return m;
}

static void steps(cnn_model *m, const float *x, const int32_t *y, int count)
{
    for (int s = 0; s < count; s++) {
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(m, x, y, N, &loss, &correct), 0);
    }
}

static void check_resume(cnn_optimizer_kind kind)
{
    float x[N * SAMPLE];
    int32_t y[N];
    for (int i = 0; i < N * SAMPLE; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    for (int i = 0; i < N; i++) y[i] = i % CLASSES;
    cnn_model *a = make_model(kind);
    steps(a, x, y, 3);
    cnn_model_set_learning_rate(a, 0.005); /* a schedule's change must survive too */
    const char *path = tu_path("resume.cnn");
    assert_int_equal(cnn_model_save_ex(a, path, CNN_SAVE_OPTIMIZER), 0);
    cnn_model *b = cnn_model_load(path);
    if (!b) fail_msg("%s", cnn_errmsg());
    assert_true(cnn_model_learning_rate(b) == 0.005);
    steps(a, x, y, 3);
    steps(b, x, y, 3);
    size_t n = cnn_model_num_params(a, 0);
    assert_memory_equal(cnn_model_params(a), cnn_model_params(b), n * sizeof(float));
    cnn_model_free(a);
    cnn_model_free(b);
}

static void test_resume_adam(void **state)
{
    (void)state;
    check_resume(CNN_OPT_ADAM);
}

static void test_resume_sgd_momentum(void **state)
{
    (void)state;
    check_resume(CNN_OPT_SGD);
}

static void test_resume_rmsprop(void **state)
{
    (void)state;
    check_resume(CNN_OPT_RMSPROP);
}

/* Without the flag, a loaded model has no optimizer: training it first needs a compile. */
static void test_plain_save_has_no_optimizer(void **state)
{
    (void)state;
    cnn_model *a = make_model(CNN_OPT_ADAM);
    assert_int_equal(cnn_model_save(a, tu_path("plain.cnn")), 0);
    cnn_model *b = cnn_model_load(tu_path("plain.cnn"));
    assert_non_null(b);
    tu_assert_error(cnn_model_update(b), CNN_ERR_STATE, "compile it before training");
    tu_assert_error(cnn_model_save_ex(b, tu_path("x.cnn"), CNN_SAVE_OPTIMIZER), CNN_ERR_STATE,
                    "no optimizer");
    tu_assert_error(cnn_model_save_ex(a, tu_path("x.cnn"), 4), CNN_ERR_INVALID, "unknown save flags");
    cnn_model_free(a);
    cnn_model_free(b);
}

static void test_spec_text_round_trip(void **state)
{
    (void)state;
    const char *text = "model: s\ninput: (1, 1, 4)\nlayers:\n    Dense(3, activation=softmax)\n";
    cnn_spec *s = cnn_spec_parse(text, "s.spec");
    assert_non_null(s);
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    assert_string_equal(cnn_model_spec_text(m), text);
    assert_int_equal(cnn_model_save(m, tu_path("spec.cnn")), 0);
    cnn_model *b = cnn_model_load(tu_path("spec.cnn"));
    assert_non_null(b);
    assert_string_equal(cnn_model_spec_text(b), text);
    cnn_model_free(b);
    cnn_model_free(m);
    cnn_spec_free(s);
}

/* A damaged optimizer section is an error that says so, not a silently fresh optimizer. */
static void test_truncated_optimizer_state(void **state)
{
    (void)state;
    cnn_model *a = make_model(CNN_OPT_ADAM);
    const char *path = tu_path("opt.cnn");
    assert_int_equal(cnn_model_save_ex(a, path, CNN_SAVE_OPTIMIZER), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* The OPTM section's kind field: an impossible optimizer kind, with the checksum made right again. */
    unsigned char *optm = NULL;
    for (size_t i = 0; i + 4 < len; i++)
        if (!memcmp(buf + i, "OPTM", 4)) optm = buf + i;
    assert_non_null(optm);
    optm[12] = 7;
    uLong crc = crc32(0L, buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) buf[len - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
    tu_write(path, buf, len);
    assert_null(cnn_model_load(path));
    tu_assert_error(cnn_errcode(), CNN_ERR_FORMAT, "optimizer state is invalid");
    cnn_model_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_adam),          cmocka_unit_test(test_resume_sgd_momentum),
        cmocka_unit_test(test_resume_rmsprop),       cmocka_unit_test(test_plain_save_has_no_optimizer),
        cmocka_unit_test(test_spec_text_round_trip), cmocka_unit_test(test_truncated_optimizer_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
