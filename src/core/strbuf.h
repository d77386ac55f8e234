/* A growable text buffer for building files before writing them atomically. */
#ifndef CNN_CORE_STRBUF_H
#define CNN_CORE_STRBUF_H

#include <stddef.h>

typedef struct cnn_strbuf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed; further appends are ignored */
} cnn_strbuf;

void cnn_strbuf_printf(cnn_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cnn_strbuf_append(cnn_strbuf *b, const void *data, size_t len);
void cnn_strbuf_free(cnn_strbuf *b);

#endif
