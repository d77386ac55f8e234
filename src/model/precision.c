/* The model's precision (cnnlab.h): which kernels its layers' products run on. */
#include <string.h>

#include "cnnlab.h"
#include "core/error.h"
#include "kernels/gemm_bf16.h"
#include "model/model.h"

int cnn_precision_check(const char *precision)
{
    if (!precision) return cnn_fail(CNN_ERR_INVALID, "precision: NULL (expected fp32 or bf16)");
    if (!strcmp(precision, "fp32")) return CNN_OK;
    if (strcmp(precision, "bf16"))
        return cnn_fail(CNN_ERR_INVALID, "unknown precision '%s' (expected fp32 or bf16)", precision);
    return cnn_bf16_check();
}

int cnn_model_set_precision(cnn_model *m, const char *precision)
{
    if (!m) return cnn_fail(CNN_ERR_INVALID, "cnn_model_set_precision: NULL model");
    const int rc = cnn_precision_check(precision);
    if (rc) return rc;
    m->bf16 = !strcmp(precision, "bf16");
    return CNN_OK;
}

const char *cnn_model_precision(const cnn_model *m)
{
    return m && m->bf16 ? "bf16" : "fp32";
}
