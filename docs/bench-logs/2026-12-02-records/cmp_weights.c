/* Compares two cnnlab model files tensor by tensor: max |a - b| / max |a| per tensor, and the worst tensor.
 * The measure of docs/scaling.md and tests/test_mpi.c's weights_gap. Build from the repository root:
 *   cc -O2 -fopenmp -Iinclude docs/bench-logs/2026-12-02-records/cmp_weights.c build/libcnnlab.a -o /tmp/cmp_weights \
 *      -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 \
 *      -lz -lm -lcairo -lfontconfig -lfreetype -lzip -lprotobuf-c
 * Usage: cmp_weights A/model.cnn B/model.cnn */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cnnlab.h"

int main(int argc, char **argv)
{
    if (argc != 3) return fprintf(stderr, "usage: cmp_weights A.cnn B.cnn\n"), 2;
    cnn_model *a = cnn_model_load(argv[1]), *b = cnn_model_load(argv[2]);
    if (!a || !b) return printf("%s\n", cnn_errmsg()), 1;
    if (cnn_model_num_tensors(a) != cnn_model_num_tensors(b)) return printf("different tensor counts\n"), 1;
    double worst = 0;
    char worst_name[96] = "";
    for (int i = 0; i < cnn_model_num_tensors(a); i++) {
        cnn_tensor ta, tb;
        cnn_model_tensor(a, i, &ta);
        cnn_model_tensor(b, i, &tb);
        double d = 0, s = 0;
        for (size_t j = 0; j < ta.size; j++) {
            d = fmax(d, fabs((double)ta.data[j] - tb.data[j]));
            s = fmax(s, fabs((double)ta.data[j]));
        }
        double rel = s > 0 ? d / s : 0;
        printf("%-28s %.3g\n", ta.name, rel);
        if (rel > worst) worst = rel, snprintf(worst_name, sizeof worst_name, "%s", ta.name);
    }
    printf("worst %.3g (%s)\n", worst, worst_name);
    cnn_model_free(a);
    cnn_model_free(b);
    return 0;
}
