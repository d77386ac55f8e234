/* Fixed little-endian layouts for binary sections (a checkpoint's record, a fit backup's progress): written
 * field by field, so a file means the same on every host whatever its padding and byte order. */
#ifndef CNN_CORE_BYTES_H
#define CNN_CORE_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

/* The low `bytes` bytes of v, least significant first. */
void cnn_put_le(cnn_strbuf *b, uint64_t v, int bytes);
/* A signed 32-bit value (two's complement) and a double (its IEEE-754 bits). */
void cnn_put_i32(cnn_strbuf *b, int32_t v);
void cnn_put_f64(cnn_strbuf *b, double v);

/* A bounded reader over one section; path names the file in error messages. */
typedef struct cnn_bytes_reader {
    const uint8_t *p;
    size_t len, pos;
    const char *path;
} cnn_bytes_reader;

/* Each reads one field or fails with CNN_ERR_FORMAT "PATH: SECTION truncated while reading WHAT" (section:
 * the caller's name for the section, e.g. "fit state"); on failure *v is left as it was. */
int cnn_take_le(cnn_bytes_reader *r, int bytes, uint64_t *v, const char *section, const char *what);
int cnn_take_i32(cnn_bytes_reader *r, int32_t *v, const char *section, const char *what);
int cnn_take_f64(cnn_bytes_reader *r, double *v, const char *section, const char *what);
int cnn_take_bytes(cnn_bytes_reader *r, void *out, size_t n, const char *section, const char *what);

#endif
