/* The Winograd F(2x2, 3x3) driver (kernels/winograd.h): the kernel transform, the chunks of tiles and their
 * 16 GEMMs, and the CNNLAB_CONV switch. */
#include "kernels/winograd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"

/* ---------------------------------------------------------------- the kernel transform */

static const cnn_wino_tiles *tiles_current(void)
{
    static const cnn_wino_tiles *const TILES[CNN_ISA_COUNT] = {&cnn_wino_tiles_generic, &cnn_wino_tiles_avx2,
                                                               &cnn_wino_tiles_avx512};
    return TILES[cnn_isa_current()];
}

/* The transform of input channel c's taps for output channels [j0, j0 + n) into dst[xi] (n floats each). */
static void kernel_row(const cnn_wino_tiles *t, const float *w, int cin, int cout, int c, int j0, int n,
                       float *const dst[16])
{
    const size_t tap = (size_t)cin * cout;
    const float *taps[9];
    for (int k = 0; k < 9; k++) taps[k] = w + k * tap + (size_t)c * cout + j0;
    t->kernel(taps, n, dst);
}

/* Operand xi is B (cin x cout) = U[xi][c][f], packed: a packed panel's rows are contiguous runs of
 * CNN_GEMM_PANEL output channels, as are w's rows. */
static void kernel_fp32(const cnn_wino_tiles *t, const float *w, int cin, int cout, float *u)
{
    const size_t ops = cnn_wino_operand_floats(cin, cout);
#pragma omp parallel for schedule(static) if ((size_t)cin * cout > 16384)
    for (int c = 0; c < cin; c++)
        for (int j0 = 0; j0 < cout; j0 += CNN_GEMM_PANEL) {
            float *dst[16];
            for (int xi = 0; xi < 16; xi++) dst[xi] = u + xi * ops + cnn_gemm_packed_at(cin, c, j0);
            kernel_row(t, w, cin, cout, c, j0, cout - j0 < CNN_GEMM_PANEL ? cout - j0 : CNN_GEMM_PANEL, dst);
        }
}

/* With the BF16 products on, operand xi is B rounded and paired once per transform (cnn_bf16_packed_at's
 * layout, in the operand's first half), so that its 16 GEMMs per chunk of tiles pack nothing: channels 2k
 * and 2k + 1 are transformed side by side, then rounded together. */
static void kernel_bf16(const cnn_wino_tiles *t, const float *w, int cin, int cout, uint32_t *u)
{
    const size_t ops = cnn_wino_operand_floats(cin, cout);
#pragma omp parallel for schedule(static) if ((size_t)cin * cout > 16384)
    for (int k = 0; k < (cin + 1) / 2; k++)
        for (int j0 = 0; j0 < cout; j0 += CNN_GEMM_PANEL) {
            const int n = cout - j0 < CNN_GEMM_PANEL ? cout - j0 : CNN_GEMM_PANEL, pair = 2 * k + 1 < cin;
            float rows[2][16][CNN_GEMM_PANEL];
            float *dst[2][16];
            for (int xi = 0; xi < 16; xi++) dst[0][xi] = rows[0][xi], dst[1][xi] = rows[1][xi];
            kernel_row(t, w, cin, cout, 2 * k, j0, n, dst[0]);
            if (pair) kernel_row(t, w, cin, cout, 2 * k + 1, j0, n, dst[1]);
            for (int xi = 0; xi < 16; xi++)
                cnn_bf16_pairs(rows[0][xi], pair ? rows[1][xi] : NULL, n,
                               u + xi * ops + cnn_bf16_packed_at(cin, k, j0));
        }
}

/* Pure arithmetic per element: any split of the work gives the same bits. */
void cnn_wino_kernel(const float *w, int cin, int cout, float *u)
{
    if (cnn_gemm_bf16_on())
        kernel_bf16(tiles_current(), w, cin, cout, (uint32_t *)u);
    else
        kernel_fp32(tiles_current(), w, cin, cout, u);
}

/* ---------------------------------------------------------------- chunks of tiles */

/* A chunk's transformed inputs and products, 16 x tiles x (cin + cout) floats, in about this many bytes (the
 * size of an L2): the GEMMs read V[xi] cout / 64 times and the output transform reads M[xi] right after they
 * wrote it. But at least MIN_TILES tiles: each GEMM reads its U operand (cin x cout, 1 MB at 512 channels,
 * from L3 or memory) once per chunk for tiles x cin x cout multiply-adds. Measured on VGG16's layers at batch
 * 64 (one Zen 4 core, forward): 1 MB chunks ran 5-10% faster than 4 MB chunks at 64 to 256 channels; at 512
 * channels (16 tiles) 10% slower than 64 tiles. */
enum { CHUNK_BYTES = 1 << 20, MIN_TILES = 64, MAX_SLOTS = 16 };

/* CHUNK_BYTES, or what cnn_wino_set_budget set (tests: many chunks from small shapes). */
static size_t g_budget = CHUNK_BYTES;

void cnn_wino_set_budget(size_t bytes)
{
    g_budget = bytes ? bytes : CHUNK_BYTES;
}

/* The split of a batch: n * th tile rows in chunks of `rows`; each thread works in one of `slots` buffers.
 * Everything here depends on the geometry and n alone. */
typedef struct wino_plan {
    int th, tw;    /* tiles per column and per row of an output image */
    int rows;      /* tile rows per chunk */
    int tiles;     /* tiles per chunk at most: rows * tw */
    int chunks;    /* chunks of the batch */
    int slots;     /* buffers, one per thread at work */
    size_t vs, ms; /* floats from one of the 16 matrices V[xi] (M[xi]) to the next */
    size_t slot;   /* floats per buffer: V then M */
    size_t table;  /* floats (as ints) of the GEMM's offset tables and the zero run, before the slots */
} wino_plan;

/* n floats rounded up to cache lines, plus one: the transforms read and write the 16 matrices at once, and
 * at a distance of a power of two (tiles x 64 channels) their 16 streams fell into the same cache sets. */
static size_t skewed(size_t n)
{
    return cnn_float_lines(n) + 16;
}

static wino_plan plan_for(const cnn_wino_geom *g, int n)
{
    wino_plan p = {.th = (g->oh + 1) / 2, .tw = (g->ow + 1) / 2};
    const long want = (long)(g_budget / (64 * (size_t)(g->cin + g->cout))), all = (long)n * p.th;
    const long least = g_budget == CHUNK_BYTES ? MIN_TILES : 1, target = want > least ? want : least,
               rows = target / p.tw > 1 ? target / p.tw : 1;
    p.rows = (int)(rows < all ? rows : all > 0 ? all : 1);
    p.tiles = p.rows * p.tw;
    p.chunks = (int)((all + p.rows - 1) / p.rows);
    p.slots = p.chunks < MAX_SLOTS ? (p.chunks > 0 ? p.chunks : 1) : MAX_SLOTS;
    p.vs = skewed((size_t)p.tiles * (size_t)g->cin);
    p.ms = skewed((size_t)p.tiles * (size_t)g->cout);
    p.slot = 16 * (p.vs + p.ms);
    p.table = cnn_float_lines((size_t)p.tiles + (size_t)g->cin) + cnn_float_lines((size_t)g->cin);
    return p;
}

size_t cnn_wino_work_floats(const cnn_wino_geom *g, int n)
{
    const wino_plan p = plan_for(g, n);
    return p.table + (size_t)p.slots * p.slot;
}

/* What every chunk of a call shares. */
typedef struct wino_call {
    const cnn_wino_geom *g;
    wino_plan p;
    int n; /* images */
    const float *x, *u, *zero;
    float *y;
    const int *ri, *po; /* A_p[i] = V[ri[i] + po[p]]: tile i's row of V[xi] read in place */
    const cnn_wino_tiles *tiles;
    int bf16; /* the BF16 products: u in cnn_wino_kernel's paired BF16 layout, V written in BF16 */
    cnn_gemm_rows_fn after;
    void *arg;
} wino_call;

/* Input pixel (iy, ix) of image s, or the zero run outside the image (the padding). */
static const float *pixel(const wino_call *k, int s, int iy, int ix)
{
    const cnn_wino_geom *g = k->g;
    if (iy < 0 || iy >= g->ih || ix < 0 || ix >= g->iw) return k->zero;
    return k->x + (((size_t)s * g->ih + iy) * g->iw + ix) * g->cin;
}

/* V of tile rows [r0, r1) (flattened as image * th + tile row), in BF16 where k->bf16. */
static void transform_inputs(const wino_call *k, int r0, int r1, float *v)
{
    const cnn_wino_geom *g = k->g;
    const size_t vs = k->p.vs;
    int t = 0;
    for (int r = r0; r < r1; r++) {
        const int s = r / k->p.th, y0 = 2 * (r % k->p.th) - g->pt;
        for (int tx = 0; tx < k->p.tw; tx++, t++) {
            const float *src[16];
            for (int i = 0; i < 16; i++) src[i] = pixel(k, s, y0 + i / 4, 2 * tx - g->pl + i % 4);
            if (k->bf16) /* V[xi] in BF16 in the first half of its floats */
                cnn_wino_input_bf16(src, g->cin, (uint16_t *)v + (size_t)t * g->cin, 2 * vs);
            else
                k->tiles->input(src, g->cin, v + (size_t)t * g->cin, vs);
        }
    }
}

/* Y of tile rows [r0, r1) from M, the outputs past the image's last row or column left out. */
static void transform_outputs(const wino_call *k, int r0, int r1, const float *m)
{
    const cnn_wino_geom *g = k->g;
    const size_t ms = k->p.ms;
    int t = 0;
    for (int r = r0; r < r1; r++) {
        const int s = r / k->p.th, oy = 2 * (r % k->p.th);
        for (int tx = 0; tx < k->p.tw; tx++, t++) {
            float *dst[4];
            for (int i = 0; i < 4; i++) {
                const int yy = oy + i / 2, xx = 2 * tx + i % 2;
                dst[i] = yy < g->oh && xx < g->ow ? k->y + (((size_t)s * g->oh + yy) * g->ow + xx) * g->cout
                                                  : NULL;
            }
            k->tiles->output(m + (size_t)t * g->cout, ms, g->cout, dst);
        }
    }
}

/* The first output pixel of tile row r (flattened), counted over the batch. */
static long first_pixel(const wino_call *k, int r)
{
    const cnn_wino_geom *g = k->g;
    const int oy = 2 * (r % k->p.th);
    return ((long)(r / k->p.th) * g->oh + oy) * g->ow;
}

/* Chunk c in buffer v: inputs, the 16 products, outputs, then `after` over its pixels. */
static void run_chunk(const wino_call *k, int c, float *v)
{
    const cnn_wino_geom *g = k->g;
    const int r0 = c * k->p.rows, r1 = r0 + k->p.rows < k->n * k->p.th ? r0 + k->p.rows : k->n * k->p.th;
    const int tiles = (r1 - r0) * k->p.tw;
    const size_t vs = k->p.vs, ms = k->p.ms, us = cnn_wino_operand_floats(g->cin, g->cout);
    float *m = v + 16 * vs;
    transform_inputs(k, r0, r1, v);
    for (int xi = 0; xi < 16; xi++) {
        float *vx = v + xi * vs, *mx = m + xi * ms;
        if (!k->bf16) {
            cnn_gemm_gather_packed(tiles, g->cout, g->cin, vx, k->ri, k->po, k->u + xi * us, mx, g->cout, 0);
            continue;
        }
        const cnn_bf16_images a16 = {(const uint16_t *)vx, NULL, 0};
        cnn_gemm_gather_bf16_paired(tiles, g->cout, g->cin, &a16, k->ri, k->po,
                                    (const uint32_t *)(k->u + xi * us), mx, g->cout, 0);
    }
    transform_outputs(k, r0, r1, m);
    if (!k->after) return;
    const long first = first_pixel(k, r0),
               end = r1 < k->n * k->p.th ? first_pixel(k, r1) : (long)k->n * g->oh * g->ow;
    k->after(k->arg, (int)first, (int)(end - first));
}

/* The offset tables (tile i's row of V starts at i * cin; its channels follow) and the zero run. */
static void tables(const cnn_wino_geom *g, const wino_plan *p, float *work, int **ri, int **po, float **zero)
{
    *ri = (int *)work;
    *po = *ri + p->tiles;
    *zero = work + cnn_float_lines((size_t)p->tiles + (size_t)g->cin);
    for (int i = 0; i < p->tiles; i++) (*ri)[i] = i * g->cin;
    for (int c = 0; c < g->cin; c++) (*po)[c] = c;
    memset(*zero, 0, sizeof(float) * (size_t)g->cin);
}

void cnn_wino_conv(const cnn_wino_geom *g, int n, const float *x, const float *u, float *y, float *work,
                   cnn_gemm_rows_fn after, void *arg)
{
    if (n <= 0) return;
    wino_call k = {.g = g,
                   .p = plan_for(g, n),
                   .n = n,
                   .x = x,
                   .u = u,
                   .y = y,
                   .tiles = tiles_current(),
                   .bf16 = cnn_gemm_bf16_on(),
                   .after = after,
                   .arg = arg};
    int *ri, *po;
    float *zero;
    tables(g, &k.p, work, &ri, &po, &zero);
    k.ri = ri;
    k.po = po;
    k.zero = zero;
    float *slots = work + k.p.table;
    const int max = omp_get_max_threads(), threads = max < k.p.slots ? max : k.p.slots;
    /* Dynamic: a thread that loses its core to another process does not hold the others back. A chunk's
     * result does not depend on the buffer or the thread. */
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
    for (int c = 0; c < k.p.chunks; c++) run_chunk(&k, c, slots + (size_t)omp_get_thread_num() * k.p.slot);
}

/* ---------------------------------------------------------------- CNNLAB_CONV */

/* -1 until read; then 1 (auto), 0 (direct) or 2 (everywhere: cnn_wino_allow only). */
static int g_allowed = -1;

int cnn_conv_algo_check(void)
{
    if (__atomic_load_n(&g_allowed, __ATOMIC_RELAXED) >= 0) return CNN_OK;
    const char *env = getenv("CNNLAB_CONV");
    int on = -1;
    if (!env || !*env || !strcmp(env, "auto")) on = 1;
    if (env && !strcmp(env, "direct")) on = 0;
    if (on < 0)
        return cnn_fail(CNN_ERR_INVALID,
                        "CNNLAB_CONV=%s: unknown convolution algorithm (expected auto or direct)", env);
    __atomic_store_n(&g_allowed, on, __ATOMIC_RELAXED);
    return CNN_OK;
}

int cnn_wino_allowed(void)
{
    if (__atomic_load_n(&g_allowed, __ATOMIC_RELAXED) < 0 && cnn_conv_algo_check()) return 0;
    return __atomic_load_n(&g_allowed, __ATOMIC_RELAXED);
}

void cnn_wino_allow(int mode)
{
    __atomic_store_n(&g_allowed, mode < 0 ? -1 : mode > 2 ? 2 : mode, __ATOMIC_RELAXED);
}
