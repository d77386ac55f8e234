/* <model>_cm.png: the confusion matrix as scikit-learn's ConfusionMatrixDisplay draws it (viridis, counts
 * in every cell, a colour bar). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "core/error.h"
#include "report/canvas.h"

enum { CM_W = 640, CM_H = 480 };
static const double CM_X0 = 70, CM_Y0 = 40, CM_SIDE = 390, BAR_X = 485, BAR_W = 20;

static void cm_range(const cnn_run *r, int64_t *lo, int64_t *hi)
{
    int k = r->classes;
    *lo = *hi = r->confusion[0];
    for (int i = 1; i < k * k; i++) {
        if (r->confusion[i] < *lo) *lo = r->confusion[i];
        if (r->confusion[i] > *hi) *hi = r->confusion[i];
    }
}

static double norm(int64_t v, int64_t lo, int64_t hi)
{
    return hi > lo ? (double)(v - lo) / (double)(hi - lo) : 0;
}

/* Cells, then their counts: scikit-learn writes counts below the mid-range in the colour map's top colour
 * and the others in its bottom colour, so that every count stays readable. */
static void cells(cairo_t *cr, const cnn_run *r, int64_t lo, int64_t hi)
{
    int k = r->classes;
    double s = CM_SIDE / k, size = k <= 10 ? 12 : fmax(6, 120.0 / k);
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++) {
            int64_t v = r->confusion[t * k + p];
            cnn_set_rgb(cr, cnn_cmap_viridis(norm(v, lo, hi)));
            cairo_rectangle(cr, CM_X0 + p * s, CM_Y0 + t * s, s + 0.5, s + 0.5);
            cairo_fill(cr);
            char text[24];
            snprintf(text, sizeof text, "%" PRId64, v);
            uint32_t ink = 2 * (double)v < (double)(lo + hi) ? cnn_cmap_viridis(1) : cnn_cmap_viridis(0);
            cnn_text(cr, CM_X0 + (p + 0.5) * s, CM_Y0 + (t + 0.5) * s, size, 0.5, 0.5, 0, ink, text);
        }
}

static void class_ticks(cairo_t *cr, int k)
{
    double s = CM_SIDE / k, size = k <= 20 ? 12 : 8;
    for (int i = 0; i < k; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        double c = round((i + 0.5) * s) + 0.5;
        cnn_set_rgb(cr, 0);
        cairo_move_to(cr, CM_X0 + c, CM_Y0 + CM_SIDE);
        cairo_line_to(cr, CM_X0 + c, CM_Y0 + CM_SIDE + 4);
        cairo_move_to(cr, CM_X0 - 4, CM_Y0 + c);
        cairo_line_to(cr, CM_X0, CM_Y0 + c);
        cairo_stroke(cr);
        cnn_text(cr, CM_X0 + c, CM_Y0 + CM_SIDE + 6, size, 0.5, 0, 0, 0, text);
        cnn_text(cr, CM_X0 - 7, CM_Y0 + c, size, 1, 0.5, 0, 0, text);
    }
}

/* A round tick step giving 4-8 ticks over span (matplotlib's MaxNLocator in spirit). */
static double nice_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void colour_bar(cairo_t *cr, int64_t lo, int64_t hi)
{
    for (int y = 0; y < (int)CM_SIDE; y++) {
        cnn_set_rgb(cr, cnn_cmap_viridis(1 - (y + 0.5) / CM_SIDE));
        cairo_rectangle(cr, BAR_X, CM_Y0 + y, BAR_W, 1);
        cairo_fill(cr);
    }
    cnn_axes bar = {BAR_X, CM_Y0, BAR_X + BAR_W, CM_Y0 + CM_SIDE,
                    0,     1,     (double)lo,    (double)(hi > lo ? hi : lo + 1)};
    cnn_axes_frame(cr, &bar);
    double step = nice_step(bar.ymax - bar.ymin);
    for (double v = ceil(bar.ymin / step) * step; v <= bar.ymax + 1e-9; v += step) {
        char text[32];
        snprintf(text, sizeof text, "%.0f", v);
        double y = round(cnn_axes_py(&bar, v)) + 0.5;
        cnn_set_rgb(cr, 0);
        cairo_move_to(cr, bar.x1, y);
        cairo_line_to(cr, bar.x1 + 4, y);
        cairo_stroke(cr);
        cnn_text(cr, bar.x1 + 7, y, 12, 0, 0.5, 0, 0, text);
    }
}

int cnn_plot_confusion(const cnn_run *r, const char *path)
{
    if (!r || !path) return cnn_fail(CNN_ERR_INVALID, "confusion matrix picture: NULL run or path");
    if (!r->evaluated || !r->confusion || r->classes < 2)
        return cnn_fail(CNN_ERR_INVALID, "%s: run '%s' has no confusion matrix (not evaluated)", path,
                        r->model);
    cnn_canvas c;
    int rc = cnn_canvas_open_for(&c, CM_W, CM_H, path);
    if (rc) return rc;
    int64_t lo, hi;
    cm_range(r, &lo, &hi);
    cells(c.cr, r, lo, hi);
    cnn_axes box = {CM_X0, CM_Y0, CM_X0 + CM_SIDE, CM_Y0 + CM_SIDE, 0, 1, 0, 1};
    cnn_axes_frame(c.cr, &box);
    class_ticks(c.cr, r->classes);
    colour_bar(c.cr, lo, hi);
    char title[128];
    snprintf(title, sizeof title, "Confusion matrix for: '%s'", r->model);
    cnn_text(c.cr, CM_X0 + CM_SIDE / 2, CM_Y0 - 8, 15, 0.5, 1, 0, 0, title);
    cnn_text(c.cr, CM_X0 + CM_SIDE / 2, CM_Y0 + CM_SIDE + 26, 13, 0.5, 0, 0, 0, "Predicted label");
    cnn_text(c.cr, CM_X0 - 36, CM_Y0 + CM_SIDE / 2, 13, 0.5, 1, 90, 0, "True label");
    rc = cnn_canvas_save(&c, path);
    cnn_canvas_close(&c);
    return rc;
}
