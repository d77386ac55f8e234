/* The non-finite guard: divergent training stops at the first NaN or infinite loss or gradient, names where,
 * keeps the last good weights; no model file holds non-finite weights, and none is loaded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

enum { SIDE = 4, N = 64 };

static cnn_dataset make_data(void)
{
    cnn_dataset ds = {.n = N, .h = SIDE, .w = SIDE, .c = 1, .num_classes = 2};
    ds.x = malloc(sizeof(float) * SIDE * SIDE * N);
    ds.y = malloc(sizeof(int32_t) * N);
    assert_true(ds.x && ds.y);
    for (int i = 0; i < N; i++) {
        ds.y[i] = i % 2;
        for (int p = 0; p < SIDE * SIDE; p++)
            ds.x[i * SIDE * SIDE + p] = (float)((i * 7 + p * 3) % 11) / 11.0f;
    }
    return ds;
}

static cnn_model *make_model(double lr)
{
    cnn_model *m = cnn_model_create("wild", SIDE, SIDE, 1);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=8, activation=relu, name=hidden"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=2, activation=softmax, name=out"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_SGD, lr);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    return m;
}

static int all_finite(cnn_model *m)
{
    const float *p = cnn_model_params(m);
    for (size_t i = 0; i < cnn_model_num_params(m, 0); i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

static void test_divergence_stops(void **state)
{
    (void)state;
    cnn_dataset ds = make_data();
    cnn_model *m = make_model(1e30);
    cnn_fit_config c = cnn_fit_default();
    c.epochs = 5, c.batch_size = 16, c.verbose = CNN_VERBOSE_SILENT;
    cnn_history h;
    tu_assert_error(cnn_model_fit(m, &ds, &c, &h), CNN_ERR_NONFINITE, "model 'wild' diverged in epoch");
    tu_assert_error(CNN_ERR_NONFINITE, cnn_errcode(), "is the first that is not finite");
    assert_true(h.count < 5);
    assert_true(all_finite(m));
    assert_int_equal(cnn_model_save(m, tu_path("last_good.cnn")), 0);
    cnn_history_free(&h);
    cnn_model_free(m);

    /* A sane rate trains through. */
    m = make_model(0.1);
    assert_int_equal(cnn_model_fit(m, &ds, &c, &h), 0);
    assert_int_equal(h.count, 5);
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&ds);
}

/* Issue 11: divergent training used to write a NaN checkpoint. A checkpoint written by a good fit stays
 * byte for byte when a diverging fit with the same ModelCheckpoint stops, and still loads. */
static void test_divergence_keeps_checkpoint(void **state)
{
    (void)state;
    cnn_dataset ds = make_data();
    const char *ck = tu_path("ck.cnn");
    cnn_fit_config c = cnn_fit_default();
    c.epochs = 2, c.batch_size = 16, c.verbose = CNN_VERBOSE_SILENT;
    cnn_history h;
    for (int wild = 0; wild < 2; wild++) {
        cnn_model *m = make_model(wild ? 1e30 : 0.1);
        cnn_callback *cb = cnn_callback_model_checkpoint(ck, NULL, "monitor=loss");
        assert_non_null(cb);
        c.callbacks = &cb, c.num_callbacks = 1;
        char *before = NULL, *after = NULL;
        size_t n0 = 0, n1 = 0;
        if (wild) assert_int_equal(cnn_read_file(ck, &before, &n0, 1 << 20), 0);
        int rc = cnn_model_fit(m, &ds, &c, &h);
        assert_int_equal(rc, wild ? CNN_ERR_NONFINITE : 0);
        if (wild) {
            assert_int_equal(cnn_read_file(ck, &after, &n1, 1 << 20), 0);
            assert_true(n0 == n1 && !memcmp(before, after, n0));
        }
        cnn_model *loaded = cnn_model_load(ck);
        assert_non_null(loaded);
        assert_true(all_finite(loaded));
        free(before), free(after);
        cnn_model_free(loaded);
        cnn_history_free(&h);
        cnn_callback_free(cb);
        cnn_model_free(m);
    }
    cnn_dataset_free(&ds);
}

/* A NaN written into a weight cannot be saved, and a file carrying one (checksum intact) is refused. */
static void test_nonfinite_files(void **state)
{
    (void)state;
    cnn_model *m = make_model(0.1);
    cnn_tensor t;
    assert_int_equal(cnn_model_find_tensor(m, "out/bias", &t), 0);
    const char *path = tu_path("good.cnn");
    assert_int_equal(cnn_model_save(m, path), 0);
    t.data[1] = NAN;
    tu_assert_error(cnn_model_save(m, tu_path("bad.cnn")), CNN_ERR_NONFINITE,
                    "tensor 'out/bias' holds nan at index 1");
    t.data[1] = 0.0f;

    /* Patch the saved model: the last float of the tensors (out/bias[1]) sits just before the END! section
     * header (12 bytes) and the checksum (4); write NaN there and fix the checksum. */
    FILE *f = fopen(path, "rb");
    unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    float nan = NAN;
    memcpy(buf + len - 4 - 12 - 4, &nan, 4);
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    tu_write(tu_path("nan.cnn"), buf, len);
    assert_null(cnn_model_load(tu_path("nan.cnn")));
    tu_assert_error(CNN_ERR_NONFINITE, cnn_errcode(), "nan.cnn: tensor 'out/bias' holds nan at index 1");
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_divergence_stops),
        cmocka_unit_test(test_divergence_keeps_checkpoint),
        cmocka_unit_test(test_nonfinite_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
