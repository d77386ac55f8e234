/* TensorBoard event files: CRC-32C, TFRecord framing checked record by record, a corrupted file detected by
 * its checksum, and the callback's files after a real fit. With $TB_TEST_OUT set, the logs and the fit's
 * history.json are kept there for scripts/check_tensorboard.py (TensorBoard's own reader). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/tfevents.h"
#include "util.h"

static void test_crc32c(void **state)
{
    (void)state;
    /* The CRC-32C check value, and the instruction path against the table for every length and alignment. */
    assert_int_equal(cnn_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(cnn_crc32c_table(0, "123456789", 9), 0xe3069283u);
    unsigned char buf[100];
    for (int i = 0; i < 100; i++) buf[i] = (unsigned char)(i * 37 + 11);
    for (int off = 0; off < 8; off++)
        for (size_t len = 0; len + (size_t)off <= 100; len++)
            assert_int_equal(cnn_crc32c(0, buf + off, len), cnn_crc32c_table(0, buf + off, len));
    /* Continuing a CRC equals one pass over the concatenation. */
    assert_int_equal(cnn_crc32c(cnn_crc32c(0, buf, 40), buf + 40, 60), cnn_crc32c(0, buf, 100));
}

static void read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    *data = malloc(*len + 1);
    assert_int_equal(fread(*data, 1, *len, f), *len);
    fclose(f);
}

static void test_framing_and_corruption(void **state)
{
    (void)state;
    cnn_tb_file f;
    assert_int_equal(cnn_tb_open(&f, tu_path("frames"), 0), 0);
    assert_int_equal(cnn_tb_append(&f, "hello", 5), 0);
    assert_int_equal(cnn_tb_append(&f, "", 0), 0);
    assert_int_equal(cnn_tb_flush(&f), 0);
    int n = 0;
    assert_int_equal(cnn_tfrecord_check(f.path, &n), 0);
    assert_int_equal(n, 3);
    unsigned char *d;
    size_t len;
    read_file(f.path, &d, &len);
    /* One flipped bit in the second record's data: found by the data checksum, at that record's offset. */
    size_t second = len - 16 - 21;
    d[second + 12 + 2] ^= 4;
    tu_write(tu_path("bad1"), d, len);
    tu_assert_error(cnn_tfrecord_check(tu_path("bad1"), NULL), CNN_ERR_FORMAT, "record 1 at offset");
    tu_assert_error(cnn_tfrecord_check(tu_path("bad1"), NULL), CNN_ERR_FORMAT, "data checksum mismatch");
    d[second + 12 + 2] ^= 4;
    /* A damaged length, and a file cut short. */
    d[second] ^= 1;
    tu_write(tu_path("bad2"), d, len);
    tu_assert_error(cnn_tfrecord_check(tu_path("bad2"), NULL), CNN_ERR_FORMAT, "length checksum mismatch");
    d[second] ^= 1;
    tu_write(tu_path("bad3"), d, len - 3);
    tu_assert_error(cnn_tfrecord_check(tu_path("bad3"), NULL), CNN_ERR_FORMAT, "runs past the end");
    tu_write(tu_path("bad4"), d, 7);
    tu_assert_error(cnn_tfrecord_check(tu_path("bad4"), NULL), CNN_ERR_FORMAT, "a header needs 12");
    tu_assert_error(cnn_tfrecord_check(tu_path("missing"), NULL), CNN_ERR_IO, "missing");
    free(d);
    cnn_tb_close(&f);
}

/* A tiny convolutional classifier on a separable synthetic set (class = brighter half). */
static cnn_dataset make_data(int n, int seed)
{
    cnn_dataset d = {0};
    d.n = n, d.h = d.w = 6, d.c = 1, d.num_classes = 2;
    d.x = malloc(sizeof(float) * 36 * (size_t)n);
    d.y = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        d.y[i] = (i + seed) % 2;
        for (int p = 0; p < 36; p++)
            d.x[i * 36 + p] =
                (float)(((p % 6 < 3) == d.y[i] ? 0.7 : 0.2) + 0.1 * ((p * 7 + i * 3 + seed) % 5) / 5);
    }
    return d;
}

static const char *find_events(const char *dir, char *buf, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    buf[0] = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) snprintf(buf, size, "%s/%s", dir, e->d_name);
    closedir(d);
    assert_true(buf[0]);
    return buf;
}

static void test_callback_after_fit(void **state)
{
    (void)state;
    const char *keep = getenv("TB_TEST_OUT");
    char logs[600], path[700], hist[700], ev[1600];
    snprintf(logs, sizeof logs, "%s/tensorboard_tiny", keep ? keep : tu_tmpdir());
    cnn_dataset train = make_data(64, 1), val = make_data(32, 2);
    cnn_model *m = cnn_model_create("tiny", 6, 6, 1);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=4, kernel_size=3, activation=relu"), 0);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=2, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 3), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.01);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    cnn_callback *tb = cnn_callback_tensorboard(logs);
    assert_non_null(tb);
    cnn_fit_config c = cnn_fit_default();
    c.epochs = 3, c.batch_size = 16, c.seed = 5, c.verbose = CNN_VERBOSE_SILENT, c.validation = &val;
    c.callbacks = &tb, c.num_callbacks = 1;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    /* train: the version record, then per epoch 4 scalars (loss, accuracy, the rate under both of Keras's
     * names), and a histogram and an image of each of the 4 weights (conv kernel and bias, dense kernel and
     * bias); validation: the version record and 4 scalars per epoch (loss and accuracy per epoch and per
     * optimizer step). */
    int n = 0;
    snprintf(path, sizeof path, "%s/train", logs);
    assert_int_equal(cnn_tfrecord_check(find_events(path, ev, sizeof ev), &n), 0);
    assert_int_equal(n, 1 + 3 * (4 + 4 + 4));
    snprintf(path, sizeof path, "%s/validation", logs);
    assert_int_equal(cnn_tfrecord_check(find_events(path, ev, sizeof ev), &n), 0);
    assert_int_equal(n, 1 + 3 * 4);
    if (keep) {
        snprintf(hist, sizeof hist, "%s/history.json", keep);
        assert_int_equal(cnn_history_save_json(&h, hist), 0);
    }
    cnn_history_free(&h);
    cnn_callback_free(tb);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

static void test_bad_log_dir(void **state)
{
    (void)state;
    assert_null(cnn_callback_tensorboard(""));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, "log_dir");
    cnn_tb_file f;
    tu_assert_error(cnn_tb_open(&f, "/proc/no/such/dir", 0), CNN_ERR_IO, "cannot create folder");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_framing_and_corruption),
        cmocka_unit_test(test_callback_after_fit),
        cmocka_unit_test(test_bad_log_dir),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cnn_report_cleanup(); /* the kernel images are PNGs drawn with cairo */
    return failed;
}
