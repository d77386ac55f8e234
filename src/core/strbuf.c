#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(cnn_strbuf *b, size_t extra)
{
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void cnn_strbuf_append(cnn_strbuf *b, const void *data, size_t len)
{
    if (reserve(b, len)) return;
    if (len) memcpy(b->data + b->len, data, len); /* data may be NULL when len is 0 */
    b->len += len;
    b->data[b->len] = '\0';
}

void cnn_strbuf_printf(cnn_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

void cnn_strbuf_free(cnn_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
