#include "loss/xent.h"

#include <math.h>
#include <stddef.h>

/* Sequential on purpose: n*k is small (512 x 10) and a fixed summation order keeps runs bit-identical. */
void cnn_xent(const float *z, const int32_t *y, int n, int k, float scale, double *loss_sum, int *correct,
              float *dz)
{
    double sum = 0.0;
    int hits = 0;
    for (int r = 0; r < n; r++) {
        const float *zr = z + (size_t)r * k;
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (zr[j] > zr[arg]) arg = j;
        float mx = zr[arg], s = 0.0f;
        for (int j = 0; j < k; j++) s += expf(zr[j] - mx);
        /* Shifted logits z - max throughout (as TensorFlow does): forming logsumexp itself would round it
         * to the resolution of the largest logit (6e-5 at 1000), an error loss and softmax then carry. */
        float logs = logf(s);
        int t = y[r];
        int valid = t >= 0 && t < k;
        if (valid) sum += (double)(logs - (zr[t] - mx));
        hits += valid && arg == t;
        if (dz) {
            float *dr = dz + (size_t)r * k;
            for (int j = 0; j < k; j++)
                dr[j] = valid ? scale * (expf(zr[j] - mx) / s - (j == t ? 1.0f : 0.0f)) : 0.0f;
        }
    }
    *loss_sum += sum;
    *correct += hits;
}
