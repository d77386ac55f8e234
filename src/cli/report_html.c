/* index.html of cnnlab report: one self-contained page (no scripts, no network) with the sorted results
 * table, the conclusions computed from the results, every picture, and each run's classification report and
 * recipe. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/report.h"

static const char *const STYLE =
    "body{font-family:'DejaVu Sans',sans-serif;margin:2em auto;max-width:1320px;color:#222}"
    "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}"
    "td.n{text-align:right}th{background:#eee}tr:nth-child(even){background:#f7f7f7}"
    "pre{background:#f4f4f4;padding:8px;font-size:13px;overflow-x:auto}img{max-width:100%;border:1px solid "
    "#ddd}"
    "section{margin-top:2.5em}";

/* Text for HTML: &, <, > and quotes escaped. */
static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* The path of a run's file relative to the page. */
static void run_file(FILE *f, const cli_report_entry *e, const char *suffix)
{
    if (*e->dir) esc(f, e->dir), fputc('/', f);
    esc(f, e->run.model);
    esc(f, suffix);
}

static int by_accuracy_desc(const void *a, const void *b)
{
    const cli_report_entry *x = *(const cli_report_entry *const *)a, *y = *(const cli_report_entry *const *)b;
    double u = x->run.evaluated ? x->run.test_accuracy : -1, v = y->run.evaluated ? y->run.test_accuracy : -1;
    return u > v ? -1 : u < v ? 1 : strcmp(x->run.model, y->run.model);
}

static void num(FILE *f, const char *fmt, double v)
{
    fputs("<td class=n>", f);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("&ndash;", f);
    fputs("</td>", f);
}

static void table_row(FILE *f, const cli_report_entry *e, int rank, int id)
{
    const cnn_run *r = &e->run;
    fprintf(f, "<tr><td class=n>%d</td><td><a href=\"#run-%d\">", rank, id);
    esc(f, r->model);
    fputs("</a>", f);
    esc(f, cnn_run_base_label(r));
    fputs("</td>", f);
    num(f, "%.2f", r->evaluated ? 100 * r->test_accuracy : NAN);
    num(f, "%.4f", r->evaluated ? r->roc_auc_ovo : NAN);
    num(f, "%.0f", r->history.count);
    num(f, "%.0f", r->best_epoch >= 0 ? r->best_epoch + 1.0 : NAN);
    fputs("<td>", f);
    esc(f, cnn_run_stop_reason(r));
    fputs("</td>", f);
    num(f, "%.2f", r->history.count ? r->seconds_per_epoch : NAN);
    num(f, "%.0f", r->history.count ? r->images_per_second : NAN);
    num(f, "%.0f", e->params >= 0 ? (double)e->params : NAN);
    fputs("</tr>\n", f);
}

static void results_table(FILE *f, const cli_report_set *s, const cli_report_entry **sorted)
{
    fputs("<section><h2>Results</h2><table><tr><th>#</th><th>model</th><th>test accuracy %</th><th>ROC-AUC "
          "(ovo)</th><th>epochs</th><th>best epoch</th><th>stop reason</th><th>s / epoch</th><th>images / "
          "s</th><th>parameters</th></tr>\n",
          f);
    for (int i = 0; i < s->n; i++) table_row(f, sorted[i], i + 1, (int)(sorted[i] - s->e));
    fputs("</table><p>Sorted by test accuracy. The best epoch (1-based) is the one the learning curves mark "
          "(the study's rule, spec 3.8).</p></section>\n",
          f);
}

/* ---- conclusions, computed from the results as the study's author wrote them by hand */

typedef enum { KIND_UNKNOWN, KIND_MLP, KIND_CNN, KIND_VGG } run_kind;

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return 1;
    return 0;
}

/* What a run is, read from its recipe (its name when the recipe is missing). */
static run_kind kind_of(const cli_report_entry *e)
{
    const char *t = e->spec_text;
    if (contains_ci(t ? t : e->run.model, "VGG16")) return KIND_VGG;
    if (!t) return KIND_UNKNOWN;
    return contains_ci(t, "Conv2D") ? KIND_CNN : KIND_MLP;
}

static int fine_tuned(const cli_report_entry *e)
{
    return kind_of(e) == KIND_VGG && contains_ci(e->spec_text, "trainable=true");
}

static int augmented(const cli_report_entry *e)
{
    return strstr(e->run.model, "igen") || contains_ci(e->spec_text, "augment");
}

/* The most accurate evaluated run passing the filter, or NULL. */
static const cli_report_entry *best_of(const cli_report_set *s, int (*keep)(const cli_report_entry *, int),
                                       int arg)
{
    const cli_report_entry *best = NULL;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].run.evaluated && keep(&s->e[i], arg) &&
            (!best || s->e[i].run.test_accuracy > best->run.test_accuracy))
            best = &s->e[i];
    return best;
}

static int keep_any(const cli_report_entry *e, int arg)
{
    return (void)e, (void)arg, 1;
}
static int keep_kind(const cli_report_entry *e, int kind)
{
    return (int)kind_of(e) == kind && !augmented(e);
}
static int keep_vgg(const cli_report_entry *e, int tuned)
{
    return kind_of(e) == KIND_VGG && fine_tuned(e) == tuned;
}

static void name_acc(FILE *f, const cli_report_entry *e)
{
    fputs("<b>", f);
    esc(f, e->run.model);
    esc(f, cnn_run_base_label(&e->run));
    fprintf(f, "</b> (%.2f%%)", 100 * e->run.test_accuracy);
}

/* "what: a against other b: +x.xx points"; kinds name a's and b's kind when one of them is missing. */
static void versus(FILE *f, const char *what, const cli_report_entry *a, const char *other,
                   const cli_report_entry *b, const char *const kinds[2])
{
    fprintf(f, "<li>%s: ", what);
    if (!a || !b) {
        fprintf(f, "not compared: no evaluated %s run in this study.</li>\n", !a ? kinds[0] : kinds[1]);
        return;
    }
    name_acc(f, a);
    fprintf(f, " against %s ", other);
    name_acc(f, b);
    fprintf(f, ": %+.2f percentage points.</li>\n", 100 * (a->run.test_accuracy - b->run.test_accuracy));
}

/* Each augmented run against the run its name extends (Model_2_s2_igen against Model_2_s2). */
static void augmentation(FILE *f, const cli_report_set *s)
{
    int any = 0;
    for (int i = 0; i < s->n; i++) {
        const cli_report_entry *a = &s->e[i], *base = NULL;
        if (!a->run.evaluated || !augmented(a)) continue;
        for (int j = 0; j < s->n; j++) {
            size_t n = strlen(s->e[j].run.model);
            if (j != i && s->e[j].run.evaluated && !augmented(&s->e[j]) &&
                !strncmp(a->run.model, s->e[j].run.model, n) && a->run.model[n] == '_' &&
                (!base || n > strlen(base->run.model)))
                base = &s->e[j];
        }
        if (base) versus(f, "Augmentation", a, "its base", base, NULL), any = 1;
    }
    if (!any) fputs("<li>Augmentation: no augmented run with its base run in this study.</li>\n", f);
}

static double recall(const cnn_run *r, int c)
{
    int64_t row = 0;
    for (int p = 0; p < r->classes; p++) row += r->confusion[c * r->classes + p];
    return row ? (double)r->confusion[c * r->classes + c] / (double)row : NAN;
}

/* The best model's weakest class, what it is taken for, and which run recognises it best. */
static void weakest_class(FILE *f, const cli_report_set *s, const cli_report_entry *best)
{
    const cnn_run *r = &best->run;
    if (!r->confusion || r->classes < 2) return;
    int w = 0, k = r->classes;
    for (int c = 1; c < k; c++)
        if (recall(r, c) < recall(r, w)) w = c;
    int conf = w == 0 ? 1 : 0;
    for (int p = 0; p < k; p++)
        if (p != w && r->confusion[w * k + p] > r->confusion[w * k + conf]) conf = p;
    const char *wn = cnn_fashion_class_name(w), *cn = cnn_fashion_class_name(conf);
    fprintf(f, "<li>Weakest class of the best model: %d (%s), recall %.2f; most often taken for %d (%s).", w,
            k == 10 && wn ? wn : "", recall(r, w), conf, k == 10 && cn ? cn : "");
    const cli_report_entry *top = best;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].run.evaluated && s->e[i].run.confusion && s->e[i].run.classes == k &&
            recall(&s->e[i].run, w) > recall(&top->run, w))
            top = &s->e[i];
    fputs(" Best on that class: <b>", f);
    esc(f, top->run.model);
    fprintf(f, "</b> (recall %.2f).</li>\n", recall(&top->run, w));
}

static void conclusions(FILE *f, const cli_report_set *s)
{
    const cli_report_entry *best = best_of(s, keep_any, 0);
    fputs("<section><h2>Conclusions</h2><p>Computed from the results above.</p><ul>\n", f);
    if (!best) {
        fputs("<li>No run was evaluated on the test set.</li></ul></section>\n", f);
        return;
    }
    fputs("<li>Best model: ", f);
    name_acc(f, best);
    fprintf(f, ", ROC-AUC %.4f.</li>\n", best->run.roc_auc_ovo);
    static const char *const cnn_mlp[2] = {"CNN", "MLP"}, *const vgg[2] = {"VGG16 fine-tuning",
                                                                           "VGG16 feature-extraction"};
    versus(f, "Best CNN against the MLP", best_of(s, keep_kind, KIND_CNN), "the best MLP",
           best_of(s, keep_kind, KIND_MLP), cnn_mlp);
    versus(f, "VGG16 fine-tuning against feature extraction", best_of(s, keep_vgg, 1),
           "the best feature-extraction run", best_of(s, keep_vgg, 0), vgg);
    augmentation(f, s);
    weakest_class(f, s, best);
    fputs("</ul></section>\n", f);
}

/* ---- pictures and per-run sections */

static void figure(FILE *f, const char *src, const char *alt)
{
    fputs("<p><img src=\"", f);
    esc(f, src);
    fputs("\" alt=\"", f);
    esc(f, alt);
    fputs("\"></p>\n", f);
}

static void study_pictures(FILE *f, const cli_report_set *s)
{
    fputs("<section><h2>Pictures</h2>\n", f);
    if (s->bars) {
        figure(f, "va_sorted.png", "Ordered, validated accuracy of the models");
        figure(f, "va.png", "Validated accuracy of the models");
    }
    if (s->predict >= 0) {
        fputs("<h3>50 random test images: ", f);
        esc(f, s->e[s->predict].run.model);
        fputs("</h3>\n", f);
        figure(f, "predict.png", "50 predictions");
    }
    fputs("</section>\n", f);
}

static void classification_report(FILE *f, const cnn_run *r)
{
    char names[64][64];
    const char *ptr[64];
    int k = r->classes;
    if (!r->evaluated || !r->y_true || !r->y_pred || k > 64) return;
    for (int c = 0; c < k; c++) {
        const char *cls = k == 10 ? cnn_fashion_class_name(c) : NULL;
        if (cls)
            cnn_target_name(c, cls, names[c], sizeof names[c]);
        else
            snprintf(names[c], sizeof names[c], "%d", c);
        ptr[c] = names[c];
    }
    size_t len = 0;
    cnn_classification_report(r->y_true, r->y_pred, r->n_test, k, ptr, 2, NULL, 0, &len);
    char *text = malloc(len + 1);
    if (text && !cnn_classification_report(r->y_true, r->y_pred, r->n_test, k, ptr, 2, text, len + 1, NULL)) {
        fputs("<h3>Classification report</h3><pre>", f);
        esc(f, text);
        fprintf(f, "\nAccuracy: %.2f%%, ROC-AUC: %.4f</pre>\n", 100 * r->test_accuracy, r->roc_auc_ovo);
    }
    free(text);
}

static void run_section(FILE *f, const cli_report_entry *e, int id)
{
    const cnn_run *r = &e->run;
    fprintf(f, "<section id=\"run-%d\"><h2>", id);
    esc(f, r->model);
    fputs("</h2>\n<p>Weights: ", f);
    esc(f, r->weights);
    fprintf(f, "; seed %llu, batch %d, %d threads, %d training images.</p>\n", (unsigned long long)r->seed,
            r->batch_size, r->threads, r->train_images);
    if (r->history.count > 0) {
        fputs("<p><img src=\"", f);
        run_file(f, e, "_ca.png");
        fputs("\" alt=\"learning curves\"></p>\n", f);
    }
    if (r->evaluated) {
        fputs("<p><img src=\"", f);
        run_file(f, e, "_cm.png");
        fputs("\" alt=\"confusion matrix\"></p>\n", f);
    }
    classification_report(f, r);
    if (e->spec_text) {
        fputs("<h3>Recipe</h3><pre>", f);
        esc(f, e->spec_text);
        fputs("</pre>\n", f);
    }
    fputs("</section>\n", f);
}

static void page(FILE *f, const cli_report_set *s, const cli_report_entry **sorted)
{
    const char *title =
        strrchr(s->root, '/') && strrchr(s->root, '/')[1] ? strrchr(s->root, '/') + 1 : s->root;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cnnlab report: ");
    esc(f, title);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>cnnlab report: ", STYLE);
    esc(f, title);
    fprintf(f, "</h1>\n<p>%d run%s, drawn from the saved run records by cnnlab %s.</p>\n", s->n,
            s->n == 1 ? "" : "s", CNN_VERSION);
    results_table(f, s, sorted);
    conclusions(f, s);
    study_pictures(f, s);
    for (int i = 0; i < s->n; i++) run_section(f, &s->e[i], i);
    fputs("</body></html>\n", f);
}

int cli_report_html(const cli_report_set *s)
{
    const cli_report_entry **sorted = malloc(sizeof *sorted * (size_t)(s->n ? s->n : 1));
    char *buf = NULL, path[4200];
    size_t len = 0;
    FILE *f = sorted ? open_memstream(&buf, &len) : NULL;
    if (!f) return free(sorted), cli_error("report: out of memory"), -1;
    for (int i = 0; i < s->n; i++) sorted[i] = &s->e[i];
    qsort(sorted, (size_t)s->n, sizeof *sorted, by_accuracy_desc);
    page(f, s, sorted);
    int rc = fclose(f) ? -1 : 0;
    snprintf(path, sizeof path, "%s/index.html", s->root);
    if (!rc && cnn_write_file_atomic(path, buf, len))
        rc = (cli_error("report: %s", cnn_errmsg()), -1);
    else if (rc)
        cli_error("report: %s: cannot build the page", path);
    free(buf);
    free(sorted);
    return rc;
}
