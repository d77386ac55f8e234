/* The tile transforms of kernels/winograd.h compiled with the Makefile's baseline flags. */
#define CNN_WINO_TILES cnn_wino_tiles_generic
#include "kernels/winograd.inc"
