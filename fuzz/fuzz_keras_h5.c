/* libFuzzer harness: the Keras HDF5 weights loader (cnn_model_load_keras_weights). libhdf5 parses the file
 * in a forked child (src/io/isolate.c), because libhdf5 itself can crash or hang on hostile files; what is
 * fuzzed here is what the caller sees: whatever the bytes, the parent must not crash, and must get 0 or a
 * negative status with a message that names the file. A violation aborts, which libFuzzer reports as a crash.
 *
 * Coverage comes from the parent only (the pipe protocol, the decoding of the child's answer, the copy into
 * the model): libFuzzer's counters do not cross the fork, so mutations are guided by those paths, not by
 * libhdf5's. Every input costs a fork, so this harness runs at hundreds of inputs a second, not thousands.
 * The model is the VGG16-shaped one of the committed fixtures (tests/data/keras_h5/vgg_small*.h5, the seed
 * corpus), so that mutated files reach the per-dataset checks and the copy, not only the name lookup.
 * fuzz/fuzz_keras_h5.options raises libFuzzer's timeout above the loader's 60 s watchdog on a silent child,
 * so that a libhdf5 hang is seen as what the caller gets (a refusal), not as a timeout of the harness. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnlab.h"
#include "fuzz_file.h"

/* Keras's VGG16 base with the fixtures' small filter counts, at 32x32. */
static cnn_model *vgg_small(void)
{
    static const int filters[13] = {2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4}, blocks[5] = {2, 2, 3, 3, 3};
    cnn_model *m = cnn_model_create("vgg_small", 32, 32, 3);
    char opts[160];
    int rc = m ? CNN_OK : -1;
    for (int b = 0, k = 0; b < 5 && !rc; b++) {
        for (int c = 0; c < blocks[b] && !rc; c++, k++) {
            snprintf(opts, sizeof opts,
                     "filters=%d, kernel_size=3, padding=same, activation=relu, name=block%d_conv%d",
                     filters[k], b + 1, c + 1);
            rc = cnn_model_add(m, "Conv2D", opts);
        }
        snprintf(opts, sizeof opts, "pool_size=2, strides=2, name=block%d_pool", b + 1);
        if (!rc) rc = cnn_model_add(m, "MaxPooling2D", opts);
    }
    if (!rc) rc = cnn_model_build(m, 1);
    if (rc) {
        fprintf(stderr, "fuzz_keras_h5: cannot build the model: %s\n", cnn_errmsg());
        abort();
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cnn_model *m;
    if (!m) m = vgg_small();
    const char *path = fuzz_file(data, size);
    int rc = cnn_model_load_keras_weights(m, path);
    if (rc > 0 || (rc < 0 && !strstr(cnn_errmsg(), path))) {
        fprintf(stderr, "fuzz_keras_h5: status %d with message \"%s\" (expected 0, or < 0 naming %s)\n", rc,
                cnn_errmsg(), path);
        abort();
    }
    return 0;
}
