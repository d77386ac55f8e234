/* The tile transforms of kernels/winograd.h compiled with the Makefile's ISA_AVX512 flags. */
#define CNN_WINO_TILES cnn_wino_tiles_avx512
#include "kernels/winograd.inc"
