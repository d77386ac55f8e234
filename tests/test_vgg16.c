/* VGG16(...) in specs: the study's seven VGG16 models with the study's parameter counts, Keras's layer names
 * and trainability, the base as one group, its weights from a file (or the message that says where the
 * ImageNet file belongs), the argument errors; and GrayscaleToRGB's gradients. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gradcheck.h"
#include "util.h"

static cnn_spec *load_seed(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "models/seed/%s.spec", name);
    cnn_spec *s = cnn_spec_load(path);
    if (!s) fail_msg("%s", cnn_errmsg());
    return s;
}

/* The counts of spec §4.10-4.16, built without the ImageNet file (the counts do not depend on it). */
static void test_seed_counts(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t total, trainable;
    } seeds[] = {{"Model_5_VGG16", 14848586, 133898},     {"Model_6_VGG16", 14848592, 133904},
                 {"Model_7_VGG16", 14848592, 133904},     {"Model_8_VGG16", 14848592, 133904},
                 {"Model_9_VGG16", 14848616, 133928},     {"Model_9_VGG16_SC", 14848625, 133937},
                 {"Model_10_VGG16_AL", 14848592, 7213328}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        cnn_spec *s = load_seed(seeds[i].name);
        char what[64];
        assert_string_equal(cnn_spec_pretrained(s, what, sizeof what), "imagenet");
        assert_int_equal(cnn_spec_set_pretrained(s, "none"), 0);
        assert_string_equal(cnn_spec_pretrained(s, what, sizeof what), "none");
        cnn_model *m = cnn_spec_build_model(s, 1);
        if (!m) fail_msg("%s: %s", seeds[i].name, cnn_errmsg());
        if (cnn_model_num_params(m, 0) != seeds[i].total || cnn_model_num_params(m, 1) != seeds[i].trainable)
            fail_msg("%s: %zu params (%zu trainable), the study has %zu (%zu)", seeds[i].name,
                     cnn_model_num_params(m, 0), cnn_model_num_params(m, 1), seeds[i].total,
                     seeds[i].trainable);
        cnn_layer_group g[2];
        assert_int_equal(cnn_spec_layer_groups(s, g, 2), 1);
        assert_string_equal(g[0].name, "vgg16");
        assert_int_equal(g[0].count, 18);
        assert_string_equal(cnn_model_layer_name(m, g[0].first), "block1_conv1");
        assert_string_equal(cnn_model_layer_name(m, g[0].first + 17), "block5_pool");
        cnn_model_free(m);
        cnn_spec_free(s);
    }
}

/* Model_10: every base layer before block5_conv1 frozen, the rest trainable; the summary shows one row. */
static void test_trainable_from_and_summary(void **state)
{
    (void)state;
    cnn_spec *s = load_seed("Model_10_VGG16_AL");
    cnn_spec_set_pretrained(s, "none");
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    int n = cnn_model_num_tensors(m);
    for (int i = 0; i < n; i++) {
        cnn_tensor t;
        assert_int_equal(cnn_model_tensor(m, i, &t), 0);
        int base_frozen = !strncmp(t.name, "block", 5) && t.name[5] < '5';
        if (t.trainable == base_frozen) fail_msg("%s: trainable %d", t.name, t.trainable);
    }
    cnn_layer_group g;
    cnn_spec_layer_groups(s, &g, 1);
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cnn_model_summary_grouped(m, &g, 1, 0, f);
    fclose(f);
    assert_non_null(strstr(buf, " vgg16 (Functional)          (None, 1, 1, 512)         14,714,688"));
    assert_null(strstr(buf, "block1_conv1"));
    assert_non_null(strstr(buf, "Trainable params: 7,213,328"));
    assert_non_null(strstr(buf, "Non-trainable params: 7,635,264"));
    cnn_model_free(m);
    cnn_spec_free(s);
}

static const char *spec_with(const char *input, const char *vgg)
{
    static char text[1024];
    snprintf(text, sizeof text,
             "model: v\ninput: %s\nlayers:\n    %s\n    Flatten()\n    Dense(10, activation=\"softmax\")\n",
             input, vgg);
    return text;
}

static void test_argument_errors(void **state)
{
    (void)state;
    static const struct {
        const char *input, *vgg, *fragment;
    } cases[] = {
        {"(32, 32, 3)", "VGG16(weights=None, include_top=True)", "v.spec:4:25: VGG16: include_top=True"},
        {"(32, 32, 3)", "VGG16(weights=None, include_top=False, trainable_from=\"block9_conv1\")",
         "trainable_from=\"block9_conv1\" is not a layer of the base"},
        {"(32, 32, 3)",
         "VGG16(weights=None, include_top=False, trainable=False, trainable_from=\"block5_conv1\")",
         "trainable_from needs trainable=True"},
        {"(32, 32, 1)", "VGG16(weights=None, include_top=False)",
         "v.spec:4:5: VGG16: its input is (32, 32, 1)"},
        {"(28, 28, 3)", "VGG16(weights=None, include_top=False)", "v.spec:4:5: layer 'block5_pool'"},
        {"(32, 32, 3)", "VGG16(weights=None, include_top=False, input_shape=(56, 56, 3))",
         "expected its input_shape"},
        {"(32, 32, 3)", "VGG16(weights=None, include_top=False, input_shape=(56, 56))",
         "input_shape=(56, 56)"},
        {"(32, 32, 3)", "VGG16(weights=None, include_top=False, pooling=\"avg\")",
         "unknown option 'pooling'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_spec *s = cnn_spec_parse(spec_with(cases[i].input, cases[i].vgg), "v.spec");
        if (s) fail_msg("case %zu accepted", i);
        if (!strstr(cnn_errmsg(), cases[i].fragment))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, cnn_errmsg(), cases[i].fragment);
    }
}

/* weights="imagenet" with no file where Keras keeps it: parsing and summaries work, building says what is
 * missing and where it belongs. */
static void test_imagenet_missing(void **state)
{
    (void)state;
    setenv("KERAS_HOME", tu_path("keras"), 1);
    setenv("HOME", tu_tmpdir(), 1);
    cnn_spec *s = cnn_spec_parse(spec_with("(32, 32, 3)", "VGG16(include_top=False)"), "v.spec");
    if (!s) fail_msg("%s", cnn_errmsg());
    tu_assert_error(cnn_spec_check_pretrained(s), CNN_ERR_IO,
                    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5");
    assert_null(cnn_spec_build_model(s, 1));
    const char *msg = cnn_errmsg();
    assert_non_null(strstr(msg, "v.spec:4:5: "));
    assert_non_null(strstr(msg, "58,889,256 bytes, MD5 6d6bbae143d832006294945121d1f1fc"));
    assert_non_null(strstr(msg, "~/.keras/models/"));
    assert_non_null(strstr(msg, "--vgg-weights none"));
    cnn_spec_free(s);
}

/* Weights exported from one model load into the base of another, from the spec or from $KERAS_HOME. */
static void test_weights_from_file(void **state)
{
    (void)state;
    static const int filters[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
    cnn_model *ma = cnn_model_create("base", 32, 32, 3); /* the base alone, as Keras's VGG16() */
    char opts[160];
    for (int b = 0, k = 0; b < 5; b++) {
        for (int c = 0; c < (b < 2 ? 2 : 3); c++, k++) {
            snprintf(opts, sizeof opts,
                     "filters=%d, kernel_size=3, padding=same, activation=relu, name=block%d_conv%d",
                     filters[k], b + 1, c + 1);
            assert_int_equal(cnn_model_add(ma, "Conv2D", opts), 0);
        }
        snprintf(opts, sizeof opts, "pool_size=2, name=block%d_pool", b + 1);
        assert_int_equal(cnn_model_add(ma, "MaxPooling2D", opts), 0);
    }
    assert_int_equal(cnn_model_build(ma, 7), 0);
    char dir[512], file[600], vgg[800];
    snprintf(dir, sizeof dir, "%s", tu_path("kh"));
    snprintf(file, sizeof file, "%s/models", dir);
    assert_int_equal(mkdir(dir, 0777) || mkdir(file, 0777), 0);
    snprintf(file, sizeof file, "%s/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", dir);
    assert_int_equal(cnn_model_save_keras_weights(ma, NULL, 0, file), 0);
    snprintf(vgg, sizeof vgg, "VGG16(weights=\"%s\", include_top=False, trainable=False)", file);
    const char *vggs[] = {vgg, "VGG16(weights=\"imagenet\", include_top=False, trainable=False)"};
    setenv("KERAS_HOME", dir, 1);
    for (int k = 0; k < 2; k++) {
        cnn_spec *b = cnn_spec_parse(spec_with("(32, 32, 3)", vggs[k]), "b.spec");
        if (!b) fail_msg("%s", cnn_errmsg());
        cnn_model *mb = cnn_spec_build_model(b, 2);
        if (!mb) fail_msg("%s", cnn_errmsg());
        cnn_tensor ta, tb;
        assert_int_equal(cnn_model_find_tensor(ma, "block5_conv3/kernel", &ta), 0);
        assert_int_equal(cnn_model_find_tensor(mb, "block5_conv3/kernel", &tb), 0);
        assert_memory_equal(ta.data, tb.data, ta.size * sizeof(float));
        assert_int_equal(cnn_model_find_tensor(mb, "dense/kernel", &tb), 0); /* the head: its own init */
        cnn_model_free(mb);
        cnn_spec_free(b);
    }
    cnn_model_free(ma);
}

static char g_bin[1024];

/* Runs `cnnlab ARGS` (this build's binary) with stderr into err; returns the exit status. */
static int cli(const char *args, char *err, size_t cap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", g_bin, args, tu_path("stderr.txt"));
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    FILE *f = fopen(tu_path("stderr.txt"), "r");
    assert_non_null(f);
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
    return WEXITSTATUS(rc);
}

/* cnnlab export-weights writes the base as one group "vgg16" (as a Keras model holding VGG16 has it), whose
 * weights load back; train refuses a missing ImageNet file before reading any data. */
static void test_cli(void **state)
{
    (void)state;
    const char *text = "model: t\ninput: (28, 28, 1)\nlayers:\n    ZeroPadding2D(2)\n    GrayscaleToRGB()\n"
                       "    VGG16(include_top=False, trainable=False)\n    Flatten()\n"
                       "    Dense(10, activation=\"softmax\")\n";
    tu_write(tu_path("t.spec"), text, strlen(text));
    setenv("HOME", tu_tmpdir(), 1);
    unsetenv("KERAS_HOME");
    char err[8192], args[2048];
    snprintf(args, sizeof args, "train '%s' --data /nonexistent --epochs 1", tu_path("t.spec"));
    assert_int_equal(cli(args, err, sizeof err), 1);
    assert_non_null(
        strstr(err, "t.spec:6:5: VGG16(weights=\"imagenet\"): vgg16_weights_tf_dim_ordering_tf_kernels"));
    cnn_spec *s = cnn_spec_load(tu_path("t.spec"));
    assert_non_null(s);
    cnn_spec_set_pretrained(s, "none");
    cnn_model *m = cnn_spec_build_model(s, 3), *back = cnn_spec_build_model(s, 4);
    assert_true(m && back);
    assert_int_equal(cnn_model_save(m, tu_path("t.cnn")), 0);
    snprintf(args, sizeof args, "export-weights '%s' '%s'", tu_path("t.cnn"), tu_path("t.h5"));
    if (cli(args, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(cnn_model_load_keras_weights(back, tu_path("t.h5")), 0);
    assert_memory_equal(cnn_model_params(m), cnn_model_params(back),
                        cnn_model_num_params(m, 0) * sizeof(float));
    snprintf(args, sizeof args, "export-weights '%s' '%s'", tu_path("t.cnn"), tu_path("t.cnn"));
    assert_int_equal(cli(args, err, sizeof err), 2);
    assert_non_null(strstr(err, "is the model itself"));
    cnn_model_free(m);
    cnn_model_free(back);
    cnn_spec_free(s);
}

static void test_gray_to_rgb(void **state)
{
    (void)state;
    gc_assert_layer("GrayscaleToRGB", "", 4, 5, 1, 2, 1, 2e-3);
    cnn_model *m = cnn_model_create("g", 4, 4, 3);
    assert_int_equal(cnn_model_add(m, "GrayscaleToRGB", ""), 0);
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_SHAPE, "one-channel image");
    cnn_model_free(m);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(g_bin, sizeof g_bin, "%s/cnnlab", dirname(dirname(self)));
    cnn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_counts),
        cmocka_unit_test(test_trainable_from_and_summary),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_imagenet_missing),
        cmocka_unit_test(test_weights_from_file),
        cmocka_unit_test(test_gray_to_rgb),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
