/* The instruction-set path of the kernels: one of three builds of every kernel (kernels/gemm_*.c), each file
 * compiled with its own target flags, chosen once at run time from what the CPU has (cpuid), or forced by
 * CNNLAB_ISA. The rest of the library is compiled for the x86-64-v2 baseline and runs anywhere. */
#ifndef CNN_KERNELS_ISA_H
#define CNN_KERNELS_ISA_H

typedef enum { CNN_ISA_GENERIC = 0, CNN_ISA_AVX2 = 1, CNN_ISA_AVX512 = 2, CNN_ISA_COUNT = 3 } cnn_isa;

/* The path in use. The first call chooses it: CNNLAB_ISA when set and usable, else the best the CPU has. */
cnn_isa cnn_isa_current(void);
/* CNN_OK once a path is chosen; the error of an unusable CNNLAB_ISA (unknown name, or a path this CPU lacks)
 * while none is. */
int cnn_isa_check(void);
/* The paths this CPU can run, narrowest (generic) first, into out (CNN_ISA_COUNT slots); returns how many. */
int cnn_isa_list(cnn_isa *out);
/* 1 when this CPU (and its operating system) can run path isa. */
int cnn_isa_supported(cnn_isa isa);
/* "avx512", "avx2", "generic". */
const char *cnn_isa_label(cnn_isa isa);
/* Switches to path isa (tests run every path in one process); fails naming what the CPU lacks. Call it
 * between training steps, never while a kernel runs. */
int cnn_isa_use(cnn_isa isa);

#endif
