/* Adam as Keras 2.15 computes it (epsilon outside the square root, bias correction folded into alpha):
 *   m <- m + (1-b1)(g - m);  v <- v + (1-b2)(g^2 - v)
 *   alpha = lr * sqrt(1 - b2^t) / (1 - b1^t);  w <- w - alpha * m / (sqrt(v) + eps)
 * Keras evaluates alpha in float32; so do we, so the first steps match it to the last bit. */
#include <math.h>

#include "optim/optimizer.h"

void cnn_adam_update(const cnn_optimizer_config *c, double lr, long t, float *w, const float *g, float *m,
                     float *v, size_t n)
{
    const float b1 = (float)c->beta_1, b2 = (float)c->beta_2, eps = (float)c->epsilon;
    const float b1t = powf(b1, (float)t), b2t = powf(b2, (float)t);
    const float alpha = (float)lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * (1.0f - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1.0f - b2);
        w[i] -= m[i] * alpha / (sqrtf(v[i]) + eps);
    }
}

static int adam_configure(cnn_opts *o, cnn_optimizer_config *cfg)
{
    *cfg = cnn_optimizer_default(CNN_OPT_ADAM, 0.001);
    int rc = cnn_optimizer_read_lr(o, cfg->learning_rate, cfg);
    if (!rc) rc = cnn_opts_double(o, "beta_1", 0.9, 0, 0.999999, &cfg->beta_1);
    if (!rc) rc = cnn_opts_double(o, "beta_2", 0.999, 0, 0.999999999, &cfg->beta_2);
    if (!rc) rc = cnn_opts_double(o, "epsilon", 1e-7, 0, 1, &cfg->epsilon);
    return rc;
}

const cnn_optimizer_ops cnn_adam_ops = {
    .type = "Adam", .positional = {"learning_rate"}, .kind = CNN_OPT_ADAM, .configure = adam_configure};
