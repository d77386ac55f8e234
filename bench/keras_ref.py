"""Keras (TensorFlow 2.15, CPU) reference for side-by-side benchmarks of the study's models.

The Keras counterpart of bench/torch_ref.py, with the same command line:
    PYTHON keras_ref.py MODEL [--epochs N] [--batch B] [--threads T] [--no-warmup]

MODEL: model_1 | model_2 | model_2_s2 (spec 4.1-4.3): the study's own Keras models, Keras defaults
(glorot_uniform kernels, zero biases), input 28x28x1 scaled to [0, 1], Adam(lr 0.005, epsilon 1e-7),
sparse_categorical_crossentropy, metrics=["accuracy"] as in the study. Batch 512 unless --batch.

It times the training pass of each epoch (60,000 images, shuffled, no validation) with a callback
between on_epoch_begin and on_epoch_end of one model.fit call, then evaluates the test accuracy.
Keras traces its train step into a graph on the first call (and once more for the last, shorter batch
of an epoch: 60000 = 117 * 512 + 96); that one-time cost belongs to no epoch, so by default it is paid
before the timed epochs on the two batch shapes, after which the weights and the optimizer state are
put back as they were (--no-warmup leaves it in the first epoch). The warm-up time is printed apart.

TensorFlow's thread pools are set first: intra_op = T, inter_op = 1.
This script picks no interpreter: bench/run.sh runs it with bench/.venv/bin/python (made by
scripts/deps.sh --bench) or $KERAS_PYTHON.
The last line is machine-readable:
    RESULT framework=keras model=... threads=T batch=B epoch_s_median=... epoch_s_min=... test_acc=...

    PYTHON keras_ref.py vgg16 --mode forward|train --size S [--batch B] [--steps N] [--threads T]

vgg16 (bench/run.sh --vgg): images per second of keras.applications.VGG16(weights=None, include_top=False),
Keras's own initialisation, on fixed pseudo-random inputs, the network of bench/vgg/{forward,train}_S.spec:
  * forward: the base alone on (B, S, S, 3), predict_on_batch (its traced predict function);
  * train: as Model_10_VGG16_AL trains it: Dense(3, relu) on the one-channel input (the study's gray->RGB),
    the base with every layer before block5_conv1 frozen (input gradients still flow through them), Flatten,
    Dense(10, softmax), sparse_categorical_crossentropy, Adam(1e-5); one step = train_on_batch.
One untimed warm-up step (it traces the graph), then N timed steps; the median step gives images_s:
    RESULT framework=keras mode=M size=S batch=B steps=N images_s=... images_s_max=... images_cpu_s=... threads=T
(images_cpu_s: images per CPU second of the process, all threads; less moved by other processes)
"""
import argparse
import gzip
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no INFO/WARNING chatter from the C++ runtime

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
MODELS = ("model_1", "model_2", "model_2_s2", "vgg16")


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=MODELS)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=("forward", "train"), default="forward", help="vgg16 only")
    ap.add_argument("--size", type=int, choices=(32, 56), default=32, help="vgg16 only: input height and width")
    ap.add_argument("--steps", type=int, default=3, help="vgg16 only: timed steps")
    ap.add_argument("--no-warmup", action="store_true",
                    help="leave the graph tracing of the train step in the first timed epoch")
    return ap.parse_args()


a = parse()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Before any op runs: the thread pools are fixed when the eager context starts.
tf.config.threading.set_intra_op_parallelism_threads(a.threads)
tf.config.threading.set_inter_op_parallelism_threads(1)

from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402


def idx(name, offset):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load():
    xtr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    ytr = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    xte = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    yte = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return xtr, ytr, xte, yte


def model_1():  # spec 4.1: Flatten -> Dense 256 relu -> Dense 512 relu -> Dense 10 softmax; 337,674 params
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Flatten(name="INPUT"),
        layers.Dense(256, activation="relu", name="Hidden_Layer_1"),
        layers.Dense(512, activation="relu", name="Hidden_Layer_2"),
        layers.Dense(10, activation="softmax", name="OUTPUT"),
    ], name="Model_1")


def model_2():  # spec 4.2: valid 3x3 convs 32-64-64, pools, Dense 128; 130,890 params
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="Model_2")


def model_2_s2():  # spec 4.3: same-padded 32, 64, then valid 64; Dense 128 on 1600; 261,962 params
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D((2, 2), strides=2),
        layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D((2, 2), strides=2),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="Model_2_s2")


RECIPES = {"model_1": (model_1, 0.005, 337674), "model_2": (model_2, 0.005, 130890),
           "model_2_s2": (model_2_s2, 0.005, 261962)}


class EpochTimer(keras.callbacks.Callback):
    """Wall time between on_epoch_begin and on_epoch_end: the training pass only (fit gets no validation)."""

    def __init__(self):
        super().__init__()
        self.times, self.t0 = [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)
        logs = logs or {}
        print(f"epoch {epoch + 1}: {self.times[-1]:.2f} s  loss {logs.get('loss', float('nan')):.4f}  "
              f"accuracy {logs.get('accuracy', float('nan')):.4f}", flush=True)


def warmup(model, xtr, ytr, batch):
    """Trace the train step for the full and the last partial batch, then undo its updates."""
    t0 = time.perf_counter()
    weights = model.get_weights()
    shapes = [batch] + ([len(xtr) % batch] if len(xtr) % batch else [])
    for n in shapes:
        model.train_on_batch(xtr[:n], ytr[:n])
    model.set_weights(weights)
    for v in model.optimizer.variables:  # iterations, m and v back to a fresh Adam
        v.assign(tf.zeros_like(v))
    model.reset_metrics()
    return time.perf_counter() - t0


def vgg16_net(mode, size):
    """The vgg16 benchmark's network, compiled; see the module's docstring."""
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    if mode == "forward":
        return base, 3
    frozen = True
    for layer in base.layers:
        frozen = frozen and layer.name != "block5_conv1"
        layer.trainable = not frozen
    model = keras.Sequential([keras.Input(shape=(size, size, 1)), layers.Dense(3, activation="relu"), base,
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-5, epsilon=1e-7),
                  loss="sparse_categorical_crossentropy")
    return model, 1


def vgg16_main():
    tf.keras.utils.set_random_seed(1)
    batch = a.batch or 64
    model, channels = vgg16_net(a.mode, a.size)
    x = (np.arange(batch * a.size * a.size * channels, dtype=np.int64) * 2654435761 % 1000).astype(np.float32)
    x = (x / 1000).reshape(batch, a.size, a.size, channels)
    y = np.arange(batch) % 10

    def step():
        if a.mode == "forward":
            model.predict_on_batch(x)
        else:
            model.train_on_batch(x, y)

    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    print(f"tensorflow {tf.__version__} intra_op={tf.config.threading.get_intra_op_parallelism_threads()} "
          f"vgg16 mode={a.mode} size={a.size} batch={batch} trainable_params={trainable}", flush=True)
    from steprate import rate_fields  # bench/steprate.py, beside this script

    print(f"RESULT framework=keras mode={a.mode} size={a.size} batch={batch} steps={a.steps} "
          f"{rate_fields(step, batch, a.steps)} threads={a.threads}")
    return 0


def main():
    if a.model == "vgg16":
        return vgg16_main()
    batch = a.batch or 512
    build, lr, expect = RECIPES[a.model]
    tf.keras.utils.set_random_seed(0)
    xtr, ytr, xte, yte = load()
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, epsilon=1e-7),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    params = model.count_params()
    if params != expect:
        print(f"keras_ref: {a.model} has {params} params, the spec says {expect}", file=sys.stderr)
        return 1
    print(f"tensorflow {tf.__version__} intra_op={tf.config.threading.get_intra_op_parallelism_threads()} "
          f"inter_op={tf.config.threading.get_inter_op_parallelism_threads()} model={a.model} params={params} "
          f"batch={batch} lr={lr}", flush=True)
    if not a.no_warmup:
        print(f"warmup (graph tracing, undone): {warmup(model, xtr, ytr, batch):.2f} s", flush=True)
    timer = EpochTimer()
    model.fit(xtr, ytr, batch_size=batch, epochs=a.epochs, shuffle=True, verbose=0, callbacks=[timer])
    _, acc = model.evaluate(xte, yte, batch_size=1000, verbose=0)
    times = timer.times
    print(f"test_acc {acc:.4f}", flush=True)
    print(f"RESULT framework=keras model={a.model} threads={a.threads} batch={batch} "
          f"epoch_s_median={float(np.median(times)):.3f} epoch_s_min={min(times):.3f} test_acc={acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
