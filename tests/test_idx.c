/* IDX reading, dataset loading, splitting and slicing. */
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/idx.h"

#define N_IMG 5
#define ROWS  4
#define COLS  3
#define PIX   (N_IMG * ROWS * COLS)

static const uint8_t k_labels[N_IMG] = {0, 3, 9, 1, 2};

static uint8_t pixel(int i)
{
    return (uint8_t)(i * 7 % 256);
}

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* Builds an IDX file in buf: magic, dims, then len payload bytes; returns its size. */
static size_t make_idx(uint8_t *buf, uint32_t magic, const uint32_t *dims, int ndims, const uint8_t *payload,
                       size_t len)
{
    size_t off = put_be32(buf, magic);
    for (int i = 0; i < ndims; i++) off += put_be32(buf + off, dims[i]);
    if (len) memcpy(buf + off, payload, len);
    return off + len;
}

/* A valid 5-image 4x3 file (header 16 bytes + 60 payload bytes). */
static size_t make_images(uint8_t *buf)
{
    uint8_t px[PIX];
    for (int i = 0; i < PIX; i++) px[i] = pixel(i);
    const uint32_t dims[3] = {N_IMG, ROWS, COLS};
    return make_idx(buf, 0x803, dims, 3, px, PIX);
}

/* A valid 5-label file (header 8 bytes + 5 payload bytes). */
static size_t make_labels(uint8_t *buf)
{
    const uint32_t dims[1] = {N_IMG};
    return make_idx(buf, 0x801, dims, 1, k_labels, N_IMG);
}

static void write_file(const char *path, const uint8_t *buf, size_t len, int gz)
{
    if (gz)
        tu_write_gz(path, buf, len);
    else
        tu_write(path, buf, len);
}

/* Writes the standard pair under the given names; gz selects compression per file. */
static void write_pair(const char *images, int images_gz, const char *labels, int labels_gz)
{
    uint8_t buf[256];
    write_file(images, buf, make_images(buf), images_gz);
    write_file(labels, buf, make_labels(buf), labels_gz);
}

static void assert_zeroed(const cnn_dataset *ds)
{
    assert_null(ds->x);
    assert_null(ds->bytes);
    assert_null(ds->y);
    assert_int_equal(ds->n, 0);
    assert_int_equal(ds->h, 0);
    assert_int_equal(ds->w, 0);
    assert_int_equal(ds->c, 0);
    assert_int_equal(ds->num_classes, 0);
}

/* Loads a pair expecting failure with status code and message fragments, and an untouched output. */
static void expect_load_error(const char *images, const char *labels, int code, const char *frag1,
                              const char *frag2)
{
    cnn_dataset ds;
    memset(&ds, 0xAB, sizeof ds);
    int rc = cnn_dataset_load_idx(&ds, images, labels);
    tu_assert_error(rc, code, frag1);
    if (frag2) tu_assert_error(rc, code, frag2);
    assert_zeroed(&ds);
}

/* Every image of ds as floats (freed by the caller). */
static float *images_of(const cnn_dataset *ds)
{
    float *x = malloc(sizeof(float) * (size_t)ds->n * ds->h * ds->w * ds->c);
    assert_non_null(x);
    assert_int_equal(cnn_dataset_images(ds, 0, ds->n, x), 0);
    return x;
}

static void check_synthetic(const cnn_dataset *ds)
{
    assert_int_equal(ds->n, N_IMG);
    assert_int_equal(ds->h, ROWS);
    assert_int_equal(ds->w, COLS);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->num_classes, 10);
    for (int i = 0; i < N_IMG; i++) assert_int_equal(ds->y[i], k_labels[i]);
    /* the pixels stay bytes (a quarter of the memory) and read as Keras's x / 255 */
    assert_null(ds->x);
    assert_true(ds->divisor == 255.0f);
    float *x = images_of(ds);
    for (int i = 0; i < PIX; i++) {
        assert_int_equal(ds->bytes[i], pixel(i));
        assert_true(x[i] == (float)pixel(i) / 255.0f);
    }
    free(x);
}

static void round_trip(int images_gz, int labels_gz)
{
    const char *img = tu_path("rt-images"), *lab = tu_path("rt-labels");
    write_pair(img, images_gz, lab, labels_gz);
    cnn_dataset ds;
    assert_int_equal(cnn_dataset_load_idx(&ds, img, lab), 0);
    check_synthetic(&ds);
    cnn_dataset_free(&ds);
    assert_zeroed(&ds);
}

static void test_round_trip_plain(void **state)
{
    (void)state;
    round_trip(0, 0);
}

static void test_round_trip_gz(void **state)
{
    (void)state;
    round_trip(1, 1);
}

static void test_round_trip_mixed(void **state)
{
    (void)state;
    round_trip(1, 0);
    round_trip(0, 1);
}

static void test_idx_reader_reports_gzip(void **state)
{
    (void)state;
    const char *img = tu_path("kind-images"), *lab = tu_path("kind-labels");
    write_pair(img, 1, lab, 0);
    cnn_idx x;
    assert_int_equal(cnn_idx_read(img, CNN_IDX_IMAGES, &x), 0);
    assert_int_equal(x.gzip, 1);
    assert_int_equal(x.ndims, 3);
    assert_int_equal(x.size, PIX);
    cnn_idx_free(&x);
    assert_int_equal(cnn_idx_read(lab, CNN_IDX_LABELS, &x), 0);
    assert_int_equal(x.gzip, 0);
    assert_int_equal(x.dims[0], N_IMG);
    cnn_idx_free(&x);
    cnn_idx_free(NULL);
}

/* Expected values are Keras's x.astype('float32') / 255; multiplying by 1/255 differs for 3 and 127. */
static void test_pixel_scaling_exact(void **state)
{
    (void)state;
    const uint8_t px[6] = {0, 1, 3, 127, 128, 255};
    const float want[6] = {0.0f, 0x1.010102p-8f, 0x1.818182p-7f, 0x1.fdfdfep-2f, 0x1.010102p-1f, 1.0f};
    const uint32_t dims[3] = {1, 2, 3}, ldims[1] = {1};
    uint8_t buf[64], label = 4;
    const char *img = tu_path("scale-images"), *lab = tu_path("scale-labels");
    tu_write(img, buf, make_idx(buf, 0x803, dims, 3, px, 6));
    tu_write(lab, buf, make_idx(buf, 0x801, ldims, 1, &label, 1));
    cnn_dataset ds;
    assert_int_equal(cnn_dataset_load_idx(&ds, img, lab), 0);
    float *x = images_of(&ds);
    for (int i = 0; i < 6; i++) {
        if (x[i] != want[i]) fail_msg("pixel %u: got %a, expected %a", px[i], x[i], want[i]);
    }
    free(x);
    assert_int_equal(ds.num_classes, 5);
    cnn_dataset_free(&ds);
}

static void test_truncated_images(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = make_images(buf);
    const char *img = tu_path("trunc-images"), *gz = tu_path("trunc-images.gz"),
               *lab = tu_path("trunc-labels");
    tu_write(img, buf, len - 10);
    tu_write_gz(gz, buf, len - 10);
    tu_write(lab, buf, make_labels(buf));
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "trunc-images: offset 66: data ends after 50 of the 60 data bytes",
                      "expected a file of 76 bytes");
    expect_load_error(gz, lab, CNN_ERR_FORMAT,
                      "trunc-images.gz: offset 66 (decompressed): data ends after 50",
                      "expected decompressed data of 76 bytes");
}

static void test_truncated_labels(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("tl-images"), *lab = tu_path("tl-labels"), *gz = tu_path("tl-labels.gz");
    tu_write(img, buf, make_images(buf));
    size_t len = make_labels(buf);
    tu_write(lab, buf, len - 2);
    tu_write_gz(gz, buf, len - 2);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "tl-labels: offset 11: data ends after 3 of the 5 data bytes",
                      "(5 labels)");
    expect_load_error(img, gz, CNN_ERR_FORMAT, "tl-labels.gz: offset 11 (decompressed)", "3 of the 5");
}

/* Header cut inside the dimension sizes, and inside the magic number. */
static void test_truncated_header(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("th-images"), *lab = tu_path("th-labels");
    tu_write(lab, buf, make_labels(buf));
    make_images(buf);
    tu_write(img, buf, 10);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "th-images: offset 10: header ends",
                      "expected 16 header bytes (magic and 3 dimension sizes)");
    tu_write(img, buf, 3);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "th-images: offset 3: data ends inside the magic number",
                      "0x00000803");
}

/* A gzip file cut short in its compressed stream, and one with damaged compressed data. */
static void test_broken_gzip(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = make_images(buf);
    const char *full = tu_path("bg-full.gz"), *lab = tu_path("bg-labels");
    tu_write_gz(full, buf, len);
    write_file(lab, buf, make_labels(buf), 0);
    FILE *f = fopen(full, "rb");
    assert_non_null(f);
    uint8_t gz[512];
    size_t glen = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(glen > 30 && glen < sizeof gz);

    const char *cut = tu_path("bg-cut.gz");
    tu_write(cut, gz, glen - 4); /* only the length trailer is missing: all data decompresses */
    expect_load_error(cut, lab, CNN_ERR_FORMAT, "bg-cut.gz: offset 76 (decompressed)", "truncated");
    tu_write(cut, gz, glen / 2);
    expect_load_error(cut, lab, CNN_ERR_FORMAT, "bg-cut.gz: offset", "cut short");

    const char *bad = tu_path("bg-bad.gz");
    gz[glen - 6] ^= 0xFF; /* the CRC */
    tu_write(bad, gz, glen);
    expect_load_error(bad, lab, CNN_ERR_FORMAT, "bg-bad.gz: offset", "(zlib: incorrect data check)");
}

static void test_wrong_magic(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("wm-images.gz"), *lab = tu_path("wm-labels");
    write_pair(img, 1, lab, 0);
    /* the files swapped */
    expect_load_error(
        lab, img, CNN_ERR_FORMAT,
        "wm-labels: offset 0: bad magic 0x00000801, expected 0x00000803 (IDX ubyte images, 3 dimensions)",
        "found an unsigned-byte IDX file with 1 dimension");
    expect_load_error(lab, lab, CNN_ERR_FORMAT, "wm-labels: offset 0: bad magic", NULL);
    /* float32 elements */
    const uint32_t dims[3] = {1, 1, 1};
    const uint8_t px[4] = {0};
    tu_write_gz(img, buf, make_idx(buf, 0x0D03, dims, 3, px, 4));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "wm-images.gz: offset 0 (decompressed): bad magic 0x00000D03",
                      "element type 0x0D (float32)");
    /* not IDX at all */
    tu_write(img, "hello, world\n", 13);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "wm-images.gz: offset 0: bad magic 0x68656C6C",
                      "do not start an IDX file");
}

static void test_wrong_dims_count(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("wd-images"), *lab = tu_path("wd-labels");
    const uint32_t dims[4] = {N_IMG, ROWS, COLS, 1};
    uint8_t px[PIX] = {0};
    tu_write(img, buf, make_idx(buf, 0x804, dims, 4, px, PIX));
    tu_write(lab, buf, make_labels(buf));
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "wd-images: offset 0: bad magic 0x00000804, expected 0x00000803", "with 4 dimensions");
    tu_write(img, buf, make_images(buf));
    tu_write(lab, buf, make_idx(buf, 0x802, dims, 2, px, N_IMG * ROWS));
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "wd-labels: offset 0: bad magic 0x00000802, expected 0x00000801",
                      "(IDX ubyte labels, 1 dimension)");
}

static void test_zero_dimension(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("zd-images"), *lab = tu_path("zd-labels");
    tu_write(lab, buf, make_labels(buf));
    const uint32_t rows0[3] = {N_IMG, 0, COLS}, count0[3] = {0, ROWS, COLS};
    tu_write(img, buf, make_idx(buf, 0x803, rows0, 3, NULL, 0));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "zd-images: offset 8: rows is 0, expected at least 1", NULL);
    tu_write(img, buf, make_idx(buf, 0x803, count0, 3, NULL, 0));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "zd-images: offset 4: image count is 0", NULL);
    const uint32_t zero[1] = {0};
    tu_write(img, buf, make_images(buf));
    tu_write_gz(lab, buf, make_idx(buf, 0x801, zero, 1, NULL, 0));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "zd-labels: offset 4 (decompressed): label count is 0", NULL);
}

/* Headers promising gigabytes must be refused before anything that size is allocated. */
static void test_absurd_dimension(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("ad-images"), *gz = tu_path("ad-images.gz"), *lab = tu_path("ad-labels");
    tu_write(lab, buf, make_labels(buf));
    const uint32_t huge[3] = {1u << 31, 28, 28};
    size_t len = make_idx(buf, 0x803, huge, 3, NULL, 0);
    tu_write(img, buf, len);
    tu_write_gz(gz, buf, len);
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "ad-images: offset 4: header promises 2147483648 x 28 x 28 images",
                      "more than the limit of 2147483647 data bytes");
    expect_load_error(gz, lab, CNN_ERR_FORMAT, "ad-images.gz: offset 4 (decompressed): header promises",
                      NULL);
    const uint32_t all[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    tu_write(img, buf, make_idx(buf, 0x803, all, 3, NULL, 0));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "4294967295 x 4294967295 x 4294967295", NULL);
    /* Within the limit but absent: the plain file is checked by size, the gzip one read as data arrives. */
    const uint32_t big[3] = {2000000, 32, 32};
    len = make_idx(buf, 0x803, big, 3, NULL, 0);
    tu_write(img, buf, len);
    tu_write_gz(gz, buf, len);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "ad-images: offset 16: data ends after 0 of the 2048000000",
                      NULL);
    expect_load_error(gz, lab, CNN_ERR_FORMAT, "ad-images.gz: offset 16 (decompressed): data ends after 0",
                      NULL);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t buf[256] = {0};
    size_t len = make_images(buf);
    const char *img = tu_path("tb-images"), *gz = tu_path("tb-images.gz"), *lab = tu_path("tb-labels");
    tu_write(img, buf, len + 3);
    tu_write_gz(gz, buf, len + 3);
    tu_write(lab, buf + 128, make_labels(buf + 128));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "tb-images: offset 76: 3 unexpected bytes after the data",
                      "promises a file of 76 bytes");
    expect_load_error(gz, lab, CNN_ERR_FORMAT, "tb-images.gz: offset 76 (decompressed): 3 unexpected bytes",
                      NULL);
    uint8_t *big = calloc(1, 20000);
    assert_non_null(big);
    memcpy(big, buf + 128, 13);
    tu_write_gz(lab, big, 20000);
    free(big);
    tu_write(img, buf, len);
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "tb-labels: offset 13 (decompressed): at least 4096 unexpected bytes", NULL);
}

static void test_empty_file(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("ef-images"), *lab = tu_path("ef-labels");
    tu_write(img, buf, make_images(buf));
    tu_write(lab, buf, 0);
    expect_load_error(img, lab, CNN_ERR_FORMAT, "ef-labels: offset 0: file is empty",
                      "expected the magic number 0x00000801");
    tu_write_gz(lab, buf, 0);
    expect_load_error(img, lab, CNN_ERR_FORMAT,
                      "ef-labels: offset 0 (decompressed): file decompresses to nothing", NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *lab = tu_path("mf-labels");
    tu_write(lab, buf, make_labels(buf));
    expect_load_error(tu_path("mf-nothing"), lab, CNN_ERR_IO,
                      "mf-nothing: cannot open: No such file or directory", NULL);
    expect_load_error(tu_tmpdir(), lab, CNN_ERR_IO, "not a regular file (a directory)", NULL);
}

static void test_count_mismatch(void **state)
{
    (void)state;
    uint8_t buf[256];
    const char *img = tu_path("cm-images"), *lab = tu_path("cm-labels.gz");
    tu_write(img, buf, make_images(buf));
    const uint32_t dims[1] = {N_IMG - 1};
    tu_write_gz(lab, buf, make_idx(buf, 0x801, dims, 1, k_labels, N_IMG - 1));
    expect_load_error(img, lab, CNN_ERR_FORMAT, "cm-labels.gz: offset 4 (decompressed): 4 labels, expected 5",
                      "cm-images");
}

static void test_null_arguments(void **state)
{
    (void)state;
    cnn_dataset ds, other;
    tu_assert_error(cnn_dataset_load_idx(NULL, "a", "b"), CNN_ERR_INVALID, "NULL");
    tu_assert_error(cnn_dataset_load_idx(&ds, NULL, "b"), CNN_ERR_INVALID, "NULL");
    assert_zeroed(&ds);
    tu_assert_error(cnn_dataset_load_dir(NULL, &ds, &other), CNN_ERR_INVALID, "NULL");
    tu_assert_error(cnn_dataset_load_dir("x", &ds, &ds), CNN_ERR_INVALID, "distinct");
    tu_assert_error(cnn_idx_read("x", CNN_IDX_IMAGES, NULL), CNN_ERR_INVALID, "NULL");
    /* Messages speak of what was being done, not of internal function names. */
    assert_null(strstr(cnn_errmsg(), "cnn_"));
    cnn_dataset_free(NULL);
}

static const char *make_subdir(const char *name)
{
    const char *dir = tu_path(name);
    assert_int_equal(mkdir(dir, 0700), 0);
    return dir;
}

static const char *in_dir(const char *dir, const char *name)
{
    static char slots[4][600];
    static int next;
    char *p = slots[next++ % 4];
    snprintf(p, sizeof slots[0], "%s/%s", dir, name);
    return p;
}

static void test_load_dir(void **state)
{
    (void)state;
    const char *dir = make_subdir("ld");
    write_pair(in_dir(dir, "train-images-idx3-ubyte.gz"), 1, in_dir(dir, "train-labels-idx1-ubyte"), 0);
    write_pair(in_dir(dir, "t10k-images-idx3-ubyte"), 0, in_dir(dir, "t10k-labels-idx1-ubyte.gz"), 1);
    /* The plain name wins over .gz: make the .gz twin unreadable garbage to prove it is not read. */
    tu_write(in_dir(dir, "t10k-images-idx3-ubyte.gz"), "junk", 4);
    cnn_dataset train, test;
    assert_int_equal(cnn_dataset_load_dir(dir, &train, &test), 0);
    check_synthetic(&train);
    check_synthetic(&test);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
    char slash[600];
    snprintf(slash, sizeof slash, "%s/", dir);
    assert_int_equal(cnn_dataset_load_dir(slash, &train, &test), 0);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
}

static void test_load_dir_missing(void **state)
{
    (void)state;
    const char *dir = make_subdir("ldm");
    write_pair(in_dir(dir, "train-images-idx3-ubyte"), 0, in_dir(dir, "train-labels-idx1-ubyte"), 0);
    write_pair(in_dir(dir, "t10k-images-idx3-ubyte.gz"), 1, in_dir(dir, "unrelated"), 0);
    cnn_dataset train, test;
    memset(&train, 0xAB, sizeof train);
    int rc = cnn_dataset_load_dir(dir, &train, &test);
    tu_assert_error(rc, CNN_ERR_IO, "ldm: neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz");
    assert_zeroed(&train);
    assert_zeroed(&test);
    tu_assert_error(cnn_dataset_load_dir(tu_path("no-such-dir"), &train, &test), CNN_ERR_IO,
                    "no-such-dir: neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz");
    /* A present but broken file is reported as such, not skipped for its .gz twin. */
    tu_write(in_dir(dir, "t10k-labels-idx1-ubyte"), "", 0);
    rc = cnn_dataset_load_dir(dir, &train, &test);
    tu_assert_error(rc, CNN_ERR_FORMAT, "t10k-labels-idx1-ubyte: offset 0: file is empty");
    assert_zeroed(&train);
    assert_zeroed(&test);
}

/* A dataset of n samples of 2x1x1 whose pixels and labels encode their index. */
static void make_seq(cnn_dataset *ds, int n)
{
    ds->x = malloc((size_t)n * 2 * sizeof *ds->x);
    ds->y = malloc((size_t)n * sizeof *ds->y);
    assert_non_null(ds->x);
    assert_non_null(ds->y);
    for (int i = 0; i < n; i++) {
        ds->x[2 * i] = (float)i;
        ds->x[2 * i + 1] = (float)-i;
        ds->y[i] = i % 3;
    }
    ds->n = n;
    ds->h = 2;
    ds->w = ds->c = 1;
    ds->num_classes = 7;
}

static void check_part(const cnn_dataset *part, int first, int n)
{
    assert_int_equal(part->n, n);
    assert_int_equal(part->h, 2);
    assert_int_equal(part->w, 1);
    assert_int_equal(part->c, 1);
    assert_int_equal(part->num_classes, 7);
    for (int i = 0; i < n; i++) {
        assert_true(part->x[2 * i] == (float)(first + i));
        assert_true(part->x[2 * i + 1] == (float)-(first + i));
        assert_int_equal(part->y[i], (first + i) % 3);
    }
}

static void test_split(void **state)
{
    (void)state;
    cnn_dataset src = {0}, train, val;
    make_seq(&src, 10);
    assert_int_equal(cnn_dataset_split(&src, 0.2, &train, &val), 0);
    check_part(&train, 0, 8);
    check_part(&val, 8, 2);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
    /* floor(10 * 0.75) = 7 */
    assert_int_equal(cnn_dataset_split(&src, 0.25, &train, &val), 0);
    check_part(&train, 0, 7);
    check_part(&val, 7, 3);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
    cnn_dataset_free(&src);
    /* Keras's 60000 * (1 - 0.2) */
    make_seq(&src, 60000);
    assert_int_equal(cnn_dataset_split(&src, 0.2, &train, &val), 0);
    assert_int_equal(train.n, 48000);
    check_part(&val, 48000, 12000);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
    cnn_dataset_free(&src);
}

static void test_split_bad_fraction(void **state)
{
    (void)state;
    cnn_dataset src = {0}, train, val;
    make_seq(&src, 5);
    const double bad[] = {0.0, 1.0, -0.1, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_assert_error(cnn_dataset_split(&src, bad[i], &train, &val), CNN_ERR_INVALID,
                        "expected a number in (0, 1)");
        assert_zeroed(&train);
        assert_zeroed(&val);
    }
    tu_assert_error(cnn_dataset_split(&src, 0.9, &train, &val), CNN_ERR_INVALID,
                    "leaves 0 for training and 5 for validation, expected both non-empty");
    tu_assert_error(cnn_dataset_split(&src, 1e-17, &train, &val), CNN_ERR_INVALID,
                    "leaves 5 for training and 0 for validation");
    assert_zeroed(&train);
    tu_assert_error(cnn_dataset_split(&src, 0.5, &src, &val), CNN_ERR_INVALID, "distinct");
    tu_assert_error(cnn_dataset_split(&src, 0.5, &train, &train), CNN_ERR_INVALID, "distinct");
    tu_assert_error(cnn_dataset_split(NULL, 0.5, &train, &val), CNN_ERR_INVALID, "NULL");
    cnn_dataset_free(&src);
    tu_assert_error(cnn_dataset_split(&src, 0.5, &train, &val), CNN_ERR_INVALID, "empty");
}

static void test_slice(void **state)
{
    (void)state;
    cnn_dataset src = {0}, dst;
    make_seq(&src, 10);
    assert_int_equal(cnn_dataset_slice(&src, 3, 4, &dst), 0);
    check_part(&dst, 3, 4);
    cnn_dataset_free(&dst);
    assert_int_equal(cnn_dataset_slice(&src, 0, 10, &dst), 0);
    check_part(&dst, 0, 10);
    cnn_dataset_free(&dst);
    assert_int_equal(cnn_dataset_slice(&src, 9, 1, &dst), 0);
    check_part(&dst, 9, 1);
    cnn_dataset_free(&dst);
    const int bad[][2] = {{-1, 2}, {0, 0}, {0, -3}, {9, 2}, {10, 1}, {2147483647, 2147483647}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_assert_error(cnn_dataset_slice(&src, bad[i][0], bad[i][1], &dst), CNN_ERR_INVALID,
                        "expected a non-empty range within [0, 10)");
        assert_zeroed(&dst);
    }
    tu_assert_error(cnn_dataset_slice(&src, 0, 1, &src), CNN_ERR_INVALID, "distinct");
    tu_assert_error(cnn_dataset_slice(&src, 0, 1, NULL), CNN_ERR_INVALID, "distinct");
    check_part(&src, 0, 10);
    cnn_dataset_free(&src);
}

/* A set held as bytes: slices stay bytes with the same divisor, images read as bytes / divisor, and a set
 * with both forms, or bytes with a divisor that is not a finite number > 0, is refused. */
static void test_byte_pixels(void **state)
{
    (void)state;
    uint8_t bytes[4 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
    int32_t y[4] = {0, 1, 2, 1};
    cnn_dataset src = {
        .bytes = bytes, .divisor = 5.0f, .y = y, .n = 4, .h = 1, .w = 3, .c = 1, .num_classes = 3};
    cnn_dataset dst;
    assert_int_equal(cnn_dataset_slice(&src, 1, 2, &dst), 0);
    assert_null(dst.x);
    assert_true(dst.divisor == 5.0f);
    assert_memory_equal(dst.bytes, bytes + 3, 6);
    assert_int_equal(dst.y[1], 2);
    float x[6];
    assert_int_equal(cnn_dataset_images(&dst, 0, 2, x), 0);
    for (int i = 0; i < 6; i++) assert_true(x[i] == (float)(3 + i) / 5.0f);
    cnn_dataset_free(&dst);
    assert_int_equal(cnn_dataset_images(&src, 3, 1, x), 0);
    assert_true(x[2] == 51.0f);
    tu_assert_error(cnn_dataset_images(&src, 3, 2, x), CNN_ERR_INVALID, "expected a range within [0, 4)");
    tu_assert_error(cnn_dataset_images(&src, 0, 1, NULL), CNN_ERR_INVALID, "NULL");
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        src.divisor = bad[i];
        tu_assert_error(cnn_dataset_images(&src, 0, 1, x), CNN_ERR_INVALID, "malformed");
        tu_assert_error(cnn_dataset_slice(&src, 0, 1, &dst), CNN_ERR_INVALID, "malformed");
    }
    src.divisor = 255.0f;
    src.x = x;
    tu_assert_error(cnn_dataset_slice(&src, 0, 1, &dst), CNN_ERR_INVALID, "malformed");
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(cnn_fashion_class_name(0), "T-shirt/top");
    assert_string_equal(cnn_fashion_class_name(1), "Trouser");
    assert_string_equal(cnn_fashion_class_name(6), "Shirt");
    assert_string_equal(cnn_fashion_class_name(9), "Ankle boot");
    assert_null(cnn_fashion_class_name(-1));
    assert_null(cnn_fashion_class_name(10));
}

static void check_fashion(const cnn_dataset *ds, int n)
{
    assert_int_equal(ds->n, n);
    assert_int_equal(ds->h, 28);
    assert_int_equal(ds->w, 28);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->num_classes, 10);
    int seen[10] = {0};
    for (int i = 0; i < n; i++) {
        assert_in_range(ds->y[i], 0, 9);
        seen[ds->y[i]]++;
    }
    for (int k = 0; k < 10; k++) assert_int_equal(seen[k], n / 10); /* Fashion-MNIST is balanced */
    /* bytes over 255: the last image reads back in [0, 1], and not blank */
    assert_null(ds->x);
    assert_true(ds->divisor == 255.0f);
    float x[28 * 28], sum = 0;
    assert_int_equal(cnn_dataset_images(ds, n - 1, 1, x), 0);
    for (int i = 0; i < 28 * 28; i++) {
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) fail_msg("pixel %d = %g", i, x[i]);
        sum += x[i];
    }
    assert_true(sum > 1.0f);
}

static void test_real_fashion_mnist(void **state)
{
    (void)state;
    struct stat st;
    if (stat(CNN_FASHION_MNIST_DIR, &st) != 0) {
        skip();
        return;
    }
    cnn_dataset train, test;
    if (cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &train, &test) != 0) fail_msg("%s", cnn_errmsg());
    check_fashion(&train, 60000);
    check_fashion(&test, 10000);
    assert_int_equal(train.y[0], 9); /* an ankle boot, as every Keras tutorial shows */
    assert_int_equal(test.y[0], 9);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_plain),
        cmocka_unit_test(test_round_trip_gz),
        cmocka_unit_test(test_round_trip_mixed),
        cmocka_unit_test(test_idx_reader_reports_gzip),
        cmocka_unit_test(test_pixel_scaling_exact),
        cmocka_unit_test(test_truncated_images),
        cmocka_unit_test(test_truncated_labels),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_broken_gzip),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_wrong_dims_count),
        cmocka_unit_test(test_zero_dimension),
        cmocka_unit_test(test_absurd_dimension),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_load_dir_missing),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_bad_fraction),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_byte_pixels),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
