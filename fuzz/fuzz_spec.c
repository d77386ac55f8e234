/* libFuzzer harness: the spec parser, which checks the layers, shapes, optimizer, loss, fit line and
 * callbacks, and builds the model (pretrained bases left at random weights: nothing is read from disk).
 * Models of more than BUILD_BUDGET parameters are checked unbuilt (cnn_spec_parse_budget): building one
 * allocates and initialises every parameter and its optimizer slots (4 s for VGG16 under the sanitizers,
 * 140 ms for the study's Model_4), which held the harness to about 200 inputs a second. Small models, the
 * ones mutations mostly make, are still built, so the build's own checks stay covered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnlab.h"
#include "spec/spec.h"

enum { BUILD_BUDGET = 100000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cnn_spec *s = cnn_spec_parse_budget(text, "fuzz.spec", BUILD_BUDGET);
    if (s) {
        int h, w, c;
        cnn_spec_input_shape(s, &h, &w, &c);
        (void)cnn_spec_name(s);
        cnn_spec_free(s);
    }
    free(text);
    return 0;
}
