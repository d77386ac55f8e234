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

int cli_save_run(const char *dir, const cnn_model *m, const cnn_run *run, const char *report, FILE *log)
{
    char path[4200], line[160];
    snprintf(path, sizeof path, "%s/model.cnn", dir);
    if (cnn_model_save(m, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(path, sizeof path, "%s/history.csv", dir);
    if (cnn_history_save_csv(&run->history, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(path, sizeof path, "%s/history.json", dir);
    if (cnn_history_save_json(&run->history, path)) return cli_error("%s", cnn_errmsg()), -1;
    snprintf(line, sizeof line, "Accuracy: %.2f%%, ROC-AUC: %.4f\n", 100 * run->test_accuracy,
             run->roc_auc_ovo);
    char *full = malloc(strlen(report) + strlen(line) + 1);
    if (!full) return cli_error("out of memory"), -1;
    strcpy(full, report);
    strcat(full, line);
    int rc = write_text(dir, "report.txt", full);
    free(full);
    fprintf(log, "test_accuracy %.4f test_loss %.4f\n%s", run->test_accuracy, run->test_loss, line);
    fflush(log);
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    if (!rc && cnn_run_save_metrics(run, path)) rc = (cli_error("%s", cnn_errmsg()), -1);
    /* Last: its presence marks a complete run. */
    snprintf(path, sizeof path, "%s/run.json", dir);
    if (!rc && cnn_run_save(run, path)) rc = (cli_error("%s", cnn_errmsg()), -1);
    return rc;
}
