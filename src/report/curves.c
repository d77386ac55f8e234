/* <model>_ca.png: the study's learning curves (spec 3.8 and 6), loss above accuracy, with the "Early stop"
 * marker at the best (restored) epoch. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "report/canvas.h"

#define BLUE      0x0000ff
#define ORANGE    0xffa500
#define GREEN     0x008000
#define MAX_TICKS 128

void cnn_curves_axes(int epochs, cnn_axes *loss, cnn_axes *acc)
{
    double xmax = epochs > 1 ? epochs : 2;
    *loss = (cnn_axes){80, 36, 1170, 356, 1, xmax, 0, 1};
    *acc = (cnn_axes){80, 436, 1170, 756, 1, xmax, 0.7, 1};
}

/* One tick per epoch below 55 epochs (as the study's plots), else about 25 at a round step. */
static int epoch_ticks(int n, double *xt, char labels[][12])
{
    int step = 1;
    if (n >= 55) {
        static const int steps[] = {2, 5, 10, 20, 50, 100, 200, 500, 1000};
        for (size_t i = 0; i < sizeof steps / sizeof *steps && n / step > 25; i++) step = steps[i];
    }
    int k = 0;
    for (int e = 1; e <= (n > 1 ? n : 2) && k < MAX_TICKS; e += (e == 1 && step > 1) ? step - 1 : step) {
        xt[k] = e;
        snprintf(labels[k++], 12, "%d", e);
    }
    return k;
}

/* A history column as a polyline at x = epoch + 1, broken at NaN (no validation). */
static void series(cairo_t *cr, const cnn_axes *a, const cnn_history *h, size_t field, uint32_t rgb,
                   cnn_line_style style)
{
    cnn_set_rgb(cr, rgb);
    cnn_line_style_set(cr, style, 1.6);
    int pen = 0;
    for (int i = 0; i < h->count; i++) {
        double v = *(const double *)((const char *)&h->epochs[i] + field);
        if (!isfinite(v)) {
            pen = 0;
            continue;
        }
        double x = cnn_axes_px(a, i + 1), y = cnn_axes_py(a, v);
        if (pen)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
}

/* The marker's label (spec 3.8): the reason follows from how far before the end the best epoch lies. */
static void marker_label(const cnn_run *r, char *buf, size_t size)
{
    int d = r->history.count - r->best_epoch - 1;
    const char *why = d >= 10 ? "accuracy" : d >= 5 ? "loss" : "epoch";
    snprintf(buf, size, "Early stop: %d (%s)", r->best_epoch + 1, why);
}

static int has_marker(const cnn_run *r)
{
    return r->best_epoch > 0 && r->best_epoch < r->history.count;
}

typedef struct panel {
    const char *title, *ylabel;
    size_t train, val;
    const double *yt;
    const char *const *ylabels;
    int ny, legend_right;
} panel;

static void draw_panel(cairo_t *cr, const cnn_run *r, const cnn_axes *a, const panel *p)
{
    double xt[MAX_TICKS];
    char xl[MAX_TICKS][12];
    const char *xlp[MAX_TICKS];
    int nx = epoch_ticks(r->history.count, xt, xl);
    for (int i = 0; i < nx; i++) xlp[i] = xl[i];
    char title[160];
    snprintf(title, sizeof title, "%s (%s)", p->title, r->model);
    cnn_text(cr, (a->x0 + a->x1) / 2, a->y0 - 6, 16, 0.5, 1, 0, 0, title);
    cnn_axes_grid(cr, a, xt, nx, p->yt, p->ny);
    cnn_axes_clip(cr, a);
    series(cr, a, &r->history, p->train, BLUE, CNN_LINE_SOLID);
    series(cr, a, &r->history, p->val, ORANGE, CNN_LINE_DASHED);
    if (has_marker(r)) {
        double x = round(cnn_axes_px(a, r->best_epoch + 1)) + 0.5;
        cnn_set_rgb(cr, GREEN);
        cnn_line_style_set(cr, CNN_LINE_DOTTED, 1.6);
        cairo_move_to(cr, x, a->y0);
        cairo_line_to(cr, x, a->y1);
        cairo_stroke(cr);
    }
    cairo_restore(cr);
    cnn_axes_frame(cr, a);
    cnn_axes_xlabels(cr, a, xt, nx, xlp, 13, 0);
    cnn_axes_ylabels(cr, a, p->yt, p->ny, p->ylabels, 13);
    cnn_text(cr, (a->x0 + a->x1) / 2, a->y1 + 26, 13, 0.5, 0, 0, 0, "Epoch");
    cnn_text(cr, a->x0 - 50, (a->y0 + a->y1) / 2, 13, 0.5, 1, 90, 0, p->ylabel);
}

static void draw_legend(cairo_t *cr, const cnn_run *r, const cnn_axes *a, int right)
{
    char label[96];
    cnn_legend_item items[3];
    int n = 0;
    if (has_marker(r)) {
        marker_label(r, label, sizeof label);
        items[n++] = (cnn_legend_item){label, GREEN, CNN_LINE_DOTTED};
    }
    items[n++] = (cnn_legend_item){"train", BLUE, CNN_LINE_SOLID};
    items[n++] = (cnn_legend_item){"validate", ORANGE, CNN_LINE_DASHED};
    if (right)
        cnn_legend(cr, a->x1 - 8, a->y0 + 8, 1, items, n);
    else
        cnn_legend(cr, a->x0 + 8, a->y0 + 8, 0, items, n);
}

/* +1 where a label box centred dx right of the point at px fits inside the panel's frame, else -1 (left of
 * it: the best epoch of a run that trained to its last epoch lies on the frame's right edge). */
static double side(const cnn_axes *a, double px, double dx)
{
    return px + dx + 60 <= a->x1 ? 1 : -1;
}

/* "Lowest value" above-right of the best epoch's val_loss, "(xx.xx%)" below-right of its val_accuracy (left
 * where there is no room on the right). */
static void annotations(cairo_t *cr, const cnn_run *r, const cnn_axes *loss, const cnn_axes *acc)
{
    const cnn_epoch_log *e = &r->history.epochs[r->best_epoch];
    if (isfinite(e->val_loss) && e->val_loss >= loss->ymin && e->val_loss <= loss->ymax) {
        double px = cnn_axes_px(loss, r->best_epoch + 1), py = cnn_axes_py(loss, e->val_loss);
        cnn_annotate(cr, px + side(loss, px, 85) * 85, py - 38, px, py, "Lowest value", GREEN);
    }
    if (isfinite(e->val_accuracy) && e->val_accuracy >= acc->ymin && e->val_accuracy <= acc->ymax) {
        char text[32];
        snprintf(text, sizeof text, "(%.2f%%)", 100 * e->val_accuracy);
        double px = cnn_axes_px(acc, r->best_epoch + 1), py = cnn_axes_py(acc, e->val_accuracy);
        cnn_annotate(cr, px + side(acc, px, 80) * 80, py + 60, px, py, text, GREEN);
    }
}

static void draw_curves(cairo_t *cr, const cnn_run *r)
{
    static const double lt[] = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
    static const char *const ll[] = {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"};
    static const double at[] = {0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.0};
    static const char *const al[] = {"70%", "75%", "80%", "85%", "90%", "95%", "100%"};
    cnn_axes loss, acc;
    cnn_curves_axes(r->history.count, &loss, &acc);
    panel pl = {"Cross Entropy Loss",
                "Loss",
                offsetof(cnn_epoch_log, loss),
                offsetof(cnn_epoch_log, val_loss),
                lt,
                ll,
                6,
                1};
    panel pa = {"Classification Accuracy",
                "Accuracy",
                offsetof(cnn_epoch_log, accuracy),
                offsetof(cnn_epoch_log, val_accuracy),
                at,
                al,
                7,
                0};
    draw_panel(cr, r, &loss, &pl);
    draw_panel(cr, r, &acc, &pa);
    if (has_marker(r)) annotations(cr, r, &loss, &acc);
    draw_legend(cr, r, &loss, 1);
    draw_legend(cr, r, &acc, 0);
}

int cnn_plot_curves(const cnn_run *r, const char *path)
{
    if (!r || !path) return cnn_fail(CNN_ERR_INVALID, "training curves picture: NULL run or path");
    if (r->history.count < 1 || !r->history.epochs)
        return cnn_fail(CNN_ERR_INVALID, "%s: run '%s' has no epochs to plot", path, r->model);
    cnn_canvas c;
    int rc = cnn_canvas_open_for(&c, CNN_CA_W, CNN_CA_H, path);
    if (rc) return rc;
    draw_curves(c.cr, r);
    rc = cnn_canvas_save(&c, path);
    cnn_canvas_close(&c);
    return rc;
}
