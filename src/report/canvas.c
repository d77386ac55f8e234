/* The drawing layer: cairo surfaces written as PNG atomically, and the few plot elements the study's
 * matplotlib pictures use (axes, grid, ticks, legends, annotations, colour maps). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-svg.h>
#include <fontconfig/fontconfig.h>

#include "core/error.h"
#include "report/canvas.h"

#define FONT "DejaVu Sans"

static cairo_status_t bytes_append(void *closure, const unsigned char *data, unsigned int len);

static int canvas_start(cnn_canvas *c, int w, int h)
{
    if (cairo_surface_status(c->surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(c->surface);
        c->surface = NULL;
        return cnn_fail(CNN_ERR_NOMEM, "cannot create a %d x %d picture", w, h);
    }
    c->cr = cairo_create(c->surface);
    c->w = w;
    c->h = h;
    cnn_set_rgb(c->cr, 0xffffff);
    cairo_paint(c->cr);
    cairo_select_font_face(c->cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return CNN_OK;
}

int cnn_canvas_open(cnn_canvas *c, int w, int h)
{
    memset(c, 0, sizeof *c);
    c->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    return canvas_start(c, w, h);
}

int cnn_canvas_open_for(cnn_canvas *c, int w, int h, const char *path)
{
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".svg")) return cnn_canvas_open(c, w, h);
    memset(c, 0, sizeof *c);
    c->svg = 1;
    c->surface = cairo_svg_surface_create_for_stream(bytes_append, &c->svg_out, w, h);
    return canvas_start(c, w, h);
}

void cnn_canvas_close(cnn_canvas *c)
{
    if (c->cr) cairo_destroy(c->cr);
    if (c->surface) cairo_surface_destroy(c->surface);
    free(c->svg_out.data);
    memset(c, 0, sizeof *c);
}

/* A picture is built in memory so that it reaches the disk in one atomic write. */
static cairo_status_t bytes_append(void *closure, const unsigned char *data, unsigned int len)
{
    cnn_bytes *b = closure;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) return CAIRO_STATUS_NO_MEMORY;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return CAIRO_STATUS_SUCCESS;
}

int cnn_canvas_png(cnn_canvas *c, unsigned char **data, size_t *len)
{
    cnn_bytes b = {0};
    cairo_surface_flush(c->surface);
    cairo_status_t st = cairo_surface_write_to_png_stream(c->surface, bytes_append, &b);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(b.data);
        return cnn_fail(CNN_ERR_NOMEM, "PNG encoding failed: %s", cairo_status_to_string(st));
    }
    *data = b.data;
    *len = b.len;
    return CNN_OK;
}

static int save_svg(cnn_canvas *c, const char *path)
{
    cairo_destroy(c->cr);
    c->cr = NULL;
    cairo_surface_finish(c->surface);
    cairo_status_t st = cairo_surface_status(c->surface);
    if (st != CAIRO_STATUS_SUCCESS)
        return cnn_fail(CNN_ERR_NOMEM, "%s: SVG output failed: %s", path, cairo_status_to_string(st));
    return cnn_write_file_atomic(path, c->svg_out.data, c->svg_out.len);
}

int cnn_canvas_save(cnn_canvas *c, const char *path)
{
    if (c->svg) return save_svg(c, path);
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = cnn_canvas_png(c, &data, &len);
    if (rc) return cnn_fail_context("%s: ", path);
    rc = cnn_write_file_atomic(path, data, len);
    free(data);
    return rc;
}

void cnn_report_cleanup(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

double cnn_axes_px(const cnn_axes *a, double x)
{
    return a->x0 + (x - a->xmin) / (a->xmax - a->xmin) * (a->x1 - a->x0);
}

double cnn_axes_py(const cnn_axes *a, double y)
{
    return a->y1 - (y - a->ymin) / (a->ymax - a->ymin) * (a->y1 - a->y0);
}

void cnn_set_rgb(cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 255) / 255.0, (rgb >> 8 & 255) / 255.0, (rgb & 255) / 255.0);
}

double cnn_text_width(cairo_t *cr, double size, const char *s)
{
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* One line, its box's anchor at the origin of the current (rotated) frame. */
static void text_line(cairo_t *cr, double y, double ax, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, -ax * e.x_advance, y);
    cairo_show_text(cr, s);
}

void cnn_text(cairo_t *cr, double x, double y, double size, double ax, double ay, double angle, uint32_t rgb,
              const char *s)
{
    char line[512];
    int lines = 1;
    for (const char *p = s; *p; p++) lines += *p == '\n';
    cairo_font_extents_t fe;
    cairo_save(cr);
    cairo_set_font_size(cr, size);
    cairo_font_extents(cr, &fe);
    cnn_set_rgb(cr, rgb);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -angle * M_PI / 180);
    double lh = fe.ascent + fe.descent, top = -ay * lh * lines;
    for (int i = 0; i < lines; i++) {
        size_t n = strcspn(s, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, s);
        text_line(cr, top + i * lh + fe.ascent, ax, line);
        s += n + (s[n] == '\n');
    }
    cairo_restore(cr);
}

void cnn_line_style_set(cairo_t *cr, cnn_line_style style, double width)
{
    static const double dashed[] = {7.4, 3.2}, dotted[] = {1.5, 2.5};
    cairo_set_line_width(cr, width);
    if (style == CNN_LINE_DASHED)
        cairo_set_dash(cr, dashed, 2, 0);
    else if (style == CNN_LINE_DOTTED)
        cairo_set_dash(cr, dotted, 2, 0);
    else
        cairo_set_dash(cr, NULL, 0, 0);
}

void cnn_axes_grid(cairo_t *cr, const cnn_axes *a, const double *xt, int nx, const double *yt, int ny)
{
    cairo_save(cr);
    cnn_set_rgb(cr, 0xb0b0b0);
    cnn_line_style_set(cr, CNN_LINE_SOLID, 1);
    for (int i = 0; i < nx; i++) {
        double x = round(cnn_axes_px(a, xt[i])) + 0.5;
        cairo_move_to(cr, x, a->y0);
        cairo_line_to(cr, x, a->y1);
    }
    for (int i = 0; i < ny; i++) {
        double y = round(cnn_axes_py(a, yt[i])) + 0.5;
        cairo_move_to(cr, a->x0, y);
        cairo_line_to(cr, a->x1, y);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

void cnn_axes_frame(cairo_t *cr, const cnn_axes *a)
{
    cairo_save(cr);
    cnn_set_rgb(cr, 0x000000);
    cnn_line_style_set(cr, CNN_LINE_SOLID, 1);
    cairo_rectangle(cr, round(a->x0) + 0.5, round(a->y0) + 0.5, round(a->x1 - a->x0), round(a->y1 - a->y0));
    cairo_stroke(cr);
    cairo_restore(cr);
}

void cnn_axes_xlabels(cairo_t *cr, const cnn_axes *a, const double *xt, int n, const char *const *labels,
                      double size, double angle)
{
    for (int i = 0; i < n; i++) {
        double x = round(cnn_axes_px(a, xt[i])) + 0.5;
        cnn_set_rgb(cr, 0);
        cairo_move_to(cr, x, a->y1);
        cairo_line_to(cr, x, a->y1 + 4);
        cairo_stroke(cr);
        if (angle == 0)
            cnn_text(cr, x, a->y1 + 6, size, 0.5, 0, 0, 0, labels[i]);
        else
            cnn_text(cr, x, a->y1 + 6, size, 1, 0.5, angle, 0, labels[i]);
    }
}

void cnn_axes_ylabels(cairo_t *cr, const cnn_axes *a, const double *yt, int n, const char *const *labels,
                      double size)
{
    for (int i = 0; i < n; i++) {
        double y = round(cnn_axes_py(a, yt[i])) + 0.5;
        cnn_set_rgb(cr, 0);
        cairo_move_to(cr, a->x0 - 4, y);
        cairo_line_to(cr, a->x0, y);
        cairo_stroke(cr);
        cnn_text(cr, a->x0 - 7, y, size, 1, 0.5, 0, 0, labels[i]);
    }
}

void cnn_axes_clip(cairo_t *cr, const cnn_axes *a)
{
    cairo_save(cr);
    cairo_rectangle(cr, a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    cairo_clip(cr);
}

void cnn_legend(cairo_t *cr, double x, double y, int right, const cnn_legend_item *items, int n)
{
    const double size = 13, row = 21, line = 28, pad = 8;
    double tw = 0;
    for (int i = 0; i < n; i++) tw = fmax(tw, cnn_text_width(cr, size, items[i].text));
    double w = pad * 3 + line + tw, h = pad * 2 + row * n - 4;
    if (right) x -= w;
    cairo_save(cr);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_fill_preserve(cr);
    cnn_set_rgb(cr, 0xd0d0d0);
    cnn_line_style_set(cr, CNN_LINE_SOLID, 1);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cy = y + pad + row * i + row / 2 - 2;
        cnn_set_rgb(cr, items[i].rgb);
        cnn_line_style_set(cr, items[i].style, 2);
        cairo_move_to(cr, x + pad, cy);
        cairo_line_to(cr, x + pad + line, cy);
        cairo_stroke(cr);
        cnn_text(cr, x + 2 * pad + line, cy, size, 0, 0.5, 0, 0, items[i].text);
    }
    cairo_restore(cr);
}

void cnn_annotate(cairo_t *cr, double tx, double ty, double px, double py, const char *text, uint32_t rgb)
{
    const double size = 11, pad = 5;
    double w = cnn_text_width(cr, size, text) + 2 * pad, h = size + 2 * pad;
    cairo_save(cr);
    cnn_set_rgb(cr, rgb);
    cnn_line_style_set(cr, CNN_LINE_SOLID, 1);
    /* The arrow leaves the box's nearest vertical edge, as matplotlib's does. */
    double sx = px < tx ? tx - w / 2 : tx + w / 2;
    double ang = atan2(py - ty, px - sx);
    cairo_move_to(cr, sx, ty);
    cairo_line_to(cr, px, py);
    cairo_stroke(cr);
    cairo_move_to(cr, px, py);
    cairo_line_to(cr, px - 10 * cos(ang - 0.35), py - 10 * sin(ang - 0.35));
    cairo_line_to(cr, px - 10 * cos(ang + 0.35), py - 10 * sin(ang + 0.35));
    cairo_close_path(cr);
    cairo_fill(cr);
    cairo_rectangle(cr, round(tx - w / 2) + 0.5, round(ty - h / 2) + 0.5, round(w), round(h));
    cnn_set_rgb(cr, 0xffffff);
    cairo_fill_preserve(cr);
    cnn_set_rgb(cr, rgb);
    cairo_stroke(cr);
    cairo_restore(cr);
    cnn_text(cr, tx, ty, size, 0.5, 0.5, 0, rgb, text);
}

static uint32_t lerp_rgb(uint32_t a, uint32_t b, double t)
{
    uint32_t out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double ca = a >> sh & 255, cb = b >> sh & 255;
        out |= (uint32_t)lround(ca + (cb - ca) * t) << sh;
    }
    return out;
}

static uint32_t cmap(const uint32_t *stops, int n, double t)
{
    t = isnan(t) ? 0 : fmin(fmax(t, 0), 1) * (n - 1);
    int i = (int)fmin(floor(t), n - 2);
    return lerp_rgb(stops[i], stops[i + 1], t - i);
}

/* Viridis at nine evenly spaced points (the published anchor colours), interpolated linearly. */
uint32_t cnn_cmap_viridis(double t)
{
    static const uint32_t stops[] = {0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21908c,
                                     0x27ad81, 0x5dc863, 0xaadc32, 0xfde725};
    return cmap(stops, 9, t);
}

uint32_t cnn_cmap_gray_r(double t)
{
    static const uint32_t stops[] = {0xffffff, 0x000000};
    return cmap(stops, 2, t);
}

uint32_t cnn_cmap_reds(double t)
{
    static const uint32_t stops[] = {0xffffff, 0xcc0000, 0x000000};
    return cmap(stops, 3, t);
}

uint32_t cnn_tab20(int i)
{
    static const uint32_t tab20[20] = {0x1f77b4, 0xaec7e8, 0xff7f0e, 0xffbb78, 0x2ca02c, 0x98df8a, 0xd62728,
                                       0xff9896, 0x9467bd, 0xc5b0d5, 0x8c564b, 0xc49c94, 0xe377c2, 0xf7b6d2,
                                       0x7f7f7f, 0xc7c7c7, 0xbcbd22, 0xdbdb8d, 0x17becf, 0x9edae5};
    return tab20[((i % 20) + 20) % 20];
}

void cnn_format_sig4(double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.4g", v);
    if (!strpbrk(buf, ".en") && strlen(buf) + 3 <= size) strcat(buf, ".0");
}

void cnn_draw_channel(cairo_t *cr, const float *img, int h, int w, int c, int ch, double x, double y,
                      double scale, uint32_t (*map)(double))
{
    size_t px = (size_t)h * (size_t)w, cs = (size_t)c;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t p = 0; p < px; p++) {
        lo = fmin(lo, img[p * cs + (size_t)ch]);
        hi = fmax(hi, img[p * cs + (size_t)ch]);
    }
    /* Whole pixels without antialiasing: no seams between the image's cells. */
    cairo_save(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++) {
            double v = img[((size_t)r * (size_t)w + (size_t)q) * cs + (size_t)ch];
            cnn_set_rgb(cr, map(hi > lo ? (v - lo) / (hi - lo) : 0));
            cairo_rectangle(cr, round(x + q * scale), round(y + r * scale),
                            round(x + (q + 1) * scale) - round(x + q * scale),
                            round(y + (r + 1) * scale) - round(y + r * scale));
            cairo_fill(cr);
        }
    cairo_restore(cr);
}
