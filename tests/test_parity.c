/* Whole-model parity with a PyTorch reference that reimplements Keras semantics in float64
 * (tests/data/torch_parity.txt, written by scripts/ref_torch_parity.py; see docs/correctness.md).
 *
 * Each case in the file lists its layers as cnn_model_add arguments, the input batch, labels and weights. The
 * test builds that model, loads the weights by name ("layer/param", Keras layouts), and compares with the
 * reference: the training forward pass (probabilities, loss with regularisation), every gradient, the
 * BatchNormalization moving statistics, the parameters after Adam steps (each a fresh forward and backward)
 * and an inference forward pass at the end. Every layer type but Dropout and every activation occur in the
 * file, which the coverage test enforces.
 *
 * Error measure: per tensor, max |cnnlab - reference| / max |reference| (the reference is exact float64
 * arithmetic on the same float32 inputs, so this measures cnnlab's float32 rounding and nothing else); for
 * the moving statistics, relative to their largest change from the initial values instead. The input gradient
 * is not compared: the model computes none (the first layer's backward skips dx). */
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/activation.h"
#include "model/model.h"

/* Tolerances, kept equal to TOLS in scripts/ref_torch_parity.py (which only writes cases that a float32 run
 * of the reference graph meets with 5x to spare). cnnlab's measured worst cases, 7x to 100x below, are in
 * docs/correctness.md. */
#define TOL_PROBS 1e-5 /* forward output, training and inference */
#define TOL_LOSS  2e-6 /* relative to the loss */
#define TOL_GRAD  1e-4 /* every parameter gradient */
#define TOL_STATS 2e-4 /* BatchNormalization moving statistics: relative to their change from the start */
#define TOL_FINAL 1e-5 /* every parameter after the Adam steps */

#define MAX_CASES  8
#define MAX_LAYERS 32
#define MAX_RECS   160

typedef struct ref_rec {
    char kind[16];
    char name[96];
    double *v;
    size_t n;
} ref_rec;

typedef struct ref_case {
    char name[32];
    int n, h, w, c;
    int nlayers;
    char type[MAX_LAYERS][32];
    char opts[MAX_LAYERS][256];
    double lr, beta_1, beta_2, epsilon;
    int steps;
    ref_rec recs[MAX_RECS];
    int nrecs;
} ref_case;

static ref_case g_cases[MAX_CASES];
static int g_ncases;

/* ---------------------------------------------------------------- reading the reference */

static FILE *open_ref(void)
{
    const char *env = getenv("CNN_PARITY_REF");
    const char *paths[] = {env, "tests/data/torch_parity.txt", "../tests/data/torch_parity.txt",
                           "../../tests/data/torch_parity.txt"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = paths[i] ? fopen(paths[i], "r") : NULL;
        if (f) return f;
    }
    fail_msg("tests/data/torch_parity.txt not found (run from the repository root or set CNN_PARITY_REF)");
    return NULL;
}

/* "KIND NAME COUNT" then COUNT numbers over any number of lines. */
static void read_record(FILE *f, ref_case *rc, const char *line)
{
    assert_true(rc->nrecs < MAX_RECS);
    ref_rec *r = &rc->recs[rc->nrecs++];
    if (sscanf(line, "%15s %95s %zu", r->kind, r->name, &r->n) != 3 || r->n == 0)
        fail_msg("torch_parity.txt: bad record line \"%.60s\"", line);
    r->v = malloc(sizeof(double) * r->n);
    assert_non_null(r->v);
    for (size_t i = 0; i < r->n; i++)
        if (fscanf(f, "%lf", &r->v[i]) != 1) fail_msg("%s %s: value %zu missing", r->kind, r->name, i);
    int ch;
    while ((ch = fgetc(f)) != '\n' && ch != EOF) continue; /* the end of the last value line */
}

static void read_header(ref_case *rc, const char *line)
{
    int ok = 1;
    if (!strncmp(line, "input ", 6)) {
        ok = sscanf(line + 6, "%d %d %d %d", &rc->n, &rc->h, &rc->w, &rc->c) == 4;
    } else if (!strncmp(line, "adam ", 5)) {
        ok = sscanf(line + 5, "%lf %lf %lf %lf %d", &rc->lr, &rc->beta_1, &rc->beta_2, &rc->epsilon,
                    &rc->steps) == 5;
    } else {
        assert_true(rc->nlayers < MAX_LAYERS);
        int k = rc->nlayers++;
        ok = sscanf(line + 6, "%31s", rc->type[k]) == 1;
        const char *opts = strchr(line + 6, ' ');
        opts = opts ? opts + 1 : "";
        ok = ok && strlen(opts) < sizeof rc->opts[k];
        memcpy(rc->opts[k], opts, ok ? strlen(opts) + 1 : 1);
    }
    if (!ok) fail_msg("torch_parity.txt: bad line \"%.60s\"", line);
}

static void load_reference(void)
{
    if (g_ncases) return;
    FILE *f = open_ref();
    char line[1024];
    ref_case *cur = NULL;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || !line[0]) continue;
        if (!strncmp(line, "case ", 5)) {
            assert_true(g_ncases < MAX_CASES);
            cur = &g_cases[g_ncases++];
            if (sscanf(line + 5, "%31s", cur->name) != 1) fail_msg("torch_parity.txt: a case without a name");
        } else if (!cur) {
            fail_msg("torch_parity.txt: \"%.40s\" outside a case", line);
        } else if (!strcmp(line, "end")) {
            cur = NULL;
        } else if (!strncmp(line, "input ", 6) || !strncmp(line, "adam ", 5) || !strncmp(line, "layer ", 6)) {
            read_header(cur, line);
        } else {
            read_record(f, cur, line);
        }
    }
    fclose(f);
    if (!g_ncases) fail_msg("torch_parity.txt holds no case");
}

static const ref_rec *find_rec(const ref_case *rc, const char *kind, const char *name)
{
    for (int i = 0; i < rc->nrecs; i++)
        if (!strcmp(rc->recs[i].kind, kind) && !strcmp(rc->recs[i].name, name)) return &rc->recs[i];
    return NULL;
}

static const ref_rec *need_rec(const ref_case *rc, const char *kind, const char *name, size_t n)
{
    const ref_rec *r = find_rec(rc, kind, name);
    if (!r) fail_msg("case %s: no record \"%s %s\" in the reference", rc->name, kind, name);
    if (r->n != n)
        fail_msg("case %s: %s %s has %zu values, cnnlab expects %zu", rc->name, kind, name, r->n, n);
    return r;
}

static const ref_case *find_case(const char *name)
{
    load_reference();
    for (int i = 0; i < g_ncases; i++)
        if (!strcmp(g_cases[i].name, name)) return &g_cases[i];
    fail_msg("no case '%s' in torch_parity.txt", name);
    return NULL;
}

/* ---------------------------------------------------------------- comparing */

typedef struct worst {
    double err;
    char what[128];
} worst;

static int verbose(void)
{
    const char *v = getenv("CNN_PARITY_VERBOSE");
    return v && *v && strcmp(v, "0");
}

/* max |a - ref| / max |ref - base|, asserted <= tol; base (may be NULL: zeros) makes it the error of the
 * change from base. The worst error of each kind is kept for the summary. */
static void compare_from(const ref_case *rc, const char *kind, const char *name, const float *a,
                         const ref_rec *r, const ref_rec *base, double tol, worst *w)
{
    double scale = 0.0, err = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < r->n; i++) scale = fmax(scale, fabs(r->v[i] - (base ? base->v[i] : 0.0)));
    for (size_t i = 0; i < r->n; i++) {
        double d = fabs((double)a[i] - r->v[i]);
        if (d > err) err = d, at = i;
    }
    err /= scale > 0 ? scale : 1.0;
    if (verbose()) print_message("  %-5s %-12s %-32s %.2e\n", rc->name, kind, name, err);
    if (err > w->err) {
        w->err = err;
        snprintf(w->what, sizeof w->what, "%s", name);
    }
    if (!(err <= tol))
        fail_msg("case %s: %s %s: relative error %.3g > %.0e (element %zu: cnnlab %.9g, reference %.9g)",
                 rc->name, kind, name, err, tol, at, (double)a[at], r->v[at]);
}

static void compare(const ref_case *rc, const char *kind, const char *name, const float *a, const ref_rec *r,
                    double tol, worst *w)
{
    compare_from(rc, kind, name, a, r, NULL, tol, w);
}

static void compare_scalar(const ref_case *rc, const char *kind, const char *name, double a, double ref,
                           double tol, worst *w)
{
    double err = fabs(a - ref) / fmax(fabs(ref), 1e-30);
    if (verbose()) print_message("  %-5s %-12s %-32s %.2e\n", rc->name, kind, name, err);
    if (err > w->err) {
        w->err = err;
        snprintf(w->what, sizeof w->what, "%s", name);
    }
    if (!(err <= tol))
        fail_msg("case %s: %s %s: cnnlab %.9g, reference %.9g (relative error %.3g > %.0e)", rc->name, kind,
                 name, a, ref, err, tol);
}

/* ---------------------------------------------------------------- the model */

static void param_key(const cnn_layer *l, const cnn_param *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", l->name, p->name);
}

static cnn_model *build_model(const ref_case *rc)
{
    cnn_model *m = cnn_model_create(rc->name, rc->h, rc->w, rc->c);
    assert_non_null(m);
    for (int i = 0; i < rc->nlayers; i++)
        if (cnn_model_add(m, rc->type[i], rc->opts[i]))
            fail_msg("case %s: %s(%s): %s", rc->name, rc->type[i], rc->opts[i], cnn_errmsg());
    if (cnn_model_build(m, 1)) fail_msg("case %s: build: %s", rc->name, cnn_errmsg());
    cnn_optimizer_config opt = cnn_optimizer_default(CNN_OPT_ADAM, rc->lr);
    opt.beta_1 = rc->beta_1;
    opt.beta_2 = rc->beta_2;
    opt.epsilon = rc->epsilon;
    if (cnn_model_compile(m, &opt)) fail_msg("case %s: compile: %s", rc->name, cnn_errmsg());
    return m;
}

/* Loads every parameter from the "init" records, and checks the file has no tensor the model lacks. */
static void load_params(cnn_model *m, const ref_case *rc)
{
    float *w = cnn_model_params(m);
    int used = 0, inits = 0;
    char key[128];
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            const cnn_param *p = &m->layers[i].params[j];
            param_key(&m->layers[i], p, key, sizeof key);
            const ref_rec *r = need_rec(rc, "init", key, p->size);
            for (size_t e = 0; e < p->size; e++) w[p->offset + e] = (float)r->v[e];
            used++;
        }
    for (int i = 0; i < rc->nrecs; i++) inits += !strcmp(rc->recs[i].kind, "init");
    if (inits != used)
        fail_msg("case %s: the reference has %d parameter tensors, the model %d", rc->name, inits, used);
}

typedef void (*param_visit)(const ref_case *rc, const cnn_layer *l, const cnn_param *p, const char *key,
                            cnn_model *m, worst *w);

static void for_each_param(cnn_model *m, const ref_case *rc, param_visit visit, worst *w)
{
    char key[128];
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i].nparams; j++) {
            param_key(&m->layers[i], &m->layers[i].params[j], key, sizeof key);
            visit(rc, &m->layers[i], &m->layers[i].params[j], key, m, w);
        }
}

static void check_grad(const ref_case *rc, const cnn_layer *l, const cnn_param *p, const char *key,
                       cnn_model *m, worst *w)
{
    (void)l;
    if (!p->trainable) return;
    compare(rc, "grad", key, cnn_model_grads(m) + p->offset, need_rec(rc, "grad", key, p->size), TOL_GRAD, w);
}

/* Moving statistics move by (1 - momentum) * (batch - moving) per step: their error is measured against that
 * change, which a wrong batch statistic alters, rather than against the statistics themselves. */
static void check_stats_at(const ref_case *rc, const char *kind, const cnn_param *p, const char *key,
                           cnn_model *m, worst *w)
{
    compare_from(rc, kind, key, cnn_model_params(m) + p->offset, need_rec(rc, kind, key, p->size),
                 need_rec(rc, "init", key, p->size), TOL_STATS, w);
}

static void check_stats(const ref_case *rc, const cnn_layer *l, const cnn_param *p, const char *key,
                        cnn_model *m, worst *w)
{
    (void)l;
    if (!p->trainable) check_stats_at(rc, "stats1", p, key, m, w);
}

static void check_final(const ref_case *rc, const cnn_layer *l, const cnn_param *p, const char *key,
                        cnn_model *m, worst *w)
{
    (void)l;
    if (p->trainable)
        compare(rc, "final", key, cnn_model_params(m) + p->offset, need_rec(rc, "final", key, p->size),
                TOL_FINAL, w);
}

static void check_final_stats(const ref_case *rc, const cnn_layer *l, const cnn_param *p, const char *key,
                              cnn_model *m, worst *w)
{
    (void)l;
    if (!p->trainable) check_stats_at(rc, "final", p, key, m, w);
}

enum { W_PROBS, W_LOSS, W_GRAD, W_STATS, W_FINAL, W_COUNT };
static const char *const g_worst_names[W_COUNT] = {"probabilities", "loss", "gradients", "moving statistics",
                                                   "parameters after Adam"};

static void run_case_threads(const char *name, int threads)
{
    const ref_case *rc = find_case(name);
    cnn_set_threads(threads);
    cnn_model *m = build_model(rc);
    load_params(m, rc);
    const size_t in_size = (size_t)rc->h * rc->w * rc->c, classes = (size_t)cnn_model_num_outputs(m);
    const ref_rec *rx = need_rec(rc, "x", "-", in_size * rc->n), *ry = need_rec(rc, "y", "-", (size_t)rc->n);
    float *x = malloc(sizeof(float) * rx->n), *probs = malloc(sizeof(float) * classes * rc->n);
    int32_t *y = malloc(sizeof(int32_t) * rc->n);
    assert_true(x && probs && y);
    for (size_t i = 0; i < rx->n; i++) x[i] = (float)rx->v[i];
    for (int i = 0; i < rc->n; i++) y[i] = (int32_t)ry->v[i];

    worst w[W_COUNT] = {0};
    for (int t = 1; t <= rc->steps; t++) {
        double loss;
        int correct;
        char step[16];
        assert_int_equal(cnn_model_forward(m, x, rc->n, 1, probs), 0);
        assert_int_equal(cnn_model_backward(m, y, &loss, &correct), 0);
        snprintf(step, sizeof step, "%d", t);
        compare_scalar(rc, "loss", step, loss, need_rec(rc, "loss", step, 1)->v[0], TOL_LOSS, &w[W_LOSS]);
        if (t == 1) {
            compare(rc, "probs", "training", probs, need_rec(rc, "probs", "-", classes * rc->n), TOL_PROBS,
                    &w[W_PROBS]);
            for_each_param(m, rc, check_grad, &w[W_GRAD]);
            for_each_param(m, rc, check_stats, &w[W_STATS]);
        }
        assert_int_equal(cnn_model_update(m), 0);
    }
    for_each_param(m, rc, check_final, &w[W_FINAL]);
    for_each_param(m, rc, check_final_stats, &w[W_STATS]);
    assert_int_equal(cnn_model_forward(m, x, rc->n, 0, probs), 0);
    compare(rc, "probs", "inference", probs, need_rec(rc, "probs_infer", "-", classes * rc->n), TOL_PROBS,
            &w[W_PROBS]);
    for (int k = 0; k < W_COUNT; k++)
        print_message("  %s, %d thread%s: worst %-22s %.2e  %s\n", rc->name, threads, threads > 1 ? "s" : "",
                      g_worst_names[k], w[k].err, w[k].what);
    free(x);
    free(probs);
    free(y);
    cnn_model_free(m);
}

/* One thread, and more threads than this machine may have: the loops split work by output element, so
 * both must meet the reference (and cnnlab promises bit-identical results for a given thread count only). */
static void run_case(const char *name)
{
    const int saved = cnn_get_threads();
    run_case_threads(name, 1);
    run_case_threads(name, 3);
    cnn_set_threads(saved);
}

/* ---------------------------------------------------------------- tests */

/* The cases the tests below run: a case written into the reference but run by no test would check nothing. */
static const char *const RUN_CASES[] = {"main", "gap", "gray"};

static void test_parity_main(void **state)
{
    (void)state;
    run_case(RUN_CASES[0]);
}

static void test_parity_gap(void **state)
{
    (void)state;
    run_case(RUN_CASES[1]);
}

static void test_parity_gray(void **state)
{
    (void)state;
    run_case(RUN_CASES[2]);
}

/* The reference must keep up with the registry: every layer type (Dropout excepted: its masks cannot match
 * another framework's, see docs/correctness.md) and every activation occurs in some case. */
static void test_reference_covers_every_layer_and_activation(void **state)
{
    (void)state;
    load_reference();
    char types[512];
    snprintf(types, sizeof types, "%s", cnn_layer_types());
    for (char *save, *t = strtok_r(types, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int found = !strcmp(t, "Dropout");
        for (int i = 0; i < g_ncases && !found; i++)
            for (int k = 0; k < g_cases[i].nlayers && !found; k++) found = !strcmp(g_cases[i].type[k], t);
        if (!found)
            fail_msg("layer type %s has no parity case: add it to CASES in scripts/ref_torch_parity.py and "
                     "regenerate tests/data/torch_parity.txt",
                     t);
    }
    for (int i = 0; i < g_ncases; i++) {
        int run = 0;
        for (size_t k = 0; k < sizeof RUN_CASES / sizeof *RUN_CASES; k++)
            run |= !strcmp(g_cases[i].name, RUN_CASES[k]);
        if (!run)
            fail_msg("parity case %s is in the reference but no test runs it: add it to tests/test_parity.c",
                     g_cases[i].name);
    }
    for (int a = CNN_ACT_RELU; a <= CNN_ACT_GELU; a++) {
        char want[48];
        snprintf(want, sizeof want, "activation=%s", cnn_act_name((cnn_activation)a));
        int found = 0;
        for (int i = 0; i < g_ncases && !found; i++)
            for (int k = 0; k < g_cases[i].nlayers && !found; k++) {
                const char *s = strstr(g_cases[i].opts[k], want);
                found = s && (s[strlen(want)] == ',' || s[strlen(want)] == '\0');
            }
        if (!found) fail_msg("no parity case uses %s", want);
    }
}

static int free_reference(void **state)
{
    (void)state;
    for (int i = 0; i < g_ncases; i++)
        for (int k = 0; k < g_cases[i].nrecs; k++) free(g_cases[i].recs[k].v);
    g_ncases = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_covers_every_layer_and_activation),
        cmocka_unit_test(test_parity_main),
        cmocka_unit_test(test_parity_gap),
        cmocka_unit_test(test_parity_gray),
    };
    return cmocka_run_group_tests(tests, NULL, free_reference);
}
