/* The single-precision GEMM the layers are built on (Dense, the convolutions' lowered products).
 *
 *   C (M x N) (+)= sum over p < P of A_p B_p^T,  A_p[i] = a[i*sai + p*sap],  B_p[j] = b[p*ldb + j]
 *
 * A is read row-major (sap == 1) or transposed (sai == 1); B is always row-major (P x N), so a product with
 * a transposed B needs a transposed copy of it.
 *
 * The kernels are cnnlab's own, one per instruction-set path (kernels/isa.h): AVX-512 (6 x 64 tiles), AVX2
 * with FMA (6 x 16) and portable C (6 x 4), all register-blocked and reading A in place. Every C element sums
 * its P products in the same fixed order on every path (p in even blocks of at most 512, ascending inside a
 * block), each multiply-add rounded once (FMA instructions, or their exact emulation in the portable
 * kernel), so results depend on the shapes alone: never on the path, the thread count or on which rows a
 * call covers. */
#ifndef CNN_KERNELS_GEMM_H
#define CNN_KERNELS_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* The GEMM on the calling thread (sai == 1 or sap == 1). */
void cnn_gemm(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb, float *c,
              long ldc, int accumulate);

/* The same with A gathered through offset tables: A_p[i] = a[ri[i] + po[p]]. With ri = the pixel table and
 * po = the tap table of cnn_conv_gather_tables, A is the patch matrix of (padded) images read in place: no
 * im2col. */
void cnn_gemm_gather(int M, int N, int P, const float *a, const int *ri, const int *po, const float *b,
                     long ldb, float *c, long ldc, int accumulate);

/* B packed once for many gathered GEMMs (cnn_gemm_gather_packed): panels of CNN_GEMM_PANEL columns, each
 * P rows of CNN_GEMM_PANEL floats, one after the other; B[p][j] at packed[(j / PANEL) * PANEL * P + p * PANEL
 * + j % PANEL] (columns past N in the last panel are never read). In place, a kernel's B rows lie N floats
 * apart: at N = 512 (VGG16's deep layers) every row of a 64-column panel starts a new page and falls into the
 * same few cache sets, and the tiles ran at about 78% of the FMA peak; from a packed panel, read in order,
 * at about 92%. Packing moves values only: each element sums the same products in the same order. */
enum { CNN_GEMM_PANEL = 64 };
/* n floats rounded up to whole 64-byte cache lines (the workspaces' slices start on lines). */
static inline size_t cnn_float_lines(size_t n)
{
    return (n + 15) / 16 * 16;
}
static inline size_t cnn_gemm_packed_floats(int P, int N)
{
    return (size_t)P * (size_t)((N + CNN_GEMM_PANEL - 1) / CNN_GEMM_PANEL * CNN_GEMM_PANEL);
}
/* Where B's element (p, j) goes in the packed layout. */
static inline size_t cnn_gemm_packed_at(int P, int p, int j)
{
    return (size_t)(j / CNN_GEMM_PANEL) * CNN_GEMM_PANEL * (size_t)P + (size_t)p * CNN_GEMM_PANEL +
           (size_t)(j % CNN_GEMM_PANEL);
}
/* packed <- B (P x N, rows ldb apart), on every thread (call it outside parallel regions). */
void cnn_gemm_pack_b(int P, int N, const float *b, long ldb, float *packed);
/* cnn_gemm_gather with B packed by cnn_gemm_pack_b (or written in its layout): the same bits. */
void cnn_gemm_gather_packed(int M, int N, int P, const float *a, const int *ri, const int *po,
                            const float *packed, float *c, long ldc, int accumulate);

/* A's values for the gathered BF16 products below: rounded to BF16 (a16 = cnn_bf16_round of the FP32 values
 * the FP32 call would read), and where pairs is not NULL also their pair image (cnn_bf16_pair_image of the
 * same values at pair_step). */
typedef struct cnn_bf16_images {
    const uint16_t *a16;
    const uint32_t *pairs;
    long pair_step;
} cnn_bf16_images;

/* While the BF16 products are on (kernels/gemm_bf16.h; never else): cnn_gemm_gather and
 * cnn_gemm_gather_packed with A's values already rounded to BF16: the same bits as those calls. Each value
 * is rounded once instead of at every use (up to kh * kw times in a convolution's patches), and where the
 * pairs of p lie side by side (patches over an even number of channels) or pair_step apart in the pair image
 * (patches^T over neighbouring pixels), the tiles read them in place, packing nothing. */
void cnn_gemm_gather_bf16(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                          const float *b, long ldb, float *c, long ldc, int accumulate);
void cnn_gemm_gather_packed_bf16(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                                 const float *packed, float *c, long ldc, int accumulate);
/* The same with B rounded and paired beforehand (cnn_bf16_pack_b of gemm_bf16.h, or written in its layout),
 * while the BF16 products are on: the same bits, nothing of B packed per call. */
void cnn_gemm_gather_bf16_paired(int M, int N, int P, const cnn_bf16_images *a, const int *ri, const int *po,
                                 const uint32_t *b16, float *c, long ldc, int accumulate);

/* Called by cnn_gemm_parallel for rows [first, first + count) of C once they are final, on the thread that
 * computed them (while they are still in its cache): the place for a bias and an activation, or any other
 * work split by the same rows, without a parallel region of its own. Calls may run concurrently. */
typedef void (*cnn_gemm_rows_fn)(void *arg, int first, int count);

/* cnn_gemm on every thread: C's rows in blocks (cnn_gemm_block_rows), each computed by one thread and then
 * handed to `after` (may be NULL). An element's sum does not depend on the block it falls in, and the blocks
 * depend on the shape alone, so results are bit-identical for any thread count. Call it outside parallel
 * regions. */
void cnn_gemm_parallel(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb,
                       float *c, long ldc, int accumulate, cnn_gemm_rows_fn after, void *arg);
/* Rows per block of cnn_gemm_parallel for rows of N x P multiply-adds: 24 (a multiple of the kernels' 6-row
 * tile, small enough to balance the threads), more when such a block would be too little work to schedule. */
int cnn_gemm_block_rows(int N, int P);

/* db[j] = sum over rows of dy[r][j] (the bias gradient of a GEMM layer), summed row by row for every j, on
 * every thread: bit-identical for any thread count. */
void cnn_column_sums(const float *dy, float *db, size_t rows, int cols);

#endif
