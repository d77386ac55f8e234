/* The non-convolution layers: pooling, ZeroPadding2D, Resizing, BatchNormalization, Dropout and the
 * activation layers. Finite-difference gradient checks over several configurations, forward and backward
 * values against TensorFlow 2.15 (tests/data/tf_layers_ref.txt, written by scripts/ref_tf_layers.py),
 * option and shape errors, thread-count independence and a save/load round trip. */
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

/* BatchNormalization's input in scripts/ref_tf_layers.py: (arange(24) * 0.37) % 1.3 - 0.4 in float32 */
static const float BN_X[24] = {-0.400000006f,  -0.0300000012f, 0.340000004f,   0.710000038f,   -0.219999939f,
                               0.150000066f,   0.5200001f,     0.890000224f,   -0.0399998724f, 0.330000013f,
                               0.700000167f,   -0.229999691f,  0.140000194f,   0.51000011f,    0.880000472f,
                               -0.0499996245f, 0.320000261f,   0.690000176f,   -0.23999992f,   0.130000442f,
                               0.500000358f,   0.870000243f,   -0.0599993765f, 0.310000509f};

/* The moving statistics follow the momentum formula on a second step, from the state the first left (the
 * first step's values are checked against TensorFlow in tf_layers_ref.txt). */
static void test_batch_norm_momentum_update(void **state)
{
    (void)state;
    float y[24];
    layer_run v = run_make("BatchNormalization", "", 1, 1, 4, 6);
    run_forward(&v, BN_X, y, 1, 0);
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

/* Inference is affine per channel with the moving statistics, so its backward is checked against the
 * closed form (the forward values against TensorFlow in tf_layers_ref.txt). */
static void test_batch_norm_inference_uses_moving_statistics(void **state)
{
    (void)state;
    const float gamma[2] = {1.5f, -0.5f}, beta[2] = {0.1f, 0.2f}, mean[2] = {0.3f, -0.1f},
                var[2] = {0.8f, 2.0f};
    layer_run r = run_make("BatchNormalization", "momentum=0.9, epsilon=1e-5", 2, 3, 2, 2);
    set_bn_params(r.l, gamma, beta, mean, var);
    float y[24], dy[24], dx[24];
    run_forward(&r, BN_X, y, 0, 0);
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

/* Activation(softmax) at the end of a model is left to the loss, like a Dense softmax (the activation
 * layers' values are checked against TensorFlow in tf_layers_ref.txt). */
static void test_activation_softmax_output(void **state)
{
    (void)state;
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

/* ---------------------------------------------------------------- the recorded TensorFlow values */

/* tests/data/tf_layers_ref.txt, written by scripts/ref_tf_layers.py with TensorFlow 2.15 (format there):
 * single layers on small inputs where the semantics are easy to get wrong. Each case runs here with the same
 * input, weights and training flag; the output, the input gradient of sum(y * dy) and the weights after the
 * call must match within the case's tolerances. A missing or malformed file fails the test. */

typedef struct tf_case {
    char name[64], type[64], options[128];
    int shape[4], training;
    float *v[6]; /* x, weights, y, dy, dx, params */
    int n[6];
    double tol[3];
} tf_case;

enum { TF_X, TF_WEIGHTS, TF_Y, TF_DY, TF_DX, TF_PARAMS };
static const char *const TF_KEYS[6] = {"x", "weights", "y", "dy", "dx", "params"};

/* The floats of text, in a new array; their count in *n. */
static float *tf_floats(const char *text, int *n, const char *what)
{
    size_t cap = 16;
    float *v = malloc(sizeof(float) * cap);
    assert_non_null(v);
    *n = 0;
    for (char *end;; text = end) {
        while (*text == ' ') text++;
        if (!*text) return v;
        if ((size_t)*n == cap) assert_non_null(v = realloc(v, sizeof(float) * (cap *= 2)));
        v[(*n)++] = strtof(text, &end);
        if (end == text) fail_msg("%s: '%.20s' is not a number", what, text);
    }
}

/* One line of a case; returns 1 at its "end". */
static int tf_parse_line(tf_case *c, const char *key, const char *rest)
{
    if (!strcmp(key, "end")) return 1;
    for (int k = 0; k < 6; k++)
        if (!strcmp(key, TF_KEYS[k])) {
            c->v[k] = tf_floats(rest, &c->n[k], c->name);
            return 0;
        }
    if (!strcmp(key, "layer"))
        snprintf(c->type, sizeof c->type, "%s", rest);
    else if (!strcmp(key, "options"))
        snprintf(c->options, sizeof c->options, "%s", rest);
    else if (!strcmp(key, "training"))
        c->training = atoi(rest);
    else if (!strcmp(key, "input")) {
        if (sscanf(rest, "%d %d %d %d", &c->shape[0], &c->shape[1], &c->shape[2], &c->shape[3]) != 4)
            fail_msg("%s: bad input line '%s'", c->name, rest);
    } else if (!strcmp(key, "tol")) {
        if (sscanf(rest, "%lf %lf %lf", &c->tol[0], &c->tol[1], &c->tol[2]) != 3)
            fail_msg("%s: bad tol line '%s'", c->name, rest);
    } else if (strcmp(key, "keras"))
        fail_msg("%s: unknown line '%s'", c->name, key);
    return 0;
}

static void tf_assert_close(const tf_case *c, const float *got, int k, int count, double tol)
{
    if (c->n[k] != count) fail_msg("%s: %s has %d values, the layer %d", c->name, TF_KEYS[k], c->n[k], count);
    for (int i = 0; i < count; i++)
        if (!(fabs((double)got[i] - c->v[k][i]) <= tol))
            fail_msg("%s: %s[%d] = %.9g, TensorFlow %.9g (tolerance %g)", c->name, TF_KEYS[k], i, got[i],
                     c->v[k][i], tol);
}

/* Copies the recorded weights into the layer's parameters, in order. */
static void tf_set_weights(const tf_case *c, cnn_layer *l)
{
    int at = 0;
    for (int j = 0; j < l->nparams; j++) {
        const int size = (int)l->params[j].size;
        if (at + size > c->n[TF_WEIGHTS]) fail_msg("%s: too few weights", c->name);
        memcpy(cnn_layer_param(l, j), c->v[TF_WEIGHTS] + at, sizeof(float) * size);
        at += size;
    }
    if (at != c->n[TF_WEIGHTS]) fail_msg("%s: %d weights, the layer has %d", c->name, c->n[TF_WEIGHTS], at);
}

static void tf_check_params(const tf_case *c, cnn_layer *l)
{
    float all[256];
    int at = 0;
    for (int j = 0; j < l->nparams; j++) {
        const int size = (int)l->params[j].size;
        if (at + size > 256) fail_msg("%s: more parameters than the test keeps", c->name);
        memcpy(all + at, cnn_layer_param(l, j), sizeof(float) * size);
        at += size;
    }
    tf_assert_close(c, all, TF_PARAMS, at, c->tol[2]);
}

static void tf_run_case(const tf_case *c)
{
    layer_run r = run_make(c->type, c->options, c->shape[1], c->shape[2], c->shape[3], c->shape[0]);
    if (c->n[TF_X] != (int)run_in(&r))
        fail_msg("%s: x has %d values, the layer takes %zu", c->name, c->n[TF_X], run_in(&r));
    if (c->v[TF_WEIGHTS]) tf_set_weights(c, r.l);
    float *y = floats(run_out(&r)), *dx = floats(run_in(&r));
    run_forward(&r, c->v[TF_X], y, c->training, 0);
    tf_assert_close(c, y, TF_Y, (int)run_out(&r), c->tol[0]);
    if (c->v[TF_DY]) {
        if (c->n[TF_DY] != (int)run_out(&r)) fail_msg("%s: dy has %d values", c->name, c->n[TF_DY]);
        run_backward(&r, c->v[TF_X], y, c->v[TF_DY], dx, c->training, 0);
        tf_assert_close(c, dx, TF_DX, (int)run_in(&r), c->tol[1]);
    }
    if (c->v[TF_PARAMS]) tf_check_params(c, r.l);
    free(y), free(dx);
    run_free(&r);
}

/* Reads the lines of case `name` up to its "end". */
static void tf_read_case(FILE *f, char **line, size_t *cap, const char *name, tf_case *c)
{
    char *rest = NULL, *key;
    snprintf(c->name, sizeof c->name, "%s", name);
    do {
        if (!(key = tu_next_entry(f, line, cap, &rest))) fail_msg("%s: the file ends inside it", c->name);
    } while (!tf_parse_line(c, key, rest));
}

static void test_tensorflow_reference_values(void **state)
{
    (void)state;
    FILE *f = tu_open_data("tf_layers_ref.txt", "CNN_TF_LAYERS_REF", "scripts/ref_tf_layers.py");
    char *line = NULL, *rest = NULL, *key;
    size_t cap = 0;
    int cases = 0, with_dx = 0;
    while ((key = tu_next_entry(f, &line, &cap, &rest))) {
        if (strcmp(key, "case")) fail_msg("tf_layers_ref.txt: expected 'case', found '%s'", key);
        tf_case c = {0};
        tf_read_case(f, &line, &cap, rest, &c);
        tf_run_case(&c);
        cases++;
        with_dx += c.v[TF_DY] != NULL;
        for (int k = 0; k < 6; k++) free(c.v[k]);
    }
    free(line);
    fclose(f);
    assert_true(cases >= 20 && with_dx >= 10); /* a file cut short fails */
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
        cmocka_unit_test(test_pooling_shapes_and_errors),
        cmocka_unit_test(test_zero_padding),
        cmocka_unit_test(test_resizing_gradients),
        cmocka_unit_test(test_resizing_nearest_2x_is_pixel_duplication),
        cmocka_unit_test(test_resizing_errors),
        cmocka_unit_test(test_batch_norm_gradients),
        cmocka_unit_test(test_batch_norm_momentum_update),
        cmocka_unit_test(test_batch_norm_inference_uses_moving_statistics),
        cmocka_unit_test(test_batch_norm_frozen_runs_in_inference_mode),
        cmocka_unit_test(test_batch_norm_params_and_errors),
        cmocka_unit_test(test_dropout_gradients),
        cmocka_unit_test(test_dropout_masks),
        cmocka_unit_test(test_dropout_errors),
        cmocka_unit_test(test_activation_layer_gradients),
        cmocka_unit_test(test_activation_softmax_output),
        cmocka_unit_test(test_tensorflow_reference_values),
        cmocka_unit_test(test_activation_layer_errors),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_layers_in_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
