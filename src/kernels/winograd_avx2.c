/* The tile transforms of kernels/winograd.h compiled with the Makefile's ISA_AVX2 flags. */
#define CNN_WINO_TILES cnn_wino_tiles_avx2
#include "kernels/winograd.inc"
