/* cnnlab augment, run as a program on a small IDX dataset: the picture's size, its bytes the same for a seed
 * on any thread count and different for another seed, spec sections of both kinds, and clear errors for bad
 * specs and options. The binary is dirname(dirname(argv[0]))/cnnlab, as in test_cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static char g_bin[1024], g_data[512];
static char g_out[4096], g_err[4096]; /* the start of the last run's stdout and stderr */

static void read_start(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
}

/* Runs `ENV cnnlab augment ARGS` and returns its exit status. */
static int augment(const char *env, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' augment %s >'%s' 2>'%s'", env, g_bin, args, tu_path("stdout.txt"),
             tu_path("stderr.txt"));
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    read_start(tu_path("stdout.txt"), g_out, sizeof g_out);
    read_start(tu_path("stderr.txt"), g_err, sizeof g_err);
    return WEXITSTATUS(rc);
}

static void expect(const char *args, int status, const char *fragment)
{
    int rc = augment("", args);
    if (rc != status) fail_msg("augment %s: exit %d, expected %d\nstderr: %s", args, rc, status, g_err);
    const char *text = status ? g_err : g_out;
    if (fragment && !strstr(text, fragment))
        fail_msg("augment %s: output lacks \"%s\":\n%s", args, fragment, text);
}

/* The whole file (NULL when missing); *len its size. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A PNG's width and height from its IHDR chunk. */
static void png_size(const char *path, int *w, int *h)
{
    size_t n;
    unsigned char *b = slurp(path, &n);
    if (!b) fail_msg("%s was not written", path);
    assert_true(n > 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4));
    *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
    *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
    free(b);
}

static int same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_true(x && y);
    int same = na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return same;
}

/* ------------------------------------------------------------------ a small IDX dataset */

/* n 28x28 images: a bright square whose place depends on the class, on noise. */
static void write_split(const char *prefix, int n, uint32_t seed)
{
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    assert_true(img && lab);
    for (int i = 0; i < n; i++) {
        int k = i % 10;
        lab[i] = (uint8_t)k;
        for (int p = 0; p < 784; p++) {
            seed = seed * 1664525u + 1013904223u;
            int r = p / 28, c = p % 28, in = r >= 4 + k && r < 14 + k && c >= 6 && c < 20;
            img[(size_t)i * 784 + p] = (uint8_t)(in ? 180 + (seed >> 26) : seed >> 27);
        }
    }
    tu_write_idx(g_data, prefix, img, lab, n, 0);
    free(img);
    free(lab);
}

static const char *SPEC_HEAD = "model: m\n"
                               "input: (28, 28, 1)\n"
                               "layers:\n"
                               "    Flatten()\n"
                               "    Dense(10, activation=\"softmax\")\n"
                               "fit: batch_size=64, epochs=1, seed=3\n";

static const char *spec_file(const char *name, const char *tail)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s", SPEC_HEAD, tail);
    const char *path = tu_path(name);
    tu_write(path, text, strlen(text));
    return path;
}

static int make_data(void **state)
{
    (void)state;
    snprintf(g_data, sizeof g_data, "%s", tu_path("data"));
    if (mkdir(g_data, 0777)) return -1;
    write_split("train", 520, 1); /* one study batch of 512 (the default spec's) and a few more */
    write_split("t10k", 20, 2);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_study_generator_picture(void **state)
{
    (void)state;
    char args[2048], one[600], two[600], other[600];
    snprintf(one, sizeof one, "%s", tu_path("one.png"));
    snprintf(two, sizeof two, "%s", tu_path("two.png"));
    snprintf(other, sizeof other, "%s", tu_path("other.png"));
    /* The default: the study's generator (batch 512) on images 1..10, as the study's picture shows. */
    snprintf(args, sizeof args, "--data '%s' --out '%s'", g_data, one);
    if (augment("OMP_NUM_THREADS=1", args)) fail_msg("augment %s failed: %s", args, g_err);
    assert_non_null(strstr(g_out, "training images 1..10"));
    assert_non_null(strstr(g_out, "Model_2_s2_igen, seed 1"));
    int w, h;
    png_size(one, &w, &h);
    assert_int_equal(w, 1353); /* the study's screenshot, 2572 x 594, at 112-pixel tiles */
    assert_int_equal(h, 316);
    /* The same bytes for the same seed on two threads; others for another seed. */
    snprintf(args, sizeof args, "--data '%s' --seed 1 --out '%s'", g_data, two);
    if (augment("OMP_NUM_THREADS=2", args)) fail_msg("augment %s failed: %s", args, g_err);
    assert_true(same_bytes(one, two));
    snprintf(args, sizeof args, "--data '%s' --seed 2 --out '%s'", g_data, other);
    if (augment("", args)) fail_msg("augment %s failed: %s", args, g_err);
    assert_false(same_bytes(one, other));
    /* Another first image: another picture. */
    snprintf(args, sizeof args, "--data '%s' --first 0 --out '%s'", g_data, other);
    expect(args, 0, "training images 0..9");
    assert_false(same_bytes(one, other));
}

static void test_spec_pictures(void **state)
{
    (void)state;
    char args[2048], out[600];
    snprintf(out, sizeof out, "%s", tu_path("random.png"));
    const char *spec = spec_file("random.spec", "augment:\n"
                                                "    ImageDataGenerator(rotation_range=20, zoom_range=0.2)\n"
                                                "    RandomErasing(p=1)\n");
    snprintf(args, sizeof args, "'%s' --data '%s' --count 4 --out '%s'", spec, g_data, out);
    expect(args, 0, "(m, seed 3)");
    int w, h;
    png_size(out, &w, &h);
    assert_int_equal(w, 12 + 2 * 12 + 4 * 112 + 3 * 20 + 17);
    assert_int_equal(h, 316);
    /* A study generator of the spec's batch 64; SVG when asked. */
    spec = spec_file("gen.spec", "augment:\n    StudyGenerator(augmented_only=True)\n");
    snprintf(out, sizeof out, "%s", tu_path("gen.svg"));
    snprintf(args, sizeof args, "'%s' --data '%s' --first 54 --out '%s'", spec, g_data, out);
    expect(args, 0, "training images 54..63");
    size_t n;
    unsigned char *svg = slurp(out, &n);
    assert_non_null(svg);
    svg[n > 300 ? 300 : n] = '\0';
    assert_non_null(strstr((char *)svg, "<svg"));
    free(svg);
}

static void test_errors(void **state)
{
    (void)state;
    char args[2048];
    const char *plain = spec_file("plain.spec", "");
    snprintf(args, sizeof args, "'%s' --data '%s' --out '%s'", plain, g_data, tu_path("x.png"));
    expect(args, 1, "plain.spec: the spec has no augment: section");
    const char *bad = spec_file("bad.spec", "augment:\n    ImageDataGenerator(rotation_range=-5)\n");
    snprintf(args, sizeof args, "'%s' --data '%s' --out '%s'", bad, g_data, tu_path("x.png"));
    expect(args, 1, "bad.spec:8:24: ImageDataGenerator: rotation_range=-5");
    expect("No_Such_Model", 2, "'No_Such_Model' is neither a spec file nor a built-in model");
    expect("--count 0", 2, "--count expects an integer in [1, 32]");
    expect("--count 33", 2, "--count expects an integer in [1, 32]");
    expect("--seed -1", 2, "--seed expects");
    expect("--out picture.txt", 2, "--out picture.txt: expected a .png or .svg file name");
    expect("--out", 2, "--out needs a value");
    expect("--frist 3", 2, "unexpected argument '--frist'");
    snprintf(args, sizeof args, "--data '%s' --first 505 --out '%s'", g_data, tu_path("x.png"));
    expect(args, 1, "the first batch holds images 0 .. 511");
    snprintf(args, sizeof args, "--data '%s' --out '%s'", tu_path("no-data"), tu_path("x.png"));
    expect(args, 1, "(--data DIR)");
    /* Never over something that is not a regular file. */
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tu_path("folder.png"));
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(args, sizeof args, "--data '%s' --out '%s'", g_data, dir);
    expect(args, 1, "folder.png");
    struct stat st;
    assert_true(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    expect("--help", 0, "usage: cnnlab augment [SPEC]");
    /* cnnlab --help lists the command. */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' --help >'%s'", g_bin, tu_path("help.txt"));
    assert_int_equal(system(cmd), 0);
    read_start(tu_path("help.txt"), g_out, sizeof g_out);
    assert_non_null(strstr(g_out, "  augment   draw the augmentation sample"));
}

int main(int argc, char **argv)
{
    (void)argc;
    if (tu_cnnlab_path(argv[0], g_bin, sizeof g_bin)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_study_generator_picture),
        cmocka_unit_test(test_spec_pictures),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, make_data, NULL);
}
