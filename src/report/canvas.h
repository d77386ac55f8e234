/* The drawing layer of the report: a cairo image surface with the study's look (matplotlib-like axes, grid,
 * ticks, legends and text in DejaVu Sans), and the geometry of each picture, which the tests read to find
 * where a marker or a tile must be. */
#ifndef CNN_REPORT_CANVAS_H
#define CNN_REPORT_CANVAS_H

#include <cairo.h>
#include <stdint.h>

#include "cnnlab.h"

/* Bytes a cairo stream writes (PNG or SVG), kept in memory until the file is written atomically. */
typedef struct cnn_bytes {
    unsigned char *data;
    size_t len, cap;
} cnn_bytes;

typedef struct cnn_canvas {
    cairo_surface_t *surface;
    cairo_t *cr;
    int w, h;
    int svg; /* a vector surface whose bytes stream into svg_out */
    cnn_bytes svg_out;
} cnn_canvas;

/* A plot area: the pixel box (x0, y0)-(x1, y1) showing data [xmin, xmax] x [ymin, ymax]. */
typedef struct cnn_axes {
    double x0, y0, x1, y1;
    double xmin, xmax, ymin, ymax;
} cnn_axes;

/* Opens a white w x h pixel canvas. */
int cnn_canvas_open(cnn_canvas *c, int w, int h);
/* The canvas a picture file needs: SVG when path ends in ".svg", else a pixel canvas saved as PNG. */
int cnn_canvas_open_for(cnn_canvas *c, int w, int h, const char *path);
/* The canvas as PNG bytes in memory (the caller frees *data). */
int cnn_canvas_png(cnn_canvas *c, unsigned char **data, size_t *len);
/* Writes the canvas to path (PNG, or the SVG it was opened for), atomically. */
int cnn_canvas_save(cnn_canvas *c, const char *path);
void cnn_canvas_close(cnn_canvas *c);

double cnn_axes_px(const cnn_axes *a, double x);
double cnn_axes_py(const cnn_axes *a, double y);

void cnn_set_rgb(cairo_t *cr, uint32_t rgb);
/* Text of the given pixel size anchored at (x, y): ax, ay are the anchor's place in the text's box (0 left or
 * top, 0.5 centre, 1 right or bottom); angle in degrees, counter-clockwise. Lines split at '\n'. */
void cnn_text(cairo_t *cr, double x, double y, double size, double ax, double ay, double angle, uint32_t rgb,
              const char *s);
/* Width of one line of text at that size. */
double cnn_text_width(cairo_t *cr, double size, const char *s);

/* Line styles of the study's plots. */
typedef enum { CNN_LINE_SOLID = 0, CNN_LINE_DASHED, CNN_LINE_DOTTED } cnn_line_style;
void cnn_line_style_set(cairo_t *cr, cnn_line_style style, double width);

/* The grid at each tick, then the frame. */
void cnn_axes_grid(cairo_t *cr, const cnn_axes *a, const double *xt, int nx, const double *yt, int ny);
void cnn_axes_frame(cairo_t *cr, const cnn_axes *a);
/* Tick labels below the x axis and left of the y axis (labels may be NULL to skip one axis). */
void cnn_axes_xlabels(cairo_t *cr, const cnn_axes *a, const double *xt, int n, const char *const *labels,
                      double size, double angle);
void cnn_axes_ylabels(cairo_t *cr, const cnn_axes *a, const double *yt, int n, const char *const *labels,
                      double size);
/* Clips drawing to the plot area (undo with cairo_restore). */
void cnn_axes_clip(cairo_t *cr, const cnn_axes *a);

/* A legend entry: a short line in a style and colour, then its text. */
typedef struct cnn_legend_item {
    const char *text;
    uint32_t rgb;
    cnn_line_style style;
} cnn_legend_item;
/* A framed legend with its top-left (right = 0) or top-right (right = 1) corner at (x, y). */
void cnn_legend(cairo_t *cr, double x, double y, int right, const cnn_legend_item *items, int n);

/* A framed annotation at (tx, ty) with an arrow to (px, py), as matplotlib's annotate with a bbox. */
void cnn_annotate(cairo_t *cr, double tx, double ty, double px, double py, const char *text, uint32_t rgb);

/* Colour maps: viridis, gray_r and the study's white -> dark red -> black, for t in [0, 1]. */
uint32_t cnn_cmap_viridis(double t);
uint32_t cnn_cmap_gray_r(double t);
uint32_t cnn_cmap_reds(double t);
/* Channel ch of an h x w x c image (NHWC) at (x, y), each pixel a scale x scale square, scaled to the
 * channel's own range as matplotlib's imshow does, in the colour map. */
void cnn_draw_channel(cairo_t *cr, const float *img, int h, int w, int c, int ch, double x, double y,
                      double scale, uint32_t (*map)(double));
/* The tab20 colour i (mod 20). */
uint32_t cnn_tab20(int i);

/* Python's str() of a value rounded to 4 significant digits ("92.49", "90.0", "0.992"). */
void cnn_format_sig4(double v, char *buf, size_t size);

/* ---- geometry of the pictures (the tests use it to find markers and tiles) */

/* Learning curves: 1200 x 800, the loss panel above the accuracy panel, both over epochs 1..n. */
enum { CNN_CA_W = 1200, CNN_CA_H = 800 };
void cnn_curves_axes(int epochs, cnn_axes *loss, cnn_axes *acc);

/* predict.png: 5 rows of 10 tiles; tile (r, c) shows its 28 x 28 image scaled by CNN_PRED_SCALE with its
 * top-left corner at cnn_predict_tile_origin. */
enum { CNN_PRED_ROWS = 5, CNN_PRED_COLS = 10, CNN_PRED_N = 50, CNN_PRED_SCALE = 4 };
enum { CNN_PRED_W = 1590, CNN_PRED_H = 1015 };
void cnn_predict_tile_origin(int row, int col, double *x, double *y);

/* image_genarator.png (cnn_plot_image_rows): rows of images, each under its title line on a white band over
 * the notebook's dark gray; image (row, col) is a CNN_ROWS_TILE square (the larger side) with its top-left
 * corner at cnn_image_rows_origin. The picture of nrows rows of n images is w x h pixels. */
enum { CNN_ROWS_TILE = 112 };
void cnn_image_rows_origin(int row, int col, double *x, double *y);
void cnn_image_rows_size(int nrows, int n, int *w, int *h);

#endif
