/* The report's pictures: drawn from a run record, read back and checked where the content is cheap to check
 * (size, the early-stop marker's column, the red tiles of predict.png, the confusion matrix's colours). */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/canvas.h"
#include "report_fixture.h"
#include "util.h"

/* Pictures go to $REPORT_TEST_OUT when set (to look at them), else to the test's temporary folder. */
static const char *out_path(const char *name)
{
    static char buf[8][512];
    static int next;
    const char *dir = getenv("REPORT_TEST_OUT");
    if (!dir) return tu_path(name);
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static cairo_surface_t *load_png(const char *path, int w, int h)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), w);
    assert_int_equal(cairo_image_surface_get_height(s), h);
    return s;
}

static uint32_t pixel(cairo_surface_t *s, int x, int y)
{
    const unsigned char *d = cairo_image_surface_get_data(s);
    return *(const uint32_t *)(d + (size_t)y * (size_t)cairo_image_surface_get_stride(s) + (size_t)x * 4) &
           0xffffff;
}

static int is_green(uint32_t p)
{
    int r = p >> 16 & 255, g = p >> 8 & 255, b = p & 255;
    return g > 90 && r < 70 && b < 70;
}

/* The column of the panel with the most marker-green pixels. */
static int green_column(cairo_surface_t *s, const cnn_axes *a)
{
    int best = -1, most = 0;
    for (int x = (int)a->x0 + 2; x < (int)a->x1 - 1; x++) {
        int n = 0;
        for (int y = (int)a->y0 + 2; y < (int)a->y1 - 1; y++) n += is_green(pixel(s, x, y));
        if (n > most) most = n, best = x;
    }
    return best;
}

static void test_curves_marker(void **state)
{
    (void)state;
    cnn_run r;
    rf_model_2_s2(&r, NULL, NULL);
    const char *path = out_path("Model_2_s2_ca.png");
    assert_int_equal(cnn_plot_curves(&r, path), 0);
    cairo_surface_t *s = load_png(path, CNN_CA_W, CNN_CA_H);
    cnn_axes loss, acc;
    cnn_curves_axes(r.history.count, &loss, &acc);
    /* The marker stands at the best epoch (0-based 8, drawn at x = 9) in both panels. */
    int want = (int)round(cnn_axes_px(&loss, 9));
    assert_int_equal(green_column(s, &loss), want);
    assert_int_equal(green_column(s, &acc), want);
    cairo_surface_destroy(s);
    /* Without a best epoch there is no marker. */
    r.best_epoch = 0;
    assert_int_equal(cnn_plot_curves(&r, tu_path("nomark.png")), 0);
    s = load_png(tu_path("nomark.png"), CNN_CA_W, CNN_CA_H);
    int n = 0;
    for (int y = (int)loss.y0 + 2; y < (int)loss.y1 - 1; y++) n += is_green(pixel(s, want, y));
    assert_true(n < 10);
    cairo_surface_destroy(s);
    /* The best epoch on the last one (a run that trained to its end): the labels turn left, so that no
     * green leaves the frame on the right. */
    r.best_epoch = r.history.count - 1;
    assert_int_equal(cnn_plot_curves(&r, out_path("last_ca.png")), 0);
    s = load_png(out_path("last_ca.png"), CNN_CA_W, CNN_CA_H);
    n = 0;
    for (int x = (int)loss.x1 + 2; x < CNN_CA_W; x++)
        for (int y = 0; y < CNN_CA_H; y++) n += is_green(pixel(s, x, y));
    assert_int_equal(n, 0);
    cairo_surface_destroy(s);
    rf_free(&r);
}

static void test_confusion_colours(void **state)
{
    (void)state;
    cnn_run r;
    rf_model_2_s2(&r, NULL, NULL);
    const char *path = out_path("Model_2_s2_cm.png");
    assert_int_equal(cnn_plot_confusion(&r, path), 0);
    cairo_surface_t *s = load_png(path, 640, 480);
    /* Cell (1, 1) holds the largest count (986): viridis' yellow at its corner; cell (0, 1) holds 0: purple.
     */
    assert_int_equal(pixel(s, 70 + 39 + 3, 40 + 39 + 3), cnn_cmap_viridis(1));
    assert_int_equal(pixel(s, 70 + 39 + 3, 40 + 3), cnn_cmap_viridis(0));
    cairo_surface_destroy(s);
    rf_free(&r);
}

/* A tile is red when its image holds a clearly red pixel (gray tiles have r == g == b). */
static int red_tiles(cairo_surface_t *s)
{
    int n = 0;
    for (int k = 0; k < CNN_PRED_N; k++) {
        double x0, y0;
        cnn_predict_tile_origin(k / CNN_PRED_COLS, k % CNN_PRED_COLS, &x0, &y0);
        int red = 0;
        for (int y = (int)y0 + 1; y < (int)y0 + 28 * CNN_PRED_SCALE - 1 && !red; y++)
            for (int x = (int)x0 + 1; x < (int)x0 + 28 * CNN_PRED_SCALE - 1 && !red; x++) {
                uint32_t p = pixel(s, x, y);
                red = (int)(p >> 16 & 255) > (int)(p >> 8 & 255) + 60;
            }
        n += red;
    }
    return n;
}

static void test_predict_red_tiles(void **state)
{
    (void)state;
    cnn_run r;
    cnn_dataset test;
    int real;
    rf_model_2_s2(&r, &test, &real);
    for (uint64_t seed = 43; seed < 46; seed++) {
        int32_t idx[CNN_PRED_N];
        assert_int_equal(cnn_predict_sample(r.n_test, seed, idx, CNN_PRED_N), 0);
        int errors = 0;
        for (int k = 0; k < CNN_PRED_N; k++) errors += r.y_true[idx[k]] != r.y_pred[idx[k]];
        const char *path = out_path(seed == 43 ? "predict.png" : "predict_other.png");
        assert_int_equal(cnn_plot_predictions(&r, &test, seed, CNN_LABELS_UK, path), 0);
        cairo_surface_t *s = load_png(path, CNN_PRED_W, CNN_PRED_H);
        assert_int_equal(red_tiles(s), errors);
        cairo_surface_destroy(s);
    }
    /* A test set that is not the run's is refused, naming the first label that differs. */
    test.y[5] = (test.y[5] + 1) % 10;
    tu_assert_error(cnn_plot_predictions(&r, &test, 43, CNN_LABELS_EN, tu_path("x.png")), CNN_ERR_INVALID,
                    "test label 5");
    cnn_dataset_free(&test);
    rf_free(&r);
}

static void test_predict_sample(void **state)
{
    (void)state;
    int32_t a[50], b[50];
    assert_int_equal(cnn_predict_sample(10000, 7, a, 50), 0);
    assert_int_equal(cnn_predict_sample(10000, 7, b, 50), 0);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < 50; i++)
        for (int j = 0; j < i; j++) assert_int_not_equal(a[i], a[j]);
    assert_int_equal(cnn_predict_sample(10000, 8, b, 50), 0);
    assert_memory_not_equal(a, b, sizeof a);
    tu_assert_error(cnn_predict_sample(10, 7, a, 50), CNN_ERR_INVALID, "50");
}

static void test_accuracy_bars(void **state)
{
    (void)state;
    static const char *const names[] = {"Model_1", "Model_2", "Model_2_s2", "Model_2_L1_0.001_B_256",
                                        "Model_3"};
    static const double acc[] = {0.8877, 0.9166, 0.9249, 0.8203, 0.9173};
    static const double roc[] = {0.9913, 0.9947, 0.9956, NAN, 0.994};
    cnn_run runs[5];
    const cnn_run *p[5];
    for (int i = 0; i < 5; i++) rf_small(&runs[i], names[i], acc[i], roc[i]), p[i] = &runs[i];
    assert_int_equal(cnn_plot_accuracy_bars(p, 5, 0, out_path("va.png")), 0);
    assert_int_equal(cnn_plot_accuracy_bars(p, 5, 1, out_path("va_sorted.png")), 0);
    cairo_surface_t *s = load_png(out_path("va_sorted.png"), 1307, 780);
    cairo_surface_destroy(s);
    runs[2].evaluated = 0;
    tu_assert_error(cnn_plot_accuracy_bars(p, 5, 1, tu_path("va.png")), CNN_ERR_INVALID, "Model_2_s2");
}

static void test_format_sig4(void **state)
{
    (void)state;
    char b[32];
    cnn_format_sig4(92.49, b, sizeof b), assert_string_equal(b, "92.49");
    cnn_format_sig4(90.0, b, sizeof b), assert_string_equal(b, "90.0");
    cnn_format_sig4(0.99201, b, sizeof b), assert_string_equal(b, "0.992");
    cnn_format_sig4(93.4, b, sizeof b), assert_string_equal(b, "93.4");
}

static void test_rgb_channels(void **state)
{
    (void)state;
    cnn_run r;
    cnn_dataset test;
    rf_model_2_s2(&r, &test, NULL);
    const char *path = out_path("rgb_data.png");
    assert_int_equal(cnn_plot_rgb_channels(&test, 4, path), 0);
    /* 3 panels of 200 px with 74 px gaps and 30 px margins; 4 rows of 242 px. */
    cairo_surface_t *s = load_png(path, 2 * 30 + 3 * 200 + 2 * 74, 10 + 4 * 242);
    /* The three channels of a copied gray image are the same picture, pixel for pixel. */
    int differ = 0, dark = 0;
    for (int y = 11; y < 10 + 4 * 242; y += 3)
        for (int x = 31; x < 30 + 200 && (y - 10) % 242 < 199; x += 3) {
            uint32_t p = pixel(s, x, y);
            differ += p != pixel(s, x + 274, y) || p != pixel(s, x + 548, y);
            dark += (p & 255) < 128;
        }
    assert_int_equal(differ, 0);
    assert_true(dark > 100);
    cairo_surface_destroy(s);
    tu_assert_error(cnn_plot_rgb_channels(&test, 0, path), CNN_ERR_INVALID, "0 images");
    cnn_dataset_free(&test);
    rf_free(&r);
}

static void test_image_rows(void **state)
{
    (void)state;
    cnn_run r;
    cnn_dataset test;
    rf_model_2_s2(&r, &test, NULL);
    /* The second row is the first one shifted right by 4 pixels (a stand-in for an augmentation). */
    float *moved = calloc(10 * 784, sizeof(float)), *orig = malloc(sizeof(float) * 10 * 784);
    assert_true(moved && orig);
    assert_int_equal(cnn_dataset_images(&test, 0, 10, orig), 0);
    for (int i = 0; i < 10; i++)
        for (int y = 0; y < 28; y++)
            for (int x = 4; x < 28; x++) moved[i * 784 + y * 28 + x] = orig[i * 784 + y * 28 + x - 4];
    const float *rows[2] = {orig, moved};
    const char *titles[2] = {"Original images of 1/2 dataset", "Transformed images of 2/2 dataset"};
    const char *path = out_path("image_genarator.png");
    assert_int_equal(cnn_plot_image_rows(rows, 2, 10, 28, 28, 1, titles, path), 0);
    /* The study's screenshot scaled to 112-pixel tiles: 1353 x 316. */
    int w, h;
    cnn_image_rows_size(2, 10, &w, &h);
    assert_int_equal(w, 1353);
    assert_int_equal(h, 316);
    cairo_surface_t *s = load_png(path, w, h);
    /* The notebook's gray around white bands; the titles in its light text. */
    assert_int_equal(pixel(s, 2, 2), 0x383838);
    assert_int_equal(pixel(s, w - 3, h - 3), 0x383838);
    int light = 0;
    for (int y = 0; y < 20; y++)
        for (int x = 12; x < 200; x++) light += (pixel(s, x, y) & 255) > 150;
    assert_true(light > 50);
    /* Every tile in gray_r; the second row's image is the first one's, 4 image pixels (16 px) to the
     * right. */
    double x0, y0, x1, y1;
    cnn_image_rows_origin(0, 3, &x0, &y0);
    cnn_image_rows_origin(1, 3, &x1, &y1);
    assert_true(x1 == x0 && y1 > y0 + 112);
    assert_int_equal(pixel(s, (int)x0 - 4, (int)y0 + 50), 0xffffff); /* the band between tiles */
    int same = 0, total = 0;
    for (int y = 0; y < 112; y += 5)
        for (int x = 16; x < 112; x += 5, total++)
            same += pixel(s, (int)x0 + x - 16, (int)y0 + y) == pixel(s, (int)x1 + x, (int)y1 + y);
    assert_true(same > total * 9 / 10);
    cairo_surface_destroy(s);
    free(orig);
    free(moved);
    cnn_dataset_free(&test);
    rf_free(&r);
}

static void test_feature_maps(void **state)
{
    (void)state;
    /* A 2x nearest-resized 28 x 28 ramp in three channels (the third inverted). */
    float *maps = malloc(sizeof(float) * 56 * 56 * 3);
    assert_non_null(maps);
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 56; x++)
            for (int c = 0; c < 3; c++) {
                float v = (float)((x / 2) + (y / 2)) / 54.0f;
                maps[(y * 56 + x) * 3 + c] = c == 2 ? 1 - v : v;
            }
    const char *path = out_path("layer_resize_nn.png");
    assert_int_equal(cnn_plot_feature_maps(maps, 56, 56, 3, "Layer resizing Feature Maps", path), 0);
    cairo_surface_t *s = load_png(path, 2 * 30 + 3 * 300 + 2 * 30, 370);
    /* The ramp's low corner is viridis' purple in the first map and its yellow in the inverted third. */
    assert_int_equal(pixel(s, 32, 47), cnn_cmap_viridis(0));
    assert_int_equal(pixel(s, 30 + 2 * 330 + 2, 47), cnn_cmap_viridis(1));
    cairo_surface_destroy(s);
    tu_assert_error(cnn_plot_feature_maps(maps, 56, 56, 0, NULL, path), CNN_ERR_INVALID, "1 to 16");
    free(maps);
}

static void test_svg(void **state)
{
    (void)state;
    cnn_run r;
    rf_model_2_s2(&r, NULL, NULL);
    const char *path = out_path("Model_2_s2_ca.svg");
    assert_int_equal(cnn_plot_curves(&r, path), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char head[512] = {0};
    assert_true(fread(head, 1, sizeof head - 1, f) > 100);
    fclose(f);
    assert_non_null(strstr(head, "<svg"));
    assert_non_null(strstr(head, "viewBox=\"0 0 1200 800\""));
    assert_int_equal(cnn_plot_confusion(&r, out_path("Model_2_s2_cm.svg")), 0);
    rf_free(&r);
}

static void test_bad_runs(void **state)
{
    (void)state;
    cnn_run r;
    rf_small(&r, "empty", 0.9, 0.99);
    tu_assert_error(cnn_plot_curves(&r, tu_path("c.png")), CNN_ERR_INVALID, "no epochs");
    r.evaluated = 0;
    tu_assert_error(cnn_plot_confusion(&r, tu_path("c.png")), CNN_ERR_INVALID, "not evaluated");
    rf_model_2_s2(&r, NULL, NULL);
    tu_assert_error(cnn_plot_curves(&r, "/nonexistent/dir/c.png"), CNN_ERR_IO, "/nonexistent/dir/c.png");
    rf_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curves_marker),     cmocka_unit_test(test_confusion_colours),
        cmocka_unit_test(test_predict_red_tiles), cmocka_unit_test(test_predict_sample),
        cmocka_unit_test(test_accuracy_bars),     cmocka_unit_test(test_format_sig4),
        cmocka_unit_test(test_rgb_channels),      cmocka_unit_test(test_feature_maps),
        cmocka_unit_test(test_image_rows),        cmocka_unit_test(test_svg),
        cmocka_unit_test(test_bad_runs),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cnn_report_cleanup();
    return failed;
}
