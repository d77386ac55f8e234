/* One layer driven directly through its ops, for tests that look at a layer's buffers rather than at a model.
 *
 * The layer is built inside a one-layer model (so options, shapes and parameters go through the real code
 * paths, as in gradcheck.h), then given buffers of its own, each sized by the layer's own declarations
 * (workspace, scratch per sample). Parameters and input are random in [-1, 1), drawn from fixed streams, so
 * two probes opened alike hold the same values. Calls fail the cmocka test on error. */
#ifndef CNN_TESTS_PROBE_H
#define CNN_TESTS_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct probe {
    cnn_model *m;  /* the one-layer model: m->params, m->grads, m->nparams */
    cnn_layer *l;  /* its layer */
    int n;         /* batch */
    size_t nx, ny; /* floats in x and dx, in y and dy (whole batch) */
    float *x, *y, *dy, *dx, *work, *scratch;
} probe;

/* n zeroed floats (at least one, so a size of 0 still gives a pointer to free). */
float *probe_floats(size_t n);

/* Fills v with values in [-1, 1): a pure function of (stream, i). Streams 1 to 3 are the probe's own
 * (parameters, input, output gradient). */
void probe_fill(float *v, size_t n, uint64_t stream);

/* Builds layer `type` with `options` on an input of h x w x c and batch n, with random parameters and input.
 * The workspace is sized under the settings in force now (e.g. the convolution lowering budget), which the
 * probe must then run under. */
void probe_open(probe *p, const char *type, const char *options, int h, int w, int c, int n);

/* Forward in training mode: p->y (and the layer's scratch) from p->x. */
void probe_forward(probe *p);

/* Forward, then backward of a fixed random output gradient p->dy: parameter gradients (zeroed first) land in
 * p->m->grads, and the input gradient in p->dx when need_dx. */
void probe_step(probe *p, int need_dx);

void probe_close(probe *p);

/* The first trained layer runs backward without dx, and a frozen layer gives dx only; both take branches of
 * their own. Asserts that the parameter gradients without dx, and dx of the frozen layer, are bit-identical
 * to those of a full step, and that a frozen layer's parameter gradients stay zero. */
void probe_assert_without_dx_and_frozen(const char *type, const char *options, int h, int w, int c, int n);

/* Asserts that outputs, input and parameter gradients and the scratch kept from forward to backward are
 * bit-identical between a run with 1 thread and one with 2 when `across`, else between two runs with
 * 2 threads (where the layer hands work to a threaded BLAS whose sums depend on the thread count). The
 * thread count in force before the call is restored. */
void probe_assert_threads_bit_identical(const char *type, const char *options, int h, int w, int c, int n,
                                        int across);

#endif
