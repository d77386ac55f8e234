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

/* The rate columns of a GEMM layer: forward GFLOP, forward and backward GFLOP/s, the forward's share of the
 * same-shape sgemm, and each pass's share of the multiply-add peak. */
static void print_rates(const cnn_model *m, int i, double gf, const double ms[2], const double *gemm,
                        double peak, FILE *out)
{
    double bgf = backward_flops(m, i, gf);
    double rate = ms[0] > 0 ? gf / (ms[0] * 1e-3) : 0, brate = ms[1] > 0 ? bgf / (ms[1] * 1e-3) : 0;
    fprintf(out, " %9.3f %8.1f %8.1f", gf, rate, brate);
    if (gemm && gemm[i] > 0)
        fprintf(out, " %6.0f%%", 100 * rate / gemm[i]);
    else
        fprintf(out, " %7s", "");
    if (peak > 0) fprintf(out, " %6.0f%% %6.0f%%", 100 * rate / peak, 100 * brate / peak);
}

void cnn_model_profile_print(const cnn_model *m, const double *gemm_gflops, double peak_gflops, FILE *out)
{
    if (!m->x.prof_seconds || !m->x.prof_forward) {
        fprintf(out, "no profile recorded\n");
        return;
    }
    int n = m->x.last_n;
    double tf = 0, tb = 0;
    fprintf(out, "%-24s %-20s %9s %9s %9s %8s %8s %7s", "layer", "type", "fwd ms", "bwd ms", "GFLOP",
            "fwd GF/s", "bwd GF/s", "%sgemm");
    fprintf(out, peak_gflops > 0 ? " %7s %7s\n" : "\n", "fwd%pk", "bwd%pk");
    for (int i = 0; i < m->nlayers; i++) {
        const cnn_layer *l = &m->layers[i];
        double ms[2] = {1e3 * m->x.prof_seconds[2 * i] / m->x.prof_forward,
                        m->x.prof_backward ? 1e3 * m->x.prof_seconds[2 * i + 1] / m->x.prof_backward : 0};
        double gf = l->ops->flops ? l->ops->flops(l, n) * 1e-9 : 0;
        tf += ms[0], tb += ms[1];
        /* The type, with the algorithm where it is not the direct one ("Conv2D/winograd"); the GFLOP stay the
         * direct algorithm's, so that the rates compare with the peak across algorithms. */
        const char *algo = l->ops->algorithm ? l->ops->algorithm(l) : NULL;
        char type[40];
        snprintf(type, sizeof type, algo ? "%s/%s" : "%s", l->ops->type, algo);
        fprintf(out, "%-24.24s %-20.20s %9.3f %9.3f", l->name, type, ms[0], ms[1]);
        if (gf > 0) print_rates(m, i, gf, ms, gemm_gflops, peak_gflops, out);
        fputc('\n', out);
    }
    fprintf(out, "%-45s %9.3f %9.3f   (batch %d; %ld forward, %ld backward passes)\n", "total", tf, tb, n,
            m->x.prof_forward, m->x.prof_backward);
}
