/* The single-precision GEMM the layers are built on (Dense, Conv2D's lowered convolutions).
 *
 *   C (M x N) (+)= sum over p < P of A_p B_p^T,  A_p[i] = a[i*sai + p*sap],  B_p[j] = b[p*ldb + j]
 *
 * A is read row-major (sap == 1) or transposed (sai == 1); B is always row-major (P x N), so a product with
 * a transposed B needs a transposed copy of it. */
#ifndef CNN_KERNELS_GEMM_H
#define CNN_KERNELS_GEMM_H

/* The GEMM on the calling thread (sai == 1 or sap == 1). With AVX-512 a register-blocked kernel of 6 rows x
 * 64 columns that reads A and B in place, without packing: at the study's shapes it runs at about
 * 265 GFLOP/s on one Zen 4 core (AMD EPYC), against about 105 for OpenBLAS 0.3.21's AVX2 (Haswell) kernels
 * and 175 for its AVX-512 ones. Elsewhere cblas_sgemm. Every C element sums its P products in a fixed order,
 * so results do not depend on the thread count. */
void cnn_gemm(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb, float *c,
              long ldc, int accumulate);

/* The same with A gathered through offset tables: A_p[i] = a[ri[i] + po[p]]. With ri = the pixel table and
 * po = the tap table of cnn_conv_gather_tables, A is the patch matrix of (padded) images read in place: no
 * im2col. Fast only where cnn_gemm_gathers() (AVX-512); elsewhere plain loops. */
void cnn_gemm_gather(int M, int N, int P, const float *a, const int *ri, const int *po, const float *b,
                     long ldb, float *c, long ldc, int accumulate);
int cnn_gemm_gathers(void);

/* 1 when cnn_gemm may run inside OpenMP loops: always with AVX-512 (no BLAS involved), else when OpenBLAS
 * is built on OpenMP (it then runs such calls on the calling thread). Otherwise the callers' loops run one
 * iteration after another and each BLAS call uses every thread. */
int cnn_gemm_nests(void);

/* Called by cnn_gemm_parallel for rows [first, first + count) of C once they are final, on the thread that
 * computed them (while they are still in its cache): the place for a bias and an activation, or any other
 * work split by the same rows, without a parallel region of its own. Calls may run concurrently. */
typedef void (*cnn_gemm_rows_fn)(void *arg, int first, int count);

/* cnn_gemm on every thread: C's rows in blocks (cnn_gemm_block_rows), each computed by one thread and then
 * handed to `after` (may be NULL). An element's sum does not depend on the block it falls in, and the blocks
 * depend on the shape alone, so results are bit-identical for any thread count. Without AVX-512, one
 * cblas_sgemm on all threads, then `after` block by block. Call it outside parallel regions. */
void cnn_gemm_parallel(int M, int N, int P, const float *a, long sai, long sap, const float *b, long ldb,
                       float *c, long ldc, int accumulate, cnn_gemm_rows_fn after, void *arg);
/* Rows per block of cnn_gemm_parallel for rows of N x P multiply-adds: 24 (a multiple of the kernel's 6-row
 * tile, small enough to balance the threads), more when such a block would be too little work to schedule. */
int cnn_gemm_block_rows(int N, int P);
/* 1 when cnn_gemm_parallel's results do not depend on the thread count (the AVX-512 kernel); 0 when it is
 * BLAS's threaded sgemm, whose split of the work may. */
int cnn_gemm_parallel_exact(void);

#endif
