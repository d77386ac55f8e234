/* Spec files: the study's seed specs parse and build with the study's parameter counts; every slip a user
 * makes is reported with file, line and column; no input crashes the parser (a mutation fuzz loop, run under
 * the sanitizers by `make test`). */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "spec/spec.h"
#include "util.h"

static const char *const BASE =
    "# a comment\n"
    "model: Tiny\n"
    "input: (28, 28, 1)\n"
    "layers:\n"
    "    Conv2D(4, kernel_size=3, activation=\"relu\")  # trailing comment\n"
    "    MaxPooling2D(2)\n"
    "    Flatten()\n"
    "    Dense(10,\n"
    "          activation=\"softmax\")\n"
    "optimizer: Adam(learning_rate=0.005)\n"
    "fit: batch_size=64, epochs=3, validation=\"test\", seed=7\n"
    "callbacks:\n"
    "    EarlyStopping(monitor=\"val_loss\", patience=2, restore_best_weights=True)\n"
    "    LearningRateScheduler(\"exp\", thresh=1)\n";

static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at) fail_msg("test bug: '%s' not in the base spec", from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* Parses base with one replacement and expects an error containing fragment (e.g. "t.spec:5:5: ..."). */
static void expect_error(const char *from, const char *to, const char *fragment)
{
    char *text = replace(BASE, from, to);
    cnn_spec *s = cnn_spec_parse(text, "t.spec");
    if (s) fail_msg("'%s' -> '%s' parsed; expected an error with \"%s\"", from, to, fragment);
    if (!strstr(cnn_errmsg(), fragment))
        fail_msg("'%s' -> '%s': error \"%s\" lacks \"%s\"", from, to, cnn_errmsg(), fragment);
    free(text);
}

static void test_valid_spec(void **state)
{
    (void)state;
    cnn_spec *s = cnn_spec_parse(BASE, "t.spec");
    if (!s) fail_msg("%s", cnn_errmsg());
    assert_string_equal(cnn_spec_name(s), "Tiny");
    assert_string_equal(cnn_spec_text(s), BASE);
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    assert_int_equal(f.batch_size, 64);
    assert_int_equal(f.epochs, 3);
    assert_int_equal(f.seed, 7);
    assert_string_equal(f.validation, "test");
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_num_layers(m), 4);
    assert_int_equal(cnn_model_num_params(m, 0), 4 * 9 + 4 + 13 * 13 * 4 * 10 + 10);
    assert_true(cnn_model_learning_rate(m) == 0.005);
    cnn_callback **cbs;
    int n;
    assert_int_equal(cnn_spec_callbacks(s, NULL, &cbs, &n), 0);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) cnn_callback_free(cbs[i]);
    free(cbs);
    cnn_model_free(m);
    cnn_spec_free(s);
}

/* Keras's defaults where the spec is silent: Adam(0.001), batch 32, 1 epoch, test-set validation. */
static void test_defaults(void **state)
{
    (void)state;
    cnn_spec *s =
        cnn_spec_parse("model: m\ninput: (1, 1, 4)\nlayers:\n  Dense(3, activation=softmax)\n", "d");
    if (!s) fail_msg("%s", cnn_errmsg());
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    assert_int_equal(f.batch_size, 32);
    assert_int_equal(f.epochs, 1);
    assert_string_equal(f.validation, "test");
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_true(cnn_model_learning_rate(m) == 0.001);
    cnn_model_free(m);
    cnn_spec_free(s);
}

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_error("    Conv2D(4,", "    Conv2d(4,",
                 "t.spec:5:5: unknown layer type 'Conv2d' (did you mean 'Conv2D'?)");
    expect_error("kernel_size=3", "kernal_size=3",
                 "t.spec:5:15: layer 1 (Conv2D): unknown option 'kernal_size' (did you mean 'kernel_size'?)");
    expect_error("activation=\"relu\"", "activation=\"rellu\"",
                 "t.spec:5:30: layer 1 (Conv2D): unknown activation 'rellu'");
    expect_error("MaxPooling2D(2)", "MaxPooling2D(40)", "t.spec:6:5: layer 'max_pooling2d' (MaxPooling2D)");
    expect_error("input: (28, 28, 1)", "input: (28, 28)",
                 "t.spec:3:8: expected input: (height, width, channels)");
    expect_error("optimizer: Adam", "optimizer: Adamm", "t.spec:10:12: unknown optimizer 'Adamm'");
    expect_error("learning_rate=0.005", "learning_rate=fast",
                 "t.spec:10:17: optimizer Adam: learning_rate=fast is not a number");
    expect_error("batch_size=64", "batch_size=-4", "t.spec:11:6: fit: batch_size=-4 is out of range");
    expect_error("validation=\"test\"", "validation=\"tset\"",
                 "fit: validation=tset is not one of: test, split, none");
    expect_error("fit:", "fti:", "t.spec:11:1: unknown key 'fti' (did you mean 'fit'?)");
    expect_error("EarlyStopping(", "EarlyStoping(",
                 "t.spec:13:5: unknown callback 'EarlyStoping' (did you mean 'EarlyStopping'?)");
    expect_error("patience=2", "patients=2",
                 "t.spec:13:39: EarlyStopping: unknown option 'patients' (did you mean 'patience'?)");
    expect_error("\"exp\", thresh=1", "\"expo\", thresh=1",
                 "t.spec:14:27: LearningRateScheduler: schedule=expo is not one of");
    expect_error("    Flatten()\n", "    Flatten(\n", "t.spec:7:5: ");
    expect_error("Dense(10,\n", "Dense(activation=\"relu\", 10,\n",
                 "positional argument after keyword arguments");
    expect_error("model: Tiny", "model: Ti/ny", "t.spec:2:10: model name cannot contain '/'");
    expect_error("layers:\n", "layers: Dense(3)\n", "t.spec:4:9: 'layers:' stands on its own line");
    expect_error("# a comment\n", "stray words\n", "t.spec:1:1: expected 'key: value'");
}

static void test_missing_parts(void **state)
{
    (void)state;
    assert_null(cnn_spec_parse("", "e.spec"));
    tu_assert_error(CNN_ERR_FORMAT, cnn_errcode(), "e.spec:1:1: missing 'model: NAME'");
    assert_null(cnn_spec_parse("model: a\n", "e.spec"));
    tu_assert_error(CNN_ERR_FORMAT, cnn_errcode(), "missing 'input: (height, width, channels)'");
    assert_null(cnn_spec_parse("model: a\ninput: (2,2,1)\n", "e.spec"));
    tu_assert_error(CNN_ERR_FORMAT, cnn_errcode(), "no layers");
    assert_null(
        cnn_spec_parse("model: a\ninput: (2,2,1)\nlayers:\n  Flatten()\n  Dense(3, activation=relu)\n", "e"));
    tu_assert_error(CNN_ERR_INVALID, cnn_errcode(), "the loss expects probabilities");
    assert_null(cnn_spec_parse(NULL, "x"));
}

static void test_files(void **state)
{
    (void)state;
    assert_null(cnn_spec_load(tu_path("absent.spec")));
    tu_assert_error(CNN_ERR_IO, cnn_errcode(), "absent.spec: cannot open");
    tu_write(tu_path("nul.spec"), "model: a\0x", 10);
    assert_null(cnn_spec_load(tu_path("nul.spec")));
    tu_assert_error(CNN_ERR_FORMAT, cnn_errcode(), "offset 8: NUL byte");
    tu_write(tu_path("ok.spec"), BASE, strlen(BASE));
    cnn_spec *s = cnn_spec_load(tu_path("ok.spec"));
    if (!s) fail_msg("%s", cnn_errmsg());
    cnn_spec_free(s);
}

/* The study's models, as the repository ships them: they parse, and build with the spec's parameter counts.
 */
static void test_seed_specs(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t params;
    } seeds[] = {{"Model_1", 337674},
                 {"Model_2", 130890},
                 {"Model_2_s2", 261962},
                 {"Model_3", 82026},
                 {"Model_4", 1389674},
                 {"Model_2_L2_0.001", 130890},
                 {"Model_2_L2_0.05_lr_0.025e", 130890},
                 {"Model_2_L1_0.001_B_256", 130890}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "models/seed/%s.spec", seeds[i].name);
        cnn_spec *s = cnn_spec_load(path);
        if (!s) fail_msg("%s", cnn_errmsg());
        assert_string_equal(cnn_spec_name(s), seeds[i].name);
        cnn_model *m = cnn_spec_build_model(s, 1);
        assert_non_null(m);
        if (cnn_model_num_params(m, 0) != seeds[i].params)
            fail_msg("%s: %zu params, the study has %zu", seeds[i].name, cnn_model_num_params(m, 0),
                     seeds[i].params);
        cnn_model_free(m);
        cnn_spec_free(s);
    }
}

/* cnn_spec_parse_budget (the fuzz harness's parser, which checks large models unbuilt) gives text the same
 * verdict and message as cnn_spec_parse, which builds every model. */
static void expect_same_verdict(const char *text, const char *origin)
{
    cnn_spec *built = cnn_spec_parse(text, origin);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", built ? "" : cnn_errmsg());
    cnn_spec *unbuilt = cnn_spec_parse_budget(text, origin, 1); /* 1 parameter: nothing is built */
    if (!built != !unbuilt || (!built && strcmp(msg, cnn_errmsg())))
        fail_msg("%s: built: %s; unbuilt: %s", origin, built ? "parsed" : msg,
                 unbuilt ? "parsed" : cnn_errmsg());
    cnn_spec_free(built);
    cnn_spec_free(unbuilt);
}

static void test_unbuilt_check_same_verdict(void **state)
{
    (void)state;
    static const char *const edits[][2] = {
        {"learning_rate=0.005", "learning_rate=0"},                    /* the optimizer's check */
        {"activation=\"softmax\"", "activation=\"relu\""},             /* the loss's check */
        {"Dense(10,", "Dense(1,"},                                     /* one output: no classes */
        {"(28, 28, 1)", "(2, 2, 1)"},                                  /* an empty convolution output */
        {"MaxPooling2D(2)", "VGG16(weights=None, include_top=False)"}, /* a base on 4 channels */
        {"MaxPooling2D(2)", "BatchNormalization()"},                   /* builds */
    };
    expect_same_verdict(BASE, "base.spec");
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *text = replace(BASE, edits[i][0], edits[i][1]);
        expect_same_verdict(text, "edit.spec");
        free(text);
    }
    static const char *const seeds[] = {"Model_1", "Model_5_VGG16", "Model_9_VGG16_SC", "Model_11_igen"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[256], *text = NULL;
        size_t len;
        snprintf(path, sizeof path, "models/seed/%s.spec", seeds[i]);
        if (cnn_read_file(path, &text, &len, 1 << 20)) fail_msg("%s", cnn_errmsg());
        expect_same_verdict(text, path);
        free(text);
    }
}

/* Random edits of a valid spec: the parser must answer with a spec or an error, never crash or hang. */
static void test_mutation_fuzz(void **state)
{
    (void)state;
    static const char alphabet[] = "()[],=:#\"'\n \t0123456789.-eTrueFalsDnsCvxyz_";
    size_t len = strlen(BASE);
    char *buf = malloc(len + 64);
    assert_non_null(buf);
    int parsed = 0;
    for (uint64_t round = 0; round < 3000; round++) {
        memcpy(buf, BASE, len + 1);
        size_t n = len;
        int edits = 1 + (int)cnn_rng_below(11, round, 0, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = cnn_rng_below(11, round, 3 * (uint64_t)e + 1, (uint32_t)n);
            char c = alphabet[cnn_rng_below(11, round, 3 * (uint64_t)e + 2, sizeof alphabet - 1)];
            switch (cnn_rng_below(11, round, 3 * (uint64_t)e + 3, 3)) {
            case 0:
                buf[at] = c;
                break; /* replace */
            case 1:
                memmove(buf + at, buf + at + 1, n - at), n--;
                break; /* delete */
            default:
                memmove(buf + at + 1, buf + at, n - at + 1), buf[at] = c, n++; /* insert */
            }
        }
        if (round % 10 == 0) expect_same_verdict(buf, "fuzz.spec");
        cnn_spec *s = cnn_spec_parse(buf, "fuzz.spec");
        if (s)
            parsed++;
        else
            assert_true(strncmp(cnn_errmsg(), "fuzz.spec", 9) == 0 || cnn_errcode() != CNN_ERR_FORMAT);
        cnn_spec_free(s);
    }
    assert_true(parsed > 0 && parsed < 3000); /* both outcomes were exercised */
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_spec),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_missing_parts),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_seed_specs),
        cmocka_unit_test(test_unbuilt_check_same_verdict),
        cmocka_unit_test(test_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
