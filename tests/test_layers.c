/* The non-convolution layers: pooling, ZeroPadding2D, Resizing, BatchNormalization, Dropout and the
 * activation layers. Finite-difference gradient checks over several configurations, forward (and some
 * backward) values computed with TensorFlow 2.15 / Keras 2.15 (each snippet is quoted above the numbers it
 * printed), option and shape errors, thread-count independence and a save/load round trip. */
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/model.h"
#include "util.h"

static const double TOL = 2e-3;

/* ---------------------------------------------------------------- driving one layer directly */

typedef struct layer_run {
    cnn_model *m;
    cnn_layer *l;
    float *scratch, *work;
    int n;
} layer_run;

static layer_run run_make(const char *type, const char *options, int h, int w, int c, int n)
{
    layer_run r = {0};
    r.m = cnn_model_create("t", h, w, c);
    assert_non_null(r.m);
    if (cnn_model_add(r.m, type, options) || cnn_model_build(r.m, 1))
        fail_msg("%s(%s): %s", type, options, cnn_errmsg());
    r.l = &r.m->layers[0];
    r.l->act_run = r.l->act; /* a lone softmax layer is also the last one; test its own activation */
    r.n = n;
    r.scratch = calloc(r.l->scratch_per_sample * n + 1, sizeof(float));
    r.work = calloc((r.l->ops->workspace ? r.l->ops->workspace(r.l, n) : 0) + 1, sizeof(float));
    assert_non_null(r.scratch);
    assert_non_null(r.work);
    r.l->scratch = r.l->scratch_per_sample ? r.scratch : NULL;
    return r;
}

static cnn_ctx run_ctx(const layer_run *r, int training, uint64_t step)
{
    return (cnn_ctx){.training = training, .seed = 17, .step = step, .work = r->work, .need_dx = 1};
}

static void run_forward(layer_run *r, const float *x, float *y, int training, uint64_t step)
{
    cnn_ctx ctx = run_ctx(r, training, step);
    r->l->ops->forward(r->l, &ctx, x, y, r->n);
}

static void run_backward(layer_run *r, const float *x, const float *y, float *dy, float *dx, int training,
                         uint64_t step)
{
    cnn_ctx ctx = run_ctx(r, training, step);
    r->l->ops->backward(r->l, &ctx, x, y, dy, dx, r->n);
}

static size_t run_in(const layer_run *r)
{
    return cnn_shape_size(r->l->in) * r->n;
}
static size_t run_out(const layer_run *r)
{
    return cnn_shape_size(r->l->out) * r->n;
}

static void run_free(layer_run *r)
{
    free(r->scratch);
    free(r->work);
    cnn_model_free(r->m);
}

static float *floats(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static void fill_uniform(float *v, size_t n, uint64_t stream)
{
    for (size_t i = 0; i < n; i++) v[i] = 2.0f * cnn_rng_uniform(123, stream, i) - 1.0f;
}

static void assert_close(const float *got, const float *want, size_t n, float tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s[%zu] = %.9g, expected %.9g", what, i, got[i], want[i]);
}

/* Forward on x (h x w x 1, batch 1) and comparison with want. */
static void check_forward(const char *type, const char *options, int h, int w, const float *x,
                          const float *want, float tol)
{
    layer_run r = run_make(type, options, h, w, 1, 1);
    float *y = floats(run_out(&r));
    run_forward(&r, x, y, 1, 0);
    assert_close(y, want, run_out(&r), tol, type);
    free(y);
    run_free(&r);
}

/* dx for dy = 1, 2, 3, ... (the r of the TF snippets), after a forward on x. */
static void check_input_grad(const char *type, const char *options, int h, int w, const float *x,
                             const float *want)
{
    layer_run r = run_make(type, options, h, w, 1, 1);
    float *y = floats(run_out(&r)), *dy = floats(run_out(&r)), *dx = floats(run_in(&r));
    run_forward(&r, x, y, 1, 0);
    for (size_t i = 0; i < run_out(&r); i++) dy[i] = (float)(i + 1);
    run_backward(&r, x, y, dy, dx, 1, 0);
    assert_close(dx, want, run_in(&r), 1e-5f, "dx");
    free(y), free(dy), free(dx);
    run_free(&r);
}

/* Forward and backward with 1 and 3 threads give the same bits. */
static void check_thread_independence(const char *type, const char *options, int h, int w, int c, int n)
{
    float *out[2][2];
    size_t ny = 0, nx = 0;
    for (int t = 0; t < 2; t++) {
        cnn_set_threads(t ? 3 : 1);
        layer_run r = run_make(type, options, h, w, c, n);
        nx = run_in(&r), ny = run_out(&r);
        float *x = floats(nx), *dy = floats(ny);
        fill_uniform(x, nx, 1);
        fill_uniform(dy, ny, 2);
        out[t][0] = floats(ny), out[t][1] = floats(nx);
        run_forward(&r, x, out[t][0], 1, 5);
        run_backward(&r, x, out[t][0], dy, out[t][1], 1, 5);
        free(x), free(dy);
        run_free(&r);
    }
    cnn_set_threads(0);
    if (memcmp(out[0][0], out[1][0], sizeof(float) * ny) || memcmp(out[0][1], out[1][1], sizeof(float) * nx))
        fail_msg("%s(%s): results differ between 1 and 3 threads", type, options);
    for (int t = 0; t < 2; t++) free(out[t][0]), free(out[t][1]);
}

static void assert_build_error(const char *type, const char *options, int h, int w, int c, int code,
                               const char *fragment)
{
    cnn_model *m = cnn_model_create("errors", h, w, c);
    int rc = cnn_model_add(m, type, options);
    if (!rc) rc = cnn_model_build(m, 1);
    tu_assert_error(rc, code, fragment);
    cnn_model_free(m);
}

/* ---------------------------------------------------------------- pooling */

static void test_max_pooling_gradients(void **state)
{
    (void)state;
    gc_assert_layer("MaxPooling2D", "", 6, 6, 3, 3, 1, TOL);
    gc_assert_layer("MaxPooling2D", "pool_size=2", 7, 5, 2, 1, 1, TOL);
    gc_assert_layer("MaxPooling2D", "pool_size=3, strides=1", 5, 5, 2, 1, 1, TOL);
    gc_assert_layer("MaxPooling2D", "pool_size=3, strides=2, padding=same", 7, 7, 2, 3, 1, TOL);
    gc_assert_layer("MaxPooling2D", "pool_size=2, strides=1, padding=same", 5, 4, 3, 2, 1, TOL);
    gc_assert_layer("MaxPooling2D", "pool_size=(2,3), strides=(1,2)", 5, 7, 2, 2, 1, TOL);
}

static void test_average_pooling_gradients(void **state)
{
    (void)state;
    gc_assert_layer("AveragePooling2D", "", 6, 6, 3, 3, 1, TOL);
    gc_assert_layer("AveragePooling2D", "pool_size=3, strides=1", 5, 5, 2, 1, 1, TOL);
    gc_assert_layer("AveragePooling2D", "pool_size=3, strides=2, padding=same", 7, 7, 2, 3, 1, TOL);
    gc_assert_layer("AveragePooling2D", "pool_size=2, padding=same", 5, 5, 2, 1, 1, TOL);
    gc_assert_layer("AveragePooling2D", "pool_size=(3,2), strides=(2,1), padding=same", 5, 6, 2, 2, 1, TOL);
    gc_assert_layer("GlobalAveragePooling2D", "", 4, 5, 3, 3, 1, TOL);
    gc_assert_layer("GlobalAveragePooling2D", "keepdims=true", 3, 3, 2, 1, 1, TOL);
}

/* The 4x4 image of the snippets below; ties of 3 and of 5. */
static const float TIES[16] = {1, 3, 3, 0, 3, 2, 1, 1, 0, 0, 5, 5, 0, 0, 5, 5};

/* TF 2.15:  x = TIES as (1,4,4,1)
 *   with tf.GradientTape() as t: t.watch(x); y = MaxPooling2D(2)(x)           -> y [3,3,0,5]
 *   t.gradient(y, x)  -> [[0,1,1,0],[0,0,0,0],[1,0,1,0],[0,0,0,0]]  (first maximum in row-major order)
 *   MaxPooling2D(3, strides=1, padding="same"): y [[3,3,3,3],[3,5,5,5],[3,5,5,5],[0,5,5,5]],
 *   gradient of sum(y) -> [[0,4,1,0],[1,0,0,0],[1,0,9,0],[0,0,0,0]] */
static void test_max_pooling_ties_follow_tensorflow(void **state)
{
    (void)state;
    const float y2[4] = {3, 3, 0, 5};
    check_forward("MaxPooling2D", "pool_size=2", 4, 4, TIES, y2, 0.0f);
    const float y3[16] = {3, 3, 3, 3, 3, 5, 5, 5, 3, 5, 5, 5, 0, 5, 5, 5};
    check_forward("MaxPooling2D", "pool_size=3, strides=1, padding=same", 4, 4, TIES, y3, 0.0f);

    layer_run r = run_make("MaxPooling2D", "pool_size=3, strides=1, padding=same", 4, 4, 1, 1);
    float y[16], dy[16], dx[16];
    run_forward(&r, TIES, y, 1, 0);
    for (int i = 0; i < 16; i++) dy[i] = 1.0f;
    run_backward(&r, TIES, y, dy, dx, 1, 0);
    const float want[16] = {0, 4, 1, 0, 1, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0};
    assert_close(dx, want, 16, 0.0f, "max pooling dx");
    run_free(&r);

    const float d2[16] = {0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    layer_run q = run_make("MaxPooling2D", "", 4, 4, 1, 1);
    run_forward(&q, TIES, y, 1, 0);
    for (int i = 0; i < 4; i++) dy[i] = 1.0f;
    run_backward(&q, TIES, y, dy, dx, 1, 0);
    assert_close(dx, d2, 16, 0.0f, "max pooling 2x2 dx");
    run_free(&q);
}

/* TF 2.15:  x = np.arange(25).reshape(1,5,5,1)
 *   AveragePooling2D(2, padding="same")(x)             -> [[3,5,6.5],[13,15,16.5],[20.5,22.5,24]]
 *   AveragePooling2D(3, strides=2, padding="same")(x)  -> [[3,4.5,6],[10.5,12,13.5],[18,19.5,21]]
 *   AveragePooling2D(3, strides=1, padding="same")(x)  -> first row [3,3.5,4.5,5.5,6]
 * Only the real (unpadded) elements are averaged: the corner 3 = (0+1+5+6)/4, not 12/9. */
static void test_average_pooling_same_divides_by_valid_count(void **state)
{
    (void)state;
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)i;
    const float a[9] = {3, 5, 6.5f, 13, 15, 16.5f, 20.5f, 22.5f, 24};
    check_forward("AveragePooling2D", "pool_size=2, padding=same", 5, 5, x, a, 1e-5f);
    const float b[9] = {3, 4.5f, 6, 10.5f, 12, 13.5f, 18, 19.5f, 21};
    check_forward("AveragePooling2D", "pool_size=3, strides=2, padding=same", 5, 5, x, b, 1e-5f);
    const float c[25] = {3,  3.5f,  4.5f,  5.5f, 6,  5.5f, 6,     7,  8,     8.5f,  10.5f, 11, 12,
                         13, 13.5f, 15.5f, 16,   17, 18,   18.5f, 18, 18.5f, 19.5f, 20.5f, 21};
    check_forward("AveragePooling2D", "pool_size=3, strides=1, padding=same", 5, 5, x, c, 1e-5f);
    const float v[4] = {3, 5, 13, 15}; /* valid: (0+1+5+6)/4 ... */
    check_forward("AveragePooling2D", "", 5, 5, x, v, 1e-5f);
    const float g[1] = {12};
    check_forward("GlobalAveragePooling2D", "", 5, 5, x, g, 1e-5f);
}

static void test_pooling_shapes_and_errors(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("shapes", 28, 28, 1);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=(2,2)"), 0);
    assert_int_equal(cnn_model_add(m, "AveragePooling2D", "pool_size=3, strides=2, padding=same"), 0);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=2, strides=None"), 0);
    assert_int_equal(cnn_model_add(m, "GlobalAveragePooling2D", ""), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(m->layers[0].out.h, 14);
    assert_int_equal(m->layers[1].out.h, 7); /* ceil(14 / 2) */
    assert_int_equal(m->layers[2].out.h, 3); /* floor(7 / 2) */
    assert_int_equal(m->layers[3].out.rank, 1);
    assert_int_equal(m->layers[3].out.c, 1);
    assert_string_equal(m->layers[2].name, "max_pooling2d_1");
    cnn_model_free(m);

    assert_build_error("MaxPooling2D", "pool_size=5, name=pool", 4, 4, 1, CNN_ERR_SHAPE, "layer 'pool'");
    assert_build_error("AveragePooling2D", "pool_size=(2,5)", 4, 4, 1, CNN_ERR_SHAPE,
                       "larger than the input");
    assert_build_error("MaxPooling2D", "", 1, 1, 8, CNN_ERR_SHAPE, "needs an image input");
    assert_build_error("GlobalAveragePooling2D", "", 1, 1, 8, CNN_ERR_SHAPE, "needs an image input");
    assert_build_error("MaxPooling2D", "pool_sise=2", 4, 4, 1, CNN_ERR_INVALID, "did you mean 'pool_size'");
    assert_build_error("MaxPooling2D", "padding=full", 4, 4, 1, CNN_ERR_INVALID, "valid, same");
    assert_build_error("MaxPooling2D", "strides=0", 4, 4, 1, CNN_ERR_INVALID, "strides");
    /* pool larger than the input is fine with same padding (Keras: one output) */
    m = cnn_model_create("same", 3, 3, 1);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=5, padding=same"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(m->layers[0].out.h, 1);
    cnn_model_free(m);
}

/* ---------------------------------------------------------------- ZeroPadding2D */

static void test_zero_padding(void **state)
{
    (void)state;
    gc_assert_layer("ZeroPadding2D", "padding=2", 3, 4, 2, 2, 1, TOL);
    gc_assert_layer("ZeroPadding2D", "padding=(1,2)", 3, 3, 1, 1, 1, TOL);
    gc_assert_layer("ZeroPadding2D", "padding=((1,0),(2,3))", 2, 3, 2, 3, 1, TOL);
    /* TF 2.15: ZeroPadding2D(((1,0),(0,2)))(np.array([1,2,3,5]).reshape(1,2,2,1)) */
    const float x[4] = {1, 2, 3, 5};
    const float want[12] = {0, 0, 0, 0, 1, 2, 0, 0, 3, 5, 0, 0};
    check_forward("ZeroPadding2D", "padding=((1,0),(0,2))", 2, 2, x, want, 0.0f);

    cnn_model *m = cnn_model_create("zp", 28, 28, 1);
    assert_int_equal(cnn_model_add(m, "ZeroPadding2D", "padding=(2, 2), name=expand_32_32"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(m->layers[0].out.h, 32);
    assert_int_equal(m->layers[0].out.w, 32);
    cnn_model_free(m);
    assert_build_error("ZeroPadding2D", "padding=(1,2,3)", 4, 4, 1, CNN_ERR_INVALID, "((top, bottom)");
    assert_build_error("ZeroPadding2D", "padding=-1", 4, 4, 1, CNN_ERR_INVALID, "padding=-1");
    assert_build_error("ZeroPadding2D", "padding=1", 1, 1, 4, CNN_ERR_SHAPE, "needs an image input");
}

/* ---------------------------------------------------------------- Resizing */

static void test_resizing_gradients(void **state)
{
    (void)state;
    gc_assert_layer("Resizing", "height=6, width=8, interpolation=nearest", 3, 4, 2, 2, 1, TOL);
    gc_assert_layer("Resizing", "height=3, width=2, interpolation=nearest", 5, 5, 2, 1, 1, TOL);
    gc_assert_layer("Resizing", "height=7, width=5, interpolation=bilinear", 3, 4, 2, 3, 1, TOL);
    gc_assert_layer("Resizing", "height=3, width=2", 5, 6, 2, 1, 1, TOL);
}

/* Keras's zoom_x2 layer of the study: every pixel becomes a 2x2 block (TF 2.15 agrees: np.array_equal of
 * Resizing(56, 56, interpolation="nearest")(x28) and np.repeat(np.repeat(x28, 2, 1), 2, 2) is True). */
static void test_resizing_nearest_2x_is_pixel_duplication(void **state)
{
    (void)state;
    layer_run r = run_make("Resizing", "height=56, width=56, interpolation=nearest", 28, 28, 3, 2);
    float *x = floats(run_in(&r)), *y = floats(run_out(&r));
    fill_uniform(x, run_in(&r), 9);
    run_forward(&r, x, y, 0, 0);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 56; i++)
            for (int j = 0; j < 56; j++)
                for (int c = 0; c < 3; c++)
                    assert_true(y[((s * 56 + i) * 56 + j) * 3 + c] ==
                                x[((s * 28 + i / 2) * 28 + j / 2) * 3 + c]);
    free(x), free(y);
    run_free(&r);
}

/* TF 2.15, x3 = np.arange(9).reshape(1,3,3,1), x5 = np.arange(25).reshape(1,5,5,1), x2 = [[1,2],[3,5]]:
 *   Resizing(5,5,"nearest")(x3) rows [0,0,1,2,2],[0,0,1,2,2],[3,3,4,5,5],[6,6,7,8,8],[6,6,7,8,8]
 *   Resizing(3,3,"nearest")(x5) -> [[0,2,4],[10,12,14],[20,22,24]]
 *   Resizing(2,4,"nearest")(x3) -> [[0,1,1,2],[6,7,7,8]]
 *   Resizing(4,4,"bilinear")(x2) -> [[1,1.25,1.75,2],[1.5,1.8125,2.4375,2.75],[2.5,2.9375,3.8125,4.25],
 *                                    [3,3.5,4.5,5]]
 *   Resizing(3,3,"bilinear")(x5) ->
 * [[2,3.6666665,5.333333],[10.333333,12,13.666666],[18.666666,20.333332,22]] Resizing(2,5,"bilinear")(x3) ->
 * [[0.75,1.15,1.75,2.35,2.75],[5.25,5.65,6.25,6.85,7.25]] gradient of sum(y * r), r = 1..16, for x2 -> 4x4:
 * bilinear [16.5,23.5,44.5,51.5], nearest [14,22,46,54] */
static void test_resizing_values_follow_tensorflow(void **state)
{
    (void)state;
    float x3[9], x5[25];
    for (int i = 0; i < 9; i++) x3[i] = (float)i;
    for (int i = 0; i < 25; i++) x5[i] = (float)i;
    const float x2[4] = {1, 2, 3, 5};
    const float n35[25] = {0, 0, 1, 2, 2, 0, 0, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 6, 6, 7, 8, 8};
    check_forward("Resizing", "height=5, width=5, interpolation=nearest", 3, 3, x3, n35, 0.0f);
    const float n53[9] = {0, 2, 4, 10, 12, 14, 20, 22, 24};
    check_forward("Resizing", "height=3, width=3, interpolation=nearest", 5, 5, x5, n53, 0.0f);
    const float n24[8] = {0, 1, 1, 2, 6, 7, 7, 8};
    check_forward("Resizing", "height=2, width=4, interpolation=nearest", 3, 3, x3, n24, 0.0f);
    const float b24[16] = {1,    1.25f,   1.75f,   2,     1.5f, 1.8125f, 2.4375f, 2.75f,
                           2.5f, 2.9375f, 3.8125f, 4.25f, 3,    3.5f,    4.5f,    5};
    check_forward("Resizing", "height=4, width=4, interpolation=bilinear", 2, 2, x2, b24, 1e-6f);
    const float b53[9] = {2, 3.6666665f, 5.333333f, 10.333333f, 12, 13.666666f, 18.666666f, 20.333332f, 22};
    check_forward("Resizing", "height=3, width=3, interpolation=bilinear", 5, 5, x5, b53, 1e-5f);
    const float b25[10] = {0.75f, 1.15f, 1.75f, 2.35f, 2.75f, 5.25f, 5.65f, 6.25f, 6.85f, 7.25f};
    check_forward("Resizing", "height=2, width=5", 3, 3, x3, b25, 1e-5f);

    const float gb[4] = {16.5f, 23.5f, 44.5f, 51.5f}, gn[4] = {14, 22, 46, 54};
    check_input_grad("Resizing", "height=4, width=4, interpolation=bilinear", 2, 2, x2, gb);
    check_input_grad("Resizing", "height=4, width=4, interpolation=nearest", 2, 2, x2, gn);
}

static void test_resizing_errors(void **state)
{
    (void)state;
    assert_build_error("Resizing", "width=56", 28, 28, 1, CNN_ERR_INVALID,
                       "missing required option 'height'");
    assert_build_error("Resizing", "height=56, width=56, interpolation=bicubic", 28, 28, 1, CNN_ERR_INVALID,
                       "nearest, bilinear");
    assert_build_error("Resizing", "height=56, width=56", 1, 1, 9, CNN_ERR_SHAPE, "needs an image input");
}

/* ---------------------------------------------------------------- BatchNormalization */

static void test_batch_norm_gradients(void **state)
{
    (void)state;
    gc_assert_layer("BatchNormalization", "", 4, 4, 3, 2, 1, 5e-3);
    gc_assert_layer("BatchNormalization", "", 3, 2, 2, 1, 1, 5e-3);
    gc_assert_layer("BatchNormalization", "", 1, 1, 5, 6, 1, 5e-3);
    gc_assert_layer("BatchNormalization", "center=false", 2, 3, 4, 3, 1, 5e-3);
    gc_assert_layer("BatchNormalization", "scale=false, momentum=0.9", 2, 2, 3, 3, 1, 5e-3);
}

/* x of the TF snippet: ((np.arange(24, dtype=float32) * float32(0.37)) % float32(1.3) - float32(0.4)) */
static const float BN_X[24] = {-0.400000006f,  -0.0300000012f, 0.340000004f,   0.710000038f,   -0.219999939f,
                               0.150000066f,   0.5200001f,     0.890000224f,   -0.0399998724f, 0.330000013f,
                               0.700000167f,   -0.229999691f,  0.140000194f,   0.51000011f,    0.880000472f,
                               -0.0499996245f, 0.320000261f,   0.690000176f,   -0.23999992f,   0.130000442f,
                               0.500000358f,   0.870000243f,   -0.0599993765f, 0.310000509f};

/* TF 2.15:
 *   bn = BatchNormalization(); y = bn(x.reshape(2,2,3,2), training=True)
 *     moving_mean [0.0020333354, 0.0035666688], moving_variance [0.99163407, 0.99142134] (unbiased batch
 *     variance: the fused kernel), y[0:6] [-1.55372, -1.0671442, 0.35194698, 0.97514784, -1.0901792,
 * -0.57037026] bn2 = BatchNormalization(); bn2(x.reshape(6,4), training=True) moving_mean [0.00050000165,
 * 0.0042000008, 0.0035666688, 0.0029333367], moving_variance [0.990945, 0.990945, 0.99158055, 0.99158055]
 * (biased), y[0:4] [-1.4561658, -1.4561658, -0.04179078, 1.0447541] */
static void test_batch_norm_training_follows_keras(void **state)
{
    (void)state;
    layer_run r = run_make("BatchNormalization", "", 2, 3, 2, 2);
    float y[24];
    run_forward(&r, BN_X, y, 1, 0);
    const float y6[6] = {-1.55372f, -1.0671442f, 0.35194698f, 0.97514784f, -1.0901792f, -0.57037026f};
    assert_close(y, y6, 6, 2e-6f, "image y");
    const float mm[2] = {0.0020333354f, 0.0035666688f}, mv[2] = {0.99163407f, 0.99142134f};
    assert_close(cnn_layer_param(r.l, 2), mm, 2, 1e-8f, "image moving_mean");
    assert_close(cnn_layer_param(r.l, 3), mv, 2, 1e-7f, "image moving_variance");
    run_free(&r);

    layer_run v = run_make("BatchNormalization", "", 1, 1, 4, 6);
    run_forward(&v, BN_X, y, 1, 0);
    const float y4[4] = {-1.4561658f, -1.4561658f, -0.04179078f, 1.0447541f};
    assert_close(y, y4, 4, 2e-6f, "vector y");
    const float vm[4] = {0.00050000165f, 0.0042000008f, 0.0035666688f, 0.0029333367f};
    const float vv[4] = {0.990945f, 0.990945f, 0.99158055f, 0.99158055f};
    assert_close(cnn_layer_param(v.l, 2), vm, 4, 1e-8f, "vector moving_mean");
    assert_close(cnn_layer_param(v.l, 3), vv, 4, 1e-7f, "vector moving_variance");
    /* the momentum formula once more on a second step, from the state the first left */
    float m0[4], v0[4];
    memcpy(m0, cnn_layer_param(v.l, 2), sizeof m0);
    memcpy(v0, cnn_layer_param(v.l, 3), sizeof v0);
    float x2[24];
    for (int i = 0; i < 24; i++) x2[i] = 2.0f * BN_X[i] + 1.0f;
    run_forward(&v, x2, y, 1, 1);
    for (int ch = 0; ch < 4; ch++) {
        double mean = 0, var = 0;
        for (int s = 0; s < 6; s++) mean += x2[s * 4 + ch] / 6.0;
        for (int s = 0; s < 6; s++) var += (x2[s * 4 + ch] - mean) * (x2[s * 4 + ch] - mean) / 6.0;
        assert_float_equal(cnn_layer_param(v.l, 2)[ch], 0.99 * m0[ch] + 0.01 * mean, 1e-6);
        assert_float_equal(cnn_layer_param(v.l, 3)[ch], 0.99 * v0[ch] + 0.01 * var, 1e-6);
    }
    run_free(&v);
}

static void set_bn_params(cnn_layer *l, const float *gamma, const float *beta, const float *mean,
                          const float *var)
{
    const int c = l->in.c;
    memcpy(cnn_layer_param(l, 0), gamma, sizeof(float) * c);
    memcpy(cnn_layer_param(l, 1), beta, sizeof(float) * c);
    memcpy(cnn_layer_param(l, 2), mean, sizeof(float) * c);
    memcpy(cnn_layer_param(l, 3), var, sizeof(float) * c);
}

/* TF 2.15: bn3 = BatchNormalization(momentum=0.9, epsilon=1e-5), weights gamma [1.5,-0.5], beta [0.1,0.2],
 * moving_mean [0.3,-0.1], moving_variance [0.8,2.0]; bn3(x.reshape(2,2,3,2), training=False)[0:6] ->
 * [-1.0739284, 0.17525133, 0.1670816, -0.08637755, -0.77206099, 0.11161186]. Inference is affine per
 * channel, so backward is checked against the closed form. */
static void test_batch_norm_inference_uses_moving_statistics(void **state)
{
    (void)state;
    const float gamma[2] = {1.5f, -0.5f}, beta[2] = {0.1f, 0.2f}, mean[2] = {0.3f, -0.1f},
                var[2] = {0.8f, 2.0f};
    layer_run r = run_make("BatchNormalization", "momentum=0.9, epsilon=1e-5", 2, 3, 2, 2);
    set_bn_params(r.l, gamma, beta, mean, var);
    float y[24], dy[24], dx[24];
    run_forward(&r, BN_X, y, 0, 0);
    const float y6[6] = {-1.0739284f, 0.17525133f, 0.1670816f, -0.08637755f, -0.77206099f, 0.11161186f};
    assert_close(y, y6, 6, 2e-6f, "inference y");
    assert_close(cnn_layer_param(r.l, 2), mean, 2, 0.0f, "moving_mean unchanged");
    assert_close(cnn_layer_param(r.l, 3), var, 2, 0.0f, "moving_variance unchanged");

    for (int i = 0; i < 24; i++) dy[i] = 0.1f * (float)(i % 7) - 0.3f;
    run_backward(&r, BN_X, y, dy, dx, 0, 0);
    double dg[2] = {0, 0}, db[2] = {0, 0};
    for (int i = 0; i < 24; i++) {
        const int ch = i % 2;
        const double inv = 1.0 / sqrt((double)var[ch] + 1e-5);
        assert_float_equal(dx[i], dy[i] * gamma[ch] * inv, 1e-6);
        dg[ch] += dy[i] * (BN_X[i] - mean[ch]) * inv;
        db[ch] += dy[i];
    }
    for (int ch = 0; ch < 2; ch++) {
        assert_float_equal(cnn_layer_grad(r.l, 0)[ch], dg[ch], 1e-5);
        assert_float_equal(cnn_layer_grad(r.l, 1)[ch], db[ch], 1e-5);
    }
    run_free(&r);
}

/* Keras 2: a frozen BatchNormalization runs in inference mode even in a training call, and its moving
 * statistics stay put (TF 2.15: bn.trainable = False; bn(x, training=True) == x / sqrt(1 + 1e-3)). */
static void test_batch_norm_frozen_runs_in_inference_mode(void **state)
{
    (void)state;
    layer_run r = run_make("BatchNormalization", "trainable=false", 2, 3, 2, 2);
    float y[24], dy[24], dx[24];
    run_forward(&r, BN_X, y, 1, 0);
    for (int i = 0; i < 24; i++) assert_float_equal(y[i], BN_X[i] / sqrtf(1.001f), 1e-6);
    assert_true(cnn_layer_param(r.l, 2)[0] == 0.0f && cnn_layer_param(r.l, 3)[1] == 1.0f);
    for (int i = 0; i < 24; i++) dy[i] = 1.0f;
    run_backward(&r, BN_X, y, dy, dx, 1, 0);
    for (int i = 0; i < 24; i++) assert_float_equal(dx[i], 1.0f / sqrtf(1.001f), 1e-6);
    run_free(&r);
}

static void test_batch_norm_params_and_errors(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("bn", 8, 8, 32);
    assert_int_equal(cnn_model_add(m, "BatchNormalization", ""), 0);
    assert_int_equal(cnn_model_add(m, "BatchNormalization", "center=false, scale=false"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(cnn_model_num_params(m, 0), 4 * 32 + 2 * 32);
    assert_int_equal(cnn_model_num_params(m, 1), 2 * 32); /* moving statistics are not trainable */
    const cnn_layer *l = &m->layers[0];
    assert_string_equal(l->params[0].name, "gamma");
    assert_string_equal(l->params[3].name, "moving_variance");
    assert_true(cnn_layer_param(l, 0)[5] == 1.0f && cnn_layer_param(l, 1)[5] == 0.0f);
    assert_true(cnn_layer_param(l, 2)[5] == 0.0f && cnn_layer_param(l, 3)[5] == 1.0f);
    assert_string_equal(m->layers[1].name, "batch_normalization_1");
    cnn_model_free(m);
    assert_build_error("BatchNormalization", "axis=1", 4, 4, 3, CNN_ERR_SHAPE, "axis=1");
    assert_build_error("BatchNormalization", "momentum=1.5", 4, 4, 3, CNN_ERR_INVALID, "momentum");
    assert_build_error("BatchNormalization", "epsilon=0", 4, 4, 3, CNN_ERR_INVALID, "epsilon");
}

/* ---------------------------------------------------------------- Dropout */

static void test_dropout_gradients(void **state)
{
    (void)state;
    gc_assert_layer("Dropout", "rate=0.3", 4, 4, 3, 2, 1, TOL);
    gc_assert_layer("Dropout", "rate=0.5", 1, 1, 40, 3, 1, TOL);
    gc_assert_layer("Dropout", "rate=0.5", 1, 1, 40, 3, 0, TOL);
    gc_assert_layer("Dropout", "rate=0", 2, 2, 2, 2, 1, TOL);
}

static int count_zeros(const float *y, size_t n)
{
    int z = 0;
    for (size_t i = 0; i < n; i++) z += y[i] == 0.0f;
    return z;
}

static void test_dropout_masks(void **state)
{
    (void)state;
    enum { N = 100000 };
    layer_run r = run_make("Dropout", "rate=0.25", 1, 1, N, 1);
    float *x = floats(N), *y = floats(N), *y2 = floats(N), *dy = floats(N), *dx = floats(N);
    for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 5);

    run_forward(&r, x, y, 0, 3); /* inference: identity */
    assert_memory_equal(x, y, sizeof(float) * N);

    run_forward(&r, x, y, 1, 3);
    const int dropped = count_zeros(y, N);
    assert_true(dropped > N * 0.24 && dropped < N * 0.26);
    const float scale = 1.0f / (1.0f - 0.25f);
    for (int i = 0; i < N; i++) assert_true(y[i] == 0.0f || y[i] == x[i] * scale);

    run_forward(&r, x, y2, 1, 3); /* same seed and step: same mask */
    assert_memory_equal(y, y2, sizeof(float) * N);
    run_forward(&r, x, y2, 1, 4); /* next step: another mask */
    assert_true(memcmp(y, y2, sizeof(float) * N) != 0);

    for (int i = 0; i < N; i++) dy[i] = 1.0f;
    run_backward(&r, x, y, dy, dx, 1, 3); /* the gradient follows the forward mask */
    for (int i = 0; i < N; i++) assert_true(dx[i] == (y[i] == 0.0f ? 0.0f : scale));
    run_free(&r);

    /* a second Dropout layer (another name) draws another mask at the same step */
    layer_run q = run_make("Dropout", "rate=0.25, name=other", 1, 1, N, 1);
    run_forward(&q, x, y2, 1, 3);
    assert_true(memcmp(y, y2, sizeof(float) * N) != 0);
    run_free(&q);
    free(x), free(y), free(y2), free(dy), free(dx);
}

static void test_dropout_errors(void **state)
{
    (void)state;
    assert_build_error("Dropout", "rate=1.5", 1, 1, 8, CNN_ERR_INVALID, "rate=1.5 must be in [0, 1)");
    assert_build_error("Dropout", "rate=1", 1, 1, 8, CNN_ERR_INVALID, "[0, 1)");
    assert_build_error("Dropout", "rate=-0.1", 1, 1, 8, CNN_ERR_INVALID, "[0, 1)");
    assert_build_error("Dropout", "", 1, 1, 8, CNN_ERR_INVALID, "missing required option 'rate'");
    assert_build_error("Dropout", "rate=half", 1, 1, 8, CNN_ERR_INVALID, "not a number");
}

/* ---------------------------------------------------------------- activation layers */

static void test_activation_layer_gradients(void **state)
{
    (void)state;
    gc_assert_layer("ReLU", "", 3, 3, 2, 2, 1, TOL);
    gc_assert_layer("ReLU", "max_value=0.6, negative_slope=0.1, threshold=0.3", 1, 1, 20, 3, 1, TOL);
    gc_assert_layer("LeakyReLU", "", 2, 3, 2, 2, 1, TOL);
    gc_assert_layer("LeakyReLU", "alpha=0.1", 1, 1, 9, 2, 1, TOL);
    gc_assert_layer("ELU", "", 2, 2, 3, 2, 1, TOL);
    gc_assert_layer("ELU", "alpha=0.5", 1, 1, 9, 2, 1, TOL);
    const char *acts[] = {"relu", "tanh", "sigmoid", "elu", "gelu", "softmax", "linear"};
    char opts[64];
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        snprintf(opts, sizeof opts, "activation=%s", acts[i]);
        gc_assert_layer("Activation", opts, 2, 2, 4, 2, 1, TOL);
    }
    gc_assert_layer("Softmax", "", 2, 3, 4, 2, 1, TOL);
    gc_assert_layer("Softmax", "axis=1", 1, 1, 6, 3, 1, TOL);
}

/* TF 2.15: ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5)([-1, 0.2, 0.5, 0.7, 2.0])
 *            -> [-0.15, -0.03, 0.0, 0.7, 1.0];  ELU(alpha=0.5)([-1, 2]) -> [0.5 * (e^-1 - 1), 2];
 *          LeakyReLU().alpha -> 0.3 */
static void test_activation_layer_values(void **state)
{
    (void)state;
    const float x[5] = {-1, 0.2f, 0.5f, 0.7f, 2};
    const float relu[5] = {-0.15f, -0.03f, 0, 0.7f, 1};
    check_forward("ReLU", "max_value=1.0, negative_slope=0.1, threshold=0.5", 1, 5, x, relu, 1e-7f);
    const float plain[5] = {0, 0.2f, 0.5f, 0.7f, 2};
    check_forward("ReLU", "max_value=None", 1, 5, x, plain, 0.0f);
    const float leaky[5] = {-0.3f, 0.2f, 0.5f, 0.7f, 2};
    check_forward("LeakyReLU", "", 1, 5, x, leaky, 1e-7f);
    const float elu[5] = {0.5f * expm1f(-1.0f), 0.2f, 0.5f, 0.7f, 2};
    check_forward("ELU", "alpha=0.5", 1, 5, x, elu, 1e-7f);

    /* Activation(softmax) at the end of a model is left to the loss, like a Dense softmax */
    cnn_model *m = cnn_model_create("act", 1, 1, 4);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3"), 0);
    assert_int_equal(cnn_model_add(m, "Activation", "activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 1e-3);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    float in[8] = {0.1f, 0.2f, 0.3f, 0.4f, -1, 0, 1, 2}, probs[6];
    assert_int_equal(cnn_model_forward(m, in, 2, 0, probs), 0);
    for (int s = 0; s < 2; s++)
        assert_float_equal(probs[3 * s] + probs[3 * s + 1] + probs[3 * s + 2], 1.0f, 1e-6);
    cnn_model_free(m);
}

static void test_activation_layer_errors(void **state)
{
    (void)state;
    assert_build_error("ReLU", "threshold=-0.5", 2, 2, 1, CNN_ERR_INVALID, "threshold");
    assert_build_error("ReLU", "negative_slope=-1", 2, 2, 1, CNN_ERR_INVALID, "negative_slope");
    assert_build_error("ReLU", "max_value=-1", 2, 2, 1, CNN_ERR_INVALID, "max_value");
    assert_build_error("Activation", "activation=swishy", 2, 2, 1, CNN_ERR_INVALID, "unknown activation");
    assert_build_error("Softmax", "axis=1", 2, 2, 3, CNN_ERR_SHAPE, "only the last axis");
    assert_build_error("LeakyReLU", "aplha=0.1", 2, 2, 1, CNN_ERR_INVALID, "did you mean 'alpha'");
}

/* ---------------------------------------------------------------- threads and a whole model */

static void test_thread_count_does_not_change_results(void **state)
{
    (void)state;
    check_thread_independence("BatchNormalization", "", 12, 12, 16, 20);
    check_thread_independence("BatchNormalization", "", 1, 1, 64, 700);
    check_thread_independence("MaxPooling2D", "pool_size=3, strides=1, padding=same", 16, 16, 8, 20);
    check_thread_independence("AveragePooling2D", "pool_size=3, strides=2, padding=same", 16, 16, 8, 20);
    check_thread_independence("GlobalAveragePooling2D", "", 16, 16, 8, 20);
    check_thread_independence("Resizing", "height=25, width=30", 16, 16, 8, 20);
    check_thread_independence("Resizing", "height=32, width=32, interpolation=nearest", 16, 16, 8, 20);
    check_thread_independence("ZeroPadding2D", "padding=((1,2),(3,0))", 16, 16, 8, 20);
    check_thread_independence("Dropout", "rate=0.4", 16, 16, 8, 20);
    check_thread_independence("ReLU", "negative_slope=0.1", 16, 16, 8, 20);
}

/* The study's preprocessing layers in a trainable model: shapes, summary counts, and loss going down. */
static void test_layers_in_a_model(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("mix", 8, 8, 1);
    assert_int_equal(cnn_model_add(m, "ZeroPadding2D", "padding=((2,1),(0,3))"), 0);
    assert_int_equal(cnn_model_add(m, "Resizing", "height=6, width=6, interpolation=bilinear"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=4"), 0);
    assert_int_equal(cnn_model_add(m, "BatchNormalization", ""), 0);
    assert_int_equal(cnn_model_add(m, "LeakyReLU", ""), 0);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", ""), 0);
    assert_int_equal(cnn_model_add(m, "AveragePooling2D", "pool_size=2, padding=same"), 0);
    assert_int_equal(cnn_model_add(m, "Dropout", "rate=0.2"), 0);
    assert_int_equal(cnn_model_add(m, "GlobalAveragePooling2D", ""), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=3"), 0);
    assert_int_equal(cnn_model_add(m, "Softmax", ""), 0);
    assert_int_equal(cnn_model_build(m, 7), 0);
    assert_int_equal(cnn_model_num_params(m, 0), 8 + 16 + 15);
    assert_int_equal(cnn_model_num_params(m, 1), 8 + 8 + 15);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.05);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    enum { N = 12 };
    float x[N * 64];
    int32_t y[N];
    for (int s = 0; s < N; s++) {
        y[s] = s % 3;
        for (int p = 0; p < 64; p++) x[s * 64 + p] = 0.3f * (float)y[s] + 0.1f * (float)((7 * p + s) % 5);
    }
    double first = 0, loss = 0;
    int correct;
    for (int step = 0; step < 60; step++) {
        assert_int_equal(cnn_model_train_step(m, x, y, N, &loss, &correct), 0);
        assert_true(isfinite(loss));
        if (step == 0) first = loss;
    }
    assert_true(loss < 0.5 * first);

    /* saved and loaded (options re-read, moving statistics kept), it predicts the same */
    float p1[N * 3], p2[N * 3];
    assert_int_equal(cnn_model_forward(m, x, N, 0, p1), 0);
    assert_int_equal(cnn_model_save(m, tu_path("mix.cnn")), 0);
    cnn_model *back = cnn_model_load(tu_path("mix.cnn"));
    if (!back) fail_msg("load: %s", cnn_errmsg());
    assert_int_equal(cnn_model_forward(back, x, N, 0, p2), 0);
    assert_memory_equal(p1, p2, sizeof p1);
    cnn_model_free(back);
    cnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_pooling_gradients),
        cmocka_unit_test(test_average_pooling_gradients),
        cmocka_unit_test(test_max_pooling_ties_follow_tensorflow),
        cmocka_unit_test(test_average_pooling_same_divides_by_valid_count),
        cmocka_unit_test(test_pooling_shapes_and_errors),
        cmocka_unit_test(test_zero_padding),
        cmocka_unit_test(test_resizing_gradients),
        cmocka_unit_test(test_resizing_nearest_2x_is_pixel_duplication),
        cmocka_unit_test(test_resizing_values_follow_tensorflow),
        cmocka_unit_test(test_resizing_errors),
        cmocka_unit_test(test_batch_norm_gradients),
        cmocka_unit_test(test_batch_norm_training_follows_keras),
        cmocka_unit_test(test_batch_norm_inference_uses_moving_statistics),
        cmocka_unit_test(test_batch_norm_frozen_runs_in_inference_mode),
        cmocka_unit_test(test_batch_norm_params_and_errors),
        cmocka_unit_test(test_dropout_gradients),
        cmocka_unit_test(test_dropout_masks),
        cmocka_unit_test(test_dropout_errors),
        cmocka_unit_test(test_activation_layer_gradients),
        cmocka_unit_test(test_activation_layer_values),
        cmocka_unit_test(test_activation_layer_errors),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_layers_in_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
