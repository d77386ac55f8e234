/* The study's archives: a tree zipped (only the wanted files, names relative to the base), tested with
 * `unzip -t` when present, extracted again byte for byte; hostile archives are refused with clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "util.h"

static void put(const char *rel, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), rel);
    tu_write(path, text, strlen(text));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void make_tree(void)
{
    mkdir(tu_path("study"), 0777);
    mkdir(tu_path("study/Model_1"), 0777);
    mkdir(tu_path("study/Model_1/logs"), 0777);
    put("study/Model_1/model.cnn", "weights");
    put("study/Model_1/history.json", "{\"epochs\": 1}");
    put("study/Model_1/Model_1_ca.png", "png bytes");
    put("study/Model_1/logs/events.out.tfevents.1.h.2.0.v2", "events");
    put("study/Model_1/notes.txt", "left out");
}

static void test_zip_and_unzip(void **state)
{
    (void)state;
    make_tree();
    const char *dirs[] = {tu_path("study")};
    const char *const suffixes[] = {".cnn", ".json", ".v2", NULL};
    const char *zip = tu_path("study_models.zip");
    assert_int_equal(cnn_zip_tree(zip, tu_tmpdir(), dirs, 1, suffixes), 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "command -v unzip >/dev/null && unzip -tq '%s' >/dev/null", zip);
    int unzip_rc = system(cmd);
    if (system("command -v unzip >/dev/null") == 0) assert_int_equal(unzip_rc, 0);
    mkdir(tu_path("out"), 0777);
    assert_int_equal(cnn_unzip(zip, tu_path("out")), 0);
    char *a = slurp(tu_path("out/study/Model_1/history.json"));
    assert_non_null(a);
    assert_string_equal(a, "{\"epochs\": 1}");
    free(a);
    a = slurp(tu_path("out/study/Model_1/logs/events.out.tfevents.1.h.2.0.v2"));
    assert_string_equal(a, "events");
    free(a);
    struct stat st;
    assert_int_not_equal(stat(tu_path("out/study/Model_1/notes.txt"), &st), 0);
    assert_int_not_equal(stat(tu_path("out/study/Model_1/Model_1_ca.png"), &st), 0);
    /* Rewriting replaces the archive whole. */
    const char *const png[] = {".png", NULL};
    assert_int_equal(cnn_zip_tree(zip, tu_tmpdir(), dirs, 1, png), 0);
    zip_t *za = zip_open(zip, ZIP_RDONLY, NULL);
    assert_non_null(za);
    assert_int_equal(zip_get_num_entries(za, 0), 1);
    assert_string_equal(zip_get_name(za, 0, 0), "study/Model_1/Model_1_ca.png");
    zip_discard(za);
}

static void test_bad_archives(void **state)
{
    (void)state;
    /* An entry climbing out of the destination. */
    const char *evil = tu_path("evil.zip");
    zip_t *za = zip_open(evil, ZIP_CREATE | ZIP_TRUNCATE, NULL);
    zip_source_t *src = zip_source_buffer(za, "x", 1, 0);
    assert_true(zip_file_add(za, "../escape.txt", src, 0) >= 0);
    assert_int_equal(zip_close(za), 0);
    mkdir(tu_path("evil_out"), 0777);
    tu_assert_error(cnn_unzip(evil, tu_path("evil_out")), CNN_ERR_FORMAT, "outside the destination");
    /* Not a zip at all, a truncated one, and a missing one. */
    put("junk.zip", "this is not a zip archive");
    tu_assert_error(cnn_unzip(tu_path("junk.zip"), tu_tmpdir()), CNN_ERR_FORMAT, "junk.zip");
    tu_assert_error(cnn_unzip(tu_path("nothere.zip"), tu_tmpdir()), CNN_ERR_IO, "nothere.zip");
    /* Nothing to archive, and a target that is a folder. */
    const char *dirs[] = {tu_path("evil_out")};
    const char *const none[] = {".nothing", NULL};
    tu_assert_error(cnn_zip_tree(tu_path("empty.zip"), tu_tmpdir(), dirs, 1, none), CNN_ERR_INVALID,
                    "no files");
    tu_assert_error(cnn_zip_tree(tu_path("evil_out"), tu_tmpdir(), dirs, 1, NULL), CNN_ERR_IO,
                    "not a regular file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zip_and_unzip),
        cmocka_unit_test(test_bad_archives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
