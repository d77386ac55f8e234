/* Keras HDF5 weights: the fixtures of scripts/keras_vgg16_ref.py (a VGG-named network with few filters saved
 * by Keras 2.15, the same weights in the old ImageNet-file style by h5py) load and give Keras's outputs; an
 * export reloads bit for bit; malformed files are refused with messages naming file, group and dataset.
 * With CNN_KERAS_REF_DIR set (the script's OUTDIR), the full VGG16 is checked the same way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { BATCH = 2 };
static const int SMALL_FILTERS[13] = {2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4};
static const int FULL_FILTERS[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};

static const char *data_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *out = buf[slot++ % 4];
    const char *roots[] = {"tests/data/keras_h5", "../tests/data/keras_h5", "../../tests/data/keras_h5"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        snprintf(out, 512, "%s/%s", roots[i], name);
        FILE *f = fopen(out, "rb");
        if (f) return fclose(f), out;
    }
    fail_msg("tests/data/keras_h5/%s not found (run from the repository root)", name);
    return NULL;
}

/* Keras's VGG16 base layer by layer, with any filter counts. */
static cnn_model *vgg_like(const int *filters, int size)
{
    static const int blocks[5] = {2, 2, 3, 3, 3};
    cnn_model *m = cnn_model_create("vgg_like", size, size, 3);
    char opts[160];
    for (int b = 0, k = 0; b < 5; b++) {
        for (int c = 0; c < blocks[b]; c++, k++) {
            snprintf(opts, sizeof opts,
                     "filters=%d, kernel_size=3, padding=same, activation=relu, name=block%d_conv%d",
                     filters[k], b + 1, c + 1);
            assert_int_equal(cnn_model_add(m, "Conv2D", opts), 0);
        }
        snprintf(opts, sizeof opts, "pool_size=2, strides=2, name=block%d_pool", b + 1);
        assert_int_equal(cnn_model_add(m, "MaxPooling2D", opts), 0);
    }
    assert_int_equal(cnn_model_build(m, 1), 0);
    return m;
}

/* The script's inputs: value i = ((i * 2654435761 + 12345) mod 2^32 >> 8) / 2^24. */
static float *inputs(int size)
{
    size_t n = (size_t)BATCH * size * size * 3;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)((uint32_t)(i * 2654435761u + 12345u) >> 8) / 16777216.0f;
    return x;
}

/* The reference outputs for one input size: "size S batch B shape ..." then the values. */
static double *read_ref(const char *path, int size, size_t *count)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    double *v = NULL;
    int s, b, h, w, c;
    while (!v && fgets(line, sizeof line, f)) {
        if (sscanf(line, "size %d batch %d shape %d %d %d", &s, &b, &h, &w, &c) != 5 || s != size) continue;
        *count = (size_t)b * h * w * c;
        v = malloc(*count * sizeof *v);
        for (size_t i = 0; i < *count; i++) assert_int_equal(fscanf(f, "%lf", &v[i]), 1);
    }
    fclose(f);
    if (!v) fail_msg("%s: no outputs for size %d", path, size);
    return v;
}

/* max |cnnlab - keras| / max |keras| over the batch, for the model loaded from h5 at this input size. */
static double error_against_keras(const int *filters, const char *h5, const char *ref, int size)
{
    cnn_model *m = vgg_like(filters, size);
    int rc = cnn_model_load_keras_weights(m, h5);
    if (rc) fail_msg("%s: %s", h5, cnn_errmsg());
    size_t n;
    double *want = read_ref(ref, size, &n);
    assert_int_equal((size_t)cnn_model_num_outputs(m) * BATCH, n);
    float *x = inputs(size), *y = malloc(n * sizeof *y);
    assert_int_equal(cnn_model_predict(m, x, BATCH, BATCH, y), 0);
    double err = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs(y[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    assert_true(scale > 0);
    free(x);
    free(y);
    free(want);
    cnn_model_free(m);
    return err / scale;
}

static void test_small_fixture_matches_keras(void **state)
{
    (void)state;
    const char *files[] = {"vgg_small.h5", "vgg_small_old_vlen.h5", "vgg_small_old_fixed.h5"};
    for (size_t f = 0; f < 3; f++)
        for (int size = 32; size <= 56; size += 24) {
            double e =
                error_against_keras(SMALL_FILTERS, data_path(files[f]), data_path("vgg_small_ref.txt"), size);
            if (!(e <= 1e-4)) fail_msg("%s at %dx%d: relative error %.3g > 1e-4", files[f], size, size, e);
        }
}

static void assert_same_params(cnn_model *a, cnn_model *b)
{
    size_t n = cnn_model_num_params(a, 0);
    assert_int_equal(n, cnn_model_num_params(b, 0));
    assert_memory_equal(cnn_model_params(a), cnn_model_params(b), n * sizeof(float));
}

/* Exported weights reload bit for bit, flat or with the base as one group "vgg16" (Keras's nested model),
 * and the export itself is read as Keras would read it: strings, names, shapes. */
static void test_export_round_trip(void **state)
{
    (void)state;
    cnn_model *a = vgg_like(SMALL_FILTERS, 32), *b = vgg_like(SMALL_FILTERS, 32);
    assert_int_equal(cnn_model_load_keras_weights(a, data_path("vgg_small.h5")), 0);
    const char *flat = tu_path("flat.h5"), *nested = tu_path("nested.h5");
    assert_int_equal(cnn_model_save_keras_weights(a, NULL, 0, flat), 0);
    assert_int_equal(cnn_model_load_keras_weights(b, flat), 0);
    assert_same_params(a, b);
    cnn_layer_group g = {"vgg16", "Functional", 0, cnn_model_num_layers(a)};
    assert_int_equal(cnn_model_save_keras_weights(a, &g, 1, nested), 0);
    cnn_model_free(b);
    b = vgg_like(SMALL_FILTERS, 32);
    assert_int_equal(cnn_model_load_keras_weights(b, nested), 0);
    assert_same_params(a, b);
    /* for scripts/keras_vgg16_ref.py check-export small-nested / small */
    const char *keep = getenv("CNN_KERAS_EXPORT"), *keep_flat = getenv("CNN_KERAS_EXPORT_FLAT");
    if (keep) assert_int_equal(cnn_model_save_keras_weights(a, &g, 1, keep), 0);
    if (keep_flat) assert_int_equal(cnn_model_save_keras_weights(a, NULL, 0, keep_flat), 0);
    /* never over something that is not a regular file */
    tu_assert_error(cnn_model_save_keras_weights(a, NULL, 0, tu_tmpdir()), CNN_ERR_IO, "not a regular file");
    cnn_model_free(a);
    cnn_model_free(b);
}

static void assert_refused(const char *file, int code, const char *f1, const char *f2)
{
    cnn_model *m = vgg_like(SMALL_FILTERS, 32);
    size_t n = cnn_model_num_params(m, 0);
    float *before = malloc(n * sizeof *before);
    memcpy(before, cnn_model_params(m), n * sizeof *before);
    const char *path = data_path(file);
    int rc = cnn_model_load_keras_weights(m, path);
    tu_assert_error(rc, code, path);
    tu_assert_error(rc, code, f1);
    if (f2) tu_assert_error(rc, code, f2);
    assert_memory_equal(before, cnn_model_params(m), n * sizeof *before); /* unchanged */
    free(before);
    cnn_model_free(m);
}

static void test_bad_files_refused(void **state)
{
    (void)state;
    assert_refused("bad_not_hdf5.h5", CNN_ERR_FORMAT, "not an HDF5 file", NULL);
    assert_refused("bad_truncated.h5", CNN_ERR_FORMAT, "truncated", NULL);
    assert_refused("bad_missing_group.h5", CNN_ERR_FORMAT, "group 'block3_conv2'", "no such group");
    assert_refused("bad_missing_dataset.h5", CNN_ERR_FORMAT,
                   "group 'block2_conv1', dataset 'block2_conv1/bias:0'", "no such dataset");
    assert_refused("bad_shape.h5", CNN_ERR_FORMAT, "dataset 'block1_conv2/kernel:0'", "shape (3, 3, 2, 3)");
    assert_refused("bad_dtype.h5", CNN_ERR_FORMAT, "dataset 'block4_conv1/bias:0'",
                   "dtype float64, expected float32");
    assert_refused("bad_no_layer_names.h5", CNN_ERR_FORMAT, "no attribute 'layer_names'", NULL);
    cnn_model *m = vgg_like(SMALL_FILTERS, 32);
    tu_assert_error(cnn_model_load_keras_weights(m, tu_path("absent.h5")), CNN_ERR_IO, "cannot open");
    cnn_model_free(m);
}

/* A file whose names do not fit the model: another architecture, or a model with a layer the file lacks. */
static void test_mismatched_model_refused(void **state)
{
    (void)state;
    cnn_model *m = vgg_like(FULL_FILTERS, 32);
    tu_assert_error(cnn_model_load_keras_weights(m, data_path("vgg_small.h5")), CNN_ERR_FORMAT,
                    "dataset 'block1_conv1/kernel:0': shape (3, 3, 3, 2)");
    cnn_model_free(m);
    m = vgg_like(SMALL_FILTERS, 32);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3"), CNN_ERR_STATE); /* built: use a fresh one */
    cnn_model_free(m);
    m = cnn_model_create("extra", 32, 32, 3);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=2, kernel_size=3, padding=same, name=block1_conv1"),
                     0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    tu_assert_error(cnn_model_load_keras_weights(m, data_path("vgg_small.h5")), CNN_ERR_FORMAT,
                    "no tensor 'block1_conv2/kernel'");
    cnn_model_free(m);
}

/* Random byte edits of a good file: each load succeeds or fails with a message naming the file, and never
 * crashes or hangs the caller (libhdf5 itself crashes on some of them: the file is read in a child). */
static void test_mutation_fuzz(void **state)
{
    (void)state;
    FILE *f = fopen(data_path("vgg_small.h5"), "rb");
    assert_non_null(f);
    static unsigned char good[1 << 17], buf[1 << 17];
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    assert_true(n > 1000 && n < sizeof good);
    const char *path = tu_path("fuzz.h5");
    uint64_t r = 88172645463325252ull;
    int refused = 0;
    for (int round = 0; round < 120; round++) {
        memcpy(buf, good, n);
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        for (int e = 0; e < 1 + (int)(r % 6); e++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            buf[(r >> 8) % n] = (unsigned char)r;
        }
        tu_write(path, buf, n);
        cnn_model *m = vgg_like(SMALL_FILTERS, 32);
        int rc = cnn_model_load_keras_weights(m, path);
        if (rc && !strstr(cnn_errmsg(), path))
            fail_msg("round %d: message without the file: %s", round, cnn_errmsg());
        refused += rc != 0;
        cnn_model_free(m);
    }
    print_message("%d of 120 mutated files refused\n", refused);
}

/* The full VGG16 of the script (58 MB, not committed): only when CNN_KERAS_REF_DIR names its folder. */
static void test_full_vgg16_matches_keras(void **state)
{
    (void)state;
    const char *dir = getenv("CNN_KERAS_REF_DIR");
    if (!dir) {
        print_message("CNN_KERAS_REF_DIR not set (scripts/keras_vgg16_ref.py fixtures writes it)\n");
        skip();
    }
    char h5[512], ref[512];
    snprintf(h5, sizeof h5, "%s/vgg16_ref.h5", dir);
    snprintf(ref, sizeof ref, "%s/vgg16_ref.txt", dir);
    for (int size = 32; size <= 56; size += 24) {
        double e = error_against_keras(FULL_FILTERS, h5, ref, size);
        print_message("full VGG16 at %dx%d: max |cnnlab - keras| / max |keras| = %.3g\n", size, size, e);
        if (!(e <= 1e-4)) fail_msg("full VGG16 at %dx%d: relative error %.3g > 1e-4", size, size, e);
    }
}

int main(void)
{
    cnn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_fixture_matches_keras), cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_bad_files_refused),           cmocka_unit_test(test_mismatched_model_refused),
        cmocka_unit_test(test_full_vgg16_matches_keras),    cmocka_unit_test(test_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
