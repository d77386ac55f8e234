/* Metrics against scikit-learn (tests/data/metrics_ref.txt, from scripts/ref_metrics.py), a brute-force
 * ROC-AUC, thread-count independence, speed, and every error path. */
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define MAX_CASES 16
#define MAX_K     16
#define AUC_RTOL  1e-12

typedef struct ref_case {
    char name[64];
    int n, k, digits, num_classes;
    char *classes[MAX_K];
    int32_t *y_true, *y_pred;
    float *probs;
    double accuracy;
    int64_t *cm, *support;
    double *prf[3];   /* precision, recall, f1 */
    double avg[2][3]; /* macro, weighted */
    int64_t avg_support[2];
    int has_ovo, has_ovr, has_binary;
    double ovo, ovr, binary;
    char *report;
} ref_case;

static ref_case g_cases[MAX_CASES];
static int g_num_cases;

/* ---- reading the reference file */

static FILE *open_ref(void)
{
    const char *env = getenv("CNN_METRICS_REF");
    const char *paths[] = {env, "tests/data/metrics_ref.txt", "../tests/data/metrics_ref.txt",
                           "../../tests/data/metrics_ref.txt"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = paths[i] ? fopen(paths[i], "r") : NULL;
        if (f) return f;
    }
    fail_msg("tests/data/metrics_ref.txt not found (run from the repository root or set CNN_METRICS_REF)");
    return NULL;
}

static char *next_line(FILE *f, char **line, size_t *cap)
{
    ssize_t len = getline(line, cap, f);
    if (len < 0) fail_msg("metrics_ref.txt ended early");
    if (len > 0 && (*line)[len - 1] == '\n') (*line)[len - 1] = '\0';
    return *line;
}

/* The text after "key " of the next line, which must start with key. */
static char *keyed_line(FILE *f, char **line, size_t *cap, const char *key)
{
    char *s = next_line(f, line, cap);
    size_t n = strlen(key);
    if (strncmp(s, key, n) || (s[n] != ' ' && s[n] != '\0'))
        fail_msg("expected \"%s\", got \"%.60s\"", key, s);
    return s[n] ? s + n + 1 : s + n;
}

static void parse_ints(const char *s, int64_t *out, int count)
{
    char *end;
    for (int i = 0; i < count; i++, s = end) {
        out[i] = strtoll(s, &end, 10);
        if (end == s) fail_msg("expected %d integers, got %d", count, i);
    }
}

static void parse_labels(const char *s, int32_t *out, int count)
{
    int64_t *tmp = malloc((size_t)count * sizeof *tmp);
    parse_ints(s, tmp, count);
    for (int i = 0; i < count; i++) out[i] = (int32_t)tmp[i];
    free(tmp);
}

static void parse_doubles(const char *s, double *out, int count)
{
    char *end;
    for (int i = 0; i < count; i++, s = end) {
        out[i] = strtod(s, &end);
        if (end == s) fail_msg("expected %d numbers, got %d", count, i);
    }
}

static void parse_auc(const char *s, int *has, double *value)
{
    *has = strcmp(s, "error") != 0;
    if (*has) parse_doubles(s, value, 1);
}

static char *quoted(const char *s)
{
    const char *a = strchr(s, '"'), *b = strrchr(s, '"');
    if (!a || b == a) fail_msg("expected a quoted name: %s", s);
    return strndup(a + 1, (size_t)(b - a - 1));
}

static void read_report(FILE *f, char **line, size_t *cap, ref_case *c)
{
    int lines = atoi(keyed_line(f, line, cap, "report"));
    size_t len = 0, size = 1;
    c->report = calloc(1, 1);
    for (int i = 0; i < lines; i++) {
        const char *s = next_line(f, line, cap);
        size_t m = strlen(s);
        c->report = realloc(c->report, size += m + 1);
        memcpy(c->report + len, s, m);
        c->report[len + m] = '\n';
        c->report[len += m + 1] = '\0';
    }
}

static void read_case(FILE *f, char **line, size_t *cap, ref_case *c)
{
    if (sscanf(next_line(f, line, cap), "n %d k %d digits %d", &c->n, &c->k, &c->digits) != 3)
        fail_msg("bad size line in case %s", c->name);
    int n = c->n, k = c->k;
    assert_true(n > 0 && k > 0 && k <= MAX_K);
    char *s = next_line(f, line, cap);
    for (; !strncmp(s, "class ", 6); s = next_line(f, line, cap)) c->classes[c->num_classes++] = quoted(s);
    if (strncmp(s, "y_true ", 7)) fail_msg("expected y_true in case %s", c->name);
    c->y_true = malloc((size_t)n * sizeof *c->y_true);
    parse_labels(s + 7, c->y_true, n);
    keyed_line(f, line, cap, "probs");
    c->probs = malloc((size_t)n * (size_t)k * sizeof *c->probs);
    for (int i = 0; i < n; i++) {
        char *p = next_line(f, line, cap), *end;
        for (int j = 0; j < k; j++, p = end) {
            c->probs[i * k + j] = strtof(p, &end);
            if (end == p) fail_msg("row %d of probs in case %s is short", i, c->name);
        }
    }
    c->y_pred = malloc((size_t)n * sizeof *c->y_pred);
    parse_labels(keyed_line(f, line, cap, "y_pred"), c->y_pred, n);
    parse_doubles(keyed_line(f, line, cap, "accuracy"), &c->accuracy, 1);
    c->cm = malloc((size_t)k * (size_t)k * sizeof *c->cm);
    parse_ints(keyed_line(f, line, cap, "confusion"), c->cm, k * k);
    const char *keys[3] = {"precision", "recall", "f1"};
    for (int m = 0; m < 3; m++) {
        c->prf[m] = malloc((size_t)k * sizeof *c->prf[m]);
        parse_doubles(keyed_line(f, line, cap, keys[m]), c->prf[m], k);
    }
    c->support = malloc((size_t)k * sizeof *c->support);
    parse_ints(keyed_line(f, line, cap, "support"), c->support, k);
    const char *avgs[2] = {"macro", "weighted"};
    for (int a = 0; a < 2; a++) {
        char *end;
        const char *p = keyed_line(f, line, cap, avgs[a]);
        parse_doubles(p, c->avg[a], 3);
        for (int m = 0; m < 3; m++) strtod(p, &end), p = end;
        parse_ints(p, &c->avg_support[a], 1);
    }
    parse_auc(keyed_line(f, line, cap, "auc_ovo"), &c->has_ovo, &c->ovo);
    parse_auc(keyed_line(f, line, cap, "auc_ovr"), &c->has_ovr, &c->ovr);
    if (k == 2) {
        c->has_binary = 1;
        parse_doubles(keyed_line(f, line, cap, "auc_binary"), &c->binary, 1);
    }
    read_report(f, line, cap, c);
    keyed_line(f, line, cap, "end");
}

static int load_cases(void **state)
{
    (void)state;
    FILE *f = open_ref();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#') continue;
        if (strncmp(line, "case ", 5)) fail_msg("expected a case line, got \"%.60s\"", line);
        assert_true(g_num_cases < MAX_CASES);
        ref_case *c = &g_cases[g_num_cases++];
        line[strcspn(line, "\n")] = '\0';
        snprintf(c->name, sizeof c->name, "%s", line + 5);
        read_case(f, &line, &cap, c);
    }
    free(line);
    fclose(f);
    return g_num_cases >= 7 ? 0 : -1;
}

static int free_cases(void **state)
{
    (void)state;
    for (int i = 0; i < g_num_cases; i++) {
        ref_case *c = &g_cases[i];
        for (int j = 0; j < c->num_classes; j++) free(c->classes[j]);
        for (int m = 0; m < 3; m++) free(c->prf[m]);
        free(c->y_true), free(c->y_pred), free(c->probs), free(c->cm), free(c->support), free(c->report);
    }
    return 0;
}

/* ---- comparisons */

static void assert_close(double got, double want, double rtol, const char *what, const char *name)
{
    if (!(fabs(got - want) <= rtol * fabs(want)))
        fail_msg("%s (case %s): got %.17g, scikit-learn %.17g", what, name, got, want);
}

/* Target names as the study makes them, from the raw class names; NULL when the case has none. */
static const char **target_names(const ref_case *c, char (*buf)[64])
{
    static const char *names[MAX_K];
    if (!c->num_classes) return NULL;
    assert_int_equal(c->num_classes, c->k);
    for (int i = 0; i < c->k; i++) {
        assert_int_equal(cnn_target_name(i, c->classes[i], buf[i], 64), 0);
        names[i] = buf[i];
    }
    return names;
}

static void check_labels_metrics(const ref_case *c)
{
    int n = c->n, k = c->k;
    int32_t pred[1000];
    assert_true(n <= 1000);
    assert_int_equal(cnn_argmax_rows(c->probs, n, k, pred), 0);
    assert_memory_equal(pred, c->y_pred, (size_t)n * sizeof *pred);
    double acc;
    assert_int_equal(cnn_accuracy(c->y_true, c->y_pred, n, k, &acc), 0);
    assert_true(acc == c->accuracy);
    int64_t cm[MAX_K * MAX_K];
    assert_int_equal(cnn_confusion_matrix(c->y_true, c->y_pred, n, k, cm), 0);
    assert_memory_equal(cm, c->cm, (size_t)(k * k) * sizeof *cm);
    cnn_prf per[MAX_K], avg[2];
    assert_int_equal(cnn_classification_metrics(c->y_true, c->y_pred, n, k, per, &avg[0], &avg[1]), 0);
    for (int j = 0; j < k; j++) {
        assert_close(per[j].precision, c->prf[0][j], AUC_RTOL, "precision", c->name);
        assert_close(per[j].recall, c->prf[1][j], AUC_RTOL, "recall", c->name);
        assert_close(per[j].f1, c->prf[2][j], AUC_RTOL, "f1", c->name);
        assert_int_equal(per[j].support, c->support[j]);
    }
    for (int a = 0; a < 2; a++) {
        assert_close(avg[a].precision, c->avg[a][0], AUC_RTOL, a ? "weighted precision" : "macro precision",
                     c->name);
        assert_close(avg[a].recall, c->avg[a][1], AUC_RTOL, a ? "weighted recall" : "macro recall", c->name);
        assert_close(avg[a].f1, c->avg[a][2], AUC_RTOL, a ? "weighted f1" : "macro f1", c->name);
        assert_int_equal(avg[a].support, c->avg_support[a]);
    }
}

static void check_auc(const ref_case *c)
{
    double auc = -1;
    int rc = cnn_roc_auc_ovo(c->y_true, c->probs, c->n, c->k, &auc);
    if (c->has_ovo) {
        assert_int_equal(rc, 0);
        assert_close(auc, c->ovo, AUC_RTOL, "ROC-AUC ovo", c->name);
    } else {
        tu_assert_error(rc, CNN_ERR_INVALID, "has no samples in y_true");
    }
    rc = cnn_roc_auc_ovr(c->y_true, c->probs, c->n, c->k, &auc);
    if (c->has_ovr) {
        assert_int_equal(rc, 0);
        assert_close(auc, c->ovr, AUC_RTOL, "ROC-AUC ovr", c->name);
    } else {
        tu_assert_error(rc, CNN_ERR_INVALID, "has no samples in y_true");
    }
    if (c->has_binary) {
        float p1[1000];
        for (int i = 0; i < c->n; i++) p1[i] = c->probs[i * 2 + 1];
        assert_int_equal(cnn_roc_auc_binary(c->y_true, p1, c->n, &auc), 0);
        assert_close(auc, c->binary, AUC_RTOL, "ROC-AUC binary", c->name);
    }
}

static void check_report(const ref_case *c)
{
    char names_buf[MAX_K][64];
    const char **names = target_names(c, names_buf);
    size_t len = 0;
    assert_int_equal(
        cnn_classification_report(c->y_true, c->y_pred, c->n, c->k, names, c->digits, NULL, 0, &len), 0);
    assert_int_equal(len, strlen(c->report));
    char *buf = malloc(len + 1);
    assert_int_equal(
        cnn_classification_report(c->y_true, c->y_pred, c->n, c->k, names, c->digits, buf, len + 1, NULL), 0);
    if (strcmp(buf, c->report))
        fail_msg("report of case %s:\n%s\nscikit-learn:\n%s", c->name, buf, c->report);
    free(buf);

    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    assert_non_null(mem);
    assert_int_equal(cnn_classification_report_print(c->y_true, c->y_pred, c->n, c->k, names, c->digits, mem),
                     0);
    fclose(mem);
    assert_string_equal(text, c->report);
    free(text);
}

static void test_reference_cases(void **state)
{
    (void)state;
    for (int i = 0; i < g_num_cases; i++) {
        check_labels_metrics(&g_cases[i]);
        check_auc(&g_cases[i]);
        check_report(&g_cases[i]);
    }
}

/* The reference file covers what the brief asks for: ties, an absent class, k = 10 with n = 1000, binary. */
static void test_reference_coverage(void **state)
{
    (void)state;
    int big = 0, absent = 0, binary = 0, utf8 = 0;
    for (int i = 0; i < g_num_cases; i++) {
        const ref_case *c = &g_cases[i];
        big |= c->k == 10 && c->n == 1000 && c->has_ovo;
        absent |= !c->has_ovo;
        binary |= c->has_binary;
        utf8 |= c->num_classes && (unsigned char)c->classes[0][0] >= 0x80;
    }
    assert_true(big && absent && binary && utf8);
}

/* ---- properties checked without scikit-learn */

static void test_argmax_ties_first(void **state)
{
    (void)state;
    const float s[] = {0.2f, 0.4f, 0.4f, 0.5f, 0.5f, 0.5f, -1.0f, -2.0f, -1.0f, 0.0f, -0.0f, 0.0f};
    int32_t pred[4];
    assert_int_equal(cnn_argmax_rows(s, 4, 3, pred), 0);
    assert_int_equal(pred[0], 1);
    assert_int_equal(pred[1], 0);
    assert_int_equal(pred[2], 0);
    assert_int_equal(pred[3], 0);
}

static void test_binary_auc_known_values(void **state)
{
    (void)state;
    const int32_t y[] = {0, 0, 1, 1};
    const float doc[] = {0.1f, 0.4f, 0.35f, 0.8f}, tied[] = {0.5f, 0.5f, 0.5f, 0.5f};
    const float perfect[] = {0, 1, 2, 3}, inverted[] = {3, 2, 1, 0}, half[] = {0.1f, 0.5f, 0.5f, 0.9f};
    double auc;
    assert_int_equal(cnn_roc_auc_binary(y, doc, 4, &auc), 0);
    assert_true(auc == 0.75); /* scikit-learn's documentation example */
    assert_int_equal(cnn_roc_auc_binary(y, tied, 4, &auc), 0);
    assert_true(auc == 0.5);
    assert_int_equal(cnn_roc_auc_binary(y, perfect, 4, &auc), 0);
    assert_true(auc == 1.0);
    assert_int_equal(cnn_roc_auc_binary(y, inverted, 4, &auc), 0);
    assert_true(auc == 0.0);
    assert_int_equal(cnn_roc_auc_binary(y, half, 4, &auc), 0);
    assert_true(auc == 0.875); /* 3.5 of 4 pairs: one tie */
}

/* Random labels and scores on a coarse grid (ties everywhere). */
static void make_random(int n, int k, int grid, uint64_t seed, int32_t *y, float *p)
{
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)(i < k ? i : (int)cnn_rng_below(seed, 1, (uint64_t)i, (uint32_t)k));
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) {
        uint32_t u = cnn_rng_below(seed, 2, i, (uint32_t)grid);
        p[i] = (float)u / (float)grid + (y[i / (size_t)k] == (int32_t)(i % (size_t)k) ? 0.3f : 0.0f);
    }
}

/* AUC of class a against class b on column col by comparing every pair: O(n^2). */
static double brute_auc(const int32_t *y, const float *p, int n, int k, int a, int b, int col)
{
    double wins = 0, pairs = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] != a) continue;
        for (int j = 0; j < n; j++) {
            if (y[j] != b && !(b < 0 && y[j] != a)) continue;
            float si = p[i * k + col], sj = p[j * k + col];
            wins += si > sj ? 1.0 : si == sj ? 0.5 : 0.0;
            pairs += 1;
        }
    }
    return wins / pairs;
}

static void test_auc_against_brute_force(void **state)
{
    (void)state;
    enum { N = 400, K = 5 };
    static int32_t y[N];
    static float p[N * K];
    make_random(N, K, 7, 11, y, p);
    double ovo = 0, ovr = 0, got;
    for (int a = 0; a < K; a++) {
        ovr += brute_auc(y, p, N, K, a, -1, a) / K;
        for (int b = a + 1; b < K; b++)
            ovo += (brute_auc(y, p, N, K, a, b, a) + brute_auc(y, p, N, K, b, a, b)) / 2 / (K * (K - 1) / 2);
    }
    assert_int_equal(cnn_roc_auc_ovo(y, p, N, K, &got), 0);
    assert_close(got, ovo, 1e-12, "ovo vs brute force", "random");
    assert_int_equal(cnn_roc_auc_ovr(y, p, N, K, &got), 0);
    assert_close(got, ovr, 1e-12, "ovr vs brute force", "random");
}

/* 10,000 x 10 (the study's test set): the same bits for any thread count. (Speed is for bench/, not tests.)
 */
static void test_auc_threads(void **state)
{
    (void)state;
    enum { N = 10000, K = 10 };
    int32_t *y = malloc(N * sizeof *y);
    float *p = malloc((size_t)N * K * sizeof *p);
    make_random(N, K, 1000, 5, y, p);
    int saved = cnn_get_threads();
    double ref[2], got[2];
    cnn_set_threads(1);
    assert_int_equal(cnn_roc_auc_ovo(y, p, N, K, &ref[0]), 0);
    assert_int_equal(cnn_roc_auc_ovr(y, p, N, K, &ref[1]), 0);
    for (int threads = 2; threads <= 4; threads++) {
        cnn_set_threads(threads);
        assert_int_equal(cnn_roc_auc_ovo(y, p, N, K, &got[0]), 0);
        assert_int_equal(cnn_roc_auc_ovr(y, p, N, K, &got[1]), 0);
        assert_memory_equal(got, ref, sizeof ref);
    }
    cnn_set_threads(saved);
    free(y);
    free(p);
}

static void test_target_names(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(cnn_target_name(1, "Trouser", buf, sizeof buf), 0);
    assert_string_equal(buf, "1 - Trouser    ");
    assert_int_equal(cnn_target_name(0, cnn_fashion_class_name(0), buf, sizeof buf), 0);
    assert_string_equal(buf, "0 - T-shirt/top");
    assert_int_equal(cnn_target_name(5, "Босоніжки", buf, sizeof buf), 0);
    assert_string_equal(buf, "5 - Босоніжки  ");           /* 9 characters (18 bytes) + 2 spaces */
    assert_int_equal(cnn_target_name(12, "", buf, 17), 0); /* "12 - " and 11 spaces */
    assert_int_equal(strlen(buf), 16);
    assert_int_equal(strspn(buf + 4, " "), 12);
}

/* Metrics over a class that occurs nowhere: all-zero entry, not in the macro average. */
static void test_absent_class_metrics(void **state)
{
    (void)state;
    const int32_t y[] = {0, 1, 1, 0}, p[] = {0, 1, 0, 0};
    cnn_prf per[3], macro, weighted;
    assert_int_equal(cnn_classification_metrics(y, p, 4, 3, per, &macro, &weighted), 0);
    assert_true(per[2].precision == 0 && per[2].recall == 0 && per[2].f1 == 0 && per[2].support == 0);
    assert_true(per[0].precision == 2.0 / 3 && per[0].recall == 1.0 && per[1].precision == 1.0);
    assert_true(macro.recall == (1.0 + 0.5) / 2);
    assert_true(weighted.recall == (1.0 * 2 + 0.5 * 2) / 4);
    assert_int_equal(macro.support, 4);
    assert_int_equal(cnn_classification_metrics(y, p, 4, 3, NULL, NULL, NULL), 0);
}

/* ---- errors: each call below succeeds or crashes if its check is removed */

static void test_errors_labels(void **state)
{
    (void)state;
    const int32_t y[] = {0, 1, 2}, bad_hi[] = {0, 3, 1}, bad_lo[] = {0, -1, 1};
    int32_t pred[3];
    int64_t cm[9];
    double acc;
    const float s[] = {1, 0, 0, 0, 1, 0};
    tu_assert_error(cnn_accuracy(NULL, y, 3, 3, &acc), CNN_ERR_INVALID, "y_true is NULL");
    tu_assert_error(cnn_accuracy(y, NULL, 3, 3, &acc), CNN_ERR_INVALID, "y_pred is NULL");
    tu_assert_error(cnn_accuracy(y, y, 0, 3, &acc), CNN_ERR_INVALID, "n = 0 samples");
    tu_assert_error(cnn_accuracy(y, y, 3, 0, &acc), CNN_ERR_INVALID, "k = 0 classes");
    tu_assert_error(cnn_accuracy(y, y, 3, 3, NULL), CNN_ERR_INVALID, "accuracy is NULL");
    tu_assert_error(cnn_accuracy(bad_hi, y, 3, 3, &acc), CNN_ERR_INVALID,
                    "y_true[1] = 3 is not a class label 0..2");
    tu_assert_error(cnn_accuracy(y, bad_lo, 3, 3, &acc), CNN_ERR_INVALID, "y_pred[1] = -1");
    tu_assert_error(cnn_confusion_matrix(y, y, 3, 3, NULL), CNN_ERR_INVALID, "cm is NULL");
    tu_assert_error(cnn_confusion_matrix(y, bad_hi, 3, 3, cm), CNN_ERR_INVALID, "y_pred[1] = 3");
    tu_assert_error(cnn_confusion_matrix(bad_lo, y, 3, 3, cm), CNN_ERR_INVALID, "y_true[1] = -1");
    tu_assert_error(cnn_confusion_matrix(y, y, -2, 3, cm), CNN_ERR_INVALID, "n = -2");
    tu_assert_error(cnn_classification_metrics(y, bad_hi, 3, 3, NULL, NULL, NULL), CNN_ERR_INVALID,
                    "y_pred[1]");
    tu_assert_error(cnn_classification_metrics(bad_lo, y, 3, 3, NULL, NULL, NULL), CNN_ERR_INVALID,
                    "y_true[1]");
    tu_assert_error(cnn_classification_metrics(y, y, 0, 3, NULL, NULL, NULL), CNN_ERR_INVALID, "n = 0");
    tu_assert_error(cnn_classification_metrics(y, y, 3, 0, NULL, NULL, NULL), CNN_ERR_INVALID, "k = 0");
    tu_assert_error(cnn_classification_metrics(y, y, 3, -1, NULL, NULL, NULL), CNN_ERR_INVALID, "k = -1");
    tu_assert_error(cnn_argmax_rows(NULL, 2, 3, pred), CNN_ERR_INVALID, "score is NULL");
    tu_assert_error(cnn_argmax_rows(s, 2, 3, NULL), CNN_ERR_INVALID, "pred is NULL");
    tu_assert_error(cnn_argmax_rows(s, 0, 3, pred), CNN_ERR_INVALID, "n = 0");
    tu_assert_error(cnn_argmax_rows(s, 2, 0, pred), CNN_ERR_INVALID, "k = 0");
    const float nan_row[] = {0, 1, 0, 0, NAN, 0}, inf_row[] = {INFINITY, 1, 0, 0, 1, 0};
    tu_assert_error(cnn_argmax_rows(nan_row, 2, 3, pred), CNN_ERR_INVALID, "sample 1, class 1 is NaN");
    tu_assert_error(cnn_argmax_rows(inf_row, 2, 3, pred), CNN_ERR_INVALID, "sample 0, class 0 is infinite");
}

static void test_errors_report(void **state)
{
    (void)state;
    const int32_t y[] = {0, 1, 1}, bad[] = {0, 1, 2};
    const char *names[] = {"a", NULL};
    char small[16] = "untouched";
    size_t len = 0;
    tu_assert_error(cnn_classification_report(y, y, 3, 2, NULL, -1, NULL, 0, &len), CNN_ERR_INVALID,
                    "digits = -1");
    tu_assert_error(cnn_classification_report(y, y, 3, 2, NULL, 18, NULL, 0, &len), CNN_ERR_INVALID,
                    "digits = 18");
    tu_assert_error(cnn_classification_report(y, y, 3, 2, names, 2, NULL, 0, &len), CNN_ERR_INVALID,
                    "target_names[1] is NULL");
    tu_assert_error(cnn_classification_report(y, y, 3, 2, NULL, 2, NULL, 10, &len), CNN_ERR_INVALID,
                    "buf is NULL but size is 10");
    tu_assert_error(cnn_classification_report(y, bad, 3, 2, NULL, 2, NULL, 0, &len), CNN_ERR_INVALID,
                    "y_pred[2] = 2");
    tu_assert_error(cnn_classification_report(y, y, 0, 2, NULL, 2, NULL, 0, &len), CNN_ERR_INVALID, "n = 0");
    tu_assert_error(cnn_classification_report(y, y, 3, -1, NULL, 2, NULL, 0, &len), CNN_ERR_INVALID,
                    "k = -1");
    tu_assert_error(cnn_classification_report(y, y, 3, 2, NULL, 2, small, sizeof small, &len),
                    CNN_ERR_INVALID, "the report needs");
    assert_string_equal(small, "");
    assert_true(len > sizeof small);
    tu_assert_error(cnn_classification_report_print(y, y, 3, 2, NULL, 2, NULL), CNN_ERR_INVALID,
                    "out is NULL");
    tu_assert_error(cnn_classification_report_print(y, bad, 3, 2, NULL, 2, stdout), CNN_ERR_INVALID,
                    "y_pred[2]");
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    tu_assert_error(cnn_classification_report_print(y, y, 3, 2, NULL, 2, ro), CNN_ERR_IO, "could not write");
    fclose(ro);
    char buf[8];
    tu_assert_error(cnn_target_name(1, NULL, buf, sizeof buf), CNN_ERR_INVALID, "class_name is NULL");
    tu_assert_error(cnn_target_name(1, "Trouser", NULL, 8), CNN_ERR_INVALID, "buf is NULL");
    tu_assert_error(cnn_target_name(1, "Trouser", buf, 0), CNN_ERR_INVALID, "buf is NULL or empty");
    tu_assert_error(cnn_target_name(1, "Trouser", buf, sizeof buf), CNN_ERR_INVALID, "needs 16 bytes");
}

static void test_errors_auc(void **state)
{
    (void)state;
    const int32_t y[] = {0, 1, 2, 1}, y_missing[] = {0, 2, 2, 0}, y_bad[] = {0, 1, 3, 1};
    const float s[] = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.1f, 0.1f, 0.8f, 0.3f, 0.4f, 0.3f};
    const float s_nan[] = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.1f, 0.1f, NAN, 0.3f, 0.4f, 0.3f};
    const float s_inf[] = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, -INFINITY, 0.1f, 0.1f, 0.8f, 0.3f, 0.4f, 0.3f};
    double auc;
    int (*fns[2])(const int32_t *, const float *, int, int, double *) = {cnn_roc_auc_ovo, cnn_roc_auc_ovr};
    for (int f = 0; f < 2; f++) {
        tu_assert_error(fns[f](y_missing, s, 4, 3, &auc), CNN_ERR_INVALID,
                        "class 1 has no samples in y_true");
        tu_assert_error(fns[f](y, s_nan, 4, 3, &auc), CNN_ERR_INVALID, "sample 2, class 2 is NaN");
        tu_assert_error(fns[f](y, s_inf, 4, 3, &auc), CNN_ERR_INVALID, "sample 1, class 2 is infinite");
        tu_assert_error(fns[f](y_bad, s, 4, 3, &auc), CNN_ERR_INVALID, "y_true[2] = 3");
        tu_assert_error(fns[f](NULL, s, 4, 3, &auc), CNN_ERR_INVALID, "y_true is NULL");
        tu_assert_error(fns[f](y, NULL, 4, 3, &auc), CNN_ERR_INVALID, "score is NULL");
        tu_assert_error(fns[f](y, s, 4, 3, NULL), CNN_ERR_INVALID, "auc is NULL");
        tu_assert_error(fns[f](y, s, 0, 3, &auc), CNN_ERR_INVALID, "n = 0");
        tu_assert_error(fns[f](y, s, 4, 1, &auc), CNN_ERR_INVALID, "k = 1 classes; need at least 2");
    }
    const int32_t yb[] = {0, 1, 1}, yb_one[] = {1, 1, 1}, yb_bad[] = {0, 2, 1};
    const float sb[] = {0.1f, 0.2f, 0.3f}, sb_nan[] = {0.1f, NAN, 0.3f};
    tu_assert_error(cnn_roc_auc_binary(yb_one, sb, 3, &auc), CNN_ERR_INVALID, "only class 1 is present");
    tu_assert_error(cnn_roc_auc_binary(yb_bad, sb, 3, &auc), CNN_ERR_INVALID,
                    "y_true[1] = 2 is not a class label 0..1");
    tu_assert_error(cnn_roc_auc_binary(yb, sb_nan, 3, &auc), CNN_ERR_INVALID, "sample 1, class 0 is NaN");
    tu_assert_error(cnn_roc_auc_binary(yb, NULL, 3, &auc), CNN_ERR_INVALID, "score is NULL");
    tu_assert_error(cnn_roc_auc_binary(yb, sb, 3, NULL), CNN_ERR_INVALID, "auc is NULL");
    tu_assert_error(cnn_roc_auc_binary(yb, sb, 0, &auc), CNN_ERR_INVALID, "n = 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_cases),
        cmocka_unit_test(test_reference_coverage),
        cmocka_unit_test(test_argmax_ties_first),
        cmocka_unit_test(test_binary_auc_known_values),
        cmocka_unit_test(test_auc_against_brute_force),
        cmocka_unit_test(test_auc_threads),
        cmocka_unit_test(test_target_names),
        cmocka_unit_test(test_absent_class_metrics),
        cmocka_unit_test(test_errors_labels),
        cmocka_unit_test(test_errors_report),
        cmocka_unit_test(test_errors_auc),
    };
    return cmocka_run_group_tests(tests, load_cases, free_cases);
}
