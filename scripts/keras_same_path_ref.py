#!/usr/bin/env python3
# "Same start, same path": Keras 2.15 trains a model for one epoch from weights it saves first (legacy HDF5),
# in order (shuffle=False), and records the loss of every batch and the final weights; cnnlab loads the same
# starting weights and must follow the same path (tests/test_keras_path.c). Not run in CI.
#
#   $PYTHON scripts/keras_same_path_ref.py small
#       tests/data/keras_path/: a small Model_2_s2-shaped network (same layers, fewer filters) on the first 512
#       Fashion-MNIST training images, batch 64 (8 steps): mini_init.h5, mini_final.h5, mini_losses.txt.
#   $PYTHON scripts/keras_same_path_ref.py full [OUTDIR]
#       Model_2_s2 itself (spec §4.3) on all 60,000 images, batch 512, Adam(0.005), one epoch (118 steps), into
#       OUTDIR (default /tmp/cnnlab-same-path): init.h5, final.h5, losses.txt. Then
#       CNN_KERAS_PATH_DIR=OUTDIR build/tests/test_keras_path checks cnnlab against it.
#
# Data: the Debian Fashion-MNIST IDX files ($CNN_FASHION_MNIST_DIR, default /usr/share/datasets/fashion-mnist),
# scaled by 1/255 as the study does. $PYTHON: TensorFlow 2.15 from PyPI (bench/.venv/bin/python).
import gzip
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
from tensorflow import keras

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "keras_path")


def idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            ndim = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(path)


def fashion(n):
    d = os.environ.get("CNN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    x = idx(os.path.join(d, "train-images-idx3-ubyte"))[:n].astype(np.float32) / 255.0
    y = idx(os.path.join(d, "train-labels-idx1-ubyte"))[:n].astype(np.int32)
    return x.reshape(-1, 28, 28, 1), y


def save(model, path):
    """Keras's legacy HDF5 weights, written beside the target and renamed over it (atomic)."""
    model.save_weights(path + ".tmp", save_format="h5")
    os.replace(path + ".tmp", path)


def model_2_s2(f1, f2, units):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(f1, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2, strides=2),
            L.Conv2D(f2, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2, strides=2),
            L.Conv2D(f2, 3, activation="relu"),
            L.Flatten(),
            L.Dense(units, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )


def run(out, prefix, n, batch, lr, f1, f2, units):
    tf.keras.utils.set_random_seed(2)
    os.makedirs(out, exist_ok=True)
    x, y = fashion(n)
    m = model_2_s2(f1, f2, units)
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    save(m, os.path.join(out, prefix + "init.h5"))
    losses = []
    for k in range(0, n, batch):  # one epoch in order: fit(shuffle=False)'s steps, each batch's own loss
        losses.append(float(m.train_on_batch(x[k : k + batch], y[k : k + batch])))
    save(m, os.path.join(out, prefix + "final.h5"))
    path = os.path.join(out, prefix + "losses.txt")
    with open(path + ".tmp", "w") as f:
        f.write("# Keras %s, %d images, batch %d, Adam(%g), filters %d %d, units %d: loss of each batch\n"
                % (tf.__version__, n, batch, lr, f1, f2, units))
        f.write("images %d batch %d lr %g filters %d %d units %d\n" % (n, batch, lr, f1, f2, units))
        f.write(" ".join("%.9e" % v for v in losses) + "\n")
    os.replace(path + ".tmp", path)
    print("%d steps, first loss %.6f, last %.6f -> %s" % (len(losses), losses[0], losses[-1], out))


def main(argv):
    if len(argv) >= 2 and argv[1] == "small":
        run(DATA, "mini_", 512, 64, 0.005, 4, 8, 16)
        return 0
    if len(argv) >= 2 and argv[1] == "full":
        run(argv[2] if len(argv) > 2 else "/tmp/cnnlab-same-path", "", 60000, 512, 0.005, 32, 64, 128)
        return 0
    print("usage: keras_same_path_ref.py small | full [OUTDIR]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
