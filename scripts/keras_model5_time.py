#!/usr/bin/env python3
"""Times the study's Model_5_VGG16 in Keras (TensorFlow 2.15, CPU) for the whole-run comparison with cnnlab's
cached-features training (docs/benchmarks.md, "Model_5 for 20 epochs").

    "${PYTHON:-bench/.venv/bin/python}" scripts/keras_model5_time.py [--train N] [--test M] [--epochs E]
        [--threads T] [--write-idx DIR]

The model is the study's (spec §4.10): the gray images repeated into 3 channels by NumPy, Resizing(56, 56,
nearest), VGG16(include_top=False) frozen, Flatten, Dense(256, relu), Dense(10, softmax); Adam(1e-2), batch
512, sparse categorical cross-entropy, validation on the test images every epoch, as model.fit does it in the
study. The base starts from Keras's random initialisation (weights=None): ImageNet weights cannot be
downloaded here, and the time does not depend on the weights' values.

Keras runs the frozen base on every image of every epoch, so an epoch costs about the same each time and a
capped run gives the whole run's time: --epochs E (default 1) epochs are timed after an untimed warm-up
(graph tracing), on the first N training and M test images (default all: 60,000 and 10,000), and the script
prints the measured seconds per epoch and the 20-epoch time extrapolated from it:
    KERAS_MODEL5 train=N test=M epochs_timed=E s_per_epoch=... s_20_epochs_extrapolated=... threads=T

--write-idx DIR also writes those first N and M images as Fashion-MNIST IDX files into DIR, so that cnnlab
trains on exactly the same subset (cnnlab train Model_5_VGG16 --data DIR ...).
"""
import argparse
import gzip
import os
import struct
import sys
import time

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-idx", metavar="DIR")
    return ap.parse_args()


def read_idx(name, header):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        return f.read()[header:]


def write_idx(d, prefix, images, labels):
    """IDX files of the given raw uint8 images (n * 784 bytes) and labels, gzip-compressed like Debian's."""
    os.makedirs(d, exist_ok=True)
    n = len(labels)
    for name, head, body in ((f"{prefix}-images-idx3-ubyte.gz", struct.pack(">IIII", 0x803, n, 28, 28), images),
                             (f"{prefix}-labels-idx1-ubyte.gz", struct.pack(">II", 0x801, n), labels)):
        tmp = os.path.join(d, name + ".tmp")
        with gzip.open(tmp, "wb") as f:
            f.write(head + body)
        os.replace(tmp, os.path.join(d, name))


def main():
    a = parse()
    raw = {s: (read_idx(f"{s}-images-idx3-ubyte.gz", 16), read_idx(f"{s}-labels-idx1-ubyte.gz", 8))
           for s in ("train", "t10k")}
    counts = {"train": a.train, "t10k": a.test}
    for s, n in counts.items():
        if not 1 <= n <= len(raw[s][1]):
            print(f"keras_model5_time: --{'train' if s == 'train' else 'test'} must be 1..{len(raw[s][1])}",
                  file=sys.stderr)
            return 2
        raw[s] = (raw[s][0][:n * 784], raw[s][1][:n])
    if a.write_idx:
        for s in counts:
            write_idx(a.write_idx, s, *raw[s])

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from tensorflow.keras import layers

    def rgb(s):  # the study's NumPy step: a channel axis, repeated 3 times
        x = np.frombuffer(raw[s][0], np.uint8).reshape(-1, 28, 28).astype("float32") / 255
        return np.repeat(x[..., None], 3, -1), np.frombuffer(raw[s][1], np.uint8).astype("int64")

    (xtr, ytr), (xte, yte) = rgb("train"), rgb("t10k")
    tf.keras.utils.set_random_seed(1)
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(56, 56, 3))
    base.trainable = False
    model = keras.Sequential([keras.Input(shape=(28, 28, 3)), layers.Resizing(56, 56, interpolation="nearest"),
                              base, layers.Flatten(), layers.Dense(256, activation="relu"),
                              layers.Dense(10, activation="softmax")], name="Model_5_VGG16")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"tensorflow {tf.__version__} threads={a.threads} params={model.count_params()} "
          f"trainable={sum(int(np.prod(w.shape)) for w in model.trainable_weights)} train={a.train} test={a.test}",
          flush=True)
    # Warm-up: traces the train, test and (last, shorter) batch graphs on a copy of the start, then puts it back.
    weights = model.get_weights()
    t0 = time.perf_counter()
    model.fit(xtr[:1024], ytr[:1024], batch_size=512, epochs=1, verbose=0, validation_data=(xte[:512], yte[:512]))
    model.set_weights(weights)
    print(f"warm-up (graph tracing, undone): {time.perf_counter() - t0:.1f} s", flush=True)
    times = []
    for e in range(a.epochs):
        t0 = time.perf_counter()
        h = model.fit(xtr, ytr, batch_size=512, epochs=1, verbose=0, validation_data=(xte, yte))
        times.append(time.perf_counter() - t0)
        print(f"epoch {e + 1}: {times[-1]:.1f} s  loss {h.history['loss'][0]:.4f}  "
              f"val_accuracy {h.history['val_accuracy'][0]:.4f}", flush=True)
    per = float(np.median(times))
    print(f"KERAS_MODEL5 train={a.train} test={a.test} epochs_timed={a.epochs} s_per_epoch={per:.2f} "
          f"s_20_epochs_extrapolated={20 * per:.1f} threads={a.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
