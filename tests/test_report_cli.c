/* cnnlab report, run as a program on run records saved with cnn_run_save: every picture and index.html are
 * written, every file the page references exists, and missing or corrupt run files get clear errors.
 * The binary is dirname(dirname(argv[0]))/cnnlab, as in test_cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <zip.h>

#include "report_fixture.h"
#include "util.h"

static char g_bin[1024];
static char g_err[4096];

static int cli(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", g_bin, args, tu_path("stderr.txt"));
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    FILE *f = fopen(tu_path("stderr.txt"), "rb");
    size_t n = f ? fread(g_err, 1, sizeof g_err - 1, f) : 0;
    g_err[n] = '\0';
    if (f) fclose(f);
    if (WEXITSTATUS(rc)) fprintf(stderr, "cnnlab %s: exit %d: %s", args, WEXITSTATUS(rc), g_err);
    return WEXITSTATUS(rc);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

static void put(const char *path, const char *text)
{
    tu_write(path, text, strlen(text));
}

/* A study of three runs: the fixture's Model_2_s2, and copies renamed and re-scored as an MLP and an
 * augmented run, each with its recipe. */
static int make_study(const char *dir)
{
    static const char *const names[3] = {"Model_1", "Model_2_s2", "Model_2_s2_igen"};
    static const char *const specs[3] = {"model Model_1\nFlatten\nDense units=10\n",
                                         "model Model_2_s2\nConv2D filters=32\nDense units=10\n",
                                         "model Model_2_s2_igen\nConv2D filters=32\naugment\n"};
    static const double acc[3] = {0.8877, 0.9249, 0.9253};
    char path[700];
    int real = 0;
    mkdir(dir, 0777);
    for (int i = 0; i < 3; i++) {
        cnn_run r;
        rf_model_2_s2(&r, NULL, &real);
        snprintf(r.model, sizeof r.model, "%s", names[i]);
        r.test_accuracy = acc[i];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        mkdir(path, 0777);
        snprintf(path, sizeof path, "%s/%s/run.json", dir, names[i]);
        assert_int_equal(cnn_run_save(&r, path), 0);
        snprintf(path, sizeof path, "%s/%s/model.spec", dir, names[i]);
        put(path, specs[i]);
        rf_free(&r);
    }
    return real;
}

/* Every src="..." and href="..." of the page (other than #anchors) names a file beside it. */
static int check_references(const char *dir, const char *best, const char *also)
{
    char path[800], *html;
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    html = calloc(1, 1 << 22);
    assert_true(fread(html, 1, (1 << 22) - 1, f) > 0);
    fclose(f);
    int refs = 0;
    for (const char *p = html; (p = strstr(p, "src=\""));) {
        p += 5;
        size_t n = strcspn(p, "\"");
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)n, p);
        if (!exists(path)) fail_msg("index.html references %s, which is missing", path);
        refs++;
    }
    for (const char *p = html; (p = strstr(p, "href=\""));) {
        p += 6;
        if (*p == '#') continue;
        size_t n = strcspn(p, "\"");
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)n, p);
        if (!exists(path)) fail_msg("index.html links %s, which is missing", path);
        refs++;
    }
    assert_non_null(strstr(html, "<h2>Conclusions</h2>"));
    char line[200];
    snprintf(line, sizeof line, "Best model: <b>%s</b>", best);
    assert_non_null(strstr(html, line));
    if (also && !strstr(html, also)) fail_msg("index.html lacks \"%s\"", also);
    assert_null(strstr(html, "<script"));
    free(html);
    return refs;
}

static void test_study_report(void **state)
{
    (void)state;
    const char *dir = tu_path("study");
    int real = make_study(dir);
    char args[900];
    snprintf(args, sizeof args, "report '%s' --quiet --labels uk%s", dir, real ? "" : " --no-predict");
    assert_int_equal(cli(args), 0);
    static const char *const files[] = {"va.png", "va_sorted.png", "Model_1/Model_1_ca.png",
                                        "Model_2_s2/Model_2_s2_cm.png",
                                        "Model_2_s2_igen/Model_2_s2_igen_ca.png"};
    char path[800];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        assert_true(exists(path));
    }
    snprintf(path, sizeof path, "%s/predict.png", dir);
    assert_int_equal(exists(path), real);
    /* 2 bar charts, 3 x 2 run pictures, and predict.png when drawn. */
    assert_int_equal(
        check_references(dir, "Model_2_s2_igen",
                         "<b>Model_2_s2</b> (92.49%) against the best MLP <b>Model_1</b> (88.77%): "
                         "+3.72 percentage points"),
        8 + real);
    /* One run folder alone. */
    snprintf(args, sizeof args, "report '%s/Model_1' --quiet --no-predict", dir);
    assert_int_equal(cli(args), 0);
    snprintf(path, sizeof path, "%s/Model_1", dir);
    assert_int_equal(check_references(path, "Model_1", NULL), 2);
}

static void has_entry(const char *zip, const char *name)
{
    zip_t *za = zip_open(zip, ZIP_RDONLY | ZIP_CHECKCONS, NULL);
    assert_non_null(za);
    if (zip_name_locate(za, name, 0) < 0) fail_msg("%s lacks %s", zip, name);
    zip_discard(za);
}

static void test_study_archives(void **state)
{
    (void)state;
    const char *dir = tu_path("zipstudy");
    make_study(dir);
    char args[1100], zip[900];
    snprintf(args, sizeof args, "report '%s/' --quiet --no-predict --zip", dir);
    assert_int_equal(cli(args), 0);
    snprintf(zip, sizeof zip, "%s/zipstudy_models.zip", dir);
    has_entry(zip, "Model_1/run.json");
    has_entry(zip, "Model_2_s2/model.spec");
    snprintf(zip, sizeof zip, "%s/zipstudy_images.zip", dir);
    has_entry(zip, "va_sorted.png");
    has_entry(zip, "Model_2_s2_igen/Model_2_s2_igen_cm.png");
    has_entry(zip, "index.html");
    snprintf(args, sizeof args, "command -v unzip >/dev/null || exit 0; unzip -tq '%s' >/dev/null", zip);
    assert_int_equal(system(args), 0);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char args[900], path[800];
    const char *empty = tu_path("empty");
    mkdir(empty, 0777);
    snprintf(args, sizeof args, "report '%s'", empty);
    assert_int_equal(cli(args), 1);
    assert_non_null(strstr(g_err, "no run.json"));
    /* A corrupt record is named. */
    const char *bad = tu_path("bad");
    mkdir(bad, 0777);
    snprintf(path, sizeof path, "%s/run.json", bad);
    put(path, "{\"model\": \"x\", \"history\": [1, 2");
    snprintf(args, sizeof args, "report '%s' --no-predict", bad);
    assert_int_equal(cli(args), 1);
    assert_non_null(strstr(g_err, "run.json"));
    /* A model name that would put pictures elsewhere. */
    cnn_run r;
    rf_model_2_s2(&r, NULL, NULL);
    snprintf(r.model, sizeof r.model, "../escape");
    assert_int_equal(cnn_run_save(&r, path), 0);
    rf_free(&r);
    assert_int_equal(cli(args), 1);
    assert_non_null(strstr(g_err, "model name '../escape' cannot name a picture file"));
    assert_int_equal(cli("report /nonexistent/study"), 1);
    assert_non_null(strstr(g_err, "/nonexistent/study"));
    assert_int_equal(cli("report"), 2);
    snprintf(args, sizeof args, "report '%s' --labels fr", empty);
    assert_int_equal(cli(args), 2);
    assert_non_null(strstr(g_err, "en or uk"));
    snprintf(path, sizeof path, "%s/Model_1/run.json", tu_path("study"));
    if (!exists(path)) make_study(tu_path("study"));
    snprintf(args, sizeof args, "report '%s' --select Nope", tu_path("study"));
    assert_int_equal(cli(args), 1);
    assert_non_null(strstr(g_err, "--select Nope: no such run"));
}

int main(int argc, char **argv)
{
    (void)argc;
    if (tu_cnnlab_path(argv[0], g_bin, sizeof g_bin)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_study_report),
        cmocka_unit_test(test_study_archives),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
