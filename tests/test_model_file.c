/* Saved-model files: round trip, the documented byte format, and every kind of damage giving a clear error
 * (never a crash: the truncation and bit-flip sweeps run under ASan in CI). Crafted files are assembled here
 * from their parts with an independent writer, and their CRC recomputed with zlib so that the check under
 * test, not the checksum, is what fires. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util.h"

/* ------------------------------------------------------------------ byte buffers */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_le(bytes *b, uint64_t v, int n)
{
    uint8_t buf[8];
    for (int i = 0; i < n; i++) buf[i] = (uint8_t)(v >> (8 * i));
    put(b, buf, (size_t)n);
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_crc(bytes *b)
{
    put_le(b, (uint32_t)crc32(0L, b->p, (uInt)b->len), 4);
}

static bytes read_all(const char *path)
{
    bytes b = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) put(&b, buf, k);
    assert_int_equal(fclose(f), 0);
    return b;
}

static void write_bytes(const char *path, const void *p, size_t len)
{
    tu_write(path, p, len);
}

/* ------------------------------------------------------------------ the format, read and written
 * independently */

typedef struct tensor {
    char name[64];
    uint8_t dtype, rank;
    uint32_t dims[4];
    const uint8_t *data; /* little-endian float32 values */
    size_t nbytes;
} tensor;

typedef struct parsed {
    bytes file;
    const char *arch;
    size_t arch_len;
    tensor t[8];
    int nt;
} parsed;

/* Reads a file exactly as the header comment of src/io/model_file.c describes it, asserting every field. */
static parsed parse_file(const char *path)
{
    parsed f = {.file = read_all(path)};
    const uint8_t *p = f.file.p;
    size_t len = f.file.len, pos = 12;
    assert_true(len > 28);
    assert_memory_equal(p, "CNNLAB\r\n", 8);
    assert_int_equal(get_le(p + 8, 4), 1);
    assert_int_equal(get_le(p + len - 4, 4), (uint32_t)crc32(0L, p, (uInt)(len - 4)));
    assert_memory_equal(p + len - 16, "END!", 4);
    assert_int_equal(get_le(p + len - 12, 8), 0);
    assert_memory_equal(p + pos, "ARCH", 4);
    f.arch_len = (size_t)get_le(p + pos + 4, 8);
    f.arch = (const char *)p + pos + 12;
    pos += 12 + f.arch_len;
    assert_memory_equal(p + pos, "TENS", 4);
    const size_t tens_end = pos + 12 + (size_t)get_le(p + pos + 4, 8);
    pos += 12;
    f.nt = (int)get_le(p + pos, 4);
    assert_true(f.nt <= 8);
    pos += 4;
    for (int i = 0; i < f.nt; i++) {
        tensor *t = &f.t[i];
        size_t nlen = (size_t)get_le(p + pos, 2);
        assert_true(nlen < sizeof t->name);
        memcpy(t->name, p + pos + 2, nlen);
        pos += 2 + nlen;
        t->dtype = p[pos++];
        t->rank = p[pos++];
        size_t count = 1;
        for (int d = 0; d < t->rank; d++, pos += 4) count *= t->dims[d] = (uint32_t)get_le(p + pos, 4);
        t->data = p + pos;
        t->nbytes = 4 * count;
        pos += t->nbytes;
    }
    assert_int_equal(pos, tens_end);
    assert_int_equal(pos, len - 16);
    return f;
}

static void put_section(bytes *b, const char tag[4], const void *payload, size_t len)
{
    put(b, tag, 4);
    put_le(b, len, 8);
    put(b, payload, len);
}

static void put_tensor(bytes *b, const tensor *t)
{
    put_le(b, strlen(t->name), 2);
    put(b, t->name, strlen(t->name));
    put_le(b, t->dtype, 1);
    put_le(b, t->rank, 1);
    for (int d = 0; d < t->rank; d++) put_le(b, t->dims[d], 4);
    put(b, t->data, t->nbytes);
}

static bytes tensors_payload(const tensor *t, int n, uint32_t count)
{
    bytes b = {0};
    put_le(&b, count, 4);
    for (int i = 0; i < n; i++) put_tensor(&b, &t[i]);
    return b;
}

static bytes file_header(uint32_t version)
{
    bytes b = {0};
    put(&b, "CNNLAB\r\n", 8);
    put_le(&b, version, 4);
    return b;
}

static void file_end(bytes *b)
{
    put_section(b, "END!", NULL, 0);
    put_crc(b);
}

/* A whole file: header, ARCH (arch), TENS (t[0..n), count as stated), END!, CRC. */
static bytes make_file(uint32_t version, const char *arch, const tensor *t, int n, uint32_t count)
{
    bytes b = file_header(version), tens = tensors_payload(t, n, count);
    put_section(&b, "ARCH", arch, strlen(arch));
    put_section(&b, "TENS", tens.p, tens.len);
    file_end(&b);
    free(tens.p);
    return b;
}

/* ------------------------------------------------------------------ the model under test */

/* "tiny net": 2x2x1 -> Flatten -> Dense(3, relu, L2, frozen) -> Dense(2, softmax): 12 + 3 + 6 + 2 = 23
 * params. */
static cnn_model *tiny_model(uint64_t seed)
{
    cnn_model *m = cnn_model_create("tiny net", 2, 2, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Flatten", "name=flat"), 0);
    assert_int_equal(
        cnn_model_add(m, "Dense", "units=3, activation=relu, kernel_regularizer=l2(0.01), name=hidden"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "name=out, units=2, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, seed), 0);
    assert_int_equal(cnn_model_set_trainable(m, "hidden", 0), 0);
    return m;
}

static const char *const TINY_ARCH =
    "model \"tiny net\"\n"
    "input 2 2 1\n"
    "layer Flatten name=\"flat\", trainable=1\n"
    "layer Dense name=\"hidden\", trainable=0, units=3, activation=relu, kernel_regularizer=l2(0.01)\n"
    "layer Dense name=\"out\", trainable=1, units=2, activation=softmax\n";

static char *summary_text(const cnn_model *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cnn_model_summary(m, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static const float X[3 * 4] = {0.1f, 0.9f, 0.4f, 0.2f, 1.0f, 0.0f, 0.5f, 0.5f, 0.3f, 0.7f, 0.8f, 0.6f};

/* Saves a tiny model to name; returns its path. */
static const char *saved_tiny(const char *name)
{
    const char *path = tu_path(name);
    cnn_model *m = tiny_model(42);
    assert_int_equal(cnn_model_save(m, path), 0);
    cnn_model_free(m);
    return path;
}

/* Asserts that loading path fails with code and a message holding the fragment (and the path). */
static void assert_load_fails(const char *path, int code, const char *fragment)
{
    cnn_model *m = cnn_model_load(path);
    if (m) fail_msg("%s loaded although it should fail with \"%s\"", path, fragment);
    tu_assert_error(cnn_errcode(), code, fragment);
    tu_assert_error(cnn_errcode(), code, path);
}

static void assert_bytes_fail(const bytes *b, int code, const char *fragment)
{
    const char *path = tu_path("crafted.cnn");
    write_bytes(path, b->p, b->len);
    assert_load_fails(path, code, fragment);
}

/* ------------------------------------------------------------------ tests */

static void test_round_trip(void **state)
{
    (void)state;
    const char *path = tu_path("round.cnn");
    cnn_model *a = tiny_model(42);
    assert_int_equal(cnn_model_save(a, path), 0);
    cnn_model *b = cnn_model_load(path);
    if (!b) fail_msg("load failed: %s", cnn_errmsg());
    assert_string_equal(cnn_model_name(b), "tiny net");
    assert_int_equal(cnn_model_num_layers(b), 3);
    assert_int_equal(cnn_model_num_params(b, 0), 23);
    assert_int_equal(cnn_model_num_params(b, 1), 8); /* the frozen layer stays frozen */
    assert_int_equal(cnn_model_num_outputs(b), 2);
    assert_memory_equal(cnn_model_params(a), cnn_model_params(b), 23 * sizeof(float));

    float pa[3 * 2], pb[3 * 2];
    assert_int_equal(cnn_model_predict(a, X, 3, 2, pa), 0);
    assert_int_equal(cnn_model_predict(b, X, 3, 2, pb), 0);
    assert_memory_equal(pa, pb, sizeof pa);

    char *sa = summary_text(a), *sb = summary_text(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);

    /* The regulariser came back too: the same regularised loss. */
    int32_t y[3] = {0, 1, 1};
    cnn_dataset ds = {.x = (float *)X, .y = y, .n = 3, .h = 2, .w = 2, .c = 1, .num_classes = 2};
    double la, lb, acc;
    assert_int_equal(cnn_model_evaluate(a, &ds, 3, &la, &acc), 0);
    assert_int_equal(cnn_model_evaluate(b, &ds, 3, &lb, &acc), 0);
    assert_true(la == lb);

    /* Saving the loaded model reproduces the file byte for byte. */
    const char *again = tu_path("round2.cnn");
    assert_int_equal(cnn_model_save(b, again), 0);
    bytes fa = read_all(path), fb = read_all(again);
    assert_int_equal(fa.len, fb.len);
    assert_memory_equal(fa.p, fb.p, fa.len);
    free(fa.p);
    free(fb.p);
    cnn_model_free(a);
    cnn_model_free(b);
}

/* The file is what the format comment says, and a file written by this test's own writer loads. */
static void test_documented_format(void **state)
{
    (void)state;
    const char *path = saved_tiny("format.cnn");
    parsed f = parse_file(path);
    assert_int_equal(f.arch_len, strlen(TINY_ARCH));
    assert_memory_equal(f.arch, TINY_ARCH, f.arch_len);
    static const struct {
        const char *name;
        int rank, d0, d1;
    } want[4] = {
        {"hidden/kernel", 2, 4, 3}, {"hidden/bias", 1, 3, 0}, {"out/kernel", 2, 3, 2}, {"out/bias", 1, 2, 0}};
    assert_int_equal(f.nt, 4);
    cnn_model *m = tiny_model(42);
    const uint8_t *params = (const uint8_t *)cnn_model_params(m);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(f.t[i].name, want[i].name);
        assert_int_equal(f.t[i].dtype, 1);
        assert_int_equal(f.t[i].rank, want[i].rank);
        assert_int_equal(f.t[i].dims[0], want[i].d0);
        if (want[i].rank == 2) assert_int_equal(f.t[i].dims[1], want[i].d1);
        assert_memory_equal(f.t[i].data, params, f.t[i].nbytes); /* float32 in model order */
        params += f.t[i].nbytes;
    }

    bytes b = make_file(1, TINY_ARCH, f.t, 4, 4);
    assert_int_equal(b.len, f.file.len);
    assert_memory_equal(b.p, f.file.p, b.len);

    /* Tensors may come in any order. */
    tensor swapped[4] = {f.t[3], f.t[1], f.t[2], f.t[0]};
    bytes c = make_file(1, TINY_ARCH, swapped, 4, 4);
    write_bytes(tu_path("swapped.cnn"), c.p, c.len);
    cnn_model *l = cnn_model_load(tu_path("swapped.cnn"));
    if (!l) fail_msg("%s", cnn_errmsg());
    assert_memory_equal(cnn_model_params(l), cnn_model_params(m), 23 * sizeof(float));
    cnn_model_free(l);
    cnn_model_free(m);
    free(b.p);
    free(c.p);
    free(f.file.p);
}

/* Cut at every length: the checksum (or, when too short to hold one, the length check) rejects each one. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    bytes full = read_all(saved_tiny("full.cnn"));
    const char *path = tu_path("cut.cnn");
    for (size_t n = 0; n < full.len; n++) {
        write_bytes(path, full.p, n);
        cnn_model *m = cnn_model_load(path);
        if (m) fail_msg("loaded a file cut to %zu of %zu bytes", n, full.len);
        /* Cut after (part of) the magic: truncated, not "magic missing". */
        const char *want = n == 0 ? "not a cnnlab model file" : n < 28 ? "truncated: " : "checksum mismatch";
        if (cnn_errcode() != CNN_ERR_FORMAT || !strstr(cnn_errmsg(), want))
            fail_msg("cut to %zu bytes: status %d, \"%s\" (expected \"%s\")", n, cnn_errcode(), cnn_errmsg(),
                     want);
    }
    free(full.p);
}

/* Cut at every length and re-sealed with a valid CRC, so the section parser itself meets the short data. */
static void test_truncated_with_valid_crc(void **state)
{
    (void)state;
    bytes full = read_all(saved_tiny("full2.cnn"));
    const char *path = tu_path("cut2.cnn");
    for (size_t n = 24; n < full.len - 4; n++) {
        bytes b = {0};
        put(&b, full.p, n);
        put_crc(&b);
        write_bytes(path, b.p, b.len);
        free(b.p);
        cnn_model *m = cnn_model_load(path);
        if (m) fail_msg("loaded a file cut to %zu bytes and re-sealed", n);
        const char *msg = cnn_errmsg();
        int explained = strstr(msg, "truncated") || strstr(msg, "runs past the end") ||
                        strstr(msg, "not a cnnlab model file") || strstr(msg, "architecture") ||
                        strstr(msg, "bytes after the end marker");
        if (cnn_errcode() != CNN_ERR_FORMAT || !explained || !strstr(msg, path))
            fail_msg("cut to %zu bytes: status %d, \"%s\"", n, cnn_errcode(), msg);
    }
    free(full.p);
}

/* Every single flipped bit is caught: in the magic by the magic check, anywhere else by the CRC. */
static void test_flipped_bits_everywhere(void **state)
{
    (void)state;
    bytes full = read_all(saved_tiny("flip.cnn"));
    const char *path = tu_path("flipped.cnn");
    for (size_t i = 0; i < full.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            full.p[i] ^= (uint8_t)(1u << bit);
            write_bytes(path, full.p, full.len);
            full.p[i] ^= (uint8_t)(1u << bit);
            cnn_model *m = cnn_model_load(path);
            if (m) fail_msg("loaded a file with bit %d of byte %zu flipped", bit, i);
            const char *want = i < 8 ? "not a cnnlab model file" : "checksum mismatch";
            if (cnn_errcode() != CNN_ERR_FORMAT || !strstr(cnn_errmsg(), want))
                fail_msg("byte %zu: \"%s\" (expected \"%s\")", i, cnn_errmsg(), want);
        }
    }
    free(full.p);
}

static void test_magic_and_version(void **state)
{
    (void)state;
    bytes b = read_all(saved_tiny("magic.cnn"));
    /* Text-mode damage (CR LF -> LF) shifts the magic. */
    bytes crlf = {0};
    put(&crlf, "CNNLAB\n", 7);
    put(&crlf, b.p + 8, b.len - 8);
    assert_bytes_fail(&crlf, CNN_ERR_FORMAT, "offset 0: not a cnnlab model file");
    memcpy(b.p, "PK\3\4", 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "not a cnnlab model file");
    memcpy(b.p, "CNNLAB\r\n", 8);

    b.p[8] = 2; /* version 2, CRC recomputed so the version check is what fires */
    b.len -= 4;
    put_crc(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "offset 8: format version 2, this cnnlab reads version 1");
    free(crlf.p);
    free(b.p);
}

static void test_tensor_damage(void **state)
{
    (void)state;
    parsed f = parse_file(saved_tiny("tensors.cnn"));
    tensor t[5];
    memcpy(t, f.t, sizeof(tensor) * 4);
    bytes b;

    b = make_file(1, TINY_ARCH, t, 3, 3); /* out/bias left out */
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'out/bias' is missing");
    free(b.p);

    t[4] = t[3];
    snprintf(t[4].name, sizeof t[4].name, "out/gamma");
    b = make_file(1, TINY_ARCH, t, 5, 5);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'out/gamma' does not belong to the saved architecture");
    free(b.p);

    t[4] = t[1];
    b = make_file(1, TINY_ARCH, t, 5, 5);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'hidden/bias' is stored twice");
    free(b.p);

    /* A kernel of (3, 4) instead of (4, 3): the same byte count, the wrong shape. */
    t[0].dims[0] = 3;
    t[0].dims[1] = 4;
    b = make_file(1, TINY_ARCH, t, 4, 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'hidden/kernel': dimension 0 is 3, expected 4");
    free(b.p);
    t[0] = f.t[0];

    t[1].rank = 2; /* hidden/bias as (3, 1) */
    t[1].dims[1] = 1;
    b = make_file(1, TINY_ARCH, t, 4, 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'hidden/bias': rank 2, expected 1");
    free(b.p);
    t[1] = f.t[1];

    t[2].dtype = 2;
    b = make_file(1, TINY_ARCH, t, 4, 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor 'out/kernel': dtype 2, expected 1 (float32)");
    free(b.p);
    t[2] = f.t[2];

    t[3].nbytes -= 4; /* out/bias one value short (the section ends with it) */
    b = make_file(1, TINY_ARCH, t, 4, 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "truncated while reading tensor data");
    free(b.p);
    t[3] = f.t[3];

    b = make_file(1, TINY_ARCH, t, 4, 5); /* the count promises a fifth tensor */
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "truncated while reading a tensor name length");
    free(b.p);

    bytes tens = tensors_payload(t, 4, 4), bad = file_header(1);
    put(&tens, "\0\0\0\0", 4); /* stray bytes inside the TENS section */
    put_section(&bad, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    put_section(&bad, "TENS", tens.p, tens.len);
    file_end(&bad);
    assert_bytes_fail(&bad, CNN_ERR_FORMAT, "4 stray bytes after the tensors");
    free(bad.p);
    free(tens.p);

    snprintf(t[0].name, sizeof t[0].name, "%s", "");
    b = make_file(1, TINY_ARCH, t, 4, 4);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "bad tensor name length 0");
    free(b.p);
    free(f.file.p);
}

static void test_architecture_damage(void **state)
{
    (void)state;
    parsed f = parse_file(saved_tiny("arch.cnn"));
    static const struct {
        const char *arch, *fragment;
    } cases[] = {
        {"model \"tiny net\"\ninput 2 2 1\nlayer Flatten name=\"flat\"\nlayer Dense2 name=\"hidden\", "
         "units=3\n"
         "layer Dense name=\"out\", units=2\n",
         "architecture line 4: unknown layer type 'Dense2' (did you mean 'Dense'?)"},
        {"model \"tiny net\"\ninput 2 2 1\nlayer Flatten name=\"flat\"\nlayer Dense name=\"hidden\", "
         "units=3, "
         "colour=red\nlayer Dense name=\"out\", units=2\n",
         "architecture line 4: "},
        {"model \"tiny net\"\nlayer Flatten\n", "architecture line 2: expected 'input H W C'"},
        {"model \"tiny net\"\ninput 0 2 1\nlayer Flatten\n", "architecture line 2: "},
        {"model \"tiny net\"\ninput 2 2 1\nFlatten\n", "architecture line 3: expected 'layer TYPE OPTIONS'"},
        {"model \"tiny net\"\ninput 2 2 1\n", "architecture has no layers"},
        {"", "architecture has no layers"},
        /* A kernel of another shape than the stored tensor: units=4 makes hidden/kernel (4, 4). */
        {"model \"tiny net\"\ninput 2 2 1\nlayer Flatten name=\"flat\"\nlayer Dense name=\"hidden\", "
         "units=4\n"
         "layer Dense name=\"out\", units=2\n",
         "tensor 'hidden/kernel': dimension 1 is 3, expected 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = make_file(1, cases[i].arch, f.t, 4, 4);
        assert_bytes_fail(&b, CNN_ERR_FORMAT, cases[i].fragment);
        free(b.p);
    }
    /* A layer error keeps its own status and message after the file context. */
    bytes b = make_file(1, cases[1].arch, f.t, 4, 4);
    write_bytes(tu_path("colour.cnn"), b.p, b.len);
    assert_null(cnn_model_load(tu_path("colour.cnn")));
    assert_non_null(strstr(cnn_errmsg(), "colour"));
    free(b.p);

    bytes nul = file_header(1), tens = tensors_payload(f.t, 4, 4);
    put_section(&nul, "ARCH", "model \"x\"\0input 2 2 1\n", 22);
    put_section(&nul, "TENS", tens.p, tens.len);
    file_end(&nul);
    assert_bytes_fail(&nul, CNN_ERR_FORMAT, "architecture text contains a NUL byte");
    free(nul.p);
    free(tens.p);
    free(f.file.p);
}

static void test_section_damage(void **state)
{
    (void)state;
    parsed f = parse_file(saved_tiny("sections.cnn"));
    bytes tens = tensors_payload(f.t, 4, 4), b;

    /* An unknown section is skipped (later versions may add some). */
    b = file_header(1);
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    put_section(&b, "FUTR", "future", 6);
    put_section(&b, "TENS", tens.p, tens.len);
    file_end(&b);
    write_bytes(tu_path("future.cnn"), b.p, b.len);
    cnn_model *m = cnn_model_load(tu_path("future.cnn"));
    if (!m) fail_msg("%s", cnn_errmsg());
    cnn_model_free(m);
    free(b.p);

    b = file_header(1);
    put_section(&b, "TENS", tens.p, tens.len);
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "offset 12: section out of order");
    free(b.p);

    b = file_header(1);
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "no architecture section");
    free(b.p);

    /* Without its tensors a model must not load with made-up parameters. */
    b = file_header(1);
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "tensor section");
    free(b.p);

    b = file_header(1);
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    put_section(&b, "TENS", tens.p, tens.len);
    put_section(&b, "TENS", tens.p, tens.len);
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "section out of order");
    free(b.p);

    b = file_header(1);
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    put_section(&b, "TENS", tens.p, tens.len);
    put_section(&b, "END!", NULL, 0);
    put(&b, "junk", 4);
    put_crc(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "bytes after the end marker");
    free(b.p);

    b = file_header(1); /* a section length far past the end */
    put(&b, "ARCH", 4);
    put_le(&b, UINT64_MAX, 8);
    put(&b, TINY_ARCH, strlen(TINY_ARCH));
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT,
                      "offset 12: section of 18446744073709551615 bytes runs past the end");
    free(b.p);

    b = file_header(1); /* a tensor count of 2^32 - 1 */
    put_section(&b, "ARCH", TINY_ARCH, strlen(TINY_ARCH));
    bytes huge = tensors_payload(f.t, 4, UINT32_MAX);
    put_section(&b, "TENS", huge.p, huge.len);
    file_end(&b);
    assert_bytes_fail(&b, CNN_ERR_FORMAT, "truncated");
    free(huge.p);
    free(b.p);
    free(tens.p);
    free(f.file.p);
}

static void test_not_files(void **state)
{
    (void)state;
    const char *empty = tu_path("empty.cnn");
    write_bytes(empty, "", 0);
    assert_load_fails(empty, CNN_ERR_FORMAT, "not a cnnlab model file");
    assert_load_fails(tu_path("no-such.cnn"), CNN_ERR_IO, "no-such.cnn: cannot open");
    assert_load_fails(tu_tmpdir(), CNN_ERR_IO, "not a regular file");
    const char *text = tu_path("notes.txt");
    write_bytes(text, "hello, this is not a model at all\n", 34);
    assert_load_fails(text, CNN_ERR_FORMAT, "not a cnnlab model file");
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

static void test_atomic_save(void **state)
{
    (void)state;
    const char *path = tu_path("atomic.cnn");
    cnn_model *a = tiny_model(1), *b = tiny_model(2);
    assert_memory_not_equal(cnn_model_params(a), cnn_model_params(b), 23 * sizeof(float));
    assert_int_equal(cnn_model_save(a, path), 0);
    assert_int_equal(cnn_model_save(b, path), 0); /* replaces the file */
    cnn_model *l = cnn_model_load(path);
    assert_non_null(l);
    assert_memory_equal(cnn_model_params(l), cnn_model_params(b), 23 * sizeof(float));
    cnn_model_free(l);

    /* A plain fopen's permissions, not mkstemp's 0600. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);

    tu_assert_error(cnn_model_save(a, tu_path("no/such/folder/m.cnn")), CNN_ERR_IO, "no/such/folder/m.cnn");
    assert_true(strstr(cnn_errmsg(), "No such file or directory") != NULL);
    /* The target is a folder: refused before any temporary file is made. */
    const char *dir = tu_path("a-folder.cnn");
    assert_int_equal(mkdir(dir, 0777), 0);
    tu_assert_error(cnn_model_save(a, dir), CNN_ERR_IO, "(a folder); not replaced");
    assert_int_equal(count_temp_files(tu_tmpdir()), 0);

    cnn_model *unbuilt = cnn_model_create("unbuilt", 2, 2, 1);
    assert_int_equal(cnn_model_add(unbuilt, "Flatten", NULL), 0);
    tu_assert_error(cnn_model_save(unbuilt, path), CNN_ERR_STATE, "build it before saving");
    cnn_model_free(unbuilt);
    cnn_model_free(a);
    cnn_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_documented_format),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_truncated_with_valid_crc),
        cmocka_unit_test(test_flipped_bits_everywhere),
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_tensor_damage),
        cmocka_unit_test(test_architecture_damage),
        cmocka_unit_test(test_section_damage),
        cmocka_unit_test(test_not_files),
        cmocka_unit_test(test_atomic_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
