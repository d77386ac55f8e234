/* The open training loop, through the public API only: batch sources (custom, transform, sequence, cached
 * features), batch and gradient hooks, headless models, explicit losses, tensor access and the run record. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { SIDE = 6, CLASSES = 3, N = 45, BATCH = 8 };

static float noise(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f;
}

/* 6x6 images: class k brightens band k of rows, over noise. */
static cnn_dataset make_data(int n, uint32_t seed)
{
    cnn_dataset ds = {.n = n, .h = SIDE, .w = SIDE, .c = 1, .num_classes = CLASSES};
    ds.x = malloc(sizeof(float) * SIDE * SIDE * n);
    ds.y = malloc(sizeof(int32_t) * n);
    assert_true(ds.x && ds.y);
    for (int i = 0; i < n; i++) {
        ds.y[i] = i % CLASSES;
        for (int p = 0; p < SIDE * SIDE; p++)
            ds.x[i * SIDE * SIDE + p] = (p / SIDE / 2 == ds.y[i] ? 0.7f : 0.0f) + 0.3f * noise(&seed);
    }
    return ds;
}

/* Conv -> pool -> dropout? -> dense softmax (or linear logits). */
static cnn_model *make_model(int dropout, const char *last_act)
{
    cnn_model *m = cnn_model_create("loop", SIDE, SIDE, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Conv2D", "filters=4, kernel_size=3, activation=relu, name=conv"), 0);
    assert_int_equal(cnn_model_add(m, "MaxPooling2D", "pool_size=2"), 0);
    if (dropout) assert_int_equal(cnn_model_add(m, "Dropout", "rate=0.25"), 0);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    char opts[64];
    snprintf(opts, sizeof opts, "units=%d, activation=%s, name=out", CLASSES, last_act);
    assert_int_equal(cnn_model_add(m, "Dense", opts), 0);
    assert_int_equal(cnn_model_build(m, 7), 0);
    return m;
}

static void compile(cnn_model *m, cnn_optimizer_kind kind, double lr, int from_logits)
{
    cnn_optimizer_config opt = cnn_optimizer_default(kind, lr);
    cnn_loss_config loss = {CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, from_logits};
    assert_int_equal(cnn_model_compile_loss(m, &opt, &loss), 0);
}

static cnn_fit_config config(int epochs)
{
    cnn_fit_config c = cnn_fit_default();
    c.epochs = epochs;
    c.batch_size = BATCH;
    c.seed = 3;
    c.verbose = CNN_VERBOSE_SILENT;
    return c;
}

static void assert_same_params(cnn_model *a, cnn_model *b)
{
    size_t n = cnn_model_num_params(a, 0);
    assert_int_equal(n, cnn_model_num_params(b, 0));
    assert_memory_equal(cnn_model_params(a), cnn_model_params(b), n * sizeof(float));
}

/* ------------------------------------------------------------------ a custom source */

typedef struct fixed_order {
    const cnn_dataset *ds;
    int calls, begins, ends;
} fixed_order;

/* Batches in dataset order: what fit draws with shuffle off. */
static int fixed_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    (void)epoch;
    fixed_order *f = s->state;
    int start = batch * s->batch_size,
        k = f->ds->n - start < s->batch_size ? f->ds->n - start : s->batch_size;
    memcpy(x, f->ds->x + (size_t)start * SIDE * SIDE, sizeof(float) * SIDE * SIDE * k);
    memcpy(y, f->ds->y + start, sizeof(int32_t) * k);
    *n = k;
    f->calls++;
    return 0;
}

static int lying_fill(cnn_source *s, int epoch, int batch, float *x, int32_t *y, int *n)
{
    (void)epoch, (void)batch, (void)x, (void)y;
    *n = s->batch_size + 1;
    return 0;
}

static int fixed_begin(cnn_source *s, int epoch)
{
    (void)epoch;
    ((fixed_order *)s->state)->begins++;
    return 0;
}

static int fixed_end(cnn_source *s, int epoch)
{
    (void)epoch;
    ((fixed_order *)s->state)->ends++;
    return 0;
}

static void test_custom_source(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 1);
    fixed_order f = {.ds = &ds};
    cnn_source src = {.name = "fixed",
                      .state = &f,
                      .h = SIDE,
                      .w = SIDE,
                      .c = 1,
                      .batch_size = BATCH,
                      .batches = (N + BATCH - 1) / BATCH,
                      .samples = N,
                      .labeled = 1,
                      .fill = fixed_fill,
                      .begin_epoch = fixed_begin,
                      .end_epoch = fixed_end};
    cnn_model *a = make_model(0, "softmax"), *b = make_model(0, "softmax");
    compile(a, CNN_OPT_ADAM, 0.01, 0);
    compile(b, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(3);
    cnn_history ha, hb;
    assert_int_equal(cnn_model_fit_source(a, &src, &c, &ha), 0);
    assert_int_equal(f.calls, 3 * src.batches);
    assert_int_equal(f.begins, 3);
    assert_int_equal(f.ends, 3);
    c.shuffle = 0;
    assert_int_equal(cnn_model_fit(b, &ds, &c, &hb), 0);
    assert_same_params(a, b);
    assert_true(ha.epochs[2].loss == hb.epochs[2].loss);

    /* A source that reports more samples than its batch size, or the wrong shape, ends fit with a clear
     * error. */
    cnn_history_free(&ha);
    src.fill = lying_fill;
    tu_assert_error(cnn_model_fit_source(a, &src, &c, &ha), CNN_ERR_INVALID,
                    "source 'fixed': batch 0 of epoch 1 has 9 samples; expected 1..8");
    src.fill = fixed_fill;
    cnn_history_free(&ha);
    src.h = 5;
    tu_assert_error(cnn_model_fit_source(a, &src, &c, &ha), CNN_ERR_SHAPE, "yields 5x6x1 samples");
    cnn_history_free(&ha);
    cnn_history_free(&hb);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ per-sample transform */

/* Random brightness and a random horizontal flip, drawn per (seed, epoch, index). */
static void jitter(void *ctx, const float *in, int h, int w, int c, float *out, uint64_t seed, int epoch,
                   int index)
{
    (void)ctx;
    float gain = 0.8f + 0.4f * (float)cnn_random_uniform(seed, epoch, index, 0);
    int flip = cnn_random_uniform(seed, epoch, index, 1) < 0.5;
    for (int r = 0; r < h; r++)
        for (int col = 0; col < w; col++)
            for (int k = 0; k < c; k++)
                out[(r * w + col) * c + k] = gain * in[(r * w + (flip ? w - 1 - col : col)) * c + k];
}

static cnn_model *train_transformed(const cnn_dataset *ds, int threads, cnn_history *h)
{
    cnn_set_threads(threads);
    cnn_transform t = {.apply = jitter};
    cnn_source *s = cnn_source_transform(ds, BATCH, 1, 5, &t);
    assert_non_null(s);
    cnn_model *m = make_model(1, "softmax");
    compile(m, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(3);
    assert_int_equal(cnn_model_fit_source(m, s, &c, h), 0);
    cnn_source_free(s);
    return m;
}

static void test_transform_threads(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(200, 2);
    cnn_history h1, h2, h0;
    cnn_model *one = train_transformed(&ds, 1, &h1), *two = train_transformed(&ds, 2, &h2);
    assert_same_params(one, two);
    assert_true(h1.epochs[2].loss == h2.epochs[2].loss);
    /* The transform did something: plain batches train to other weights. */
    cnn_model *plain = make_model(1, "softmax");
    compile(plain, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(3);
    c.seed = 5;
    assert_int_equal(cnn_model_fit(plain, &ds, &c, &h0), 0);
    assert_memory_not_equal(cnn_model_params(one), cnn_model_params(plain), sizeof(float) * 8);
    /* Draws are independent of the order they are made in, and differ between epochs and samples. */
    assert_true(cnn_random_uniform(5, 1, 2, 0) == cnn_random_uniform(5, 1, 2, 0));
    assert_true(cnn_random_uniform(5, 1, 2, 0) != cnn_random_uniform(5, 2, 2, 0));
    assert_true(cnn_random_uniform(5, 1, 2, 0) != cnn_random_uniform(5, 1, 3, 0));
    cnn_set_threads(2);
    cnn_history_free(&h0);
    cnn_history_free(&h1);
    cnn_history_free(&h2);
    cnn_model_free(one);
    cnn_model_free(two);
    cnn_model_free(plain);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ sequence */

typedef struct seq_ctx {
    const cnn_dataset *ds;
    int built[8];
    int order[4][8]; /* indices asked for, per epoch, when not memoised */
    int asked;
} seq_ctx;

static int seq_get(void *ctx, int index, float *x, int32_t *y, int *n)
{
    seq_ctx *q = ctx;
    q->built[index]++;
    q->order[q->asked / 5][q->asked % 5] = index;
    q->asked++;
    int start = index * 9;
    memcpy(x, q->ds->x + (size_t)start * SIDE * SIDE, sizeof(float) * SIDE * SIDE * 9);
    memcpy(y, q->ds->y + start, sizeof(int32_t) * 9);
    *n = 9;
    return 0;
}

static void test_sequence(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 3);
    seq_ctx q = {.ds = &ds};
    cnn_source *s = cnn_source_sequence(5, 9, SIDE, SIDE, 1, seq_get, &q, 1, 11, 0);
    assert_non_null(s);
    cnn_model *m = make_model(0, "softmax");
    compile(m, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(4);
    cnn_history h;
    assert_int_equal(cnn_model_fit_source(m, s, &c, &h), 0);
    /* Every epoch asks for each of the 5 batches once, in an order shuffled per epoch. */
    int differ = 0;
    for (int e = 0; e < 4; e++) {
        int seen[5] = {0};
        for (int i = 0; i < 5; i++) seen[q.order[e][i]]++;
        for (int i = 0; i < 5; i++) assert_int_equal(seen[i], 1);
        differ += memcmp(q.order[e], q.order[0], sizeof q.order[0]) != 0;
    }
    assert_true(differ >= 2);
    cnn_source_free(s);

    /* Memoised: each batch is built once over all epochs. */
    seq_ctx r = {.ds = &ds};
    s = cnn_source_sequence(5, 9, SIDE, SIDE, 1, seq_get, &r, 1, 11, 1);
    cnn_history_free(&h);
    assert_int_equal(cnn_model_fit_source(m, s, &c, &h), 0);
    for (int i = 0; i < 5; i++) assert_int_equal(r.built[i], 1);
    cnn_source_free(s);
    assert_null(cnn_source_sequence(0, 9, SIDE, SIDE, 1, seq_get, &r, 1, 11, 1));
    tu_assert_error(CNN_ERR_INVALID, cnn_errcode(), "sequence: needs batches >= 1");
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ hooks */

typedef struct hook_state {
    float scale;
    int batch_begins, batch_ends, gradients;
    double last_mean;
    int stop_after;
} hook_state;

static int scale_grads(cnn_callback *cb, cnn_model *m, int epoch, int batch)
{
    (void)epoch, (void)batch;
    hook_state *s = cb->state;
    float *g = cnn_model_grads(m);
    for (size_t i = 0; i < cnn_model_num_params(m, 0); i++) g[i] *= s->scale;
    s->gradients++;
    return 0;
}

static int count_begin(cnn_callback *cb, cnn_model *m, int epoch, int batch)
{
    (void)m, (void)epoch, (void)batch;
    ((hook_state *)cb->state)->batch_begins++;
    return 0;
}

static int count_end(cnn_callback *cb, cnn_model *m, const cnn_batch_log *log, int *stop)
{
    (void)m;
    hook_state *s = cb->state;
    s->batch_ends++;
    assert_true(log->size >= 1 && log->size <= BATCH);
    assert_true(log->accuracy >= 0 && log->accuracy <= 1);
    s->last_mean = log->mean_loss;
    if (s->stop_after && s->batch_ends == s->stop_after) *stop = 1;
    return 0;
}

static void test_gradient_hook(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 4);
    cnn_model *a = make_model(0, "softmax"), *b = make_model(0, "softmax");
    compile(a, CNN_OPT_SGD, 0.05, 0);
    compile(b, CNN_OPT_SGD, 0.1, 0);
    hook_state hs = {.scale = 2.0f};
    cnn_callback cb = {.name = "scale",
                       .state = &hs,
                       .on_gradients = scale_grads,
                       .on_train_batch_begin = count_begin,
                       .on_train_batch_end = count_end};
    cnn_callback *list[] = {&cb};
    cnn_fit_config c = config(2);
    c.callbacks = list;
    c.num_callbacks = 1;
    cnn_history ha, hb;
    assert_int_equal(cnn_model_fit(a, &ds, &c, &ha), 0);
    int batches = 2 * ((N + BATCH - 1) / BATCH);
    assert_int_equal(hs.gradients, batches);
    assert_int_equal(hs.batch_begins, batches);
    assert_int_equal(hs.batch_ends, batches);
    assert_true(hs.last_mean == ha.epochs[1].loss); /* the last batch's running mean is the epoch's loss */
    /* SGD at lr 0.05 on doubled gradients is SGD at lr 0.1. */
    c.num_callbacks = 0;
    assert_int_equal(cnn_model_fit(b, &ds, &c, &hb), 0);
    assert_same_params(a, b);

    /* A batch hook may stop training: fit ends after that batch, with the epoch closed. */
    hook_state stop = {.scale = 1.0f, .stop_after = 3};
    cb.state = &stop;
    c.num_callbacks = 1;
    c.epochs = 5;
    cnn_history_free(&ha);
    assert_int_equal(cnn_model_fit(a, &ds, &c, &ha), 0);
    assert_int_equal(stop.batch_ends, 3);
    assert_int_equal(ha.count, 1);
    assert_int_equal(ha.stopped_epoch, 0);
    assert_non_null(strstr(ha.stop_reason, "scale"));
    cnn_history_free(&ha);
    cnn_history_free(&hb);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ headless models and losses */

static void test_headless(void **state)
{
    (void)state;
    cnn_model *m = cnn_model_create("features", 4, 4, 1);
    assert_int_equal(
        cnn_model_add(m, "Conv2D", "filters=2, kernel_size=3, padding=same, activation=relu, name=c"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    assert_int_equal(cnn_model_num_outputs(m), 4 * 4 * 2);
    int h, w, c;
    assert_int_equal(cnn_model_layer_shape(m, 0, &h, &w, &c), 0);
    assert_true(h == 4 && w == 4 && c == 2);
    /* Kernel: filter 0 copies the pixel, filter 1 negates it; bias 0.5. */
    cnn_tensor k, b;
    assert_int_equal(cnn_model_find_tensor(m, "c/kernel", &k), 0);
    assert_int_equal(cnn_model_find_tensor(m, "c/bias", &b), 0);
    assert_true(k.rank == 4 && k.dim[0] == 3 && k.dim[3] == 2 && k.size == 18 && k.trainable);
    memset(k.data, 0, sizeof(float) * k.size);
    k.data[(1 * 3 + 1) * 2 + 0] = 1.0f;
    k.data[(1 * 3 + 1) * 2 + 1] = -1.0f;
    b.data[0] = b.data[1] = 0.5f;
    float x[2 * 16], out[2 * 32];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 32;
    assert_int_equal(cnn_model_predict(m, x, 2, 2, out), 0);
    for (int i = 0; i < 32; i++) {
        assert_true(out[2 * i] == x[i] + 0.5f);
        assert_true(out[2 * i + 1] == fmaxf(0.5f - x[i], 0.0f));
    }
    /* A loss needs one value per class. */
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.01);
    tu_assert_error(cnn_model_compile(m, &opt), CNN_ERR_SHAPE, "outputs (4, 4, 2) per sample");
    cnn_model_free(m);
}

static void copy_params(cnn_model *to, cnn_model *from)
{
    assert_int_equal(cnn_model_num_tensors(to), cnn_model_num_tensors(from));
    for (int i = 0; i < cnn_model_num_tensors(to); i++) {
        cnn_tensor a, b;
        assert_int_equal(cnn_model_tensor(to, i, &a), 0);
        assert_int_equal(cnn_model_tensor(from, i, &b), 0);
        assert_string_equal(a.name, b.name);
        memcpy(a.data, b.data, sizeof(float) * a.size);
    }
}

static void test_from_logits(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 5);
    cnn_model *p = make_model(0, "softmax"), *l = make_model(0, "linear");
    compile(p, CNN_OPT_ADAM, 0.01, 0);
    compile(l, CNN_OPT_ADAM, 0.01, 1);
    copy_params(l, p);
    double lp, ll, ap, al;
    assert_int_equal(cnn_model_evaluate(p, &ds, 16, &lp, &ap), 0);
    assert_int_equal(cnn_model_evaluate(l, &ds, 16, &ll, &al), 0);
    assert_true(lp == ll && ap == al);
    /* The logits model predicts logits, the other their softmax. */
    float pp[3], pl[3];
    assert_int_equal(cnn_model_predict(p, ds.x, 1, 1, pp), 0);
    assert_int_equal(cnn_model_predict(l, ds.x, 1, 1, pl), 0);
    double z = exp(pl[0]) + exp(pl[1]) + exp(pl[2]);
    for (int i = 0; i < 3; i++) assert_true(fabs(pp[i] - exp(pl[i]) / z) < 1e-6);
    /* And the two train alike. */
    cnn_fit_config c = config(2);
    cnn_history hp, hl;
    assert_int_equal(cnn_model_fit(p, &ds, &c, &hp), 0);
    assert_int_equal(cnn_model_fit(l, &ds, &c, &hl), 0);
    assert_same_params(p, l);
    /* A softmax under from_logits=True would apply it twice. */
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.01);
    cnn_loss_config logits = {CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1};
    tu_assert_error(cnn_model_compile_loss(p, &opt, &logits), CNN_ERR_INVALID,
                    "from_logits=True expects logits");
    cnn_history_free(&hp);
    cnn_history_free(&hl);
    cnn_model_free(p);
    cnn_model_free(l);
    cnn_dataset_free(&ds);
}

/* A spec's loss line, and a logits model saved and loaded with its loss. */
static void test_spec_loss_and_file(void **state)
{
    (void)state;
    const char *text = "model: logits\ninput: (6, 6, 1)\nlayers:\n    Flatten()\n    Dense(3)\n"
                       "loss: SparseCategoricalCrossentropy(from_logits=True)\n";
    cnn_spec *s = cnn_spec_parse(text, "logits.spec");
    assert_non_null(s);
    cnn_model *m = cnn_spec_build_model(s, 1);
    assert_non_null(m);
    cnn_dataset ds = make_data(N, 11);
    double l1, l2, a1, a2;
    assert_int_equal(cnn_model_evaluate(m, &ds, 16, &l1, &a1), 0);
    assert_int_equal(cnn_model_save_ex(m, tu_path("logits.cnn"), CNN_SAVE_OPTIMIZER), 0);
    cnn_model *back = cnn_model_load(tu_path("logits.cnn"));
    assert_non_null(back);
    assert_int_equal(cnn_model_evaluate(back, &ds, 16, &l2, &a2), 0);
    assert_true(l1 == l2 && a1 == a2);
    cnn_model_free(back);
    assert_int_equal(cnn_model_save(m, tu_path("logits_plain.cnn")), 0);
    back = cnn_model_load(tu_path("logits_plain.cnn"));
    assert_non_null(back);
    assert_int_equal(cnn_model_evaluate(back, &ds, 16, &l2, &a2),
                     0); /* the loss came back without an optimizer */
    assert_true(l1 == l2);
    cnn_model_free(back);
    cnn_model_free(m);
    cnn_spec_free(s);

    /* The default loss needs a softmax; an unknown loss is named with its line. Both when the spec is read.
     */
    assert_null(
        cnn_spec_parse("model: l\ninput: (6, 6, 1)\nlayers:\n    Flatten()\n    Dense(3)\n", "nolo.spec"));
    tu_assert_error(CNN_ERR_INVALID, cnn_errcode(),
                    "nolo.spec:5:5: model 'l': the loss expects probabilities");
    assert_null(cnn_spec_parse(
        "model: l\ninput: (6, 6, 1)\nlayers:\n    Flatten()\n    Dense(3)\nloss: mse\n", "mse.spec"));
    tu_assert_error(CNN_ERR_FORMAT, cnn_errcode(), "mse.spec:6:7: unknown loss 'mse'");

    /* Without an output folder, a spec's ModelCheckpoint is left out rather than writing into "." */
    s = cnn_spec_parse(
        "model: l\ninput: (6, 6, 1)\nlayers:\n    Flatten()\n    Dense(3, activation=softmax)\n"
        "callbacks:\n    ModelCheckpoint(monitor=\"val_loss\")\n    EarlyStopping(patience=2)\n",
        "ckpt.spec");
    assert_non_null(s);
    cnn_callback **cbs;
    int ncb;
    assert_int_equal(cnn_spec_callbacks(s, NULL, &cbs, &ncb), 0);
    assert_int_equal(ncb, 1);
    assert_non_null(strstr(cbs[0]->name, "EarlyStopping"));
    cnn_callback_free(cbs[0]);
    free(cbs);
    assert_int_equal(cnn_spec_callbacks(s, tu_tmpdir(), &cbs, &ncb), 0);
    assert_int_equal(ncb, 2);
    for (int i = 0; i < ncb; i++) cnn_callback_free(cbs[i]);
    free(cbs);
    cnn_spec_free(s);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ tensors and trainable */

static void test_tensors(void **state)
{
    (void)state;
    cnn_model *m = make_model(0, "softmax");
    assert_int_equal(cnn_model_num_tensors(m), 4);
    static const char *const names[] = {"conv/kernel", "conv/bias", "out/kernel", "out/bias"};
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        cnn_tensor t;
        assert_int_equal(cnn_model_tensor(m, i, &t), 0);
        assert_string_equal(t.name, names[i]);
        assert_true(t.data == cnn_model_params(m) + total);
        total += t.size;
    }
    assert_int_equal(total, cnn_model_num_params(m, 0));
    cnn_tensor t;
    tu_assert_error(cnn_model_tensor(m, 4, &t), CNN_ERR_INVALID, "index 4 is out of range");
    tu_assert_error(cnn_model_find_tensor(m, "conv/gamma", &t), CNN_ERR_INVALID,
                    "no tensor named 'conv/gamma'");
    tu_assert_error(cnn_model_find_tensor(m, "nope", &t), CNN_ERR_INVALID, "no tensor named 'nope'");
    cnn_model_free(m);
}

/* Freezing keeps the optimizer's state: iterations, lr and the moments of the layers that stay trainable. */
static void test_trainable_keeps_state(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 6);
    cnn_model *m = make_model(0, "softmax");
    compile(m, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(1);
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &ds, &c, &h), 0);
    long it = cnn_model_iterations(m);
    assert_int_equal(it, (N + BATCH - 1) / BATCH);
    cnn_model_set_learning_rate(m, 0.003);
    cnn_tensor conv;
    assert_int_equal(cnn_model_find_tensor(m, "conv/kernel", &conv), 0);
    float before[36];
    memcpy(before, conv.data, sizeof before);
    assert_int_equal(cnn_model_set_trainable(m, "conv", 0), 0);
    assert_int_equal(cnn_model_iterations(m), it);
    assert_true(cnn_model_learning_rate(m) == 0.003);
    assert_int_equal(cnn_model_find_tensor(m, "conv/kernel", &conv), 0);
    assert_false(conv.trainable);
    assert_int_equal(cnn_model_frozen_prefix(m), 3); /* conv, pooling, flatten */
    cnn_history_free(&h);
    assert_int_equal(cnn_model_fit(m, &ds, &c, &h), 0);
    assert_memory_equal(conv.data, before, sizeof before);
    assert_int_equal(cnn_model_iterations(m), 2 * it);
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&ds);
}

/* ------------------------------------------------------------------ cached features */

static void test_cached_features(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 7), val = make_data(20, 8);
    cnn_model *a = make_model(0, "softmax"), *b = make_model(0, "softmax");
    assert_int_equal(cnn_model_set_trainable(a, "conv", 0), 0);
    assert_int_equal(cnn_model_set_trainable(b, "conv", 0), 0);
    compile(a, CNN_OPT_ADAM, 0.01, 0);
    compile(b, CNN_OPT_ADAM, 0.01, 0);
    cnn_fit_config c = config(3);
    c.validation = &val;
    cnn_history ha, hb;
    assert_int_equal(cnn_model_fit(a, &ds, &c, &ha), 0);
    double secs = -1;
    int through = cnn_model_frozen_prefix(b) - 1;
    cnn_source *tr = cnn_source_features(b, through, &ds, BATCH, 1, c.seed, &secs);
    cnn_source *va = cnn_source_features(b, through, &val, BATCH, 0, 0, NULL);
    assert_true(tr && va && secs >= 0);
    assert_int_equal(tr->first_layer, through + 1);
    c.validation_source = va;
    assert_int_equal(cnn_model_fit_source(b, tr, &c, &hb), 0);
    assert_same_params(a, b);
    for (int e = 0; e < 3; e++) {
        assert_true(ha.epochs[e].loss == hb.epochs[e].loss);
        assert_true(ha.epochs[e].val_loss == hb.epochs[e].val_loss);
    }
    cnn_source_free(tr);
    /* The final evaluation from the validation features = through the whole network (the same batching). */
    cnn_run ra, rb;
    cnn_run_init(&ra, "full");
    cnn_run_init(&rb, "cached");
    assert_int_equal(cnn_run_evaluate(&ra, a, &val, BATCH), 0);
    assert_int_equal(cnn_run_evaluate_source(&rb, b, va, val.y, val.n), 0);
    assert_true(ra.test_loss == rb.test_loss && ra.test_accuracy == rb.test_accuracy);
    assert_memory_equal(ra.probs, rb.probs, sizeof *ra.probs * (size_t)val.n * CLASSES);
    assert_memory_equal(ra.confusion, rb.confusion, sizeof *ra.confusion * CLASSES * CLASSES);
    assert_true(ra.roc_auc_ovo == rb.roc_auc_ovo);
    cnn_run_free(&rb);
    cnn_run_init(&rb, "cached");
    assert_int_equal(cnn_run_evaluate_source(&rb, b, va, val.y, val.n - 1), CNN_ERR_SHAPE);
    tu_assert_error(CNN_ERR_SHAPE, cnn_errcode(), "the test source holds 20 samples, the labels 19");
    cnn_run_free(&ra);
    cnn_run_free(&rb);
    cnn_source_free(va);
    /* A trainable or random layer in the prefix cannot be cached. */
    cnn_model *d = make_model(1, "softmax");
    assert_null(cnn_source_features(d, 2, &ds, BATCH, 1, 1, NULL));
    tu_assert_error(CNN_ERR_INVALID, cnn_errcode(), "layer 'conv' (Conv2D) of model 'loop' is trainable");
    assert_int_equal(cnn_model_set_trainable(d, "conv", 0), 0);
    assert_null(cnn_source_features(d, 2, &ds, BATCH, 1, 1, NULL));
    tu_assert_error(CNN_ERR_INVALID, cnn_errcode(), "(Dropout) of model 'loop' is random in training");
    cnn_history_free(&ha);
    cnn_history_free(&hb);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_model_free(d);
    cnn_dataset_free(&ds);
    cnn_dataset_free(&val);
}

/* ------------------------------------------------------------------ run record */

static void assert_same_run(const cnn_run *a, const cnn_run *b)
{
    assert_string_equal(a->model, b->model);
    assert_string_equal(a->weights, b->weights);
    assert_true(a->seed == b->seed && a->threads == b->threads && a->batch_size == b->batch_size);
    assert_int_equal(a->train_images, b->train_images);
    assert_int_equal(a->history.count, b->history.count);
    assert_int_equal(a->history.stopped_epoch, b->history.stopped_epoch);
    assert_string_equal(a->history.stop_reason, b->history.stop_reason);
    for (int i = 0; i < a->history.count; i++) {
        const cnn_epoch_log *x = &a->history.epochs[i], *y = &b->history.epochs[i];
        assert_int_equal(x->epoch, y->epoch);
        assert_true(x->loss == y->loss && x->accuracy == y->accuracy && x->lr == y->lr);
        assert_true(x->val_loss == y->val_loss && x->val_accuracy == y->val_accuracy);
        assert_true(x->seconds == y->seconds && x->val_seconds == y->val_seconds);
    }
    assert_int_equal(a->best_epoch, b->best_epoch);
    assert_int_equal(a->best_val_loss_epoch, b->best_val_loss_epoch);
    assert_int_equal(a->best_val_accuracy_epoch, b->best_val_accuracy_epoch);
    assert_true(a->seconds_per_epoch == b->seconds_per_epoch && a->images_per_second == b->images_per_second);
    assert_true(a->total_seconds == b->total_seconds);
    assert_int_equal(a->evaluated, b->evaluated);
    assert_int_equal(a->n_test, b->n_test);
    assert_int_equal(a->classes, b->classes);
    assert_true(a->test_loss == b->test_loss && a->test_accuracy == b->test_accuracy);
    assert_true(a->roc_auc_ovo == b->roc_auc_ovo && a->roc_auc_ovr == b->roc_auc_ovr);
    size_t n = (size_t)a->n_test, k = (size_t)a->classes;
    assert_memory_equal(a->confusion, b->confusion, sizeof(int64_t) * k * k);
    assert_memory_equal(a->y_true, b->y_true, sizeof(int32_t) * n);
    assert_memory_equal(a->y_pred, b->y_pred, sizeof(int32_t) * n);
    assert_memory_equal(a->probs, b->probs, sizeof(float) * n * k);
}

static void test_run_record(void **state)
{
    (void)state;
    cnn_dataset ds = make_data(N, 9), test = make_data(30, 10);
    cnn_model *m = make_model(0, "softmax");
    compile(m, CNN_OPT_ADAM, 0.01, 0);
    cnn_run r, back;
    cnn_run_init(&r, "loop \"quoted\"");
    snprintf(r.weights, sizeof r.weights, "init seed 7");
    r.seed = 3, r.threads = 2, r.batch_size = BATCH, r.train_images = N;
    cnn_fit_config c = config(4);
    c.validation = &test;
    assert_int_equal(cnn_model_fit(m, &ds, &c, &r.history), 0);
    cnn_run_summarize(&r);
    assert_true(r.best_epoch >= 0 && r.images_per_second > 0);
    assert_int_equal(cnn_run_evaluate(&r, m, &test, 16), 0);
    int64_t total = 0;
    for (int i = 0; i < 9; i++) total += r.confusion[i];
    assert_int_equal(total, 30);
    const char *path = tu_path("run.json");
    assert_int_equal(cnn_run_save(&r, path), 0);
    assert_int_equal(cnn_run_load(&back, path), 0);
    assert_same_run(&r, &back);
    cnn_run_free(&back);
    /* A record the reader would refuse is not written (the old file stays). */
    snprintf(r.precision, sizeof r.precision, "%s", "");
    tu_assert_error(cnn_run_save(&r, path), CNN_ERR_INVALID, "precision '' is not fp32 or bf16");
    snprintf(r.precision, sizeof r.precision, "%s", "fp32");
    assert_int_equal(cnn_run_load(&back, path), 0);
    cnn_run_free(&back);

    /* Damaged records are refused, naming the field. */
    FILE *f = fopen(path, "rb");
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *at = strstr(buf, "\"best_epoch\": "), bad[1 << 16];
    assert_non_null(at);
    int k = snprintf(bad, sizeof bad, "%.*s99%s", (int)(at + 14 - buf), buf, strchr(at, ','));
    tu_write(tu_path("bad.json"), bad, (size_t)k);
    tu_assert_error(cnn_run_load(&back, tu_path("bad.json")), CNN_ERR_FORMAT, "field 'best_epoch'");
    tu_write(tu_path("cut.json"), buf, len / 2);
    tu_assert_error(cnn_run_load(&back, tu_path("cut.json")), CNN_ERR_FORMAT, "cut.json: line");
    tu_assert_error(cnn_run_load(&back, tu_tmpdir()), CNN_ERR_IO, "not a regular file");
    cnn_run_free(&r);
    cnn_model_free(m);
    cnn_dataset_free(&ds);
    cnn_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_custom_source),
        cmocka_unit_test(test_transform_threads),
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_gradient_hook),
        cmocka_unit_test(test_headless),
        cmocka_unit_test(test_from_logits),
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_trainable_keeps_state),
        cmocka_unit_test(test_cached_features),
        cmocka_unit_test(test_run_record),
        cmocka_unit_test(test_spec_loss_and_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
