/* "Same start, same path as Keras": from the initial weights Keras saved (scripts/keras_same_path_ref.py),
 * one epoch in order on the same Fashion-MNIST images gives Keras's loss at every batch (1e-4 relative) and
 * its final weights (1e-3 relative to each tensor's scale). The suite runs the small committed version; with
 * CNN_KERAS_PATH_DIR set (the script's `full` output) it runs Model_2_s2 itself on all 60,000 images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct path_ref {
    int images, batch, f1, f2, units;
    double lr;
    double losses[256];
    int steps;
} path_ref;

static int find(const char *dir, const char *name, char *out, size_t cap)
{
    const char *roots[] = {"", "../", "../../"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, cap, "%s%s/%s", dir[0] == '/' ? "" : roots[i], dir, name);
        FILE *f = fopen(out, "r");
        if (f) return fclose(f), 1;
    }
    return 0;
}

static void read_ref(const char *path, path_ref *r)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f)); /* comment */
    assert_int_equal(fscanf(f, "images %d batch %d lr %lf filters %d %d units %d", &r->images, &r->batch,
                            &r->lr, &r->f1, &r->f2, &r->units),
                     6);
    for (r->steps = 0; r->steps < 256 && fscanf(f, "%lf", &r->losses[r->steps]) == 1; r->steps++) continue;
    fclose(f);
    assert_int_equal(r->steps, (r->images + r->batch - 1) / r->batch);
}

/* Model_2_s2's layers (spec §4.3) with the given widths, under Keras's automatic names. */
static cnn_model *model_2_s2(const path_ref *r)
{
    cnn_model *m = cnn_model_create("Model_2_s2", 28, 28, 1);
    char o[3][96];
    snprintf(o[0], sizeof o[0], "filters=%d, kernel_size=3, padding=same, activation=relu", r->f1);
    snprintf(o[1], sizeof o[1], "filters=%d, kernel_size=3, padding=same, activation=relu", r->f2);
    snprintf(o[2], sizeof o[2], "filters=%d, kernel_size=3, activation=relu", r->f2);
    assert_int_equal(cnn_model_add(m, "Conv2D", o[0]), 0);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=2, strides=2"), 0);
    assert_int_equal(cnn_model_add(m, "Conv2D", o[1]), 0);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=2, strides=2"), 0);
    assert_int_equal(cnn_model_add(m, "Conv2D", o[2]), 0);
    assert_int_equal(cnn_model_add_flatten(m, NULL), 0);
    assert_int_equal(cnn_model_add_dense(m, NULL, r->units, CNN_ACT_RELU), 0);
    assert_int_equal(cnn_model_add_dense(m, NULL, 10, CNN_ACT_SOFTMAX), 0);
    assert_int_equal(cnn_model_build(m, 99), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, r->lr);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    return m;
}

static void load(cnn_model *m, const char *path)
{
    if (cnn_model_load_keras_weights(m, path)) fail_msg("%s", cnn_errmsg());
}

/* Per tensor: max |cnnlab - keras| / max |keras|; the worst over the model. */
static double weights_error(cnn_model *a, cnn_model *b)
{
    double worst = 0;
    for (int i = 0; i < cnn_model_num_tensors(a); i++) {
        cnn_tensor x, y;
        assert_int_equal(cnn_model_tensor(a, i, &x), 0);
        assert_int_equal(cnn_model_tensor(b, i, &y), 0);
        double err = 0, scale = 0;
        for (size_t k = 0; k < x.size; k++) {
            err = fmax(err, fabs(x.data[k] - y.data[k]));
            scale = fmax(scale, fabs(y.data[k]));
        }
        if (scale > 0) worst = fmax(worst, err / scale);
    }
    return worst;
}

static void same_path(const char *dir, const char *prefix)
{
    char path[1024], name[64];
    path_ref r;
    snprintf(name, sizeof name, "%slosses.txt", prefix);
    if (!find(dir, name, path, sizeof path))
        fail_msg("%s/%s not found (run from the repository root)", dir, name);
    read_ref(path, &r);
    cnn_dataset train, test, part;
    if (cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &train, &test)) fail_msg("%s", cnn_errmsg());
    assert_int_equal(cnn_dataset_slice(&train, 0, r.images, &part), 0);
    float *x = malloc(sizeof(float) * 28 * 28 * (size_t)r.images); /* the images as train_step takes them */
    assert_non_null(x);
    assert_int_equal(cnn_dataset_images(&part, 0, r.images, x), 0);
    cnn_model *m = model_2_s2(&r), *keras = model_2_s2(&r);
    snprintf(name, sizeof name, "%sinit.h5", prefix);
    assert_true(find(dir, name, path, sizeof path));
    load(m, path);
    double worst = 0;
    const size_t px = 28 * 28;
    for (int s = 0; s < r.steps; s++) {
        int start = s * r.batch, n = start + r.batch <= r.images ? r.batch : r.images - start;
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(m, x + (size_t)start * px, part.y + start, n, &loss, &correct),
                         0);
        double rel = fabs(loss - r.losses[s]) / fabs(r.losses[s]);
        worst = fmax(worst, rel);
        if (getenv("CNN_KERAS_PATH_VERBOSE"))
            print_message("step %d: loss %.9g, Keras %.9g, relative %.3g\n", s, loss, r.losses[s], rel);
        else if (rel > 1e-4)
            fail_msg("step %d: loss %.9g, Keras %.9g (relative %.3g > 1e-4)", s, loss, r.losses[s], rel);
    }
    snprintf(name, sizeof name, "%sfinal.h5", prefix);
    assert_true(find(dir, name, path, sizeof path));
    load(keras, path);
    double werr = weights_error(m, keras);
    print_message("%d steps: worst loss difference %.3g relative; final weights %.3g relative\n", r.steps,
                  worst, werr);
    if (werr > 1e-3) fail_msg("final weights differ from Keras's by %.3g relative (> 1e-3)", werr);
    cnn_model_free(m);
    cnn_model_free(keras);
    free(x);
    cnn_dataset_free(&part);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
}

static void test_small_same_path(void **state)
{
    (void)state;
    same_path("tests/data/keras_path", "mini_");
}

static void test_model_2_s2_same_path(void **state)
{
    (void)state;
    const char *dir = getenv("CNN_KERAS_PATH_DIR");
    if (!dir) {
        print_message("CNN_KERAS_PATH_DIR not set (scripts/keras_same_path_ref.py full writes it)\n");
        skip();
    }
    same_path(dir, "");
}

int main(void)
{
    cnn_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_same_path),
        cmocka_unit_test(test_model_2_s2_same_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
