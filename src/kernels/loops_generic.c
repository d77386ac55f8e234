/* The loops of kernels/loops.h compiled with the baseline. */
#define CNN_LOOPS cnn_loops_generic
#include "kernels/loops.inc"
