/* Model files with one extra section of the caller's (a resumable fit's progress rides in one). */
#ifndef CNN_IO_MODEL_FILE_H
#define CNN_IO_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "cnnlab.h"

typedef struct cnn_model_extra {
    char tag[5];   /* four characters naming the section */
    uint8_t *data; /* on load: a copy the caller frees (NULL when the file has none) */
    size_t len;
} cnn_model_extra;

int cnn_model_save_extra(const cnn_model *m, const char *path, unsigned flags, const cnn_model_extra *extra);
cnn_model *cnn_model_load_extra(const char *path, cnn_model_extra *extra);

#endif
