/* libFuzzer harness: the IDX reader (plain and gzip) through cnn_dataset_load_idx, and the conversion of a
 * loaded set's first and last images to floats. The first byte picks images (even) or labels (odd); the rest
 * is the file. */
#include <stdint.h>
#include <stdlib.h>

#include "cnnlab.h"
#include "data/idx.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *path = fuzz_file(data + 1, size - 1);
    if (data[0] & 1) {
        cnn_idx labels;
        if (cnn_idx_read(path, CNN_IDX_LABELS, &labels) == 0) cnn_idx_free(&labels);
        return 0;
    }
    cnn_dataset ds;
    if (cnn_dataset_load_idx(&ds, path, NULL)) return 0;
    float *img = malloc(sizeof(float) * (size_t)ds.h * (size_t)ds.w * (size_t)ds.c);
    if (img && (cnn_dataset_images(&ds, 0, 1, img) || cnn_dataset_images(&ds, ds.n - 1, 1, img))) abort();
    free(img);
    cnn_dataset_free(&ds);
    return 0;
}
