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

/* pairs[o] = (a16[o], a16[o + step]), low half first, for o < n - step: the pair image of
 * cnn_gemm_gather_bf16. */
void cnn_bf16_pair_image(const uint16_t *a16, size_t n, long step, uint32_t *pairs);

/* The whole product of g (every p) in BF16, on the calling thread. */
void cnn_gemm_bf16_avx512(const cnn_gemm_args *g);
/* The peak loop of gemm_kernels.h with vdpbf16ps: each round is CNN_PEAK_CHAINS * 2 * 32 FLOP. */
float cnn_peak_bf16_avx512(long steps);

#endif
