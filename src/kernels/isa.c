/* Choosing the kernel path; see isa.h. */
#include "kernels/isa.h"

#include "kernels/loops.h"

#include <stdlib.h>
#include <string.h>

#include "cnnlab.h"
#include "core/error.h"

static const char *const LABELS[CNN_ISA_COUNT] = {"generic", "avx2", "avx512"};

/* What each path's files are compiled for (the Makefile's ISA_AVX2 and ISA_AVX512). */
static const char *const NEEDS[CNN_ISA_COUNT] = {"", "AVX2 and FMA", "AVX-512 F, BW, DQ and VL"};

/* -1 until the first call chooses; every thread that races to choose computes the same value. */
static int g_isa = -1;

int cnn_isa_supported(cnn_isa isa)
{
    /* __builtin_cpu_supports also checks that the operating system saves the wider registers (XGETBV). */
    __builtin_cpu_init();
    switch (isa) {
    case CNN_ISA_GENERIC:
        return 1;
    case CNN_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CNN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               cnn_isa_supported(CNN_ISA_AVX2);
    default:
        return 0;
    }
}

int cnn_isa_list(cnn_isa *out)
{
    int k = 0;
    for (int i = 0; i < CNN_ISA_COUNT; i++)
        if (cnn_isa_supported((cnn_isa)i)) out[k++] = (cnn_isa)i;
    return k;
}

const char *cnn_isa_label(cnn_isa isa)
{
    return isa >= 0 && isa < CNN_ISA_COUNT ? LABELS[isa] : "?";
}

static cnn_isa best(void)
{
    for (int i = CNN_ISA_COUNT - 1; i > 0; i--)
        if (cnn_isa_supported((cnn_isa)i)) return (cnn_isa)i;
    return CNN_ISA_GENERIC;
}

int cnn_isa_use(cnn_isa isa)
{
    if (isa < 0 || isa >= CNN_ISA_COUNT) return cnn_fail(CNN_ERR_INVALID, "unknown kernel path %d", (int)isa);
    if (!cnn_isa_supported(isa))
        return cnn_fail(CNN_ERR_INVALID,
                        "kernel path '%s' needs %s, which this CPU lacks (best path here: '%s')", LABELS[isa],
                        NEEDS[isa], LABELS[best()]);
    __atomic_store_n(&g_isa, (int)isa, __ATOMIC_RELAXED);
    return CNN_OK;
}

/* The path a name asks for: "auto" (or NULL) the best; the error names the accepted values. */
static int parse(const char *name, cnn_isa *isa)
{
    if (!name || !strcmp(name, "auto")) {
        *isa = best();
        return CNN_OK;
    }
    for (int i = 0; i < CNN_ISA_COUNT; i++)
        if (!strcmp(name, LABELS[i])) {
            *isa = (cnn_isa)i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_INVALID, "unknown kernel path '%s' (expected auto, avx512, avx2 or generic)",
                    name);
}

int cnn_set_isa(const char *name)
{
    const char *env = name ? NULL : getenv("CNNLAB_ISA");
    cnn_isa isa = CNN_ISA_GENERIC;
    int rc = parse(name ? name : env && *env ? env : NULL, &isa);
    if (!rc) rc = cnn_isa_use(isa);
    if (rc && env) cnn_fail_context("CNNLAB_ISA=%s: ", env);
    return rc;
}

cnn_isa cnn_isa_current(void)
{
    const int isa = __atomic_load_n(&g_isa, __ATOMIC_RELAXED);
    if (isa >= 0) return (cnn_isa)isa;
    if (!cnn_set_isa(NULL)) return (cnn_isa)__atomic_load_n(&g_isa, __ATOMIC_RELAXED);
    /* An unusable CNNLAB_ISA: the kernels still need a path, and cnn_isa_check reports the error (the CLI
     * checks at start-up, the layers that run kernels when they are built). */
    return best();
}

int cnn_isa_check(void)
{
    return __atomic_load_n(&g_isa, __ATOMIC_RELAXED) >= 0 ? CNN_OK : cnn_set_isa(NULL);
}

const char *cnn_isa_name(void)
{
    return LABELS[cnn_isa_current()];
}

const cnn_loops *cnn_loops_current(void)
{
    static const cnn_loops *const LOOPS[CNN_ISA_COUNT] = {&cnn_loops_generic, &cnn_loops_avx2,
                                                          &cnn_loops_avx512};
    return LOOPS[cnn_isa_current()];
}
