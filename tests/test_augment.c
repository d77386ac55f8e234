/* Augmentation: the study's transform against scikit-image and the Keras-style transform against Keras's
 * ImageDataGenerator.apply_transform (tests/data/augment_*_ref.*, from scripts/ref_augment.py), the random
 * draws, erasing and pad-and-crop, and the study's generator (batches, memoising, shuffling, threads). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util.h"

static cnn_dataset g_train, g_test;
static float *g_test_x; /* g_test's images as floats, as the transforms take them */
static int g_have_data;

static int setup(void **state)
{
    (void)state;
    struct stat st;
    g_have_data = stat(CNN_FASHION_MNIST_DIR, &st) == 0 &&
                  cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &g_train, &g_test) == 0;
    if (g_have_data) {
        g_test_x = malloc(sizeof(float) * 784 * (size_t)g_test.n);
        g_have_data = g_test_x && cnn_dataset_images(&g_test, 0, g_test.n, g_test_x) == 0;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cnn_dataset_free(&g_train);
    cnn_dataset_free(&g_test);
    free(g_test_x);
    return 0;
}

static void need_data(void)
{
    if (g_have_data) return;
    print_message("skipped: Fashion-MNIST not found in %s\n", CNN_FASHION_MNIST_DIR);
    skip();
}

/* ------------------------------------------------------------------ reference files */

static FILE *open_ref(const char *name)
{
    char path[256];
    const char *dirs[] = {"tests/data", "../tests/data", "../../tests/data"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        FILE *f = fopen(path, "r");
        if (f) return f;
    }
    fail_msg("tests/data/%s not found (run from the repository root)", name);
    return NULL;
}

static gzFile open_ref_gz(const char *name)
{
    char path[256];
    const char *dirs[] = {"tests/data", "../tests/data", "../../tests/data"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        struct stat st;
        if (stat(path, &st) == 0) return gzopen(path, "rb");
    }
    fail_msg("tests/data/%s not found (run from the repository root)", name);
    return NULL;
}

/* The next non-comment line of f, or NULL at the end. */
static char *next_case(FILE *f, char *line, int cap)
{
    while (fgets(line, cap, f))
        if (line[0] != '#') return line;
    return NULL;
}

static void read_floats(gzFile gz, float *out, int n)
{
    int want = (int)sizeof(float) * n;
    assert_int_equal(gzread(gz, out, (unsigned)want), want);
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* ------------------------------------------------------------------ the study's transform */

static void test_study_matches_skimage(void **state)
{
    (void)state;
    need_data();
    FILE *f = open_ref("augment_study_ref.txt");
    gzFile gz = open_ref_gz("augment_study_ref.f32.gz");
    char line[512];
    float ref[28 * 28], out[28 * 28];
    int cases = 0;
    double worst = 0;
    while (next_case(f, line, sizeof line)) {
        int img, tx, ty, angle;
        double s;
        assert_int_equal(sscanf(line, "%d %lf %d %d %d", &img, &s, &tx, &ty, &angle), 5);
        read_floats(gz, ref, 28 * 28);
        assert_int_equal(cnn_augment_study(g_test_x + 784 * img, out, 28, 28, s, tx, ty, angle), 0);
        double d = max_abs_diff(out, ref, 784);
        if (d > 1e-5)
            fail_msg("image %d (s %g, tx %d, ty %d, angle %d): max |diff| %g", img, s, tx, ty, angle, d);
        worst = fmax(worst, d);
        cases++;
    }
    fclose(f);
    gzclose(gz);
    assert_int_equal(cases, 100);
    print_message("study transform vs scikit-image: 100 images, max |diff| %.3g\n", worst);
}

static void test_study_transform_properties(void **state)
{
    (void)state;
    enum { H = 6, W = 5 };
    float in[H * W], out[H * W];
    for (int i = 0; i < H * W; i++) in[i] = 0.1f + (float)i / (H * W);
    /* s = 1, no shift, no rotation: scikit-image leaves the image as it is. */
    assert_int_equal(cnn_augment_study(in, out, H, W, 1.0, 0, 0, 0), 0);
    assert_memory_equal(in, out, sizeof in);
    /* A shift by whole pixels moves the content up-left and fills 0, which the clip keeps (0 joins the
     * range because the output uses it). */
    assert_int_equal(cnn_augment_study(in, out, H, W, 1.0, 1, 2, 0), 0);
    assert_float_equal(out[0], in[2 * W + 1], 1e-7);
    assert_float_equal(out[(H - 1) * W + W - 1], 0, 0);
    tu_assert_error(cnn_augment_study(in, out, 0, W, 1.0, 0, 0, 0), CNN_ERR_INVALID, "augment_study");
    tu_assert_error(cnn_augment_study(in, out, H, W, NAN, 0, 0, 0), CNN_ERR_INVALID, "not finite");
}

static void test_study_draws(void **state)
{
    (void)state;
    int seen_tx[12] = {0}, seen_ty[12] = {0}, seen_angle[60] = {0};
    double lo = 2, hi = 0;
    for (int i = 0; i < 20000; i++) {
        double s, s2;
        int tx, ty, angle, tx2, ty2, angle2;
        cnn_augment_study_draw(7, 3, i, &s, &tx, &ty, &angle);
        cnn_augment_study_draw(7, 3, i, &s2, &tx2, &ty2, &angle2);
        assert_true(s == s2 && tx == tx2 && ty == ty2 && angle == angle2);
        assert_true(s >= 0.8 && s < 1.2 && tx >= -6 && tx <= 5 && ty >= -6 && ty <= 5);
        assert_true(angle >= -30 && angle <= 29);
        lo = fmin(lo, s), hi = fmax(hi, s);
        seen_tx[tx + 6] = seen_ty[ty + 6] = seen_angle[angle + 30] = 1;
    }
    for (int i = 0; i < 12; i++) assert_true(seen_tx[i] && seen_ty[i]);
    for (int i = 0; i < 60; i++) assert_true(seen_angle[i]);
    assert_true(lo < 0.801 && hi > 1.199);
    /* Another epoch (the generator's batch number) or seed gives other draws. */
    double a, b;
    int t, u, v;
    cnn_augment_study_draw(7, 3, 0, &a, &t, &u, &v);
    cnn_augment_study_draw(7, 4, 0, &b, &t, &u, &v);
    assert_true(a != b);
    cnn_augment_study_draw(8, 3, 0, &b, &t, &u, &v);
    assert_true(a != b);
}

/* ------------------------------------------------------------------ Keras-style transform */

static cnn_fill_mode fill_mode(const char *name)
{
    const char *names[] = {"constant", "nearest", "reflect", "wrap"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) return (cnn_fill_mode)i;
    fail_msg("unknown fill mode %s", name);
    return CNN_FILL_CONSTANT;
}

static void test_keras_matches_apply_transform(void **state)
{
    (void)state;
    need_data();
    FILE *f = open_ref("augment_keras_ref.txt");
    gzFile gz = open_ref_gz("augment_keras_ref.f32.gz");
    char line[512], name[64], fill[16];
    float in[28 * 28 * 3], out[28 * 28 * 3], ref[28 * 28 * 3];
    int cases = 0;
    double worst = 0;
    while (next_case(f, line, sizeof line)) {
        int first, c, col0, width, fh, fv;
        cnn_augment_params p = {0};
        cnn_augment a = cnn_augment_default();
        assert_int_equal(sscanf(line, "%63s %d %d %d %d %lf %lf %lf %lf %lf %lf %d %d %15s %lf", name, &first,
                                &c, &col0, &width, &p.theta, &p.tx, &p.ty, &p.shear, &p.zx, &p.zy, &fh, &fv,
                                fill, &a.cval),
                         15);
        p.flip_horizontal = fh, p.flip_vertical = fv;
        a.fill_mode = fill_mode(fill);
        for (int r = 0; r < 28; r++)
            for (int x = 0; x < width; x++)
                for (int k = 0; k < c; k++)
                    in[(r * width + x) * c + k] = g_test_x[784 * (first + k) + r * 28 + col0 + x];
        int n = 28 * width * c;
        read_floats(gz, ref, n);
        cnn_augment_apply(&a, &p, in, 28, width, c, out);
        double d = max_abs_diff(out, ref, n);
        if (d > 1e-5) fail_msg("case %s: max |diff| %g against Keras", name, d);
        worst = fmax(worst, d);
        cases++;
    }
    fclose(f);
    gzclose(gz);
    assert_true(cases >= 16);
    print_message("Keras apply_transform: %d cases, max |diff| %.3g\n", cases, worst);
}

static void test_keras_draws(void **state)
{
    (void)state;
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 20, a.width_shift_range = 0.1, a.height_shift_range = 3, a.shear_range = 5;
    a.zoom_range[0] = 0.9, a.zoom_range[1] = 1.2, a.horizontal_flip = 1, a.crop_padding = 2;
    int flips = 0, seen_tx[5] = {0};
    for (int i = 0; i < 4000; i++) {
        cnn_augment_params p, q;
        cnn_augment_draw(&a, 28, 20, 11, 2, i, &p);
        cnn_augment_draw(&a, 28, 20, 11, 2, i, &q);
        assert_memory_equal(&p, &q, sizeof p);
        assert_true(fabs(p.theta) <= 20 && fabs(p.ty) <= 0.1 * 20 && fabs(p.shear) <= 5);
        /* height_shift_range=3, an int: Keras's np.random.choice(3) times a random sign. */
        assert_true(p.tx == floor(p.tx) && fabs(p.tx) <= 2);
        seen_tx[(int)p.tx + 2] = 1;
        assert_true(p.zx >= 0.9 && p.zx < 1.2 && p.zy >= 0.9 && p.zy < 1.2 && p.zx != p.zy);
        assert_true(p.crop_y >= 0 && p.crop_y <= 4 && p.crop_x >= 0 && p.crop_x <= 4);
        assert_int_equal(p.flip_vertical, 0);
        assert_int_equal(p.erase_h, 0);
        flips += p.flip_horizontal;
    }
    for (int i = 0; i < 5; i++) assert_true(seen_tx[i]);
    assert_in_range(flips, 1800, 2200);
}

static void test_pad_crop_and_flip(void **state)
{
    (void)state;
    enum { H = 5, W = 4, C = 2 };
    float in[H * W * C], out[H * W * C];
    for (int i = 0; i < H * W * C; i++) in[i] = (float)(i + 1);
    cnn_augment a = cnn_augment_default();
    a.crop_padding = 2;
    cnn_augment_params p = {.zx = 1, .zy = 1, .crop_y = 3, .crop_x = 0, .flip_horizontal = 1};
    cnn_augment_apply(&a, &p, in, H, W, C, out);
    /* out(r, c) = flipped(r + 1, c - 2): zero where that falls outside the image. */
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            for (int k = 0; k < C; k++) {
                int rr = r + 1, cc = c - 2;
                float want = rr < H && cc >= 0 ? in[(rr * W + (W - 1 - cc)) * C + k] : 0.0f;
                assert_float_equal(out[(r * W + c) * C + k], want, 0);
            }
}

static void test_erasing(void **state)
{
    (void)state;
    enum { H = 28, W = 28 };
    static float in[H * W], out[H * W];
    for (int i = 0; i < H * W; i++) in[i] = 0.5f;
    cnn_augment a = cnn_augment_default();
    a.erasing_p = 1;
    int erased_any = 0;
    for (int i = 0; i < 200; i++) {
        cnn_augment_params p;
        cnn_augment_draw(&a, H, W, 3, 0, i, &p);
        if (p.erase_h == 0) continue; /* no rectangle fitted in 10 attempts */
        erased_any++;
        double area = (double)p.erase_h * p.erase_w / (H * W);
        assert_true(area > 0.01 && area < 0.45);
        assert_true(p.erase_y >= 0 && p.erase_y + p.erase_h <= H && p.erase_x >= 0 &&
                    p.erase_x + p.erase_w <= W);
        a.erasing_value = 0.25;
        cnn_augment_apply(&a, &p, in, H, W, 1, out);
        int n = 0;
        for (int q = 0; q < H * W; q++) n += out[q] == 0.25f;
        assert_int_equal(n, p.erase_h * p.erase_w);
        a.erasing_value = -1; /* random values: in [0, 1), the same for the same parameters */
        cnn_augment_apply(&a, &p, in, H, W, 1, out);
        float again[H * W];
        cnn_augment_apply(&a, &p, in, H, W, 1, again);
        assert_memory_equal(out, again, sizeof again);
        float v = out[p.erase_y * W + p.erase_x];
        assert_true(v >= 0 && v < 1);
    }
    assert_true(erased_any > 150);
    a.erasing_p = 0.5;
    int count = 0;
    for (int i = 0; i < 2000; i++) {
        cnn_augment_params p;
        cnn_augment_draw(&a, H, W, 3, 0, i, &p);
        count += p.erase_h > 0;
    }
    assert_in_range(count, 850, 1050);
}

static void test_transform_hook(void **state)
{
    (void)state;
    enum { H = 8, W = 8 };
    float in[H * W], a1[H * W], a2[H * W], b[H * W];
    for (int i = 0; i < H * W; i++) in[i] = (float)((i * 37) % 11) / 10;
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 30, a.horizontal_flip = 1, a.fill_mode = CNN_FILL_REFLECT;
    cnn_transform t = cnn_augment_transform(&a);
    assert_int_equal(t.out_h, 0);
    t.apply(t.ctx, in, H, W, 1, a1, 5, 1, 9);
    t.apply(t.ctx, in, H, W, 1, a2, 5, 1, 9);
    assert_memory_equal(a1, a2, sizeof a1);
    t.apply(t.ctx, in, H, W, 1, b, 5, 2, 9); /* every epoch new */
    assert_true(memcmp(a1, b, sizeof b) != 0);
    /* It equals draw + apply. */
    cnn_augment_params p;
    cnn_augment_draw(&a, H, W, 5, 1, 9, &p);
    cnn_augment_apply(&a, &p, in, H, W, 1, b);
    assert_memory_equal(a1, b, sizeof b);
}

/* One-channel images take a row-wise path; others the per-pixel one. A gray image copied into two channels
 * must give its one-channel result in both, bit for bit, whatever the options. */
static void test_row_path_matches_pixel_path(void **state)
{
    (void)state;
    enum { H = 28, W = 23 };
    float in[H * W], in2[H * W * 2], out[H * W], out2[H * W * 2];
    for (int i = 0; i < H * W; i++) in[i] = in2[2 * i] = in2[2 * i + 1] = (float)((i * 7919) % 101) / 100;
    for (int cfg = 0; cfg < 64; cfg++) {
        cnn_augment a = cnn_augment_default();
        a.rotation_range = cfg & 1 ? 45 : 5, a.width_shift_range = cfg & 2 ? 0.4 : 3,
        a.height_shift_range = 0.3;
        a.shear_range = cfg & 4 ? 25 : 0, a.zoom_range[0] = 0.6, a.zoom_range[1] = cfg & 8 ? 1.5 : 1;
        a.horizontal_flip = a.vertical_flip = 1, a.fill_mode = (cnn_fill_mode)(cfg % 4), a.cval = 0.25;
        a.crop_padding = cfg % 3, a.erasing_p = 0.5, a.erasing_value = 0.5;
        for (int i = 0; i < 20; i++) {
            cnn_augment_params p;
            cnn_augment_draw(&a, H, W, 17, cfg, i, &p);
            cnn_augment_apply(&a, &p, in, H, W, 1, out);
            cnn_augment_apply(&a, &p, in2, H, W, 2, out2);
            for (int q = 0; q < H * W; q++)
                if (memcmp(&out[q], &out2[2 * q], sizeof *out) ||
                    memcmp(&out[q], &out2[2 * q + 1], sizeof *out))
                    fail_msg("config %d, sample %d, pixel %d: %.9g (one channel) != %.9g, %.9g", cfg, i, q,
                             out[q], out2[2 * q], out2[2 * q + 1]);
        }
    }
}

static void test_check(void **state)
{
    (void)state;
    cnn_augment a = cnn_augment_default();
    assert_int_equal(cnn_augment_check(&a), 0);
    a.rotation_range = -1;
    tu_assert_error(cnn_augment_check(&a), CNN_ERR_INVALID, "rotation_range");
    a = cnn_augment_default();
    a.zoom_range[0] = 1.2, a.zoom_range[1] = 0.8;
    tu_assert_error(cnn_augment_check(&a), CNN_ERR_INVALID, "zoom_range");
    a = cnn_augment_default();
    a.erasing_p = 1.5;
    tu_assert_error(cnn_augment_check(&a), CNN_ERR_INVALID, "erasing probability");
    a = cnn_augment_default();
    a.fill_mode = (cnn_fill_mode)7;
    tu_assert_error(cnn_augment_check(&a), CNN_ERR_INVALID, "fill_mode");
    a = cnn_augment_default();
    a.cval = NAN;
    tu_assert_error(cnn_augment_check(&a), CNN_ERR_INVALID, "cval");
}

/* ------------------------------------------------------------------ the study's generator */

enum { GN = 1000, GB = 96, GL = 21, GH = 10 }; /* L = ceil(2N/B), H = floor(L/2): odd L, as the study's 235 */

/* A synthetic one-channel set whose label is the sample index, so a batch tells where it came from. */
static cnn_dataset synthetic_set(void)
{
    cnn_dataset ds = {.n = GN, .h = 28, .w = 28, .c = 1, .num_classes = GN};
    ds.x = malloc(sizeof(float) * 784 * GN);
    ds.y = malloc(sizeof(int32_t) * GN);
    assert_non_null(ds.x);
    assert_non_null(ds.y);
    uint32_t r = 12345;
    for (int i = 0; i < 784 * GN; i++) {
        r = r * 1664525u + 1013904223u;
        ds.x[i] = (float)(r >> 8) / 16777216.0f;
    }
    for (int i = 0; i < GN; i++) ds.y[i] = i;
    return ds;
}

typedef struct gen_batch {
    int orig;      /* original batch o */
    int augmented; /* 0: the originals; else the generator batch j it was made as (H + o, or 2H for o = 0) */
    int n;
    float *x;
} gen_batch;

/* Fills every batch of one epoch and identifies each: which original batch, augmented or not (and as which
 * j). */
static void read_epoch(cnn_source *s, const cnn_dataset *ds, int epoch, gen_batch out[GL])
{
    static float ref[GB * 784];
    int32_t y[GB];
    if (s->begin_epoch) assert_int_equal(s->begin_epoch(s, epoch), 0);
    for (int b = 0; b < GL; b++) {
        gen_batch *g = &out[b];
        g->x = malloc(sizeof(float) * 784 * GB);
        assert_int_equal(s->fill(s, epoch, b, g->x, y, &g->n), 0);
        g->orig = y[0] / GB;
        assert_int_equal(y[0] % GB, 0);
        for (int i = 0; i < g->n; i++) assert_int_equal(y[i], y[0] + i);
        assert_int_equal(g->n, GB);
        assert_true(y[0] + g->n <= GH * GB); /* the last N - H*B images never appear */
        g->augmented = 0;
        if (!memcmp(g->x, ds->x + 784 * y[0], sizeof(float) * 784 * (size_t)g->n)) continue;
        /* An augmented batch is the study's transform of its originals with the draws of batch j. */
        for (int j = GH + g->orig; j < GL && !g->augmented; j += GH) {
            for (int i = 0; i < g->n; i++) {
                double sc;
                int tx, ty, angle;
                cnn_augment_study_draw(3, j, y[0] + i, &sc, &tx, &ty, &angle);
                assert_int_equal(
                    cnn_augment_study(ds->x + 784 * (y[0] + i), ref + 784 * i, 28, 28, sc, tx, ty, angle), 0);
            }
            if (!memcmp(ref, g->x, sizeof(float) * 784 * (size_t)g->n)) g->augmented = j;
        }
        if (!g->augmented) fail_msg("augmented batch %d matches no draw of original batch %d", b, g->orig);
    }
    if (s->end_epoch) assert_int_equal(s->end_epoch(s, epoch), 0);
}

static void free_epoch(gen_batch b[GL])
{
    for (int i = 0; i < GL; i++) free(b[i].x);
}

static void test_generator_batches(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_source *s = cnn_source_study_augment(&ds, GB, 1, 3, 0);
    assert_non_null(s);
    assert_int_equal(s->batches, GL);
    assert_int_equal(s->batch_size, GB);
    gen_batch e0[GL], e1[GL];
    read_epoch(s, &ds, 0, e0);
    read_epoch(s, &ds, 1, e1);
    /* Per epoch: the H original batches once each, and the augmented batches j = H .. L-1 once each, made
     * from original batch j mod H (so batch 0 twice, with different draws). */
    int seen_orig[GH] = {0}, seen_j[GL] = {0};
    for (int b = 0; b < GL; b++) {
        if (e0[b].augmented)
            seen_j[e0[b].augmented]++;
        else
            seen_orig[e0[b].orig]++;
    }
    for (int o = 0; o < GH; o++) assert_int_equal(seen_orig[o], 1);
    for (int j = GH; j < GL; j++) assert_int_equal(seen_j[j], 1);
    /* The augmented set is memoised: epoch 1 holds the same batches, bit for bit, in another order. */
    int moved = 0;
    for (int b = 0; b < GL; b++) {
        int found = 0;
        for (int c = 0; c < GL && !found; c++)
            found = e1[c].augmented == e0[b].augmented && e1[c].orig == e0[b].orig &&
                    !memcmp(e1[c].x, e0[b].x, sizeof(float) * 784 * (size_t)e0[b].n);
        assert_true(found);
        moved += e1[b].orig != e0[b].orig || e1[b].augmented != e0[b].augmented;
    }
    assert_true(moved > 0);
    free_epoch(e0);
    free_epoch(e1);
    cnn_source_free(s);
    free(ds.x);
    free(ds.y);
}

static void test_generator_study_sizes(void **state)
{
    (void)state;
    /* The study's numbers: 60,000 images of 512 -> 235 batches, 117 original, the last 96 images unused. */
    cnn_dataset ds = {.n = 60000, .h = 28, .w = 28, .c = 1, .num_classes = 10};
    ds.x = calloc(784 * (size_t)60000, sizeof(float));
    ds.y = calloc(60000, sizeof(int32_t));
    assert_non_null(ds.x);
    assert_non_null(ds.y);
    cnn_source *s = cnn_source_study_augment(&ds, 512, 1, 1, 0);
    assert_non_null(s);
    assert_int_equal(s->batches, 235);
    cnn_source_free(s);
    s = cnn_source_study_augment(&ds, 512, 1, 1, 1);
    assert_non_null(s);
    assert_int_equal(s->batches, 235);
    cnn_source_free(s);
    ds.c = 3;
    tu_assert_error(cnn_source_study_augment(&ds, 512, 1, 1, 0) ? 0 : cnn_errcode(), CNN_ERR_INVALID,
                    "one-channel");
    ds.c = 1;
    tu_assert_error(cnn_source_study_augment(&ds, 0, 1, 1, 0) ? 0 : cnn_errcode(), CNN_ERR_INVALID,
                    "batch_size");
    free(ds.x);
    free(ds.y);
}

static void test_generator_augmented_only(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_source *s = cnn_source_study_augment(&ds, GB, 1, 3, 1);
    assert_non_null(s);
    assert_int_equal(s->batches, GL);
    float *x = malloc(sizeof(float) * 784 * GB);
    int32_t y[GB];
    for (int b = 0; b < GL; b++) {
        int n;
        assert_int_equal(s->fill(s, 0, b, x, y, &n), 0);
        assert_true(memcmp(x, ds.x + 784 * y[0], sizeof(float) * 784 * (size_t)n) != 0);
    }
    free(x);
    cnn_source_free(s);
    free(ds.x);
    free(ds.y);
}

static void test_generator_unshuffled(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_source *s =
        cnn_source_study_augment(&ds, GB, 0, 3, 0); /* fit(shuffle=False): the generator's order */
    assert_non_null(s);
    float *x = malloc(sizeof(float) * 784 * GB);
    int32_t y[GB];
    for (int e = 0; e < 2; e++)
        for (int b = 0; b < GL; b++) {
            int n;
            if (s->begin_epoch && b == 0) assert_int_equal(s->begin_epoch(s, e), 0);
            assert_int_equal(s->fill(s, e, b, x, y, &n), 0);
            assert_int_equal(y[0], (b % GH) * GB);
            assert_int_equal(b < GH, !memcmp(x, ds.x + 784 * y[0], sizeof(float) * 784 * (size_t)n));
        }
    free(x);
    cnn_source_free(s);
    free(ds.x);
    free(ds.y);
}

static void test_generator_threads(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    float *x[2];
    int32_t y[2][GB];
    int saved = cnn_get_threads();
    for (int t = 0; t < 2; t++) {
        cnn_set_threads(t + 1);
        cnn_source *s = cnn_source_study_augment(&ds, GB, 1, 9, 0);
        assert_non_null(s);
        x[t] = malloc(sizeof(float) * 784 * GB * GL);
        for (int b = 0; b < GL; b++) {
            int n;
            assert_int_equal(s->fill(s, 2, b, x[t] + (size_t)784 * GB * b, y[t], &n), 0);
        }
        cnn_source_free(s);
    }
    cnn_set_threads(saved);
    assert_memory_equal(x[0], x[1], sizeof(float) * 784 * GB * GL);
    free(x[0]);
    free(x[1]);
    free(ds.x);
    free(ds.y);
}

/* ------------------------------------------------------------------ specs */

static const char *SPEC_HEAD = "model: m\n"
                               "input: (28, 28, 1)\n"
                               "layers:\n"
                               "    Flatten()\n"
                               "    Dense(10, activation=\"softmax\")\n"
                               "fit: batch_size=96, epochs=1, seed=3\n";

static cnn_spec *spec_with(const char *tail)
{
    static char text[4096];
    snprintf(text, sizeof text, "%s%s", SPEC_HEAD, tail);
    return cnn_spec_parse(text, "aug.spec");
}

static void spec_error(const char *tail, const char *fragment)
{
    cnn_spec *s = spec_with(tail);
    if (s) fail_msg("spec with '%s' parsed; expected an error with '%s'", tail, fragment);
    if (!strstr(cnn_errmsg(), fragment)) fail_msg("error '%s' lacks '%s'", cnn_errmsg(), fragment);
}

static void test_spec_study_generator(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_spec *s = spec_with("augment:\n    StudyGenerator()\n");
    assert_non_null(s);
    assert_null(cnn_spec_initial_weights(s));
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    cnn_source *src;
    assert_int_equal(cnn_spec_train_source(s, &ds, &f, &src), 0);
    assert_non_null(src);
    assert_int_equal(src->batches, GL);
    gen_batch e[GL];
    read_epoch(src, &ds, 0, e); /* the spec's seed 3 drives the draws, as read_epoch expects */
    int augmented = 0;
    for (int b = 0; b < GL; b++) augmented += e[b].augmented != 0;
    assert_int_equal(augmented, GL - GH);
    free_epoch(e);
    cnn_source_free(src);
    cnn_spec_free(s);
    /* No augment section: no source, train on the dataset. */
    s = spec_with("");
    assert_non_null(s);
    cnn_spec_fit_settings(s, &f);
    assert_int_equal(cnn_spec_train_source(s, &ds, &f, &src), 0);
    assert_null(src);
    cnn_spec_free(s);
    free(ds.x);
    free(ds.y);
}

static void test_spec_random_augmentation(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_spec *s =
        spec_with("augment:\n"
                  "    ImageDataGenerator(rotation_range=10, zoom_range=(0.9, 1.2), horizontal_flip=True,\n"
                  "                       fill_mode=\"reflect\")\n"
                  "    PadAndCrop(padding=2)\n"
                  "    RandomErasing(p=0.5, value=0)\n");
    assert_non_null(s);
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    cnn_source *src;
    assert_int_equal(cnn_spec_train_source(s, &ds, &f, &src), 0);
    assert_non_null(src);
    assert_int_equal(src->batches, (GN + GB - 1) / GB);
    float *x = malloc(sizeof(float) * 784 * GB), *again = malloc(sizeof(float) * 784 * GB);
    int32_t y[GB];
    int n;
    /* Every sample is the spec's transform with draws from (seed, epoch, index). */
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 10, a.zoom_range[0] = 0.9, a.zoom_range[1] = 1.2, a.horizontal_flip = 1;
    a.fill_mode = CNN_FILL_REFLECT, a.crop_padding = 2, a.erasing_p = 0.5, a.erasing_value = 0;
    cnn_transform t = cnn_augment_transform(&a);
    if (src->begin_epoch) assert_int_equal(src->begin_epoch(src, 1), 0);
    assert_int_equal(src->fill(src, 1, 0, x, y, &n), 0);
    for (int i = 0; i < n; i++) {
        t.apply(t.ctx, ds.x + 784 * y[i], 28, 28, 1, again + 784 * i, 3, 1, y[i]);
        assert_memory_equal(x + 784 * i, again + 784 * i, sizeof(float) * 784);
    }
    free(x);
    free(again);
    cnn_source_free(src);
    cnn_spec_free(s);
    free(ds.x);
    free(ds.y);
}

static void test_spec_errors(void **state)
{
    (void)state;
    spec_error("augment:\n    StudyGen()\n", "aug.spec:8:5: unknown augmentation 'StudyGen'");
    spec_error("augment:\n    StudyGenerator()\n    PadAndCrop(padding=2)\n", "stands alone");
    spec_error("augment:\n    PadAndCrop(padding=2)\n    PadAndCrop(padding=3)\n", "appears twice");
    spec_error("augment:\n    ImageDataGenerator(rotaton_range=3)\n", "did you mean 'rotation_range'");
    spec_error("augment:\n    ImageDataGenerator(zoom_range=(2, 1))\n", "zoom_range");
    spec_error("augment:\n    ImageDataGenerator(zoom_range=abc)\n", "expected (low, high)");
    spec_error("augment:\n    ImageDataGenerator(fill_mode=\"mirror\")\n", "fill_mode");
    spec_error("augment:\n    RandomErasing(value=\"x\")\n", "\"random\" or a number");
    spec_error("augment: StudyGenerator()\n", "stands on its own line");
    spec_error("initial_weights: Model 2\n", "model names use letters");
    spec_error("inital_weights: Model_2\n", "did you mean 'initial_weights'");
    const char *rgb =
        "model: m\ninput: (28, 28, 3)\nlayers:\n    Flatten()\n    Dense(10, activation=\"softmax\")\n"
        "augment:\n    StudyGenerator()\n";
    assert_null(cnn_spec_parse(rgb, "rgb.spec"));
    assert_non_null(strstr(cnn_errmsg(), "rgb.spec:7:5: StudyGenerator needs one-channel input"));
    cnn_spec *s = spec_with("initial_weights: Model_2_s2\n");
    assert_non_null(s);
    assert_string_equal(cnn_spec_initial_weights(s), "Model_2_s2");
    cnn_spec_free(s);
}

/* cnnlab augment's sample is what training sees: the study generator's first augmented batch (batch H, from
 * original batch 0) or the random augmentation's draws of epoch 0, for any first image. */
static void test_spec_augment_sample(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    enum { FIRST = 7, N = 5 };
    float got[784 * N], want[784 * N];
    cnn_spec *s = spec_with("augment:\n    StudyGenerator()\n");
    cnn_spec_fit f;
    cnn_spec_fit_settings(s, &f);
    int study = 0;
    assert_int_equal(cnn_spec_augment_sample(s, &ds, &f, FIRST, N, got, &study), 0);
    assert_int_equal(study, 1);
    for (int i = 0; i < N; i++) {
        double sc;
        int tx, ty, angle;
        cnn_augment_study_draw(3, GH, FIRST + i, &sc, &tx, &ty, &angle);
        assert_int_equal(
            cnn_augment_study(ds.x + 784 * (FIRST + i), want + 784 * i, 28, 28, sc, tx, ty, angle), 0);
    }
    assert_memory_equal(got, want, sizeof got);
    /* The bounds: the images must lie in the first batch of 96. */
    tu_assert_error(cnn_spec_augment_sample(s, &ds, &f, 92, N, got, NULL), CNN_ERR_INVALID,
                    "the first batch holds images 0 .. 95");
    tu_assert_error(cnn_spec_augment_sample(s, &ds, &f, 0, 0, got, NULL), CNN_ERR_INVALID, "images 0 .. -1");
    cnn_spec_free(s);
    s = spec_with("augment:\n    ImageDataGenerator(rotation_range=30, fill_mode=\"wrap\")\n"
                  "    RandomErasing(p=0.7)\n");
    cnn_spec_fit_settings(s, &f);
    f.seed = 12;
    assert_int_equal(cnn_spec_augment_sample(s, &ds, &f, FIRST, N, got, &study), 0);
    assert_int_equal(study, 0);
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 30, a.fill_mode = CNN_FILL_WRAP, a.erasing_p = 0.7;
    cnn_transform t = cnn_augment_transform(&a);
    for (int i = 0; i < N; i++)
        t.apply(t.ctx, ds.x + 784 * (FIRST + i), 28, 28, 1, want + 784 * i, 12, 0, FIRST + i);
    assert_memory_equal(got, want, sizeof got);
    cnn_spec_free(s);
    s = spec_with("");
    tu_assert_error(cnn_spec_augment_sample(s, &ds, &f, 0, N, got, NULL), CNN_ERR_INVALID,
                    "aug.spec: the spec has no augment: section");
    cnn_spec_free(s);
    free(ds.x);
    free(ds.y);
}

/* Random augmentation with every option on gives the same batches on 1 and 2 threads. */
static void test_random_threads(void **state)
{
    (void)state;
    cnn_dataset ds = synthetic_set();
    cnn_augment a = cnn_augment_default();
    a.rotation_range = 15, a.width_shift_range = 0.1, a.height_shift_range = 2, a.shear_range = 8;
    a.zoom_range[0] = 0.8, a.zoom_range[1] = 1.1, a.horizontal_flip = a.vertical_flip = 1;
    a.fill_mode = CNN_FILL_REFLECT, a.crop_padding = 3, a.erasing_p = 0.5;
    cnn_transform t = cnn_augment_transform(&a);
    int nb = (GN + GB - 1) / GB, saved = cnn_get_threads();
    float *x[2];
    int32_t y[2][GN];
    for (int k = 0; k < 2; k++) {
        cnn_set_threads(k + 1);
        cnn_source *s = cnn_source_transform(&ds, GB, 1, 21, &t);
        assert_non_null(s);
        x[k] = malloc(sizeof(float) * 784 * GN);
        assert_non_null(x[k]);
        for (int b = 0, n; b < nb; b++)
            assert_int_equal(s->fill(s, 1, b, x[k] + (size_t)784 * GB * b, y[k] + GB * b, &n), 0);
        cnn_source_free(s);
    }
    cnn_set_threads(saved);
    assert_memory_equal(y[0], y[1], sizeof y[0]);
    assert_memory_equal(x[0], x[1], sizeof(float) * 784 * GN);
    free(x[0]);
    free(x[1]);
    free(ds.x);
    free(ds.y);
}

static void test_set_weights_from(void **state)
{
    (void)state;
    cnn_spec *s = spec_with("");
    assert_non_null(s);
    cnn_model *a = cnn_spec_build_model(s, 1), *b = cnn_spec_build_model(s, 2);
    assert_non_null(a);
    assert_non_null(b);
    float x[784], pa[10], pb[10];
    for (int i = 0; i < 784; i++) x[i] = (float)(i % 17) / 17;
    assert_int_equal(cnn_model_predict(a, x, 1, 1, pa), 0);
    assert_int_equal(cnn_model_predict(b, x, 1, 1, pb), 0);
    assert_true(memcmp(pa, pb, sizeof pa) != 0);
    assert_int_equal(cnn_model_set_weights_from(b, a), 0);
    assert_int_equal(cnn_model_predict(b, x, 1, 1, pb), 0);
    assert_memory_equal(pa, pb, sizeof pa);
    cnn_spec_free(s);
    s = cnn_spec_parse("model: n\ninput: (28, 28, 1)\nlayers:\n    Flatten()\n    Dense(12)\n"
                       "    Dense(10, activation=\"softmax\")\n",
                       "n.spec");
    assert_non_null(s);
    cnn_model *c = cnn_spec_build_model(s, 1);
    assert_non_null(c);
    tu_assert_error(cnn_model_set_weights_from(c, a), CNN_ERR_SHAPE, "set_weights");
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_model_free(c);
    cnn_spec_free(s);
}

static void test_seed_specs(void **state)
{
    (void)state;
    const struct {
        const char *name, *weights;
        size_t params;
    } specs[] = {{"Model_2_s2_igen", "Model_2_s2", 261962},
                 {"Model_2_s2_igen_c", NULL, 261962},
                 {"Model_2_s2_igen_only", NULL, 261962},
                 {"Model_11_igen", NULL, 0},
                 {"Model_11_igen_f", "Model_11", 0}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "models/seed/%s.spec", specs[i].name);
        cnn_spec *s = cnn_spec_load(path);
        if (!s) fail_msg("%s: %s", path, cnn_errmsg());
        assert_string_equal(cnn_spec_name(s), specs[i].name);
        if (specs[i].weights)
            assert_string_equal(cnn_spec_initial_weights(s), specs[i].weights);
        else
            assert_null(cnn_spec_initial_weights(s));
        cnn_model *m = cnn_spec_build_model(s, 1);
        assert_non_null(m);
        if (specs[i].params) assert_int_equal(cnn_model_num_params(m, 0), specs[i].params);
        cnn_model_free(m);
        cnn_spec_free(s);
    }
    static const char *const EXTRA[] = {"models/extra/Model_11_aug.spec", "models/extra/Model_11_aug2.spec"};
    for (size_t i = 0; i < sizeof EXTRA / sizeof EXTRA[0]; i++) {
        cnn_spec *s = cnn_spec_load(EXTRA[i]);
        if (!s) fail_msg("%s: %s", EXTRA[i], cnn_errmsg());
        cnn_spec_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_study_matches_skimage),
        cmocka_unit_test(test_study_transform_properties),
        cmocka_unit_test(test_study_draws),
        cmocka_unit_test(test_keras_matches_apply_transform),
        cmocka_unit_test(test_keras_draws),
        cmocka_unit_test(test_pad_crop_and_flip),
        cmocka_unit_test(test_erasing),
        cmocka_unit_test(test_transform_hook),
        cmocka_unit_test(test_row_path_matches_pixel_path),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_generator_batches),
        cmocka_unit_test(test_generator_study_sizes),
        cmocka_unit_test(test_generator_augmented_only),
        cmocka_unit_test(test_generator_unshuffled),
        cmocka_unit_test(test_generator_threads),
        cmocka_unit_test(test_spec_study_generator),
        cmocka_unit_test(test_spec_random_augmentation),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_spec_augment_sample),
        cmocka_unit_test(test_random_threads),
        cmocka_unit_test(test_set_weights_from),
        cmocka_unit_test(test_seed_specs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
