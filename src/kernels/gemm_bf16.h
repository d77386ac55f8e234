/* The BF16 products of `--precision bf16` (kernels/gemm_bf16_avx512.c, run only where the CPU has
 * AVX512_BF16 and the AVX-512 path is in use).
 *
 * While on (cnn_gemm_bf16_set), every cnn_gemm and cnn_gemm_gather of gemm.h rounds A and B to BF16 (round to
 * nearest even, as vcvtneps2bf16: denormals become zeros) and accumulates the products in FP32: each C
 * element sums its P products in p blocks of at most CNN_GEMM_KC (the same split for every shape-equal call),
 * inside a block pair by pair (p = 2k, 2k+1) in ascending k into a zeroed FP32 accumulator (vdpbf16ps), and
 * adds the blocks to C in order. As in FP32, the result depends on the shapes alone: bit-identical for any
 * thread count. The layers keep FP32 everywhere else (weights, activations, gradients, the optimizer).
 * cnn_gemm_gather_bf16 (gemm.h) takes A's values rounded beforehand by cnn_bf16_round, once per value rather
 * than at every use: the same bits. */
#ifndef CNN_KERNELS_GEMM_BF16_H
#define CNN_KERNELS_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/gemm.h"
#include "kernels/gemm_kernels.h"

/* 1 when this CPU (and its operating system) can run the BF16 kernels: AVX512_BF16 and the AVX-512 path's
 * features. */
int cnn_bf16_supported(void);
/* CNN_OK when the BF16 products can run now: the CPU has AVX512_BF16 and the kernel path in use is avx512
 * (not forced to avx2 or generic by CNNLAB_ISA); else the error says which is missing. */
int cnn_bf16_check(void);
/* Turns the BF16 products on or off for the whole process (call it between products, never while one runs;
 * only after cnn_bf16_check succeeded). */
void cnn_gemm_bf16_set(int on);
int cnn_gemm_bf16_on(void);

/* y[i] = x[i] rounded to BF16 (round to nearest even, denormals to zero: vcvtneps2bf16, the rounding of the
 * products), for i < n: the operand of cnn_gemm_gather_bf16. Needs what cnn_bf16_check checks. */
void cnn_bf16_round(const float *x, size_t n, uint16_t *y);

/* B's values for many BF16 products, rounded and paired once (cnn_gemm_gather_bf16_paired): panels of
 * CNN_GEMM_PANEL columns, each holding the (P + 1) / 2 pair words (B_2k[j], B_2k+1[j]) of its columns (low
 * half first, zero past P), CNN_GEMM_PANEL words per pair; columns past N hold zeros. */
static inline size_t cnn_bf16_packed_words(int P, int N)
{
    return (size_t)((P + 1) / 2) * (size_t)((N + CNN_GEMM_PANEL - 1) / CNN_GEMM_PANEL * CNN_GEMM_PANEL);
}
/* Where pair word (k, j) goes: k < (P + 1) / 2, j < N. */
static inline size_t cnn_bf16_packed_at(int P, int k, int j)
{
    return (size_t)(j / CNN_GEMM_PANEL) * CNN_GEMM_PANEL * (size_t)((P + 1) / 2) +
           (size_t)k * CNN_GEMM_PANEL + (size_t)(j % CNN_GEMM_PANEL);
}
/* dst[j] = (x0[j], x1[j]) rounded to BF16 (as cnn_bf16_round), low half first, for j < n, and zeros from n to
 * the next multiple of 16; x1 NULL: zeros in the high halves. One row pair of cnn_bf16_packed_at's layout. */
void cnn_bf16_pairs(const float *x0, const float *x1, int n, uint32_t *dst);
/* packed <- B (P x N, rows ldb apart) in cnn_bf16_packed_at's layout, on the calling thread. */
void cnn_bf16_pack_b(int P, int N, const float *b, long ldb, uint32_t *packed);

/* pairs[o] = (a16[o], a16[o + step]), low half first, for o < n - step: the pair image of
 * cnn_gemm_gather_bf16. */
void cnn_bf16_pair_image(const uint16_t *a16, size_t n, long step, uint32_t *pairs);

/* The whole product of g (every p) in BF16, on the calling thread. */
void cnn_gemm_bf16_avx512(const cnn_gemm_args *g);
/* The peak loop of gemm_kernels.h with vdpbf16ps: each round is CNN_PEAK_CHAINS * 2 * 32 FLOP. */
float cnn_peak_bf16_avx512(long steps);

#endif
