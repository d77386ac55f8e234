/* The loops of kernels/loops.h compiled with the Makefile's ISA_AVX512 flags. */
#define CNN_LOOPS cnn_loops_avx512
#include "kernels/loops.inc"
