/* fit / evaluate / predict end to end: learning, determinism, batching, history files, callbacks' hooks and
 * the errors of data, compile and state. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#include "core/error.h"
#include "model/model.h"

enum { SIDE = 4, CLASSES = 4, N_TRAIN = 1000, N_VAL = 200, BATCH = 300 };

static float next_uniform(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f;
}

/* 4x4 images whose class k lights up quadrant k (0.6..1.0) over noise (0..0.3): linearly separable. */
static cnn_dataset make_data(int n, uint32_t seed)
{
    cnn_dataset ds = {.n = n, .h = SIDE, .w = SIDE, .c = 1, .num_classes = CLASSES};
    ds.x = malloc(sizeof(float) * SIDE * SIDE * n);
    ds.y = malloc(sizeof(int32_t) * n);
    assert_true(ds.x && ds.y);
    for (int i = 0; i < n; i++) {
        int k = (int)(next_uniform(&seed) * CLASSES);
        ds.y[i] = k;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int quadrant = (r >= SIDE / 2) * 2 + (c >= SIDE / 2);
                float v = 0.3f * next_uniform(&seed);
                ds.x[(i * SIDE + r) * SIDE + c] = quadrant == k ? 0.6f + 0.4f * next_uniform(&seed) : v;
            }
    }
    return ds;
}

static cnn_model *make_model(uint64_t seed)
{
    cnn_model *m = cnn_model_create("sep", SIDE, SIDE, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=16, activation=relu"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=4, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, seed), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.01);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    return m;
}

static cnn_fit_config quiet_config(int epochs, uint64_t seed)
{
    cnn_fit_config c = cnn_fit_default();
    c.epochs = epochs;
    c.batch_size = BATCH;
    c.seed = seed;
    c.verbose = CNN_VERBOSE_SILENT;
    return c;
}

static void test_fit_learns_separable_data(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 1), val = make_data(N_VAL, 2);
    cnn_model *m = make_model(3);
    cnn_fit_config c = quiet_config(8, 4);
    c.validation = &val;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_int_equal(h.count, 8);
    assert_int_equal(h.stopped_epoch, -1);
    for (int e = 0; e < h.count; e++) {
        assert_int_equal(h.epochs[e].epoch, e);
        assert_true(h.epochs[e].lr == 0.01);
        assert_true(isfinite(h.epochs[e].val_loss) && h.epochs[e].seconds >= 0 &&
                    h.epochs[e].val_seconds >= 0);
    }
    const cnn_epoch_log *first = &h.epochs[0], *last = &h.epochs[h.count - 1];
    print_message("separable data: loss %.4f -> %.4f, accuracy %.3f -> %.3f, val_accuracy %.3f\n",
                  first->loss, last->loss, first->accuracy, last->accuracy, last->val_accuracy);
    assert_true(last->loss < 0.5 * first->loss);
    assert_true(last->accuracy > 0.95 && last->val_accuracy > 0.95);

    /* The validation figures are an evaluation of the model as it stands after the epoch. */
    double loss, acc;
    assert_int_equal(cnn_model_evaluate(m, &val, BATCH, &loss, &acc), 0);
    assert_true(fabs(loss - last->val_loss) < 1e-9 && acc == last->val_accuracy);
    cnn_history_free(&h);
    cnn_history_free(&h); /* freeing twice is harmless */
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

static void test_no_validation_gives_nan(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 1);
    cnn_model *m = make_model(3);
    cnn_fit_config c = quiet_config(2, 4);
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_int_equal(h.count, 2);
    for (int e = 0; e < 2; e++) {
        assert_true(isnan(h.epochs[e].val_loss) && isnan(h.epochs[e].val_accuracy));
        assert_true(h.epochs[e].val_seconds == 0.0);
        assert_true(isfinite(h.epochs[e].loss));
    }
    /* Zero epochs: nothing happens, successfully. */
    c.epochs = 0;
    float before[16 * 16 + 16 + 16 * 4 + 4];
    memcpy(before, cnn_model_params(m), sizeof before);
    cnn_history_free(&h);
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_int_equal(h.count, 0);
    assert_memory_equal(cnn_model_params(m), before, sizeof before);
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&train);
}

/* n = 1000 in batches of 300 is 4 steps, the last of 100 samples: fit without shuffling equals four manual
 * steps over [0, 300), [300, 600), [600, 900), [900, 1000) bit for bit, and the epoch's loss is their
 * sample-weighted mean. */
static void test_partial_last_batch(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 5);
    cnn_model *a = make_model(6), *b = make_model(6);
    cnn_fit_config c = quiet_config(1, 0);
    c.shuffle = 0;
    cnn_history h;
    assert_int_equal(cnn_model_fit(a, &train, &c, &h), 0);
    assert_int_equal(cnn_model_iterations(a), 4);
    assert_int_equal((long)a->x.rng_step, 4);

    double weighted = 0.0;
    long hits = 0;
    const size_t sample = SIDE * SIDE;
    for (int s = 0; s < N_TRAIN; s += BATCH) {
        int n = N_TRAIN - s < BATCH ? N_TRAIN - s : BATCH;
        double loss;
        int correct;
        assert_int_equal(cnn_model_train_step(b, train.x + sample * s, train.y + s, n, &loss, &correct), 0);
        weighted += loss * n;
        hits += correct;
    }
    assert_int_equal(cnn_model_iterations(b), 4);
    assert_memory_equal(cnn_model_params(a), cnn_model_params(b), sizeof(float) * cnn_model_num_params(a, 0));
    assert_true(h.epochs[0].loss == weighted / N_TRAIN);
    assert_true(h.epochs[0].accuracy == (double)hits / N_TRAIN);

    /* A batch larger than the data is one step of everything. */
    cnn_model *d = make_model(6);
    c.batch_size = 5000;
    cnn_history_free(&h);
    assert_int_equal(cnn_model_fit(d, &train, &c, &h), 0);
    assert_int_equal(cnn_model_iterations(d), 1);
    cnn_history_free(&h);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_model_free(d);
    cnn_dataset_free(&train);
}

static float *fit_params(uint64_t build_seed, uint64_t fit_seed, const cnn_dataset *train)
{
    cnn_model *m = make_model(build_seed);
    cnn_fit_config c = quiet_config(2, fit_seed);
    c.batch_size = 64;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, train, &c, &h), 0);
    cnn_history_free(&h);
    size_t n = cnn_model_num_params(m, 0);
    float *p = malloc(sizeof(float) * n);
    assert_non_null(p);
    memcpy(p, cnn_model_params(m), sizeof(float) * n);
    cnn_model_free(m);
    return p;
}

static void test_determinism(void **state)
{
    (void)state;
    const size_t bytes = sizeof(float) * (16 * 16 + 16 + 16 * 4 + 4);
    cnn_dataset train = make_data(N_TRAIN, 7);
    const int threads[2] = {1, 2};
    for (int t = 0; t < 2; t++) {
        cnn_set_threads(threads[t]);
        float *a = fit_params(1, 9, &train), *b = fit_params(1, 9, &train);
        float *other_shuffle = fit_params(1, 10, &train), *other_init = fit_params(2, 9, &train);
        assert_memory_equal(a, b, bytes);
        assert_memory_not_equal(a, other_shuffle, bytes);
        assert_memory_not_equal(a, other_init, bytes);
        free(a);
        free(b);
        free(other_shuffle);
        free(other_init);
    }
    cnn_set_threads(0);
    cnn_dataset_free(&train);
}

static void test_evaluate_and_predict(void **state)
{
    (void)state;
    enum { N = 7, GUARD = 8 };
    cnn_dataset all = make_data(N, 11), train = make_data(N_TRAIN, 12);
    cnn_model *m = make_model(13);
    cnn_fit_config c = quiet_config(2, 1);
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    cnn_history_free(&h);

    float probs[N * CLASSES + GUARD], direct[N * CLASSES];
    for (int i = 0; i < N * CLASSES + GUARD; i++) probs[i] = -7.0f;
    assert_int_equal(cnn_model_predict(m, all.x, N, 3, probs), 0); /* batches of 3, 3, 1 */
    for (int i = N * CLASSES; i < N * CLASSES + GUARD; i++) assert_true(probs[i] == -7.0f);
    assert_int_equal(cnn_model_forward(m, all.x, N, 0, direct), 0);
    int hits = 0;
    for (int i = 0; i < N; i++) {
        double sum = 0.0;
        int arg = 0;
        for (int j = 0; j < CLASSES; j++) {
            const float p = probs[i * CLASSES + j];
            assert_true(p >= 0.0f && p <= 1.0f);
            assert_true(fabsf(p - direct[i * CLASSES + j]) < 1e-6f);
            sum += p;
            if (p > probs[i * CLASSES + arg]) arg = j;
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
        hits += arg == all.y[i];
    }
    double loss, acc, loss1, acc1;
    assert_int_equal(cnn_model_evaluate(m, &all, 3, &loss, &acc), 0);
    assert_true(acc == (double)hits / N);
    assert_int_equal(cnn_model_evaluate(m, &all, 100, &loss1, &acc1), 0); /* batch larger than the data */
    assert_true(fabs(loss - loss1) < 1e-6 && acc == acc1);

    tu_assert_error(cnn_model_evaluate(m, &all, 0, &loss, &acc), CNN_ERR_INVALID, "batch_size 0");
    tu_assert_error(cnn_model_predict(m, all.x, 0, 3, probs), CNN_ERR_INVALID, "predict");
    tu_assert_error(cnn_model_predict(m, all.x, N, 0, probs), CNN_ERR_INVALID, "predict");
    cnn_model_free(m);
    cnn_dataset_free(&all);
    cnn_dataset_free(&train);
}

static void test_data_errors(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 1), val = make_data(N_VAL, 2);
    cnn_model *m = make_model(3);
    cnn_fit_config c = quiet_config(1, 1);
    cnn_history h = {0};
    double loss, acc;

    cnn_dataset wide = train;
    wide.h = 5, wide.w = 5;
    tu_assert_error(cnn_model_fit(m, &wide, &c, &h), CNN_ERR_SHAPE,
                    "training data has samples of 5x5x1 = 25 values; model 'sep' expects 16");
    tu_assert_error(cnn_model_evaluate(m, &wide, 10, &loss, &acc), CNN_ERR_SHAPE, "evaluation data");
    c.validation = &wide;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_SHAPE, "validation data");
    c.validation = NULL;

    train.y[3] = CLASSES;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID,
                    "training label 4 of sample 3 is outside [0, 4) of model 'sep'");
    train.y[3] = -2;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID, "label -2 of sample 3");
    train.y[3] = 0;
    val.y[N_VAL - 1] = 9;
    c.validation = &val;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID, "validation label 9");
    c.validation = NULL;

    cnn_dataset empty = train;
    empty.n = 0;
    tu_assert_error(cnn_model_fit(m, &empty, &c, &h), CNN_ERR_INVALID, "training data is empty");
    tu_assert_error(cnn_model_fit(m, NULL, &c, &h), CNN_ERR_INVALID, "training data is empty");
    c.batch_size = 0;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID, "batch_size 0 must be >= 1");
    c = quiet_config(-1, 1);
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID, "epochs -1 must be >= 0");
    /* None of the refused calls trained anything. */
    assert_int_equal(cnn_model_iterations(m), 0);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

static void test_compile_and_state_errors(void **state)
{
    (void)state;
    cnn_dataset train = make_data(100, 1);
    cnn_fit_config c = quiet_config(1, 1);
    cnn_history h = {0};
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.001);

    cnn_model *m = cnn_model_create("relu_out", SIDE, SIDE, 1);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=4, activation=relu, name=last"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_STATE, "compile it before fit");
    tu_assert_error(cnn_model_compile(m, &opt), CNN_ERR_INVALID,
                    "the loss expects probabilities, but the last layer 'last' has activation relu");
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_STATE, "compile it before fit");
    cnn_model_free(m);

    m = cnn_model_create("one_out", SIDE, SIDE, 1);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=1, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    tu_assert_error(cnn_model_compile(m, &opt), CNN_ERR_SHAPE, "needs one value per class");
    cnn_model_free(m);

    /* A linear last layer gives logits: the loss must say so (from_logits=True), as in Keras. */
    m = cnn_model_create("logits", SIDE, SIDE, 1);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=4"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    tu_assert_error(cnn_model_compile(m, &opt), CNN_ERR_INVALID, "compile the loss with from_logits=True");
    const cnn_loss_config logits = {CNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1};
    assert_int_equal(cnn_model_compile_loss(m, &opt, &logits), 0);
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    cnn_history_free(&h);
    tu_assert_error(cnn_model_add(m, "Dense", "units=2"), CNN_ERR_STATE, "cannot be added after build");
    tu_assert_error(cnn_model_build(m, 1), CNN_ERR_STATE, "already built");
    cnn_model_free(m);
    cnn_dataset_free(&train);
}

/* ------------------------------------------------------------------ callbacks' hooks */

typedef struct counts {
    int train_begin, epoch_begin, epoch_end, train_end;
    int stop_after; /* epoch after which to stop, -1 never */
    int fail_at;    /* epoch whose end fails, -1 never */
} counts;

/* Names of the callbacks whose on_epoch_end ran, in call order. */
static char g_order[16];
static int g_norder;

static int on_train_begin(cnn_callback *cb, cnn_model *m)
{
    (void)m;
    ((counts *)cb->state)->train_begin++;
    return CNN_OK;
}

static int on_epoch_begin(cnn_callback *cb, cnn_model *m, int epoch)
{
    (void)m;
    counts *k = cb->state;
    assert_int_equal(epoch, k->epoch_begin);
    k->epoch_begin++;
    return CNN_OK;
}

static int on_epoch_end(cnn_callback *cb, cnn_model *m, const cnn_epoch_log *log, int *stop)
{
    (void)m;
    counts *k = cb->state;
    assert_int_equal(log->epoch, k->epoch_end);
    k->epoch_end++;
    if (g_norder < 16) g_order[g_norder++] = cb->name[0];
    if (log->epoch == k->fail_at) return cnn_fail(CNN_ERR_INVALID, "callback %s failed on purpose", cb->name);
    if (log->epoch == k->stop_after) *stop = 1;
    return CNN_OK;
}

static int on_train_end(cnn_callback *cb, cnn_model *m, const cnn_history *h)
{
    (void)m;
    counts *k = cb->state;
    k->train_end++;
    assert_int_equal(h->count, k->epoch_end);
    return CNN_OK;
}

static void test_callback_hooks(void **state)
{
    (void)state;
    cnn_dataset train = make_data(100, 1);
    cnn_model *m = make_model(1);
    counts k = {.stop_after = -1, .fail_at = -1}, kb = {.stop_after = -1, .fail_at = -1};
    cnn_callback a = {.name = "A",
                      .state = &k,
                      .on_train_begin = on_train_begin,
                      .on_epoch_begin = on_epoch_begin,
                      .on_epoch_end = on_epoch_end,
                      .on_train_end = on_train_end};
    cnn_callback b = {.name = "B", .state = &kb, .on_epoch_end = on_epoch_end};
    cnn_callback *list[2] = {&a, &b};
    cnn_fit_config c = quiet_config(3, 1);
    c.callbacks = list;
    c.num_callbacks = 1;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_true(k.train_begin == 1 && k.epoch_begin == 3 && k.epoch_end == 3 && k.train_end == 1);
    cnn_history_free(&h);

    /* Stopping after epoch 1 (0-based) leaves two epochs in the history. */
    k = (counts){.stop_after = 1, .fail_at = -1};
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.stopped_epoch, 1);
    assert_int_equal(k.train_end, 1);
    cnn_history_free(&h);

    /* Hooks run in list order; an error from one ends fit with that error. */
    k = (counts){.stop_after = -1, .fail_at = 1};
    g_norder = 0;
    c.num_callbacks = 2;
    tu_assert_error(cnn_model_fit(m, &train, &c, &h), CNN_ERR_INVALID, "callback A failed on purpose");
    assert_int_equal(g_norder, 3);
    assert_memory_equal(g_order, "ABA", 3);
    assert_int_equal(kb.epoch_end, 1);
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&train);
}

static void test_progress_output(void **state)
{
    (void)state;
    cnn_dataset train = make_data(100, 1), val = make_data(50, 2);
    cnn_model *m = make_model(1);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    cnn_fit_config c = quiet_config(2, 1);
    c.out = out;
    c.validation = &val;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0); /* silent */
    cnn_history_free(&h);
    fflush(out);
    assert_int_equal(len, 0);
    c.verbose = CNN_VERBOSE_AUTO; /* not a terminal: one line per epoch */
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    cnn_history_free(&h);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(buf, "Epoch 1 - 1/1 - "));
    assert_non_null(strstr(buf, "Epoch 2 - 1/1 - "));
    assert_non_null(strstr(buf, " - val_loss: "));
    assert_null(strchr(buf, '\r'));
    free(buf);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

/* ------------------------------------------------------------------ history files */

/* A strict JSON checker (RFC 8259 grammar, no extensions such as NaN or Infinity). */
static const char *json_value(const char *s);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    return s;
}

static const char *json_string(const char *s)
{
    if (*s++ != '"') return NULL;
    for (; *s != '"'; s++) {
        if ((unsigned char)*s < 0x20) return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)s[i])) return NULL;
                s += 4;
            } else if (!strchr("\"\\/bfnrt", *s) || !*s) {
                return NULL;
            }
        }
    }
    return s + 1;
}

static const char *json_number(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (!isdigit((unsigned char)*p)) return NULL;
    if (*p == '0' && isdigit((unsigned char)p[1])) return NULL;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    return p;
}

static const char *json_list(const char *s, char close, int keyed)
{
    s = json_ws(s + 1);
    if (*s == close) return s + 1;
    for (;;) {
        if (keyed) {
            if (!(s = json_string(s))) return NULL;
            s = json_ws(s);
            if (*s++ != ':') return NULL;
        }
        if (!(s = json_value(s))) return NULL;
        s = json_ws(s);
        if (*s == close) return s + 1;
        if (*s++ != ',') return NULL;
        s = json_ws(s);
    }
}

static const char *json_value(const char *s)
{
    s = json_ws(s);
    if (*s == '{') return json_list(s, '}', 1);
    if (*s == '[') return json_list(s, ']', 0);
    if (*s == '"') return json_string(s);
    if (!strncmp(s, "null", 4)) return s + 4;
    if (!strncmp(s, "true", 4)) return s + 4;
    if (!strncmp(s, "false", 5)) return s + 5;
    return json_number(s);
}

static int json_valid(const char *text)
{
    const char *end = json_value(text);
    return end && *json_ws(end) == '\0';
}

/* Values of the array "key": [...] of a valid document; NaN for null. Returns the count. */
static int json_array(const char *text, const char *key, double *out, int cap)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": [", key);
    const char *s = strstr(text, pattern);
    assert_non_null(s);
    s = json_ws(s + strlen(pattern));
    int n = 0;
    while (*s != ']') {
        assert_true(n < cap);
        char *end;
        if (!strncmp(s, "null", 4)) {
            out[n++] = NAN;
            end = (char *)s + 4;
        } else {
            out[n++] = strtod(s, &end);
        }
        s = json_ws(end);
        if (*s == ',') s = json_ws(s + 1);
    }
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0, cap = 0, k;
    char chunk[4096];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + k + 1 > cap) buf = realloc(buf, cap = 2 * (len + k + 1));
        memcpy(buf + len, chunk, k);
        len += k;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    buf[len] = '\0';
    return buf;
}

static int same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-8 * fmax(1.0, fabs(b));
}

/* history.csv: the exact header, one row per epoch, round-tripping numbers, empty fields for NaN. */
static void check_csv(const char *path, const cnn_history *h)
{
    char *text = slurp(path), *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_non_null(line);
    assert_string_equal(line, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,val_seconds");
    int rows = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        assert_true(rows < h->count);
        const cnn_epoch_log *e = &h->epochs[rows];
        const double want[8] = {e->epoch,        e->loss, e->accuracy, e->val_loss,
                                e->val_accuracy, e->lr,   e->seconds,  e->val_seconds};
        const char *p = line;
        for (int f = 0; f < 8; f++) {
            char *end;
            double v = (*p == ',' || *p == '\0') ? NAN : strtod(p, &end);
            if (!isnan(v)) p = end;
            if (!same(v, want[f])) fail_msg("%s row %d field %d: %s", path, rows, f, line);
            assert_true(*p == (f < 7 ? ',' : '\0'));
            if (f < 7) p++;
        }
        rows++;
    }
    assert_int_equal(rows, h->count);
    free(text);
}

static void check_json(const char *path, const cnn_history *h)
{
    char *text = slurp(path);
    if (!json_valid(text)) fail_msg("%s is not valid JSON:\n%s", path, text);
    assert_non_null(strstr(text, "\"epochs\": "));
    static const char *const keys[7] = {"loss", "accuracy", "val_loss",   "val_accuracy",
                                        "lr",   "seconds",  "val_seconds"};
    for (int k = 0; k < 7; k++) {
        double v[64];
        assert_int_equal(json_array(text, keys[k], v, 64), h->count);
        for (int e = 0; e < h->count; e++) {
            const cnn_epoch_log *l = &h->epochs[e];
            const double want[7] = {l->loss, l->accuracy, l->val_loss,   l->val_accuracy,
                                    l->lr,   l->seconds,  l->val_seconds};
            if (!isfinite(want[k]) ? !isnan(v[e]) : !same(v[e], want[k]))
                fail_msg("%s: %s[%d] = %.9g, expected %.9g", path, keys[k], e, v[e], want[k]);
        }
    }
    free(text);
}

static void test_history_files(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 1), val = make_data(N_VAL, 2);
    cnn_model *m = make_model(3);
    cnn_fit_config c = quiet_config(3, 4);
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0); /* no validation: NaN fields */
    const char *csv = tu_path("history.csv"), *json = tu_path("history.json");
    assert_int_equal(cnn_history_save_csv(&h, csv), 0);
    assert_int_equal(cnn_history_save_json(&h, json), 0);
    check_csv(csv, &h);
    check_json(json, &h);
    char *text = slurp(json);
    assert_non_null(strstr(text, "\"val_loss\": [null, null, null]"));
    assert_non_null(strstr(text, "\"epochs\": 3,"));
    assert_non_null(strstr(text, "\"stopped_epoch\": -1,"));
    free(text);
    cnn_history_free(&h);

    c.validation = &val;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    assert_int_equal(cnn_history_save_csv(&h, csv), 0); /* replaces the earlier file */
    assert_int_equal(cnn_history_save_json(&h, json), 0);
    check_csv(csv, &h);
    check_json(json, &h);

    /* A diverged run (infinite loss) and a stop reason with quotes still make valid JSON. */
    h.epochs[1].loss = INFINITY;
    h.epochs[2].val_loss = -INFINITY;
    h.stopped_epoch = 2;
    snprintf(h.stop_reason, sizeof h.stop_reason, "EarlyStopping(monitor=\"val_loss\") \\ done");
    assert_int_equal(cnn_history_save_json(&h, json), 0);
    check_json(json, &h);
    assert_int_equal(cnn_history_save_csv(&h, csv), 0);
    check_csv(csv, &h);
    cnn_history_free(&h);

    cnn_history empty = {.stopped_epoch = -1};
    assert_int_equal(cnn_history_save_json(&empty, json), 0);
    check_json(json, &empty);
    assert_int_equal(cnn_history_save_csv(&empty, csv), 0);
    check_csv(csv, &empty);
    tu_assert_error(cnn_history_save_csv(&empty, tu_path("missing/dir/h.csv")), CNN_ERR_IO,
                    "missing/dir/h.csv");
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&val);
}

/* ------------------------------------------------------------------ Fashion-MNIST */

/* Flatten, Dense with an L2 kernel regulariser, softmax; SGD, whose steps follow the gradient linearly. */
static cnn_model *make_regularized(void)
{
    cnn_model *m = cnn_model_create("reg", SIDE, SIDE, 1);
    assert_non_null(m);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=16, activation=relu, kernel_regularizer=l2(0.01)"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=4, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 8), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_SGD, 0.1);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    return m;
}

/* batch_slices: one process computing each batch's gradient in slices, as data-parallel processes do, gets
 * the batch's mean gradient up to rounding, with the regularisation counted once (three times moves the
 * weights by 2.4e-2 of their scale here); a batch with fewer samples than slices fails. */
static void test_batch_slices(void **state)
{
    (void)state;
    cnn_dataset train = make_data(N_TRAIN, 5);
    cnn_model *a = make_regularized(), *b = make_regularized();
    cnn_fit_config c = quiet_config(2, 4);
    cnn_history ha, hb;
    assert_int_equal(cnn_model_fit(a, &train, &c, &ha), 0);
    c.batch_slices = 3;
    assert_int_equal(cnn_model_fit(b, &train, &c, &hb), 0);
    const float *pa = cnn_model_params(a), *pb = cnn_model_params(b);
    double gap = 0, scale = 0;
    for (size_t i = 0; i < cnn_model_num_params(a, 0); i++)
        gap = fmax(gap, fabs((double)pa[i] - pb[i])), scale = fmax(scale, fabs((double)pa[i]));
    print_message("3 slices against the whole batch: weights differ by %.3g of their scale\n", gap / scale);
    assert_true(gap / scale <= 1e-5);
    assert_true(fabs(ha.epochs[1].loss - hb.epochs[1].loss) <= 1e-5);
    assert_true(ha.epochs[1].accuracy == hb.epochs[1].accuracy);
    cnn_history_free(&ha);
    cnn_history_free(&hb);
    c.batch_slices = BATCH + 1;
    tu_assert_error(cnn_model_fit(b, &train, &c, &hb), CNN_ERR_INVALID,
                    "batch_slices 301 must be in [0, 300]");
    cnn_history_free(&hb);
    c.batch_slices = 150; /* the last batch holds 100 samples */
    tu_assert_error(cnn_model_fit(b, &train, &c, &hb), CNN_ERR_INVALID,
                    "has 100 samples, fewer than the 150 slices");
    cnn_history_free(&hb);
    cnn_model_free(a);
    cnn_model_free(b);
    cnn_dataset_free(&train);
}

static void test_fashion_mnist_subset(void **state)
{
    (void)state;
    struct stat st;
    if (stat(CNN_FASHION_MNIST_DIR, &st) != 0) {
        print_message("skipped: %s not found\n", CNN_FASHION_MNIST_DIR);
        skip();
    }
    cnn_dataset full_train, full_test, train, test;
    assert_int_equal(cnn_dataset_load_dir(CNN_FASHION_MNIST_DIR, &full_train, &full_test), 0);
    assert_int_equal(cnn_dataset_slice(&full_train, 0, 2000, &train), 0);
    assert_int_equal(cnn_dataset_slice(&full_test, 0, 1000, &test), 0);
    cnn_dataset_free(&full_train);
    cnn_dataset_free(&full_test);

    cnn_model *m = cnn_model_create("fashion", 28, 28, 1);
    assert_int_equal(cnn_model_add(m, "Flatten", NULL), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=64, activation=relu"), 0);
    assert_int_equal(cnn_model_add(m, "Dense", "units=10, activation=softmax"), 0);
    assert_int_equal(cnn_model_build(m, 1), 0);
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, 0.002);
    assert_int_equal(cnn_model_compile(m, &opt), 0);
    cnn_fit_config c = quiet_config(4, 1);
    c.batch_size = 100;
    c.validation = &test;
    cnn_history h;
    assert_int_equal(cnn_model_fit(m, &train, &c, &h), 0);
    const cnn_epoch_log *last = &h.epochs[h.count - 1];
    print_message("Fashion-MNIST 2000 images: loss %.4f -> %.4f, val_accuracy %.3f\n", h.epochs[0].loss,
                  last->loss, last->val_accuracy);
    assert_true(last->loss < h.epochs[0].loss);
    assert_true(last->val_accuracy > 0.72);
    cnn_history_free(&h);
    cnn_model_free(m);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_learns_separable_data), cmocka_unit_test(test_no_validation_gives_nan),
        cmocka_unit_test(test_partial_last_batch),        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_evaluate_and_predict),      cmocka_unit_test(test_data_errors),
        cmocka_unit_test(test_compile_and_state_errors),  cmocka_unit_test(test_callback_hooks),
        cmocka_unit_test(test_progress_output),           cmocka_unit_test(test_history_files),
        cmocka_unit_test(test_fashion_mnist_subset),      cmocka_unit_test(test_batch_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
