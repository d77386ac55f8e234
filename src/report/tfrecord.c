/* TFRecord files: event files are written whole from memory (atomically) and checked record by record. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "report/tfevents.h"
#include "tensorboard.pb-c.h"

int cnn_mkdirs(const char *dir)
{
    char d[4096];
    if (snprintf(d, sizeof d, "%s", dir) >= (int)sizeof d)
        return cnn_fail(CNN_ERR_IO, "%s: path too long", dir);
    for (char *p = d + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(d, 0777) && errno != EEXIST)
            return cnn_fail(CNN_ERR_IO, "cannot create folder %s: %s", d, strerror(errno));
        if (!(*p = c)) return CNN_OK;
    }
}

static int grow(cnn_tb_file *f, size_t more)
{
    if (f->len + more <= f->cap) return CNN_OK;
    size_t cap = f->cap ? f->cap : 4096;
    while (cap < f->len + more) cap *= 2;
    unsigned char *p = realloc(f->buf, cap);
    if (!p) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", f->path);
    f->buf = p;
    f->cap = cap;
    return CNN_OK;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int cnn_tb_append(cnn_tb_file *f, const void *data, size_t len)
{
    int rc = grow(f, len + 16);
    if (rc) return rc;
    unsigned char *p = f->buf + f->len;
    put_le(p, len, 8);
    put_le(p + 8, cnn_crc32c_masked(p, 8), 4);
    memcpy(p + 12, data, len);
    put_le(p + 12 + len, cnn_crc32c_masked(data, len), 4);
    f->len += len + 16;
    return CNN_OK;
}

static int append_version(cnn_tb_file *f)
{
    Cnnlab__Tb__Event ev = CNNLAB__TB__EVENT__INIT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev.wall_time = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    ev.what_case = CNNLAB__TB__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    unsigned char buf[64];
    size_t n = cnnlab__tb__event__pack(&ev, buf);
    return cnn_tb_append(f, buf, n);
}

int cnn_tb_open(cnn_tb_file *f, const char *dir, int n)
{
    memset(f, 0, sizeof *f);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    int rc = cnn_mkdirs(dir);
    if (rc) return rc;
    if (snprintf(f->path, sizeof f->path, "%s/events.out.tfevents.%ld.%s.%ld.%d.v2", dir, (long)time(NULL),
                 host, (long)getpid(), n) >= (int)sizeof f->path)
        return cnn_fail(CNN_ERR_IO, "%s: path too long", dir);
    return append_version(f);
}

int cnn_tb_flush(const cnn_tb_file *f)
{
    return cnn_write_file_atomic(f->path, f->buf, f->len);
}

void cnn_tb_close(cnn_tb_file *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* One record at *off of the file's len bytes: its framing and both checksums. */
static int check_record(const char *path, const unsigned char *d, size_t len, size_t *off, int k)
{
    size_t o = *off;
    if (len - o < 12)
        return cnn_fail(CNN_ERR_FORMAT, "%s: record %d at offset %zu: %zu bytes left, a header needs 12",
                        path, k, o, len - o);
    uint64_t n = get_le(d + o, 8);
    if (get_le(d + o + 8, 4) != cnn_crc32c_masked(d + o, 8))
        return cnn_fail(CNN_ERR_FORMAT, "%s: record %d at offset %zu: length checksum mismatch", path, k, o);
    if (n > len - o - 12 || len - o - 12 - n < 4)
        return cnn_fail(CNN_ERR_FORMAT, "%s: record %d at offset %zu: length %llu runs past the end", path, k,
                        o, (unsigned long long)n);
    if (get_le(d + o + 12 + n, 4) != cnn_crc32c_masked(d + o + 12, (size_t)n))
        return cnn_fail(CNN_ERR_FORMAT, "%s: record %d at offset %zu: data checksum mismatch", path, k, o);
    *off = o + 16 + (size_t)n;
    return CNN_OK;
}

static int read_all(const char *path, unsigned char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 65536, n = 0, k;
    unsigned char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += k;
        unsigned char *p = n == cap ? realloc(buf, cap *= 2) : buf;
        if (!p) free(buf);
        buf = p;
    }
    int err = buf && ferror(fp);
    fclose(fp);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    if (err) return free(buf), cnn_fail(CNN_ERR_IO, "%s: read error", path);
    *data = buf;
    *len = n;
    return CNN_OK;
}

int cnn_tfrecord_check(const char *path, int *records)
{
    unsigned char *d = NULL;
    size_t len = 0, off = 0;
    int rc = read_all(path, &d, &len), k = 0;
    if (rc) return rc;
    while (!rc && off < len) rc = check_record(path, d, len, &off, k++);
    if (!rc && records) *records = k;
    free(d);
    return rc;
}
