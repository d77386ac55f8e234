#include "layers/activation.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static const char *const g_names[] = {"linear",  "relu",       "softmax", "tanh",
                                      "sigmoid", "leaky_relu", "elu",     "gelu"};
enum { N_ACTS = sizeof g_names / sizeof g_names[0] };

/* tf.nn.leaky_relu's default slope, which Keras uses for activation="leaky_relu". */
static const float LEAKY_ALPHA = 0.2f;

const char *cnn_act_name(cnn_activation a)
{
    return (unsigned)a < N_ACTS ? g_names[a] : "?";
}

int cnn_act_from_name(const char *name)
{
    for (int i = 0; i < N_ACTS; i++)
        if (!strcasecmp(name, g_names[i])) return i;
    return -1;
}

int cnn_act_needs_input(cnn_activation a)
{
    return a == CNN_ACT_GELU;
}

void cnn_softmax_rows(const float *z, float *p, size_t rows, size_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > 4096)
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z + r * cols;
        float *pr = p + r * cols;
        float mx = zr[0];
        for (size_t j = 1; j < cols; j++) mx = zr[j] > mx ? zr[j] : mx;
        float sum = 0.0f;
        for (size_t j = 0; j < cols; j++) sum += pr[j] = expf(zr[j] - mx);
        float inv = 1.0f / sum;
        for (size_t j = 0; j < cols; j++) pr[j] *= inv;
    }
}

static float gelu(float x)
{
    return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
}

static float gelu_grad(float x)
{
    float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
    float pdf = expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    return cdf + x * pdf;
}

void cnn_act_forward(cnn_activation a, float *y, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    switch (a) {
    case CNN_ACT_LINEAR:
        break;
    case CNN_ACT_SOFTMAX:
        cnn_softmax_rows(y, y, rows, cols);
        break;
    case CNN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case CNN_ACT_LEAKY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : LEAKY_ALPHA * y[i];
        break;
    case CNN_ACT_TANH:
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    case CNN_ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case CNN_ACT_ELU:
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : expm1f(y[i]);
        break;
    case CNN_ACT_GELU:
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++) y[i] = gelu(y[i]);
        break;
    }
}

static void softmax_backward(const float *y, float *dy, size_t rows, size_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > 4096)
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols;
        float *dr = dy + r * cols;
        float dot = 0.0f;
        for (size_t j = 0; j < cols; j++) dot += dr[j] * yr[j];
        for (size_t j = 0; j < cols; j++) dr[j] = yr[j] * (dr[j] - dot);
    }
}

void cnn_act_backward(cnn_activation a, const float *z, const float *y, float *dy, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    switch (a) {
    case CNN_ACT_LINEAR:
        break;
    case CNN_ACT_SOFTMAX:
        softmax_backward(y, dy, rows, cols);
        break;
    case CNN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case CNN_ACT_LEAKY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : LEAKY_ALPHA * dy[i];
        break;
    case CNN_ACT_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case CNN_ACT_SIGMOID:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case CNN_ACT_ELU: /* for z <= 0, f'(z) = e^z = y + 1 */
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (size_t i = 0; i < n; i++) dy[i] *= y[i] > 0.0f ? 1.0f : y[i] + 1.0f;
        break;
    case CNN_ACT_GELU:
#pragma omp parallel for schedule(static) if (n > 4096)
        for (size_t i = 0; i < n; i++) dy[i] *= gelu_grad(z[i]);
        break;
    }
}
