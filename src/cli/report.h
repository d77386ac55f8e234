/* cnnlab report: every picture and the HTML report of a run folder or a study folder, drawn from the saved
 * run records (run.json) without training. */
#ifndef CNN_CLI_REPORT_H
#define CNN_CLI_REPORT_H

#include "cnnlab.h"

typedef struct cli_report_options {
    const char *data;   /* the test set's folder (for predict.png) */
    cnn_labels labels;  /* class names of predict.png */
    uint64_t seed;      /* which 50 test images predict.png shows */
    const char *select; /* the model of predict.png (NULL: the most accurate) */
    int no_predict;     /* skip predict.png (no test images at hand) */
    int quiet;
    int zip; /* also write <study>_models.zip and <study>_images.zip */
} cli_report_options;

cli_report_options cli_report_defaults(void);

/* One run of the report: its record, where its files are (relative to the report's folder, "" for a single
 * run) and what the report shows beside the numbers. */
typedef struct cli_report_entry {
    cnn_run run;
    char dir[256];
    char *spec_text; /* model.spec, or NULL */
    long params;     /* parameters of model.cnn, -1 when unknown */
} cli_report_entry;

typedef struct cli_report_set {
    char root[4096];
    int study; /* a study folder (one sub-folder per run) rather than one run */
    cli_report_entry *e;
    int n;
    int predict; /* index of the run drawn in predict.png, -1 when not drawn */
    int bars;    /* va.png and va_sorted.png were drawn */
} cli_report_set;

/* Draws every picture and index.html of dir (a run folder holding run.json, or a study folder whose
 * sub-folders hold them). train and study call it when they finish. Returns 0 or a negative cnn_status with
 * the message in cnn_errmsg(). */
int cli_report_dir(const char *dir, const cli_report_options *o);

/* Writes dir/<name>_models.zip (models, run records, histories, recipes, .epoch files, TensorBoard logs) and
 * dir/<name>_images.zip (pictures and the page), name being dir's last component; entries are named relative
 * to dir ("Model_1/model.cnn"), so `cnn_unzip(zip, dir)` puts them back. Prints errors; 0 or -1. */
int cli_report_archives(const char *dir, int quiet);
/* dir/<name>_progress.zip, the models archive so far: study writes it as each model finishes. */
int cli_report_progress(const char *dir);

/* Writes root/index.html for the loaded set (pictures already drawn). */
int cli_report_html(const cli_report_set *s);

#endif
