#!/usr/bin/env python3
"""TensorFlow 2.15 / Keras 2.15 values of single layers for tests/test_layers.c.

Regenerate (TensorFlow 2.15 from PyPI; scripts/deps.sh --bench makes bench/.venv), from the repository root:

    "${PYTHON:-bench/.venv/bin/python}" scripts/ref_tf_layers.py

It writes tests/data/tf_layers_ref.txt (or the path given as the only argument), atomically; the output is
deterministic, so regenerating restores the same bytes. Commit it.

Each case runs one Keras layer on a small NHWC input and records what it returned. The cases were chosen
where the semantics are easy to get wrong: max-pooling ties (the first maximum in row-major order takes the
gradient), average pooling with "same" padding (divides by the real elements only), ZeroPadding2D's
asymmetric pads, Resizing's nearest (half-pixel) and bilinear rules, BatchNormalization's moving statistics
(unbiased batch variance for images, biased for vectors), inference and frozen modes, and the activation
layers' options. Format (floats are float32 values written with repr(), which strtod reads exactly):

    case NAME
    layer TYPE                 cnnlab's layer type (the Keras class)
    options TEXT               cnnlab's option text ("" for none)
    keras EXPR                 the keras.layers expression that produced the values
    input N H W C              (N 1 1 C: a vector input, shape (N, C) in Keras, rank 1 in cnnlab)
    x V...                     the input, NHWC
    weights V...               (optional) set before the call, in Keras get_weights() order, which is
                               cnnlab's parameter order
    training 0|1               the `training` argument of the call
    y V...                     the output
    dy V... / dx V...          (optional) the gradient of sum(y * dy) with respect to x
    params V...                (optional) all the layer's weights after the call (moving statistics)
    tol Y DX PARAMS            absolute tolerances of the three comparisons in the test
    end
"""
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np  # noqa: E402
import refdata  # noqa: E402  (scripts/, the folder of this script)
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402,F401  (the eval of each case's Keras expression uses it)

F = np.float32
TIES = np.array([1, 3, 3, 0, 3, 2, 1, 1, 0, 0, 5, 5, 0, 0, 5, 5], F).reshape(1, 4, 4, 1)
AR25 = np.arange(25, dtype=F).reshape(1, 5, 5, 1)
AR9 = np.arange(9, dtype=F).reshape(1, 3, 3, 1)
X2 = np.array([1, 2, 3, 5], F).reshape(1, 2, 2, 1)
# BatchNormalization's input: spread over [-0.4, 0.9] without a pattern per channel
BN_X = (np.arange(24, dtype=F) * F(0.37)) % F(1.3) - F(0.4)
ACT_X = np.array([-1, 0.2, 0.5, 0.7, 2], F).reshape(1, 1, 5, 1)
BN_W = [np.array(v, F) for v in ([1.5, -0.5], [0.1, 0.2], [0.3, -0.1], [0.8, 2.0])]


def ramp(n):
    return np.arange(1, n + 1, dtype=F)


# name, cnnlab type, cnnlab options, Keras expression, x, weights, training, dy (None: no gradient; "ones";
# "ramp": 1, 2, 3, ...), record the weights after the call, tolerances (y, dx, params)
CASES = [
    ("max_pool_2_ties", "MaxPooling2D", "pool_size=2", "MaxPooling2D(pool_size=2)", TIES, None, 1, "ones",
     0, (0, 0, 0)),
    ("max_pool_3_same_ties", "MaxPooling2D", "pool_size=3, strides=1, padding=same",
     "MaxPooling2D(pool_size=3, strides=1, padding='same')", TIES, None, 1, "ones", 0, (0, 0, 0)),
    ("avg_pool_2_same", "AveragePooling2D", "pool_size=2, padding=same",
     "AveragePooling2D(pool_size=2, padding='same')", AR25, None, 1, "ramp", 0, (1e-5, 1e-5, 0)),
    ("avg_pool_3_s2_same", "AveragePooling2D", "pool_size=3, strides=2, padding=same",
     "AveragePooling2D(pool_size=3, strides=2, padding='same')", AR25, None, 1, "ramp", 0, (1e-5, 1e-5, 0)),
    ("avg_pool_3_s1_same", "AveragePooling2D", "pool_size=3, strides=1, padding=same",
     "AveragePooling2D(pool_size=3, strides=1, padding='same')", AR25, None, 1, None, 0, (1e-5, 0, 0)),
    ("avg_pool_2_valid", "AveragePooling2D", "", "AveragePooling2D()", AR25, None, 1, "ramp", 0,
     (1e-5, 1e-5, 0)),
    ("global_avg_pool", "GlobalAveragePooling2D", "", "GlobalAveragePooling2D()", AR25, None, 1, "ones", 0,
     (1e-5, 1e-7, 0)),
    ("zero_padding_asym", "ZeroPadding2D", "padding=((1,0),(0,2))", "ZeroPadding2D(((1, 0), (0, 2)))", X2, None,
     1, "ramp", 0, (0, 0, 0)),
    ("resize_nearest_3_to_5", "Resizing", "height=5, width=5, interpolation=nearest",
     "Resizing(5, 5, interpolation='nearest')", AR9, None, 1, None, 0, (0, 0, 0)),
    ("resize_nearest_5_to_3", "Resizing", "height=3, width=3, interpolation=nearest",
     "Resizing(3, 3, interpolation='nearest')", AR25, None, 1, None, 0, (0, 0, 0)),
    ("resize_nearest_3_to_2x4", "Resizing", "height=2, width=4, interpolation=nearest",
     "Resizing(2, 4, interpolation='nearest')", AR9, None, 1, None, 0, (0, 0, 0)),
    ("resize_nearest_2_to_4", "Resizing", "height=4, width=4, interpolation=nearest",
     "Resizing(4, 4, interpolation='nearest')", X2, None, 1, "ramp", 0, (0, 1e-5, 0)),
    ("resize_bilinear_2_to_4", "Resizing", "height=4, width=4, interpolation=bilinear",
     "Resizing(4, 4, interpolation='bilinear')", X2, None, 1, "ramp", 0, (1e-6, 1e-5, 0)),
    ("resize_bilinear_5_to_3", "Resizing", "height=3, width=3, interpolation=bilinear",
     "Resizing(3, 3, interpolation='bilinear')", AR25, None, 1, None, 0, (1e-5, 0, 0)),
    ("resize_bilinear_3_to_2x5", "Resizing", "height=2, width=5", "Resizing(2, 5)", AR9, None, 1, None, 0,
     (1e-5, 0, 0)),
    ("bn_train_image", "BatchNormalization", "", "BatchNormalization()", BN_X.reshape(2, 2, 3, 2), None, 1, None,
     1, (2e-6, 0, 1e-7)),
    ("bn_train_vector", "BatchNormalization", "", "BatchNormalization()", BN_X.reshape(6, 4), None, 1,
     None, 1, (2e-6, 0, 1e-7)),
    ("bn_inference", "BatchNormalization", "momentum=0.9, epsilon=1e-5",
     "BatchNormalization(momentum=0.9, epsilon=1e-5)", BN_X.reshape(2, 2, 3, 2), BN_W, 0, "ramp", 1,
     (2e-6, 1e-5, 0)),
    ("bn_frozen", "BatchNormalization", "trainable=false", "BatchNormalization(trainable=False)",
     BN_X.reshape(2, 2, 3, 2), None, 1, "ones", 1, (1e-6, 1e-6, 0)),
    ("relu_options", "ReLU", "max_value=1.0, negative_slope=0.1, threshold=0.5",
     "ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5)", ACT_X, None, 1, "ramp", 0, (1e-7, 1e-7, 0)),
    ("relu_plain", "ReLU", "max_value=None", "ReLU(max_value=None)", ACT_X, None, 1, "ramp", 0, (0, 0, 0)),
    ("leaky_relu_default", "LeakyReLU", "", "LeakyReLU()", ACT_X, None, 1, "ramp", 0, (1e-7, 1e-7, 0)),
    ("elu_alpha", "ELU", "alpha=0.5", "ELU(alpha=0.5)", ACT_X, None, 1, "ramp", 0, (1e-7, 1e-6, 0)),
]


def nhwc(shape):
    """A vector input (N, C) is cnnlab's rank-1 input: written N 1 1 C."""
    return shape if len(shape) == 4 else (shape[0], 1, 1, shape[1])


def values(a):
    return " ".join(repr(float(v)) for v in np.asarray(a, F).ravel())


def run_case(out, name, ltype, options, expr, x, weights, training, dy, record, tol):
    layer = eval("keras.layers." + expr)
    layer.build(x.shape)
    if weights is not None:
        layer.set_weights(weights)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=bool(training))
        d = None if dy is None else (tf.ones_like(y) if dy == "ones" else tf.reshape(ramp(int(np.prod(y.shape))), y.shape))
        s = None if d is None else tf.reduce_sum(y * d)
    out += [f"case {name}", f"layer {ltype}", f"options {options}", f"keras {expr}",
            "input " + " ".join(map(str, nhwc(x.shape))), "x " + values(x)]
    if weights is not None:
        out.append("weights " + " ".join(values(w) for w in weights))
    out += [f"training {training}", "y " + values(y.numpy())]
    if d is not None:
        out += ["dy " + values(d.numpy()), "dx " + values(tape.gradient(s, xt).numpy())]
    if record:
        out.append("params " + " ".join(values(w) for w in layer.get_weights()))
    out += ["tol " + " ".join(repr(float(t)) for t in tol), "end"]


def main():
    out = [f"# Generated by scripts/ref_tf_layers.py with TensorFlow {tf.__version__}; do not edit."]
    for case in CASES:
        run_case(out, *case)
    refdata.write_lines("tests/data/tf_layers_ref.txt", out)


if __name__ == "__main__":
    main()
