/* va.png and va_sorted.png: every model's test accuracy as a bar, with its ROC-AUC written at the bar's
 * base (spec 6: ylim 80-95, tab20 colours in study order, names rotated 80 degrees). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report/canvas.h"

enum { VA_W = 1307, VA_H = 780 };

typedef struct bar {
    const cnn_run *run;
    int order;     /* place in the study, which picks the colour */
    char name[96]; /* the model's name, and the label of a random VGG16 base */
} bar;

static int by_accuracy(const void *a, const void *b)
{
    const bar *x = a, *y = b;
    double u = x->run->test_accuracy, v = y->run->test_accuracy;
    return u < v ? -1 : u > v ? 1 : x->order - y->order;
}

/* The study's 80-95 window, widened only when a model falls outside it. */
static void y_range(const bar *bars, int n, double *lo, double *hi)
{
    double mn = 100, mx = 0;
    for (int i = 0; i < n; i++) {
        mn = fmin(mn, 100 * bars[i].run->test_accuracy);
        mx = fmax(mx, 100 * bars[i].run->test_accuracy);
    }
    *lo = mn < 81 ? fmax(0, floor((mn - 2) / 10) * 10) : 80;
    *hi = mx > 94 ? fmin(100, ceil((mx + 1) / 5) * 5) : 95;
}

static void y_axis(cairo_t *cr, const cnn_axes *a, const double *xt, int n)
{
    double yt[64];
    char buf[64][16];
    const char *yl[64];
    double step = a->ymax - a->ymin > 30 ? 10 : 2;
    int k = 0;
    for (double v = a->ymin; v <= a->ymax + 1e-9 && k < 64; v += step, k++) {
        yt[k] = v;
        snprintf(buf[k], sizeof buf[k], "%g", v);
        yl[k] = buf[k];
    }
    cnn_axes_grid(cr, a, xt, n, yt, k);
    cnn_axes_ylabels(cr, a, yt, k, yl, 13);
    cnn_text(cr, a->x0 - 44, (a->y0 + a->y1) / 2, 13, 0.5, 1, 90, 0, "Validated accuracy %");
}

static void draw_bar(cairo_t *cr, const cnn_axes *a, const bar *b, int slot)
{
    double acc = 100 * b->run->test_accuracy, l = cnn_axes_px(a, slot - 0.4), r = cnn_axes_px(a, slot + 0.4);
    double top = cnn_axes_py(a, fmin(acc, a->ymax)), cx = cnn_axes_px(a, slot);
    cnn_set_rgb(cr, cnn_tab20(b->order));
    cairo_rectangle(cr, l, top, r - l, a->y1 - top);
    cairo_fill(cr);
    char v[32], text[64];
    cnn_format_sig4(acc, v, sizeof v);
    snprintf(text, sizeof text, "%s%%", v);
    cnn_text(cr, cx, top - 1, 10, 0.5, 1, 0, 0, text);
    if (acc > a->ymin + 3.5 && isfinite(b->run->roc_auc_ovo)) {
        cnn_format_sig4(b->run->roc_auc_ovo, v, sizeof v);
        snprintf(text, sizeof text, "ROC-AUC: %s", v);
        cnn_text(cr, cx, a->y1 - 22, 10, 0, 0.5, 90, 0, text);
    }
}

static void draw_bars(cairo_t *cr, const bar *bars, int n, int sorted)
{
    cnn_axes a = {72, 36, 1295, 571, -0.8, n - 0.2, 80, 95};
    y_range(bars, n, &a.ymin, &a.ymax);
    double xt[512];
    const char *names[512];
    int random_base = 0;
    for (int i = 0; i < n; i++) {
        xt[i] = i;
        names[i] = bars[i].name;
        random_base |= *cnn_run_base_label(bars[i].run) != 0;
    }
    y_axis(cr, &a, xt, n);
    cnn_axes_clip(cr, &a);
    for (int i = 0; i < n; i++) draw_bar(cr, &a, &bars[i], i);
    cairo_restore(cr);
    cnn_axes_frame(cr, &a);
    cnn_axes_xlabels(cr, &a, xt, n, names, 13, 80);
    char title[160];
    snprintf(title, sizeof title, "%s%s",
             sorted ? "Ordered, validated accuracy of the models" : "Validated accuracy of the models",
             random_base ? " (random base: a VGG16 base NOT from ImageNet weights)" : "");
    cnn_text(cr, (a.x0 + a.x1) / 2, a.y0 - 8, 15, 0.5, 1, 0, 0, title);
}

static int check_runs(const cnn_run *const *runs, int n, const char *path)
{
    if (!runs || n < 1 || n > 512) return cnn_fail(CNN_ERR_INVALID, "%s: %d runs to chart (1..512)", path, n);
    for (int i = 0; i < n; i++)
        if (!runs[i] || !runs[i]->evaluated)
            return cnn_fail(CNN_ERR_INVALID, "%s: run %d (%s) is not evaluated", path, i,
                            runs[i] ? runs[i]->model : "NULL");
    return CNN_OK;
}

int cnn_plot_accuracy_bars(const cnn_run *const *runs, int n, int sorted, const char *path)
{
    if (!path) return cnn_fail(CNN_ERR_INVALID, "accuracy bars picture: NULL path");
    int rc = check_runs(runs, n, path);
    if (rc) return rc;
    bar *bars = malloc((size_t)n * sizeof *bars);
    if (!bars) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) {
        bars[i] = (bar){.run = runs[i], .order = i};
        snprintf(bars[i].name, sizeof bars[i].name, "%s%s", runs[i]->model,
                 *cnn_run_base_label(runs[i]) ? " (random base)" : "");
    }
    if (sorted) qsort(bars, (size_t)n, sizeof *bars, by_accuracy);
    cnn_canvas c;
    rc = cnn_canvas_open_for(&c, VA_W, VA_H, path);
    if (!rc) {
        draw_bars(c.cr, bars, n, sorted);
        rc = cnn_canvas_save(&c, path);
        cnn_canvas_close(&c);
    }
    free(bars);
    return rc;
}
