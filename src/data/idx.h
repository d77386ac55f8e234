/* IDX file reading (the MNIST / Fashion-MNIST container), plain or gzip-compressed. */
#ifndef CNN_DATA_IDX_H
#define CNN_DATA_IDX_H

#include <stddef.h>
#include <stdint.h>

/* The two IDX layouts cnnlab reads: unsigned-byte images (3 dimensions) and labels (1 dimension). */
typedef enum { CNN_IDX_IMAGES = 0, CNN_IDX_LABELS } cnn_idx_kind;

/* Largest payload accepted, so that a hostile header cannot make the reader allocate absurd amounts and
 * every element index fits an int. */
#define CNN_IDX_MAX_BYTES 2147483647u

typedef struct cnn_idx {
    uint8_t *data; /* the payload: size bytes, row-major */
    size_t size;
    int ndims;
    int dims[3]; /* each >= 1; their product is size */
    int gzip;    /* the file was gzip-compressed (offsets in messages are then decompressed ones) */
} cnn_idx;

/* Reads and validates one IDX file of the given kind. On failure out is zeroed and the error (naming
 * path, byte offset and what was expected) is recorded with cnn_fail. */
int cnn_idx_read(const char *path, cnn_idx_kind kind, cnn_idx *out);
/* Accepts NULL and zeroes the struct. */
void cnn_idx_free(cnn_idx *idx);

#endif
