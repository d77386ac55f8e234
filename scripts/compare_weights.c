/* compare_weights A.cnn B.cnn: whether two saved models hold the same weights, bit for bit.
 *
 * Loads both with cnn_model_load and compares their parameter buffers (cnn_model_params: every weight and
 * BatchNorm statistic) byte for byte; at the first differing value it names the tensor and layer holding it.
 * Exit status: 0 identical, 1 different, 2 a file could not be loaded or the models differ in shape. Used by
 * scripts/compare_weights.sh; public API only. */
#include <stdio.h>
#include <string.h>

#include "cnnlab.h"

/* The tensor of m whose data holds parameter index j, or -1. */
static int tensor_holding(cnn_model *m, size_t j, cnn_tensor *t)
{
    const float *p = cnn_model_params(m) + j;
    for (int i = 0; i < cnn_model_num_tensors(m); i++)
        if (cnn_model_tensor(m, i, t) == 0 && p >= t->data && p < t->data + t->size) return i;
    return -1;
}

static int same_shape(cnn_model *a, cnn_model *b)
{
    int n = cnn_model_num_tensors(a);
    if (n != cnn_model_num_tensors(b) || cnn_model_num_params(a, 0) != cnn_model_num_params(b, 0)) return 0;
    for (int i = 0; i < n; i++) {
        cnn_tensor ta, tb;
        if (cnn_model_tensor(a, i, &ta) || cnn_model_tensor(b, i, &tb)) return 0;
        if (strcmp(ta.name, tb.name) || ta.size != tb.size) return 0;
    }
    return 1;
}

static int compare(cnn_model *a, cnn_model *b)
{
    if (!same_shape(a, b)) {
        printf("the models differ in their tensors (names, count or sizes)\n");
        return 2;
    }
    size_t n = cnn_model_num_params(a, 0);
    const float *pa = cnn_model_params(a), *pb = cnn_model_params(b);
    if (memcmp(pa, pb, n * sizeof *pa) == 0) {
        printf("%d tensors, %zu values: identical\n", cnn_model_num_tensors(a), n);
        return 0;
    }
    size_t j = 0;
    while (memcmp(pa + j, pb + j, sizeof *pa) == 0) j++;
    cnn_tensor t;
    int i = tensor_holding(a, j, &t);
    if (i < 0)
        printf("first difference at parameter %zu (in no tensor): %.9g vs %.9g\n", j, pa[j], pb[j]);
    else
        printf("first differing tensor: %s (layer %s), element %td: %.9g vs %.9g\n", t.name,
               cnn_model_layer_name(a, t.layer), pa + j - t.data, pa[j], pb[j]);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: compare_weights A.cnn B.cnn\n");
        return 2;
    }
    cnn_model *a = cnn_model_load(argv[1]);
    if (!a) fprintf(stderr, "compare_weights: %s\n", cnn_errmsg());
    cnn_model *b = a ? cnn_model_load(argv[2]) : NULL;
    if (a && !b) fprintf(stderr, "compare_weights: %s\n", cnn_errmsg());
    int rc = a && b ? compare(a, b) : 2;
    cnn_model_free(a);
    cnn_model_free(b);
    return rc;
}
