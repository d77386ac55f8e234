/* rgb_data.png and layer_resize_nn.png: images shown channel by channel (spec 6), to see what the gray->RGB
 * preparation of the VGG16 models feeds the network. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "report/canvas.h"

enum { PANEL = 200, GAP_X = 74, GAP_Y = 42, MARGIN = 30 };

static void frame(cairo_t *cr, double x, double y, double w, double h)
{
    cnn_axes a = {x, y, x + w, y + h, 0, 1, 0, 1};
    cnn_axes_frame(cr, &a);
}

/* One row per image, one column per channel; a gray image is copied to three channels first, as the study's
 * NumPy preparation did. pixels: room for one image, as floats. */
static void rgb_grid(cairo_t *cr, const cnn_dataset *ds, int n, float *pixels)
{
    static const char rgb[3] = {'R', 'G', 'B'};
    int cols = ds->c == 1 ? 3 : ds->c;
    double scale = (double)PANEL / (ds->h > ds->w ? ds->h : ds->w);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < cols; ch++) {
            double x = MARGIN + ch * (PANEL + GAP_X), y = 10 + i * (PANEL + GAP_Y);
            cnn_dataset_sample(ds, (size_t)i, pixels);
            cnn_draw_channel(cr, pixels, ds->h, ds->w, ds->c, ds->c == 1 ? 0 : ch, x, y, scale,
                             cnn_cmap_gray_r);
            frame(cr, x, y, ds->w * scale, ds->h * scale);
            char text[64];
            snprintf(text, sizeof text, "Image %d, label: %d", i, ds->y ? ds->y[i] : -1);
            cnn_text(cr, x - 6, y + PANEL / 2.0, 13, 0.5, 1, 90, 0, text);
            snprintf(text, sizeof text, "chanel %d : '%c'", ch, ch < 3 ? rgb[ch] : '?');
            cnn_text(cr, x + PANEL / 2.0, y + PANEL + 4, 13, 0.5, 0, 0, 0, text);
        }
}

int cnn_plot_rgb_channels(const cnn_dataset *ds, int n, const char *path)
{
    if (!ds || !cnn_dataset_has_pixels(ds) || !path || n < 1 || n > ds->n || n > 64 ||
        (ds->c != 1 && ds->c != 3))
        return cnn_fail(CNN_ERR_INVALID, "%s: cannot show %d images of %d with %d channels (1 or 3)",
                        path ? path : "rgb_data.png", n, ds ? ds->n : 0, ds ? ds->c : 0);
    float *pixels = malloc(sizeof(float) * cnn_dataset_sample_size(ds));
    if (!pixels) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for one image", path);
    cnn_canvas c;
    int rc = cnn_canvas_open_for(&c, 2 * MARGIN + 3 * PANEL + 2 * GAP_X, 10 + n * (PANEL + GAP_Y), path);
    if (rc) return free(pixels), rc;
    rgb_grid(c.cr, ds, n, pixels);
    free(pixels);
    rc = cnn_canvas_save(&c, path);
    cnn_canvas_close(&c);
    return rc;
}

int cnn_plot_feature_maps(const float *maps, int h, int w, int c, const char *title, const char *path)
{
    if (!maps || !path || h < 1 || w < 1 || c < 1 || c > 16)
        return cnn_fail(CNN_ERR_INVALID, "%s: cannot show %d maps of %d x %d (1 to 16 maps)",
                        path ? path : "maps", c, h, w);
    double scale = (double)PANEL * 1.5 / (h > w ? h : w);
    int pw = (int)ceil(w * scale), ph = (int)ceil(h * scale);
    cnn_canvas cv;
    int rc = cnn_canvas_open_for(&cv, 2 * MARGIN + c * pw + (c - 1) * MARGIN, ph + 70, path);
    if (rc) return rc;
    cnn_text(cv.cr, cv.w / 2.0, 12, 16, 0.5, 0, 0, 0, title ? title : "Feature maps");
    for (int ch = 0; ch < c; ch++) {
        double x = MARGIN + ch * (pw + MARGIN), y = 45;
        cnn_draw_channel(cv.cr, maps, h, w, c, ch, x, y, scale, cnn_cmap_viridis);
        frame(cv.cr, x, y, pw, ph);
    }
    rc = cnn_canvas_save(&cv, path);
    cnn_canvas_close(&cv);
    return rc;
}

/* image_genarator.png is a screenshot of the study's notebook: each row a line of printed text (monospace,
 * light on the dark theme's gray) above a white matplotlib figure of the images. The geometry is the
 * screenshot's, scaled from its 213-pixel tiles to 112. */
enum { ROWS_MARGIN = 12, ROWS_RIGHT = 17, ROWS_PAD_X = 12, ROWS_PAD_Y = 10, ROWS_GAP = 20, ROWS_TITLE = 20 };
enum { ROWS_BAND_H = CNN_ROWS_TILE + 2 * ROWS_PAD_Y, ROWS_BOTTOM = 12 };

static double rows_top(int row)
{
    return row * (ROWS_TITLE + ROWS_BAND_H);
}

void cnn_image_rows_origin(int row, int col, double *x, double *y)
{
    *x = ROWS_MARGIN + ROWS_PAD_X + col * (CNN_ROWS_TILE + ROWS_GAP);
    *y = rows_top(row) + ROWS_TITLE + ROWS_PAD_Y;
}

void cnn_image_rows_size(int nrows, int n, int *w, int *h)
{
    *w = ROWS_MARGIN + 2 * ROWS_PAD_X + n * CNN_ROWS_TILE + (n - 1) * ROWS_GAP + ROWS_RIGHT;
    *h = (int)rows_top(nrows) + ROWS_BOTTOM;
}

/* One row: its title line, its white band, its n images. */
static void image_strip(cairo_t *cr, const float *images, int n, int h, int w, int c, int row, int width,
                        const char *title)
{
    cairo_save(cr);
    cairo_select_font_face(cr, "DejaVu Sans Mono", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cnn_text(cr, ROWS_MARGIN + 1, rows_top(row) + 2, 14, 0, 0, 0, 0xd5d5d5, title ? title : "");
    cairo_restore(cr);
    cnn_set_rgb(cr, 0xffffff);
    cairo_rectangle(cr, ROWS_MARGIN, rows_top(row) + ROWS_TITLE, width - ROWS_MARGIN - ROWS_RIGHT,
                    ROWS_BAND_H);
    cairo_fill(cr);
    size_t size = (size_t)h * (size_t)w * (size_t)c;
    double scale = (double)CNN_ROWS_TILE / (h > w ? h : w), x, y;
    for (int i = 0; i < n; i++) {
        cnn_image_rows_origin(row, i, &x, &y);
        cnn_draw_channel(cr, images + (size_t)i * size, h, w, c, 0, x, y, scale, cnn_cmap_gray_r);
    }
}

int cnn_plot_image_rows(const float *const *rows, int nrows, int n, int h, int w, int c,
                        const char *const *titles, const char *path)
{
    if (!rows || !path || nrows < 1 || nrows > 16 || n < 1 || n > 32 || h < 1 || w < 1 || c < 1)
        return cnn_fail(CNN_ERR_INVALID, "%s: cannot show %d rows of %d images of %d x %d",
                        path ? path : "images", nrows, n, h, w);
    int width, height;
    cnn_image_rows_size(nrows, n, &width, &height);
    cnn_canvas cv;
    int rc = cnn_canvas_open_for(&cv, width, height, path);
    if (rc) return rc;
    cnn_set_rgb(cv.cr, 0x383838);
    cairo_paint(cv.cr);
    for (int r = 0; r < nrows; r++)
        if (rows[r]) image_strip(cv.cr, rows[r], n, h, w, c, r, width, titles ? titles[r] : NULL);
    rc = cnn_canvas_save(&cv, path);
    cnn_canvas_close(&cv);
    return rc;
}
