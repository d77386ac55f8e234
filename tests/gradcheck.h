/* Finite-difference gradient checks for single layers.
 *
 * The layer is built inside a one-layer model (so options, shapes and parameters go through the real code
 * paths), then driven directly through its ops with buffers of its own. The scalar checked is
 * L = sum_i r_i * y_i for a fixed random r, accumulated in double; each input and parameter value is nudged
 * by +-eps and the central difference compared with the analytic gradient of the backward pass. */
#ifndef CNN_TESTS_GRADCHECK_H
#define CNN_TESTS_GRADCHECK_H

typedef struct gc_result {
    double dx_err;      /* relative error of the input gradient: |a - n|_2 / max(|a|_2, |n|_2, 1e-6) */
    double dparam_err;  /* worst relative error over the parameter tensors */
    int checked_dx;     /* input values compared (counted by the comparison loop itself) */
    int checked_params; /* parameter values compared */
    int trainable;      /* trainable parameters of the layer, as the model reports them */
} gc_result;

/* Checks layer `type` with `options` on an input of h x w x c (rank 1 when h = w = 1) and batch n.
 * training selects training behaviour (dropout masks, batch statistics). Fails the cmocka test when the
 * layer cannot be built. */
gc_result gc_check_layer(const char *type, const char *options, int h, int w, int c, int n, int training);

/* Asserts both errors are below tol, with a message naming the layer and options, and that every value was
 * compared: all h*w*c*n inputs and every trainable parameter (so a check over nothing cannot pass). */
void gc_assert_layer(const char *type, const char *options, int h, int w, int c, int n, int training,
                     double tol);

#endif
