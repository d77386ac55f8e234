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
