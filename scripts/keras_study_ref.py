#!/usr/bin/env python3
"""Trains one of the study's models in Keras (TensorFlow 2.15, CPU) exactly as the study did -- its recipe
and its callback list (spec §3.3-§3.5) -- and prints the final test accuracy, for comparing cnnlab's results
with Keras's own run-to-run spread on the same machine.

    python3 scripts/keras_study_ref.py Model_4 --seeds 1,2,3 --threads 2

Needs TensorFlow 2.15 (PyPI, e.g. bench/.venv from `scripts/deps.sh --bench`). Prints one line per seed:
    KERAS model=Model_4 seed=1 epochs=16 best_epoch=11 test_acc=0.8817
"""
import argparse
import gzip
import math
import os

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")


def load():
    import numpy as np

    def idx(name, offset):
        with gzip.open(os.path.join(DATA, name), "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)

    xtr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    ytr = idx("train-labels-idx1-ubyte.gz", 8).astype("int64")
    xte = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype("float32") / 255
    yte = idx("t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    return xtr, ytr, xte, yte


def model_2(layers, reg=None):
    return [layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu", kernel_regularizer=reg), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax")]


def recipes(layers, regularizers):
    """name -> (layers, lr, batch, max epochs, schedule): the spec's §4 tables."""
    step = ("step", 7)
    return {
        "Model_1": ([layers.Flatten(input_shape=(28, 28, 1)), layers.Dense(256, activation="relu"),
                     layers.Dense(512, activation="relu"), layers.Dense(10, activation="softmax")],
                    0.005, 512, 60, step),
        "Model_2": (model_2(layers), 0.005, 512, 60, ("exp", 2)),
        "Model_2_s2": ([layers.Conv2D(32, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
                        layers.MaxPooling2D(2, strides=2),
                        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2, strides=2),
                        layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
                        layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")],
                       0.005, 512, 60, step),
        "Model_3": ([layers.Conv2D(64, 3, activation="relu", input_shape=(28, 28, 1)),
                     layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                     layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(32, 3, activation="relu"),
                     layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(32, activation="relu"),
                     layers.Dense(10, activation="softmax")], 0.005, 512, 10, ("exp", 4)),
        "Model_4": ([layers.Conv2D(64, 3, activation="relu", input_shape=(28, 28, 1)), layers.MaxPooling2D(2),
                     layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(32, activation="relu"),
                     layers.Dense(10, activation="softmax")], 0.025, 512, 30, ("exp", 5)),
    }


def run(name, seed, threads):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(seed)
    from tensorflow.keras import callbacks, layers, regularizers
    xtr, ytr, xte, yte = load()
    stack, lr, batch, epochs, (kind, thresh) = recipes(layers, regularizers)[name]
    model = tf.keras.Sequential(stack)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    def schedule(epoch, cur):
        if kind == "step":
            return cur if epoch < thresh else 0.001
        return cur if epoch < thresh else cur * math.exp(-0.1)

    cbs = [callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2, min_lr=1e-8),
           callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True, start_from_epoch=4),
           callbacks.EarlyStopping(monitor="val_accuracy", patience=10, restore_best_weights=True),
           callbacks.LearningRateScheduler(schedule)]
    hist = model.fit(xtr, ytr, batch_size=batch, epochs=epochs, validation_data=(xte, yte), callbacks=cbs,
                     verbose=0)
    _, acc = model.evaluate(xte, yte, verbose=0)
    val_loss = hist.history["val_loss"]
    best = min(range(len(val_loss)), key=lambda i: (val_loss[i], -i))
    print(f"KERAS model={name} seed={seed} epochs={len(val_loss)} best_epoch={best + 1} test_acc={acc:.4f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for s in a.seeds.split(","):
        run(a.model, int(s), a.threads)


if __name__ == "__main__":
    main()
