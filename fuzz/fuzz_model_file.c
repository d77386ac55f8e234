/* libFuzzer harness: the model-file reader (cnn_model_load). The input's last 4 bytes are replaced by the
 * CRC-32 of the rest, so that mutations reach the sections behind the checksum instead of stopping at it
 * (the checksum check itself is a single comparison). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cnnlab.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (size >= 4) {
        uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(size - 4));
        for (int i = 0; i < 4; i++) copy[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    cnn_model *m = cnn_model_load(fuzz_file(copy, size));
    if (m) {
        /* A loaded model must be usable: one forward pass over zeros. */
        int h, w, c;
        cnn_model_layer_shape(m, -1, &h, &w, &c);
        size_t in = (size_t)h * w * c;
        float *x = in <= (1u << 20) ? calloc(in, sizeof *x) : NULL;
        float *out = x ? malloc(sizeof *out * (size_t)cnn_model_num_outputs(m)) : NULL;
        if (out) (void)cnn_model_predict(m, x, 1, 1, out);
        free(x);
        free(out);
        cnn_model_free(m);
    }
    free(copy);
    return 0;
}
