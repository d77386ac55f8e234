/* Per-layer profile: where a training step's time goes, and how close each GEMM layer runs to sgemm. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

int cnn_model_profile(cnn_model *m, int on)
{
    free(m->x.prof_seconds);
    m->x.prof_seconds = NULL;
    m->x.prof_forward = m->x.prof_backward = 0;
    if (!on) return CNN_OK;
    m->x.prof_seconds = calloc(2 * (size_t)(m->nlayers ? m->nlayers : 1), sizeof(double));
    return m->x.prof_seconds ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "profile: out of memory");
}

int cnn_model_layer_gemm(const cnn_model *m, int i, int n, int mnk[3])
{
    mnk[0] = mnk[1] = mnk[2] = 0;
    if (i < 0 || i >= m->nlayers || !m->layers[i].ops->gemm_shape) return 0;
    m->layers[i].ops->gemm_shape(&m->layers[i], n, mnk);
    return 1;
}

/* Backward of a GEMM layer costs two GEMMs of the forward's size (weights and input), one when the input
 * gradient is not needed (the first layer). */
static double backward_flops(const cnn_model *m, int i, double fwd)
{
    int first = 0;
    while (first < m->nlayers && !(m->layers[first].trainable && m->layers[first].nparams)) first++;
    if (i < first) return 0;
    return (i > first ? 2.0 : 1.0) * fwd;
}

void cnn_model_profile_print(const cnn_model *m, const double *gemm_gflops, FILE *out)
{
    if (!m->x.prof_seconds || !m->x.prof_forward) {
        fprintf(out, "no profile recorded\n");
        return;
    }
    int n = m->x.last_n;
    double tf = 0, tb = 0;
    fprintf(out, "%-24s %-20s %9s %9s %9s %8s %8s %7s\n", "layer", "type", "fwd ms", "bwd ms", "GFLOP",
            "fwd GF/s", "bwd GF/s", "%sgemm");
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        double f = 1e3 * m->x.prof_seconds[2 * i] / m->x.prof_forward;
        double b = m->x.prof_backward ? 1e3 * m->x.prof_seconds[2 * i + 1] / m->x.prof_backward : 0;
        double gf = l->ops->flops ? l->ops->flops(l, n) * 1e-9 : 0;
        tf += f, tb += b;
        fprintf(out, "%-24.24s %-20.20s %9.3f %9.3f", l->name, l->ops->type, f, b);
        if (gf > 0) {
            double bgf = backward_flops(m, i, gf);
            double rate = f > 0 ? gf / (f * 1e-3) : 0, brate = b > 0 ? bgf / (b * 1e-3) : 0;
            fprintf(out, " %9.3f %8.1f %8.1f", gf, rate, brate);
            if (gemm_gflops && gemm_gflops[i] > 0) fprintf(out, " %6.0f%%", 100 * rate / gemm_gflops[i]);
        }
        fputc('\n', out);
    }
    fprintf(out, "%-45s %9.3f %9.3f   (batch %d; %ld forward, %ld backward passes)\n", "total", tf, tb, n,
            m->x.prof_forward, m->x.prof_backward);
}
