/* SGD as Keras 2.15 computes it:
 *   momentum 0:  w <- w - lr g
 *   momentum:    m <- momentum m - lr g;  w <- w + m             (nesterov: w <- w + momentum m - lr g) */
#include "optim/optimizer.h"

void cnn_sgd_update(const cnn_optimizer_config *c, double lr, float *w, const float *g, float *m, size_t n)
{
    const float a = (float)lr, mu = (float)c->momentum;
    if (!m) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
        for (size_t i = 0; i < n; i++) w[i] -= a * g[i];
        return;
    }
    const int nesterov = c->nesterov;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] - a * g[i];
        w[i] += nesterov ? mu * m[i] - a * g[i] : m[i];
    }
}

static int sgd_configure(cnn_opts *o, cnn_optimizer_config *cfg)
{
    *cfg = cnn_optimizer_default(CNN_OPT_SGD, 0.01);
    int rc = cnn_optimizer_read_lr(o, cfg->learning_rate, cfg);
    if (!rc) rc = cnn_opts_double(o, "momentum", 0, 0, 0.999999, &cfg->momentum);
    if (!rc) rc = cnn_opts_bool(o, "nesterov", 0, &cfg->nesterov);
    return rc;
}

const cnn_optimizer_ops cnn_sgd_ops = {
    .type = "SGD", .positional = {"learning_rate"}, .kind = CNN_OPT_SGD, .configure = sgd_configure};
