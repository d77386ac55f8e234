#include "data/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"

/* What a file of each kind must look like, for validation and for the messages. */
typedef struct idx_format {
    uint32_t magic;
    int ndims;
    const char *desc;
    const char *noun; /* what the first dimension counts */
    const char *dim_names[3];
} idx_format;

static const idx_format k_formats[] = {
    [CNN_IDX_IMAGES] =
        {0x00000803u, 3, "IDX ubyte images, 3 dimensions", "images", {"image count", "rows", "columns"}},
    [CNN_IDX_LABELS] =
        {0x00000801u, 1, "IDX ubyte labels, 1 dimension", "labels", {"label count", NULL, NULL}},
};

enum { IDX_UBYTE = 0x08 };

#define GZ_BUFFER  (128u * 1024u)
#define READ_CHUNK (1u << 30) /* gzread takes an unsigned and returns an int */
/* Compressed payloads are read into a buffer that grows as data arrives, so that a small file whose header
 * promises gigabytes costs no more memory than it actually decompresses to. */
#define GROW_START  (1u << 20)
#define TRAIL_PROBE 4096u

typedef struct reader {
    const char *path;
    gzFile gz;
    int direct;         /* not gzip: the file size is the data size, known before reading */
    uint64_t file_size; /* on disk */
    uint64_t pos;       /* offset in the (decompressed) data */
    int cut_short;      /* zlib met the end of the file in the middle of the gzip stream */
} reader;

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Records "PATH: offset N: ..." ; for gzip files the offset counts decompressed bytes, and says so. */
static int fail_at(const reader *r, int code, uint64_t offset, const char *fmt, ...) CNN_PRINTF(4, 5);
static int fail_at(const reader *r, int code, uint64_t offset, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cnn_fail(code, "%s: offset %" PRIu64 "%s: %s%s", r->path, offset,
                    r->direct ? "" : " (decompressed)", what,
                    r->cut_short ? " (the gzip stream is cut short: the file is truncated)" : "");
}

static int reader_open(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->direct = 1;
    /* O_NONBLOCK so that naming a FIFO fails below instead of waiting forever for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cnn_fail(CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cnn_fail(CNN_ERR_IO, "%s: not a regular file%s", path,
                        S_ISDIR(st.st_mode) ? " (a directory)" : "");
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory setting up the reader", path);
    }
    gzbuffer(r->gz, GZ_BUFFER);
    r->direct = gzdirect(r->gz);
    r->file_size = (uint64_t)st.st_size;
    return 0;
}

static int read_error(const reader *r)
{
    int e = errno, err;
    const char *msg = gzerror(r->gz, &err);
    if (err == Z_ERRNO) return fail_at(r, CNN_ERR_IO, r->pos, "read failed: %s", strerror(e));
    if (err == Z_MEM_ERROR) return fail_at(r, CNN_ERR_NOMEM, r->pos, "out of memory decompressing");
    /* zlib prefixes its message with the name it knows the file by, "<fd:N>", which only confuses. */
    const char *colon = msg[0] == '<' ? strstr(msg, ": ") : NULL;
    return fail_at(r, CNN_ERR_FORMAT, r->pos, "corrupt gzip data at or after this point (zlib: %s)",
                   colon ? colon + 2 : msg);
}

/* Reads up to len bytes; *got falls short of len only at the end of the data. */
static int reader_read(reader *r, void *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < READ_CHUNK ? len - *got : READ_CHUNK;
        int n = gzread(r->gz, (uint8_t *)buf + *got, (unsigned)want);
        if (n < 0) return read_error(r);
        if (n == 0) break;
        *got += (size_t)n;
        r->pos += (uint64_t)n;
    }
    int err;
    gzerror(r->gz, &err);
    if (err == Z_BUF_ERROR) r->cut_short = 1;
    return 0;
}

static const char *type_name(int t)
{
    switch (t) {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "int16";
    case 0x0C:
        return "int32";
    case 0x0D:
        return "float32";
    case 0x0E:
        return "float64";
    default:
        return "unknown";
    }
}

/* Explains a wrong magic number, since the usual cause is a swapped or foreign file. */
static void describe_magic(const uint8_t *b, char *out, size_t cap)
{
    if (b[0] || b[1])
        snprintf(out, cap, "bytes that do not start an IDX file (its magic begins with two zero bytes)");
    else if (b[2] != IDX_UBYTE)
        snprintf(out, cap, "element type 0x%02X (%s), only 0x08 (unsigned byte) is supported", b[2],
                 type_name(b[2]));
    else
        snprintf(out, cap, "an unsigned-byte IDX file with %d dimension%s", b[3], b[3] == 1 ? "" : "s");
}

static int read_magic(reader *r, const idx_format *f)
{
    uint8_t b[4];
    size_t got;
    int rc = reader_read(r, b, sizeof b, &got);
    if (rc) return rc;
    if (got == 0)
        return fail_at(r, CNN_ERR_FORMAT, 0, "%s, expected the magic number 0x%08X (%s)",
                       r->direct ? "file is empty" : "file decompresses to nothing", f->magic, f->desc);
    if (got < sizeof b)
        return fail_at(r, CNN_ERR_FORMAT, got,
                       "data ends inside the magic number, expected 4 bytes (0x%08X, %s)", f->magic, f->desc);
    uint32_t magic = be32(b);
    if (magic != f->magic) {
        char found[128];
        describe_magic(b, found, sizeof found);
        return fail_at(r, CNN_ERR_FORMAT, 0, "bad magic 0x%08X, expected 0x%08X (%s); found %s", magic,
                       f->magic, f->desc, found);
    }
    return 0;
}

/* "5 x 28 x 28 images" */
static void describe_dims(const uint32_t *d, const idx_format *f, char *out, size_t cap)
{
    if (f->ndims == 3)
        snprintf(out, cap, "%" PRIu32 " x %" PRIu32 " x %" PRIu32 " %s", d[0], d[1], d[2], f->noun);
    else
        snprintf(out, cap, "%" PRIu32 " %s", d[0], f->noun);
}

static int check_dims(const reader *r, const idx_format *f, const uint32_t *d, cnn_idx *out)
{
    for (int i = 0; i < f->ndims; i++)
        if (d[i] == 0)
            return fail_at(r, CNN_ERR_FORMAT, 4 + 4 * (uint64_t)i, "%s is 0, expected at least 1",
                           f->dim_names[i]);
    uint64_t total = 1;
    for (int i = 0; i < f->ndims; i++) {
        if (d[i] > CNN_IDX_MAX_BYTES / total) {
            char dims[96];
            describe_dims(d, f, dims, sizeof dims);
            return fail_at(r, CNN_ERR_FORMAT, 4, "header promises %s, more than the limit of %u data bytes",
                           dims, CNN_IDX_MAX_BYTES);
        }
        total *= d[i];
    }
    out->ndims = f->ndims;
    for (int i = 0; i < f->ndims; i++) out->dims[i] = (int)d[i];
    out->size = (size_t)total;
    return 0;
}

static int read_dims(reader *r, const idx_format *f, cnn_idx *out)
{
    uint8_t b[12];
    size_t len = 4 * (size_t)f->ndims, got;
    int rc = reader_read(r, b, len, &got);
    if (rc) return rc;
    if (got < len)
        return fail_at(r, CNN_ERR_FORMAT, r->pos,
                       "header ends, expected %zu header bytes (magic and %d dimension sizes)", 4 + len,
                       f->ndims);
    uint32_t d[3] = {0, 0, 0};
    for (int i = 0; i < f->ndims; i++) d[i] = be32(b + 4 * i);
    return check_dims(r, f, d, out);
}

static void describe_idx(const cnn_idx *x, const idx_format *f, char *out, size_t cap)
{
    uint32_t d[3] = {0, 0, 0};
    for (int i = 0; i < x->ndims; i++) d[i] = (uint32_t)x->dims[i];
    describe_dims(d, f, out, cap);
}

static int fail_truncated(const reader *r, const idx_format *f, const cnn_idx *x, uint64_t header,
                          uint64_t end)
{
    char dims[96];
    describe_idx(x, f, dims, sizeof dims);
    return fail_at(r, CNN_ERR_FORMAT, end,
                   "data ends after %" PRIu64
                   " of the %zu data bytes the header promises (%s); expected %s of %" PRIu64 " bytes",
                   end - header, x->size, dims, r->direct ? "a file" : "decompressed data", header + x->size);
}

static int fail_trailing(const reader *r, const idx_format *f, const cnn_idx *x, uint64_t end, uint64_t extra,
                         int at_least)
{
    char dims[96];
    describe_idx(x, f, dims, sizeof dims);
    return fail_at(r, CNN_ERR_FORMAT, end,
                   "%s%" PRIu64 " unexpected bytes after the data; the header (%s) promises %s of %" PRIu64
                   " bytes",
                   at_least ? "at least " : "", extra, dims, r->direct ? "a file" : "decompressed data", end);
}

/* Plain files can be checked against the header before anything is allocated. */
static int check_plain_size(const reader *r, const idx_format *f, const cnn_idx *x)
{
    uint64_t end = r->pos + x->size;
    if (r->file_size < end) return fail_truncated(r, f, x, r->pos, r->file_size);
    if (r->file_size > end) return fail_trailing(r, f, x, end, r->file_size - end, 0);
    return 0;
}

/* Doubles the buffer up to limit; frees it and returns NULL when memory runs out. */
static uint8_t *grow(uint8_t *buf, size_t *cap, size_t limit)
{
    size_t ncap = *cap > limit / 2 ? limit : *cap * 2;
    uint8_t *p = realloc(buf, ncap);
    if (!p) free(buf);
    *cap = ncap;
    return p;
}

/* Reads the payload into a fresh x->data, which stays NULL when the data ends early. */
static int read_bytes(reader *r, cnn_idx *x)
{
    size_t cap = r->direct || x->size < GROW_START ? x->size : GROW_START, got = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) return fail_at(r, CNN_ERR_NOMEM, r->pos, "out of memory reading %zu data bytes", x->size);
        size_t n;
        int rc = reader_read(r, buf + got, cap - got, &n);
        got += n;
        if (rc || got < cap) {
            free(buf);
            return rc;
        }
        if (cap == x->size) break;
        buf = grow(buf, &cap, x->size);
    }
    x->data = buf;
    return 0;
}

static int read_payload(reader *r, const idx_format *f, cnn_idx *x)
{
    uint64_t header = r->pos;
    int rc = r->direct ? check_plain_size(r, f, x) : 0;
    if (rc) return rc;
    rc = read_bytes(r, x);
    if (rc) return rc;
    if (!x->data) return fail_truncated(r, f, x, header, r->pos);
    /* One more read both finds trailing bytes and makes zlib verify the gzip CRC and length. */
    uint8_t probe[TRAIL_PROBE];
    size_t n;
    rc = reader_read(r, probe, sizeof probe, &n);
    if (rc) return rc;
    if (n) return fail_trailing(r, f, x, header + x->size, n, n == sizeof probe);
    if (r->cut_short)
        return fail_at(r, CNN_ERR_FORMAT, r->pos,
                       "all data is present but the gzip trailer (CRC and length) is missing");
    return 0;
}

int cnn_idx_read(const char *path, cnn_idx_kind kind, cnn_idx *out)
{
    if (!out) return cnn_fail(CNN_ERR_INVALID, "IDX reader: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return cnn_fail(CNN_ERR_INVALID, "IDX reader: path is NULL");
    if (kind != CNN_IDX_IMAGES && kind != CNN_IDX_LABELS)
        return cnn_fail(CNN_ERR_INVALID, "IDX reader: unknown IDX kind %d", (int)kind);
    const idx_format *f = &k_formats[kind];
    reader r;
    int rc = reader_open(&r, path);
    if (rc) return rc;
    rc = read_magic(&r, f);
    if (!rc) rc = read_dims(&r, f, out);
    if (!rc) rc = read_payload(&r, f, out);
    gzclose(r.gz);
    if (rc)
        cnn_idx_free(out);
    else
        out->gzip = !r.direct;
    return rc;
}

void cnn_idx_free(cnn_idx *idx)
{
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
