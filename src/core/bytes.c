/* Little-endian fields into a buffer and back out of a bounded section. */
#include "core/bytes.h"

#include <string.h>

#include "core/error.h"

void cnn_put_le(cnn_strbuf *b, uint64_t v, int bytes)
{
    uint8_t buf[8];
    for (int i = 0; i < bytes; i++) buf[i] = (uint8_t)(v >> (8 * i));
    cnn_strbuf_append(b, buf, (size_t)bytes);
}

void cnn_put_i32(cnn_strbuf *b, int32_t v)
{
    cnn_put_le(b, (uint32_t)v, 4);
}

void cnn_put_f64(cnn_strbuf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    cnn_put_le(b, bits, 8);
}

int cnn_take_bytes(cnn_bytes_reader *r, void *out, size_t n, const char *section, const char *what)
{
    if (n > r->len - r->pos)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s truncated while reading %s (%zu bytes needed, %zu left)",
                        r->path, section, what, n, r->len - r->pos);
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return CNN_OK;
}

int cnn_take_le(cnn_bytes_reader *r, int bytes, uint64_t *v, const char *section, const char *what)
{
    uint8_t buf[8];
    int rc = cnn_take_bytes(r, buf, (size_t)bytes, section, what);
    if (rc) return rc;
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++) x |= (uint64_t)buf[i] << (8 * i);
    *v = x;
    return CNN_OK;
}

int cnn_take_i32(cnn_bytes_reader *r, int32_t *v, const char *section, const char *what)
{
    uint64_t x;
    int rc = cnn_take_le(r, 4, &x, section, what);
    if (!rc) *v = (int32_t)(uint32_t)x;
    return rc;
}

int cnn_take_f64(cnn_bytes_reader *r, double *v, const char *section, const char *what)
{
    uint64_t x;
    int rc = cnn_take_le(r, 8, &x, section, what);
    if (!rc) memcpy(v, &x, 8);
    return rc;
}
