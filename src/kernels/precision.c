/* Whether the BF16 products can run, and the switch that turns them on; see gemm_bf16.h. */
#include <cpuid.h>

#include "cnnlab.h"
#include "core/error.h"
#include "kernels/gemm_bf16.h"
#include "kernels/isa.h"

static int g_bf16 = 0;

/* AVX512_BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5 (newer than what __builtin_cpu_supports knows in every
 * compiler this builds with). */
int cnn_bf16_supported(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5 & 1) && cnn_isa_supported(CNN_ISA_AVX512);
}

int cnn_bf16_check(void)
{
    if (!cnn_bf16_supported())
        return cnn_fail(
            CNN_ERR_INVALID,
            "precision 'bf16' needs a CPU with AVX512_BF16 (AMD Zen 4 or later, Intel Cooper Lake or "
            "Sapphire Rapids or later); this one lacks it: use precision 'fp32'");
    int rc = cnn_isa_check();
    if (rc) return rc;
    if (cnn_isa_current() != CNN_ISA_AVX512)
        return cnn_fail(CNN_ERR_INVALID,
                        "precision 'bf16' runs on the avx512 kernel path only, and the path in use is '%s' "
                        "(CNNLAB_ISA or cnn_set_isa): use precision 'fp32' or the avx512 path",
                        cnn_isa_name());
    return CNN_OK;
}

void cnn_gemm_bf16_set(int on)
{
    __atomic_store_n(&g_bf16, on ? 1 : 0, __ATOMIC_RELAXED);
}

int cnn_gemm_bf16_on(void)
{
    return __atomic_load_n(&g_bf16, __ATOMIC_RELAXED);
}
