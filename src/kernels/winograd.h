/* Winograd's minimal filtering F(2x2, 3x3) for 3x3, stride-1, undilated convolutions (NHWC): each 2x2 block
 * of outputs (a tile) comes from a 4x4 block of inputs d through 16 products instead of 36,
 *
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A     summed over the input channels,
 *
 * so a layer's multiply-adds fall 2.25x (less on edge tiles). With V[xi] = (B^T d B)[xi] for every tile
 * (rows) and input channel (columns), and U[xi] = (G g G^T)[xi] (input x output channels), the 16 positions
 * xi of the 4x4 transform domain are 16 independent GEMMs M[xi] = V[xi] U[xi], done by kernels/gemm.h (so
 * every instruction-set path and the BF16 products serve them), and Y = A^T M A.
 *
 * The transforms only add, subtract and halve (exact), in a fixed order, compiled per path from the same C
 * without fused multiply-adds (winograd.inc): every path gives the same bits, and the GEMM's sums do not
 * depend on the rows a call covers, so neither the chunks of tiles nor the thread count change any bit. */
#ifndef CNN_KERNELS_WINOGRAD_H
#define CNN_KERNELS_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/gemm.h"

/* A convolution by a 3x3 kernel, stride 1: input ih x iw x cin, output oh x ow x cout, zero padding pt rows
 * before and pl columns before (output pixel (oy, ox) reads input rows oy - pt .. oy - pt + 2). */
typedef struct cnn_wino_geom {
    int ih, iw, cin;
    int oh, ow, cout;
    int pt, pl;
} cnn_wino_geom;

/* Floats from one operand of a transformed kernel U to the next: cin x cout, packed (cnn_gemm_pack_b), plus a
 * cache line, so that the transform's 16 streams do not start a power of two apart (the same cache sets). */
static inline size_t cnn_wino_operand_floats(int cin, int cout)
{
    return cnn_gemm_packed_floats(cin, cout) + 16;
}
/* Floats of a transformed kernel U: its 16 GEMM operands. */
static inline size_t cnn_wino_kernel_floats(int cin, int cout)
{
    return 16 * cnn_wino_operand_floats(cin, cout);
}

/* u <- the transform of a Keras kernel w (3, 3, cin, cout) for y = x (*) w, on every thread (call it outside
 * parallel regions); while the BF16 products are on (kernels/gemm_bf16.h), rounded to BF16 and paired for
 * them, for cnn_wino_conv calls made while they are still on. dx = dy (*) w' takes the transform of
 * w'[ky][kx][f][c] = w[2-ky][2-kx][c][f] (cout input channels, cin outputs), the kernel rotated by 180
 * degrees with its channel axes swapped. */
void cnn_wino_kernel(const float *w, int cin, int cout, float *u);

/* Floats of the workspace cnn_wino_conv needs for n images (non-decreasing in n). */
size_t cnn_wino_work_floats(const cnn_wino_geom *g, int n);

/* y (n, oh, ow, cout) <- x (n, ih, iw, cin) convolved with the kernel transformed into u, overwritten, on
 * every thread (call it outside parallel regions). Tiles are processed in chunks of whole tile rows, so a
 * chunk's outputs are consecutive pixels: after(arg, first, count) is called for pixels [first, first +
 * count) of the batch once they are final (on the thread that wrote them), e.g. for a bias and an
 * activation; after may be NULL. */
void cnn_wino_conv(const cnn_wino_geom *g, int n, const float *x, const float *u, float *y, float *work,
                   cnn_gemm_rows_fn after, void *arg);

/* The tile transforms of one instruction-set path (winograd.inc). src/dst hold 16 (4 x 4, row-major)
 * pointers to runs of channels; vs/ms are the distances between the 16 transform-domain matrices. */
typedef struct cnn_wino_tiles {
    /* v[xi * vs + c] = (B^T d B)[xi] with d[k] = src[k][c], for c < cin. */
    void (*input)(const float *const src[16], int cin, float *v, size_t vs);
    /* dst[k][f] = (A^T m A)[k] with m[xi] = m[xi * ms + f], for f < cout and the 4 outputs k whose dst is
     * not NULL (edge tiles). */
    void (*output)(const float *m, size_t ms, int cout, float *const dst[4]);
    /* dst[xi][j] = (G g G^T)[xi] with g[k] = taps[k][j] (3 x 3, row-major), for j < n. */
    void (*kernel)(const float *const taps[9], int n, float *const dst[16]);
} cnn_wino_tiles;

extern const cnn_wino_tiles cnn_wino_tiles_generic, cnn_wino_tiles_avx2, cnn_wino_tiles_avx512;

/* The input transform of cnn_wino_tiles with V rounded to BF16 as it is written (round to nearest even, as
 * cnn_bf16_round of the FP32 V: the same values): v[xi * vs + c] in BF16, vs counted in BF16 values. Only
 * where cnn_bf16_check passes (kernels/winograd_bf16_avx512.c). */
void cnn_wino_input_bf16(const float *const src[16], int cin, uint16_t *v, size_t vs);

/* The convolution algorithm: CNNLAB_CONV=auto (default: Winograd where the layer's rule picks it) or direct
 * (never), read once. CNN_OK, or the error for another value. */
int cnn_conv_algo_check(void);
/* 1 when Winograd may be used where a layer's rule picks it (CNNLAB_CONV unset, empty or auto), 0 never
 * (direct), 2 wherever the geometry allows (set by cnn_wino_allow only). */
int cnn_wino_allowed(void);
/* Overrides CNNLAB_CONV (tests compare both algorithms in one process, measurements the rule): 1 auto, 0
 * direct, 2 everywhere, -1 read CNNLAB_CONV again at the next check. Call it between steps. */
void cnn_wino_allow(int mode);

/* The bytes of a chunk's transformed inputs and products (0 restores the default). For tests: a workspace
 * planned under one budget may be too small under another. */
void cnn_wino_set_budget(size_t bytes);

#endif
