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
