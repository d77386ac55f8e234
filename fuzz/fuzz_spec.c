/* libFuzzer harness: the spec parser (which also builds the model and checks the fit line and callbacks,
 * with pretrained bases left at random weights: nothing is read from disk). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnnlab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cnn_spec *s = cnn_spec_parse(text, "fuzz.spec");
    if (s) {
        int h, w, c;
        cnn_spec_input_shape(s, &h, &w, &c);
        (void)cnn_spec_name(s);
        cnn_spec_free(s);
    }
    free(text);
    return 0;
}
