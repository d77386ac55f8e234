/* The loops of kernels/loops.h compiled with the Makefile's ISA_AVX2 flags. */
#define CNN_LOOPS cnn_loops_avx2
#include "kernels/loops.inc"
