/* A run folder's files: written atomically one by one, and read back when a study reuses a run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cnn_write_file_atomic(path, text, strlen(text))) return cli_error("%s", cnn_errmsg()), -1;
    return 0;
}

/* JSON numbers cannot be NaN: missing figures are null. */
static void json_number(char *buf, size_t cap, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "%.9g", v);
}

static int write_metrics(const char *dir, const cli_result *r)
{
    char acc[32], loss[32], ovo[32], ovr[32], text[1024];
    json_number(acc, sizeof acc, r->accuracy);
    json_number(loss, sizeof loss, r->loss);
    json_number(ovo, sizeof ovo, r->roc_auc_ovo);
    json_number(ovr, sizeof ovr, r->roc_auc_ovr);
    snprintf(
        text, sizeof text,
        "{\n  \"model\": \"%s\",\n  \"test_accuracy\": %s,\n  \"test_loss\": %s,\n  \"roc_auc_ovo\": %s,\n"
        "  \"roc_auc_ovr\": %s,\n  \"epochs\": %d,\n  \"best_epoch\": %d,\n  \"seconds_per_epoch\": %.6g,\n"
        "  \"total_seconds\": %.6g,\n  \"stop_reason\": \"%s\"\n}\n",
        r->name, acc, loss, ovo, ovr, r->epochs, r->best_epoch, r->seconds_per_epoch, r->total_seconds,
        r->stop_reason);
    return write_text(dir, "metrics.json", text);
}

/* result.tsv: the table row, one "key<TAB>value" per line, read back by cli_result_load. */
static int write_result(const char *dir, const cli_result *r)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name\t%s\naccuracy\t%.17g\nloss\t%.17g\nroc_auc_ovo\t%.17g\nroc_auc_ovr\t%.17g\nepochs\t%d\n"
             "best_epoch\t%d\nseconds_per_epoch\t%.17g\ntotal_seconds\t%.17g\nstop_reason\t%s\n",
             r->name, r->accuracy, r->loss, r->roc_auc_ovo, r->roc_auc_ovr, r->epochs, r->best_epoch,
             r->seconds_per_epoch, r->total_seconds, r->stop_reason);
    return write_text(dir, "result.tsv", text);
}

int cli_save_run(const char *dir, const cnn_spec *spec, const cnn_model *m, const cnn_history *h,
                 const cli_result *res, const char *report, FILE *log)
{
    char path[4200], line[160];
    snprintf(path, sizeof path, "%s/model.cnn", dir);
    if (cnn_model_save(m, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(path, sizeof path, "%s/history.csv", dir);
    if (cnn_history_save_csv(h, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(path, sizeof path, "%s/history.json", dir);
    if (cnn_history_save_json(h, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(line, sizeof line, "Accuracy: %.2f%%, ROC-AUC: %.4f\n", 100 * res->accuracy, res->roc_auc_ovo);
    char *full = malloc(strlen(report) + strlen(line) + 1);
    if (!full) return cli_error("out of memory"), -1;
    strcpy(full, report);
    strcat(full, line);
    int rc = write_text(dir, "report.txt", full);
    free(full);
    fprintf(log, "test_accuracy %.4f test_loss %.4f\n%s", res->accuracy, res->loss, line);
    fflush(log);
    if (!rc) rc = write_text(dir, "model.spec", cnn_spec_text(spec));
    if (!rc) rc = write_metrics(dir, res);
    /* Last: its presence marks a complete run. */
    if (!rc) rc = write_result(dir, res);
    return rc;
}

int cli_result_load(const char *dir, cli_result *res)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/result.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    memset(res, 0, sizeof *res);
    int fields = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab++ = '\0';
        if (!strcmp(line, "name"))
            fields += snprintf(res->name, sizeof res->name, "%s", tab) > 0;
        else if (!strcmp(line, "accuracy"))
            fields += sscanf(tab, "%lf", &res->accuracy);
        else if (!strcmp(line, "loss"))
            fields += sscanf(tab, "%lf", &res->loss);
        else if (!strcmp(line, "roc_auc_ovo"))
            fields += sscanf(tab, "%lf", &res->roc_auc_ovo);
        else if (!strcmp(line, "roc_auc_ovr"))
            fields += sscanf(tab, "%lf", &res->roc_auc_ovr);
        else if (!strcmp(line, "epochs"))
            fields += sscanf(tab, "%d", &res->epochs);
        else if (!strcmp(line, "best_epoch"))
            fields += sscanf(tab, "%d", &res->best_epoch);
        else if (!strcmp(line, "seconds_per_epoch"))
            fields += sscanf(tab, "%lf", &res->seconds_per_epoch);
        else if (!strcmp(line, "total_seconds"))
            fields += sscanf(tab, "%lf", &res->total_seconds);
        else if (!strcmp(line, "stop_reason"))
            fields += snprintf(res->stop_reason, sizeof res->stop_reason, "%s", tab) > 0;
    }
    fclose(f);
    res->reused = 1;
    return fields == 10 ? 0 : -1;
}
