/* Run records for the report tests: the study's Model_2_s2 as its pictures show it (history read off
 * img_Model_2_s2_ca.png, confusion matrix of img_Model_2_s2_cm.png), on Fashion-MNIST's test set when it is
 * installed, else on a synthetic test set with the same labels layout (1000 images per class). */
#ifndef CNN_TESTS_REPORT_FIXTURE_H
#define CNN_TESTS_REPORT_FIXTURE_H

#include "cnnlab.h"

/* Fills r (and test, when not NULL) as Model_2_s2's evaluated run; *real says whether the images are
 * Fashion-MNIST's. */
void rf_model_2_s2(cnn_run *r, cnn_dataset *test, int *real);
/* A small evaluated run named name with the given accuracy and ROC-AUC (no predictions). */
void rf_small(cnn_run *r, const char *name, double accuracy, double roc_auc);
/* Frees what the fixture allocated. */
void rf_free(cnn_run *r);

#endif
