#!/usr/bin/env python3
# Keras references for cnnlab's HDF5 weight import/export (issue 8). Not run in CI: it writes the committed
# files that tests/test_keras_h5.c reads.
#
#   $PYTHON scripts/keras_vgg16_ref.py fixtures [OUTDIR]
#       tests/data/keras_h5/: a small VGG-named network (Keras's 13 conv + 5 pool names, few filters) saved
#       by Keras's save_weights(.h5) (legacy layout, fixed-length strings), the same weights rewritten by h5py
#       in the old ImageNet-file style (block1_conv1_W_1:0 names, layer_names split into layer_names0/1,
#       variable-length strings), a few malformed files, and Keras's outputs for fixed inputs.
#       OUTDIR (default /tmp/cnnlab-vgg16-ref): the full VGG16(weights=None, include_top=False) from a fixed
#       seed, saved the same way (58 MB, not committed), and its outputs (vgg16_ref.txt).
#       CNN_KERAS_REF_DIR=OUTDIR build/tests/test_keras_h5 then checks cnnlab against it too.
#   $PYTHON scripts/keras_vgg16_ref.py check-export FILE.h5 small|full[-nested] [OUTDIR]
#       Loads weights that cnnlab exported (cnnlab export-weights, or CNN_KERAS_EXPORT=FILE.h5 with the
#       test) into the same Keras network and compares its outputs with the references (the round trip).
#       -nested: the network is one layer of a Sequential model, as in the study's models; the test's
#       CNN_KERAS_EXPORT file is of that kind, CNN_KERAS_EXPORT_FLAT of the plain one.
#   $PYTHON scripts/keras_vgg16_ref.py check-study-model FILE.h5 MODEL PREDICTIONS.csv DATA_DIR
#       One of the study's VGG16 models (Model_5_VGG16 ... Model_10_VGG16_AL) built as Keras builds it loads
#       the weights `cnnlab export-weights` wrote for it and predicts what `cnnlab predict` did.
#
# $PYTHON: TensorFlow 2.15 from PyPI (bench/.venv/bin/python after scripts/deps.sh --bench).
#
# Inputs are reproducible in C without files: sample value i (flat NHWC index over the whole batch) is
# ((i * 2654435761 + 12345) mod 2^32 >> 8) / 2^24, exact in float32 (tests/test_keras_h5.c computes the same).
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import h5py
import numpy as np
import tensorflow as tf
from tensorflow import keras

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "keras_h5")
SMALL_FILTERS = [2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]
FULL_FILTERS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
BLOCKS = [2, 2, 3, 3, 3]
SIZES = [32, 56]
BATCH = 2


def atomic(path, write):
    """write(tmp) then rename: a run that fails half-way leaves the committed file as it was."""
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def inputs(n, size):
    i = np.arange(n * size * size * 3, dtype=np.uint64)
    v = ((i * np.uint64(2654435761) + np.uint64(12345)) % np.uint64(1 << 32)) >> np.uint64(8)
    return (v.astype(np.float64) / float(1 << 24)).astype(np.float32).reshape(n, size, size, 3)


def vgg_like(filters, name):
    """Keras's VGG16 base layer by layer (the names of keras.applications.vgg16), any filter counts."""
    x = inp = keras.Input((None, None, 3))
    k = 0
    for b, convs in enumerate(BLOCKS, 1):
        for c in range(1, convs + 1):
            x = keras.layers.Conv2D(filters[k], 3, padding="same", activation="relu", name=f"block{b}_conv{c}")(x)
            k += 1
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    return keras.Model(inp, x, name=name)


def randomize_biases(model, rng):
    # Keras initialises biases to zero; non-zero ones make the check see every bias too.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k, b = layer.get_weights()
            layer.set_weights([k, rng.uniform(-0.1, 0.1, b.shape).astype(np.float32)])


def write_outputs(model, path):
    atomic(path, lambda tmp: write_outputs_to(model, tmp))


def write_outputs_to(model, path):
    with open(path, "w") as f:
        f.write("# Keras %s outputs of %s for the inputs of keras_vgg16_ref.py\n" % (tf.__version__, model.name))
        for size in SIZES:
            y = model.predict(inputs(BATCH, size), verbose=0)
            f.write("size %d batch %d shape %s\n" % (size, BATCH, " ".join(str(d) for d in y.shape[1:])))
            f.write(" ".join("%.9e" % v for v in y.reshape(-1)) + "\n")


def read_outputs(path):
    out, lines = {}, [l for l in open(path) if not l.startswith("#")]
    for head, vals in zip(lines[0::2], lines[1::2]):
        out[int(head.split()[1])] = np.array([float(v) for v in vals.split()], dtype=np.float64)
    return out


def attr_strings(values, vlen):
    if vlen:
        return np.array(values, dtype=h5py.string_dtype("utf-8"))
    return np.array([v.encode() for v in values])


def write_old_style(model, path, vlen, split):
    """The layout of the old ImageNet files: one group per layer, weights named <layer>_W_1:0 / _b_1:0."""
    with h5py.File(path, "w") as f:
        names = [l.name for l in model.layers]
        if split:
            f.attrs["layer_names0"] = attr_strings(names[: len(names) // 2], vlen)
            f.attrs["layer_names1"] = attr_strings(names[len(names) // 2 :], vlen)
        else:
            f.attrs["layer_names"] = attr_strings(names, vlen)
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.0"
        for l in model.layers:
            g = f.create_group(l.name)
            ws = l.get_weights()
            wn = [f"{l.name}_{t}_1:0" for t in ("W", "b")][: len(ws)]
            g.attrs["weight_names"] = attr_strings(wn, vlen)
            for n, w in zip(wn, ws):
                g.create_dataset(n, data=w)


def copy_file(src, dst):
    with open(src, "rb") as a, open(dst, "wb") as b:
        b.write(a.read())


def write_bad_files(good):
    """Malformed variants of the Keras-written fixture, each refused by cnnlab with its own message."""
    data = open(good, "rb").read()
    atomic(os.path.join(DATA, "bad_truncated.h5"), lambda tmp: open(tmp, "wb").write(data[: len(data) * 2 // 3]))
    atomic(os.path.join(DATA, "bad_not_hdf5.h5"), lambda tmp: open(tmp, "w").write("this is not an HDF5 file\n"))
    edits = {
        "bad_missing_group.h5": lambda f: f.__delitem__("block3_conv2"),
        "bad_missing_dataset.h5": lambda f: f["block2_conv1"]["block2_conv1"].__delitem__("bias:0"),
        "bad_shape.h5": lambda f: replace(f["block1_conv2"]["block1_conv2"], "kernel:0", np.zeros((3, 3, 2, 3), np.float32)),
        "bad_dtype.h5": lambda f: replace(f["block4_conv1"]["block4_conv1"], "bias:0", np.zeros(4, np.float64)),
        "bad_no_layer_names.h5": lambda f: f.attrs.__delitem__("layer_names"),
    }
    for name, edit in edits.items():
        atomic(os.path.join(DATA, name), lambda tmp: edited(good, tmp, edit))


def edited(good, path, edit):
    copy_file(good, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    repack(path, compact=True)


def replace(group, name, value):
    del group[name]
    group.create_dataset(name, data=value)


def repack(path, compact=False):
    # h5py leaves deleted space in the file; copying every object into a new file keeps the fixtures small
    # (compact: HDF5 1.8's compact groups, a quarter of the size, for the malformed variants).
    tmp = path + ".repack"
    with h5py.File(path, "r") as a, h5py.File(tmp, "w", libver="latest" if compact else "earliest") as b:
        for k, v in a.attrs.items():
            b.attrs[k] = v
        for k in a:
            a.copy(a[k], b, name=k)
    os.replace(tmp, path)


def fixtures(outdir):
    tf.keras.utils.set_random_seed(8)
    rng = np.random.default_rng(8)
    os.makedirs(DATA, exist_ok=True)
    small = vgg_like(SMALL_FILTERS, "vgg_small")
    randomize_biases(small, rng)
    atomic(os.path.join(DATA, "vgg_small.h5"), lambda tmp: (small.save_weights(tmp, save_format="h5"), repack(tmp)))
    atomic(os.path.join(DATA, "vgg_small_old_vlen.h5"), lambda tmp: write_old_style(small, tmp, vlen=True, split=True))
    atomic(os.path.join(DATA, "vgg_small_old_fixed.h5"), lambda tmp: write_old_style(small, tmp, vlen=False, split=False))
    write_outputs(small, os.path.join(DATA, "vgg_small_ref.txt"))
    write_bad_files(os.path.join(DATA, "vgg_small.h5"))
    os.makedirs(outdir, exist_ok=True)
    full = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    randomize_biases(full, rng)
    full.save_weights(os.path.join(outdir, "vgg16_ref.h5"), save_format="h5")
    write_outputs(full, os.path.join(outdir, "vgg16_ref.txt"))
    print("wrote", DATA, "and", outdir)


def check_export(path, which, outdir):
    nested = which.endswith("-nested")
    which = which.replace("-nested", "")
    if which == "small":
        model, ref = vgg_like(SMALL_FILTERS, "vgg_small"), os.path.join(DATA, "vgg_small_ref.txt")
    else:
        model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
        ref = os.path.join(outdir, "vgg16_ref.txt")
    if nested:  # the base as one layer of a model, as the study's models hold it (group "vgg16")
        model = keras.Sequential([keras.Input((None, None, 3)), model])
    model.load_weights(path)
    want = read_outputs(ref)
    worst = 0.0
    for size in SIZES:
        y = model.predict(inputs(BATCH, size), verbose=0).reshape(-1).astype(np.float64)
        err = np.max(np.abs(y - want[size])) / max(np.max(np.abs(want[size])), 1e-30)
        print("size %d: max |keras - reference| / max |reference| = %.3g" % (size, err))
        worst = max(worst, err)
    print("export round trip", "OK" if worst <= 1e-4 else "FAILED")
    return 0 if worst <= 1e-4 else 1


def study_model(name):
    """The study's VGG16 models (spec 4.10-4.16) as Keras builds them, base frozen or fine-tuned."""
    L = keras.layers
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(56, 56, 3) if name == "Model_5_VGG16" else None)
    base.trainable = True
    frozen = name != "Model_10_VGG16_AL"
    for layer in base.layers:  # the study's loop: frozen until block5_conv1 (Model_10), else all frozen
        if layer.name == "block5_conv1" and not frozen:
            break
        layer.trainable = False
    if frozen:
        base.trainable = False
    if name == "Model_5_VGG16":
        front = [keras.Input((28, 28, 3)), L.Resizing(56, 56, interpolation="nearest")]
    elif name in ("Model_6_VGG16", "Model_7_VGG16"):
        front = [keras.Input((28, 28, 1)), L.ZeroPadding2D((2, 2), name="expand_32_32"), L.Dense(3, activation="relu", name="gray_rgb")]
    else:
        gray = {"Model_9_VGG16": L.Conv2D(3, 3, padding="same", activation="relu", name="conv_gray_rgb"),
                "Model_9_VGG16_SC": L.SeparableConv2D(3, 3, depth_multiplier=3, padding="same", activation="relu", name="sep_conv_gray_rgb")}
        front = [keras.Input((28, 28, 1)), L.Resizing(56, 56, interpolation="nearest", name="zoom_x2"),
                 gray.get(name, L.Dense(3, activation="relu", name="gray_rgb"))]
    return keras.Sequential(front + [base, L.Flatten(), L.Dense(256, activation="relu"), L.Dense(10, activation="softmax")])


def check_study_model(path, name, csv, data_dir):
    """Weights exported by `cnnlab export-weights` load into the study's Keras model and predict what cnnlab
    predicted (`cnnlab predict --data DIR --out CSV`) on the test images of DIR."""
    import gzip as gz
    p = os.path.join(data_dir, "t10k-images-idx3-ubyte")
    raw = gz.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
    n = int.from_bytes(raw[4:8], "big")
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 28, 28, 1).astype(np.float32) / 255.0
    if name == "Model_5_VGG16":
        x = np.repeat(x, 3, axis=-1)
    model = study_model(name)
    model.load_weights(path)
    want = np.array([[float(v) for v in line.strip().split(",")[-10:]] for line in open(csv).readlines()[1:]])
    got = model.predict(x, verbose=0)
    err = np.max(np.abs(got - want))
    print("%s: %d images, max |keras - cnnlab| probability = %.3g; trainable %d" % (name, n, err, sum(int(np.prod(w.shape)) for w in model.trainable_weights)))
    return 0 if err <= 1e-4 else 1


def main(argv):
    if len(argv) >= 6 and argv[1] == "check-study-model":
        return check_study_model(argv[2], argv[3], argv[4], argv[5])
    outdir = "/tmp/cnnlab-vgg16-ref"
    if len(argv) >= 2 and argv[1] == "fixtures":
        fixtures(argv[2] if len(argv) > 2 else outdir)
        return 0
    if len(argv) >= 4 and argv[1] == "check-export":
        return check_export(argv[2], argv[3], argv[4] if len(argv) > 4 else outdir)
    print(__doc__ or "usage: keras_vgg16_ref.py fixtures [OUTDIR] | check-export FILE.h5 small|full [OUTDIR]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
