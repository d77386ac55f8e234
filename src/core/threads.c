/* One thread count for both OpenMP loops and OpenBLAS. BLAS is only ever called outside OpenMP regions, so
 * the two never run at once and threads x BLAS threads never exceeds the count asked for. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cnnlab.h"

void openblas_set_num_threads(int num_threads);

static int g_threads;

/* Physical cores: distinct (physical id, core id) pairs in /proc/cpuinfo; falls back to online CPUs. */
int cnn_physical_cores(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (!f) return online > 0 ? (int)online : 1;
    char line[256];
    int phys = 0, cores = 0, seen[1024][2];
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
        if (sscanf(line, "core id : %d", &v) == 1) {
            int dup = 0;
            for (int i = 0; i < cores; i++) dup |= seen[i][0] == phys && seen[i][1] == v;
            if (!dup && cores < 1024) seen[cores][0] = phys, seen[cores++][1] = v;
        }
    }
    fclose(f);
    if (cores == 0) return online > 0 ? (int)online : 1;
    return cores;
}

void cnn_set_threads(int threads)
{
    if (threads < 1) threads = cnn_physical_cores();
    g_threads = threads;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

int cnn_get_threads(void)
{
    return g_threads ? g_threads : omp_get_max_threads();
}
