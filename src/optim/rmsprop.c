/* RMSprop as Keras 2.15 computes it (epsilon inside the square root):
 *   v <- rho v + (1-rho) g^2;  w <- w - lr g / sqrt(v + eps) */
#include <math.h>

#include "optim/optimizer.h"

void cnn_rmsprop_update(const cnn_optimizer_config *c, double lr, float *w, const float *g, float *v,
                        size_t n)
{
    const float a = (float)lr, rho = (float)c->rho, eps = (float)c->epsilon;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        v[i] = rho * v[i] + (1.0f - rho) * g[i] * g[i];
        w[i] -= a * g[i] / sqrtf(v[i] + eps);
    }
}

static int rmsprop_configure(cnn_opts *o, cnn_optimizer_config *cfg)
{
    *cfg = cnn_optimizer_default(CNN_OPT_RMSPROP, 0.001);
    int rc = cnn_optimizer_read_lr(o, cfg->learning_rate, cfg);
    if (!rc) rc = cnn_opts_double(o, "rho", 0.9, 0, 0.999999, &cfg->rho);
    if (!rc) rc = cnn_opts_double(o, "epsilon", 1e-7, 0, 1, &cfg->epsilon);
    return rc;
}

const cnn_optimizer_ops cnn_rmsprop_ops = {.type = "RMSprop",
                                           .positional = {"learning_rate"},
                                           .kind = CNN_OPT_RMSPROP,
                                           .configure = rmsprop_configure};
