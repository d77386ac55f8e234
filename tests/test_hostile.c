/* What a hostile user tried (issue 11), in the library: outputs only over regular files and never over an
 * input of the run, special files refused by every reader instead of hanging, images of another shape
 * than the model's refused by prediction, and model names that must be plain file names. Each test fails
 * (or, for the readers, hangs until the alarm) without its fix. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

/* A reader that blocks on a FIFO would hang the suite: the alarm turns that into a failure. */
static void arm_alarm(void)
{
    signal(SIGALRM, SIG_DFL);
    alarm(20);
}

static int is_fifo(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISFIFO(st.st_mode);
}

static void test_atomic_refuses_fifo(void **state)
{
    (void)state;
    const char *fifo = tu_path("out.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tu_assert_error(cnn_write_file_atomic(fifo, "x", 1), CNN_ERR_IO, "not a regular file (a FIFO)");
    assert_true(is_fifo(fifo));
    /* A symbolic link to it is refused too: the link would be replaced, the FIFO's name lost to readers. */
    const char *link = tu_path("out-link.csv");
    assert_int_equal(symlink(fifo, link), 0);
    tu_assert_error(cnn_write_file_atomic(link, "x", 1), CNN_ERR_IO, "a FIFO");
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void test_atomic_refuses_folder(void **state)
{
    (void)state;
    const char *dir = tu_path("out-dir");
    assert_int_equal(mkdir(dir, 0700), 0);
    tu_assert_error(cnn_write_file_atomic(dir, "x", 1), CNN_ERR_IO, "a folder");
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/* A device node of our own (/dev/null's numbers) in the test folder: without the check, rename would
 * replace it, as `--out /dev/full` replaced the system's. Creating one needs root; otherwise skipped. */
static void test_atomic_refuses_device(void **state)
{
    (void)state;
    const char *dev = tu_path("null.dev");
    if (mknod(dev, S_IFCHR | 0600, makedev(1, 3))) skip();
    tu_assert_error(cnn_write_file_atomic(dev, "x", 1), CNN_ERR_IO, "a device");
    struct stat st;
    assert_int_equal(lstat(dev, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void test_atomic_regular_and_link(void **state)
{
    (void)state;
    const char *file = tu_path("plain.txt"), *link = tu_path("plain-link.txt");
    assert_int_equal(cnn_write_file_atomic(file, "old", 3), 0);
    assert_int_equal(cnn_write_file_atomic(file, "new", 3), 0);
    assert_int_equal(symlink(file, link), 0);
    assert_int_equal(cnn_write_file_atomic(link, "via", 3), 0);
}

/* An input of the run, by its name or another (a hard link), is never replaced. */
static void test_atomic_refuses_input(void **state)
{
    (void)state;
    const char *in = tu_path("input.cnn"), *alias = tu_path("alias.cnn");
    tu_write(in, "model", 5);
    assert_int_equal(link(in, alias), 0);
    assert_int_equal(cnn_file_protect(in), 0);
    tu_assert_error(cnn_write_file_atomic(in, "csv", 3), CNN_ERR_IO, "an input of this run");
    tu_assert_error(cnn_write_file_atomic(alias, "csv", 3), CNN_ERR_IO, "an input of this run");
    cnn_file_unprotect_all();
    assert_int_equal(cnn_write_file_atomic(in, "csv", 3), 0);
    tu_assert_error(cnn_file_protect(tu_path("absent")), CNN_ERR_IO, "cannot stat");
}

static void test_model_load_refuses_fifo(void **state)
{
    (void)state;
    const char *fifo = tu_path("model.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    arm_alarm();
    assert_null(cnn_model_load(fifo));
    alarm(0);
    tu_assert_error(cnn_errcode(), CNN_ERR_IO, "not a regular file");
    assert_null(cnn_model_load(tu_tmpdir()));
    tu_assert_error(cnn_errcode(), CNN_ERR_IO, "not a regular file");
}

static void test_idx_refuses_fifo(void **state)
{
    (void)state;
    const char *fifo = tu_path("images.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    cnn_dataset ds;
    arm_alarm();
    tu_assert_error(cnn_dataset_load_idx(&ds, fifo, NULL), CNN_ERR_IO, "not a regular file");
    alarm(0);
}

static void test_spec_load_refuses_fifo(void **state)
{
    (void)state;
    const char *fifo = tu_path("model.spec");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    arm_alarm();
    assert_null(cnn_spec_load(fifo));
    alarm(0);
    tu_assert_error(cnn_errcode(), CNN_ERR_IO, "not a regular file");
}

/* ------------------------------------------------------------------ prediction shapes */

static cnn_model *small_model(void)
{
    cnn_model *m = cnn_model_create("small", 6, 6, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add_flatten(m, "flatten"), 0);
    assert_int_equal(cnn_model_add_dense(m, "dense", 3, CNN_ACT_SOFTMAX), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    return m;
}

static cnn_dataset images(int n, int h, int w)
{
    cnn_dataset ds = {.n = n, .h = h, .w = w, .c = 1};
    ds.x = calloc((size_t)n * h * w, sizeof *ds.x);
    ds.y = calloc((size_t)n, sizeof *ds.y);
    assert_true(ds.x && ds.y);
    return ds;
}

static void test_predict_dataset_shapes(void **state)
{
    (void)state;
    cnn_model *m = small_model();
    float out[4 * 3];
    cnn_dataset small = images(4, 4, 4), large = images(4, 8, 8), same = images(4, 6, 6);
    tu_assert_error(cnn_model_predict_dataset(m, &small, 2, out), CNN_ERR_SHAPE, "4x4x1");
    tu_assert_error(cnn_errcode(), CNN_ERR_SHAPE, "takes 6x6x1");
    tu_assert_error(cnn_model_predict_dataset(m, &large, 2, out), CNN_ERR_SHAPE, "8x8x1");
    /* Same number of values, another shape: still refused (36 values as 6x6 is not 36 as 36x1). */
    cnn_dataset flat = images(4, 36, 1);
    tu_assert_error(cnn_model_predict_dataset(m, &flat, 2, out), CNN_ERR_SHAPE, "36x1x1");
    assert_int_equal(cnn_model_predict_dataset(m, &same, 3, out), 0);
    for (int i = 0; i < 4; i++) assert_float_equal(out[3 * i] + out[3 * i + 1] + out[3 * i + 2], 1.0, 1e-5);
    cnn_dataset *all[] = {&small, &large, &same, &flat};
    for (int i = 0; i < 4; i++) cnn_dataset_free(all[i]);
    cnn_model_free(m);
}

/* Issue 11: a spec that `summary` accepted (a Dense layer on an image, no Flatten) trained to the end and
 * then failed in the classification report ("the report needs 36939 bytes; buf holds 8192"). The loss now
 * needs one value per class, so the spec is refused when it is read, at the layer's line. */
static void test_dense_on_image_refused_when_read(void **state)
{
    (void)state;
    const char *text = "model: Pixels\ninput: (28, 28, 1)\nlayers:\n    Dense(10, activation=\"softmax\")\n"
                       "fit: batch_size=32, epochs=1\n";
    assert_null(cnn_spec_parse(text, "t.spec"));
    tu_assert_error(cnn_errcode(), CNN_ERR_SHAPE, "t.spec:4:5: ");
    assert_non_null(strstr(cnn_errmsg(), "outputs (28, 28, 10) per sample"));
}

/* ... and no legal model overflows a fixed buffer in the report: 2000 classes give a report of more than
 * 8192 bytes, which is sized by a first call and written whole by the second. */
static void test_report_of_many_classes(void **state)
{
    (void)state;
    enum { K = 2000 };
    int32_t *y = malloc(sizeof *y * K);
    assert_non_null(y);
    for (int i = 0; i < K; i++) y[i] = (int32_t)i;
    size_t len = 0;
    assert_int_equal(cnn_classification_report(y, y, K, K, NULL, 2, NULL, 0, &len), 0);
    assert_true(len > 8192);
    char *text = malloc(len + 1);
    assert_non_null(text);
    assert_int_equal(cnn_classification_report(y, y, K, K, NULL, 2, text, len + 1, NULL), 0);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "1999"));
    free(text);
    free(y);
}

/* A bad score is reported in words, not by an internal function's name. */
static void test_messages_without_function_names(void **state)
{
    (void)state;
    float scores[2] = {0.5f, NAN};
    int32_t pred[1];
    tu_assert_error(cnn_argmax_rows(scores, 1, 2, pred), CNN_ERR_INVALID, "predicted classes: score");
    assert_null(strstr(cnn_errmsg(), "cnn_"));
    cnn_dataset a = images(4, 6, 6), b;
    tu_assert_error(cnn_dataset_split(&a, 1.5, &b, &b), CNN_ERR_INVALID, "validation split");
    assert_null(strstr(cnn_errmsg(), "cnn_"));
    cnn_dataset_free(&a);
}

/* IDX files written here: n images of h x w. */
static void write_idx(const char *dir, const char *prefix, int n, int h, int w)
{
    char path[600];
    size_t len = 16 + (size_t)n * h * w;
    uint8_t *img = calloc(1, len);
    assert_non_null(img);
    uint32_t head[4] = {0x803, (uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (int i = 0; i < 16; i++) img[i] = (uint8_t)(head[i / 4] >> (24 - 8 * (i % 4)));
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    tu_write(path, img, len);
    uint8_t lab[8 + 4] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    tu_write(path, lab, 8 + (size_t)n);
    free(img);
}

/* Training and test images of different sizes: the folder is named at load time (it failed later, in
 * training or evaluation, without naming any file); without train only the t10k files are read. */
static void test_dataset_folder_shapes(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tu_path("mixed-data"));
    assert_int_equal(mkdir(dir, 0700), 0);
    write_idx(dir, "t10k", 3, 14, 14);
    cnn_dataset train, test;
    assert_int_equal(cnn_dataset_load_dir(dir, NULL, &test), 0);
    assert_int_equal(test.n, 3);
    cnn_dataset_free(&test);
    write_idx(dir, "train", 4, 28, 28);
    tu_assert_error(cnn_dataset_load_dir(dir, &train, &test), CNN_ERR_FORMAT,
                    "the t10k images are 14x14, the training images 28x28");
    assert_non_null(strstr(cnn_errmsg(), dir));
    assert_null(train.bytes);
    assert_null(test.bytes);
}

/* ------------------------------------------------------------------ model names */

static const char *const SPEC_TAIL =
    "\ninput: (4, 4, 1)\nlayers:\n    Flatten()\n    Dense(2, activation=softmax)\n";

static void assert_spec_name_refused(const char *name, const char *fragment)
{
    char text[6000];
    snprintf(text, sizeof text, "model: %s%s", name, SPEC_TAIL);
    cnn_spec *s = cnn_spec_parse(text, "t.spec");
    if (s) fail_msg("model name '%s' was accepted", name);
    tu_assert_error(cnn_errcode(), CNN_ERR_FORMAT, fragment);
}

/* A spec named ".." made `study` write outside its folder; names become folders and files. */
static void test_spec_model_names(void **state)
{
    (void)state;
    assert_spec_name_refused("..", "model name cannot be \".\" or \"..\"");
    assert_spec_name_refused(".", "t.spec:1:8: model name cannot be");
    assert_spec_name_refused("\"\"", "model name is empty");
    assert_spec_name_refused("-x", "cannot start with '-'");
    assert_spec_name_refused("a/b", "t.spec:1:9: model name cannot contain '/'");
    char longer[200];
    memset(longer, 'A', 64);
    longer[64] = '\0';
    assert_spec_name_refused(longer, "at most 63 characters");
    longer[63] = '\0';
    char text[400];
    snprintf(text, sizeof text, "model: %s%s", longer, SPEC_TAIL);
    cnn_spec *s = cnn_spec_parse(text, "t.spec");
    assert_non_null(s);
    assert_string_equal(cnn_spec_name(s), longer);
    cnn_spec_free(s);
}

static void assert_create_refused(const char *name, const char *fragment)
{
    cnn_model *m = cnn_model_create(name, 2, 2, 1);
    if (m) fail_msg("cnn_model_create accepted the name '%s' (kept as '%s')", name, cnn_model_name(m));
    tu_assert_error(cnn_errcode(), CNN_ERR_INVALID, fragment);
}

/* The library refuses the same names, and a long one is an error naming the limit, never cut short. */
static void test_create_model_names(void **state)
{
    (void)state;
    assert_create_refused("", "is empty");
    assert_create_refused("..", "cannot be");
    assert_create_refused("runs/x", "cannot contain '/'");
    assert_create_refused("-rf", "cannot start with '-'");
    assert_create_refused("tab\there", "control characters");
    char *huge = malloc(5001);
    assert_non_null(huge);
    memset(huge, 'n', 5000);
    huge[5000] = '\0';
    assert_create_refused(huge, "at most 63 characters");
    free(huge);
    cnn_model *m = cnn_model_create("a \"quoted\" name", 2, 2, 1);
    assert_non_null(m);
    cnn_model_free(m);
    m = cnn_model_create(NULL, 2, 2, 1); /* NULL: Keras's default name */
    assert_string_equal(cnn_model_name(m), "sequential");
    cnn_model_free(m);
}

/* A model file whose name is longer than 63 characters: an error, not a silently shortened name; a name
 * with quotes survives the round trip. */
static void test_model_file_names(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("say \"hi\"", 2, 2, 1);
    assert_int_equal(cnn_model_add_flatten(m, "flatten"), 0);
    assert_int_equal(cnn_model_add_dense(m, "dense", 2, CNN_ACT_SOFTMAX), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    const char *path = tu_path("quoted.cnn");
    assert_int_equal(cnn_model_save(m, path), 0);
    cnn_model_free(m);
    m = cnn_model_load(path);
    if (!m) fail_msg("%s", cnn_errmsg());
    assert_string_equal(cnn_model_name(m), "say \"hi\"");
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_refuses_fifo),
        cmocka_unit_test(test_atomic_refuses_folder),
        cmocka_unit_test(test_atomic_refuses_device),
        cmocka_unit_test(test_atomic_regular_and_link),
        cmocka_unit_test(test_atomic_refuses_input),
        cmocka_unit_test(test_model_load_refuses_fifo),
        cmocka_unit_test(test_idx_refuses_fifo),
        cmocka_unit_test(test_predict_dataset_shapes),
        cmocka_unit_test(test_spec_model_names),
        cmocka_unit_test(test_create_model_names),
        cmocka_unit_test(test_model_file_names),
        cmocka_unit_test(test_spec_load_refuses_fifo),
        cmocka_unit_test(test_messages_without_function_names),
        cmocka_unit_test(test_dataset_folder_shapes),
        cmocka_unit_test(test_dense_on_image_refused_when_read),
        cmocka_unit_test(test_report_of_many_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
