/* The BF16 GEMM against the FP32 one on one thread, at the lowered shapes of Model_2_s2's and VGG16's
 * convolutions (forward: patches x W gathered in place; weight gradient: patches^T x dy; input gradient:
 * dy x W^T), interleaved, best of R runs each (the machine may be shared: the best run is the least
 * disturbed). Prints each shape's GFLOP/s in both precisions and the ratio. In bf16 the gathered products
 * read the images as conv2d.c does: rounded to BF16 once per call (cnn_bf16_round, and the pair image for
 * the weight gradient where output rows have an even width), the rounding counted in their time. (In bf16,
 * conv2d.c computes these layers' dx as a convolution, a product like y's; dx here is fp32's dy W^T.)
 *
 *   make && OMP_NUM_THREADS=1 build/bench/bf16_gemm [R]
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cnnlab.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"

/* A 3x3 "same" convolution of cnt images h x w x cin to F filters, on images already padded by one. */
typedef struct conv {
    const char *name;
    int cnt, h, w, cin, F;
} conv;

static const conv CONVS[] = {
    {"Model_2_s2 conv2d_1 (14x14, 32->64)", 8, 14, 14, 32, 64},
    {"Model_2_s2 conv2d_2 (7x7 valid, 64->64)", 16, 5, 5, 64, 64},
    {"VGG16 block3 (56x56, 256->256)", 1, 28, 28, 256, 256},
    {"VGG16 block4 (28x28, 512->512)", 1, 14, 14, 512, 512},
};

static float *randoms(size_t n)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; v && i < n; i++) v[i] = (float)rand() / RAND_MAX - 0.5f;
    return v;
}

/* The images rounded once (and their pair image at one pixel's step, or NULL) for the BF16 gathered
 * products. */
typedef struct rounded {
    uint16_t *a16;
    uint32_t *pairs;
    size_t n;
    long step;
} rounded;

/* Seconds of each of the three products of one convolution, into t[0..2]; r: in bf16, as conv2d.c reads x. */
static void products(const conv *c, const float *x, const float *k, const float *dy, float *y, float *dw,
                     float *dc, const int *pix, const int *tap, const rounded *r, double *t)
{
    const int rows = c->cnt * c->h * c->w, K = 9 * c->cin, F = c->F;
    const double t0 = omp_get_wtime();
    if (r) {
        cnn_bf16_round(x, r->n, r->a16);
        cnn_gemm_gather_bf16(rows, F, K, &(cnn_bf16_images){r->a16, NULL, 0}, pix, tap, k, F, y, F, 0);
    } else {
        cnn_gemm_gather(rows, F, K, x, pix, tap, k, F, y, F, 0);
    }
    const double t1 = omp_get_wtime();
    if (r && r->pairs) { /* as conv2d.c: rounded once where it reads the pair image, else as in fp32 */
        cnn_bf16_round(x, r->n, r->a16);
        cnn_bf16_pair_image(r->a16, r->n, r->step, r->pairs);
        cnn_gemm_gather_bf16(K, F, rows, &(cnn_bf16_images){r->a16, r->pairs, r->step}, tap, pix, dy, F, dw,
                             F, 0);
    } else {
        cnn_gemm_gather(K, F, rows, x, tap, pix, dy, F, dw, F, 0);
    }
    const double t2 = omp_get_wtime();
    cnn_gemm(rows, K, F, dy, F, 1, k, K, dc, K, 0);
    t[0] = t1 - t0, t[1] = t2 - t1, t[2] = omp_get_wtime() - t2;
}

int main(int argc, char **argv)
{
    const int R = argc > 1 ? atoi(argv[1]) : 5;
    if (cnn_bf16_check()) return fprintf(stderr, "%s\n", cnn_errmsg()), 1;
    printf("%-42s %-8s %10s %10s %7s\n", "shape (1 thread)", "product", "fp32 GF/s", "bf16 GF/s", "ratio");
    for (size_t s = 0; s < sizeof CONVS / sizeof CONVS[0]; s++) {
        const conv *c = &CONVS[s];
        const int hp = c->h + 2, wp = c->w + 2, rows = c->cnt * c->h * c->w, K = 9 * c->cin, F = c->F;
        float *x = randoms((size_t)c->cnt * hp * wp * c->cin), *k = randoms((size_t)K * F),
              *dy = randoms((size_t)rows * F), *y = randoms((size_t)rows * F), *dw = randoms((size_t)K * F),
              *dc = randoms((size_t)rows * K);
        int *pix = malloc(sizeof(int) * rows), *tap = malloc(sizeof(int) * K);
        const size_t nx = (size_t)c->cnt * hp * wp * c->cin;
        /* the pair image where conv2d.c makes one: rows of output pixels of even width */
        const rounded img = {malloc(sizeof(uint16_t) * nx), c->w % 2 ? NULL : malloc(sizeof(uint32_t) * nx),
                             nx, c->cin};
        for (int n = 0, i = 0; n < c->cnt; n++)
            for (int oy = 0; oy < c->h; oy++)
                for (int ox = 0; ox < c->w; ox++) pix[i++] = ((n * hp + oy) * wp + ox) * c->cin;
        for (int ky = 0, i = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                for (int ch = 0; ch < c->cin; ch++) tap[i++] = (ky * wp + kx) * c->cin + ch;
        double best[2][4] = {{1e9, 1e9, 1e9, 1e9}, {1e9, 1e9, 1e9, 1e9}};
        for (int r = 0; r < R; r++)
            for (int b = 0; b < 2; b++) {
                double t[3];
                cnn_gemm_bf16_set(b);
                products(c, x, k, dy, y, dw, dc, pix, tap, b ? &img : NULL, t);
                for (int i = 0; i < 3; i++)
                    if (t[i] < best[b][i]) best[b][i] = t[i];
                if (t[0] + t[1] + t[2] < best[b][3]) best[b][3] = t[0] + t[1] + t[2];
            }
        cnn_gemm_bf16_set(0);
        static const char *const WHAT[4] = {"y", "dW", "dx", "all 3"};
        for (int i = 0; i < 4; i++) {
            const double flop = (i == 3 ? 3 : 1) * 2.0 * rows * K * F;
            printf("%-42s %-8s %10.1f %10.1f %7.2f\n", i ? "" : c->name, WHAT[i], flop / best[0][i] * 1e-9,
                   flop / best[1][i] * 1e-9, best[0][i] / best[1][i]);
        }
        free(x), free(k), free(dy), free(y), free(dw), free(dc), free(pix), free(tap), free(img.a16),
            free(img.pairs);
    }
    return 0;
}
