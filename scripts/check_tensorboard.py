#!/usr/bin/env python3
"""Reads cnnlab's TensorBoard logs with TensorBoard's own reader and checks them against the run's history.

    $PYTHON scripts/check_tensorboard.py LOG_DIR HISTORY_JSON

LOG_DIR is a logs/tensorboard_<model> folder (with train/ and validation/), HISTORY_JSON the history.json of
the same fit. Checks every tag with the plugin TensorBoard files it under: epoch_loss, epoch_accuracy,
epoch_learning_rate and epoch_lr, one per epoch with values equal to the history (float32; the rate is the
one at each epoch's end, as Keras logs it, which is the history's lr unless a callback such as
ReduceLROnPlateau changed it at that epoch's end); evaluation_*_vs_iterations; a histogram and an image per
weight (three images for a convolution kernel), as Keras 2.15 logs them; and that a copy with one corrupted
byte is refused by the record reader's checksum.
Needs the `tensorboard` package (bench/.venv after `scripts/deps.sh --bench`, which installs TensorFlow).
Exit status 0 when every check passes.
"""
import glob
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def load(folder):
    acc = pea.EventAccumulator(folder, size_guidance={pea.TENSORS: 0})
    acc.Reload()
    return acc


def plugin_of(acc, tag):
    return acc.SummaryMetadata(tag).plugin_data.plugin_name


def check_scalars(acc, name, expect):
    for tag, values in expect.items():
        events = acc.Tensors(tag) if tag in acc.Tags()["tensors"] else []
        check(len(events) == len(values), f"{name}/{tag}: {len(events)} events, history has {len(values)}")
        if not events:
            continue
        check(plugin_of(acc, tag) == "scalars", f"{name}/{tag}: plugin 'scalars'")
        got = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
        steps = [e.step for e in events]
        check(steps == list(range(len(values))), f"{name}/{tag}: steps 0..{len(values) - 1}")
        want = np.float32(values).astype(float).tolist()
        check(got == want, f"{name}/{tag}: values equal the history ({got[:3]}...)")


def check_iterations(acc, history):
    """Keras's evaluation_*_vs_iterations: the validation figures at increasing optimizer steps."""
    for tag, key in (("evaluation_loss_vs_iterations", "val_loss"),
                     ("evaluation_accuracy_vs_iterations", "val_accuracy")):
        events = acc.Tensors(tag) if tag in acc.Tags()["tensors"] else []
        steps = [e.step for e in events]
        got = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
        check(len(events) == len(history[key]) and steps == sorted(set(steps)) and steps[0] > 0,
              f"validation/{tag}: one per epoch at increasing steps {steps}")
        check(got == np.float32(history[key]).astype(float).tolist(), f"validation/{tag}: values equal {key}")


def check_weights(acc, epochs):
    tags = acc.Tags()["tensors"]
    histos = [t for t in tags if t.endswith("/histogram")]
    images = [t for t in tags if t.endswith("/image")]
    check(len(histos) > 0, f"train: {len(histos)} weight histograms ({', '.join(histos)})")
    for tag in histos:
        events = acc.Tensors(tag)
        check(plugin_of(acc, tag) == "histograms" and len(events) == epochs,
              f"{tag}: plugin 'histograms', {len(events)} epochs")
        arr = tensor_util.make_ndarray(events[-1].tensor_proto)
        check(arr.shape == (30, 3) and arr[:, 2].sum() > 0 and np.all(arr[:, 0] <= arr[:, 1]),
              f"{tag}: 30 buckets (left <= right), {int(arr[:, 2].sum())} values")
    want = {t.replace("/histogram", "/image") for t in histos}
    check(set(images) == want, f"train: an image per weight, as Keras logs them ({len(images)})")
    kernels = [t for t in images if "conv" in t and "kernel" in t]
    check(len(kernels) >= 1, f"train: convolution kernel images {kernels}")
    for tag in images:
        events = acc.Tensors(tag)
        check(plugin_of(acc, tag) == "images" and len(events) == epochs,
              f"{tag}: plugin 'images', {len(events)} epochs")
        blobs = tensor_util.make_ndarray(events[-1].tensor_proto)
        w, h = int(blobs[0]), int(blobs[1])
        pngs = blobs[2:]
        ok = all(p[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", p[16:24]) == (w, h) for p in pngs)
        check(len(pngs) >= (3 if tag in kernels else 1) and ok, f"{tag}: {len(pngs)} PNG images of {w}x{h}")


def count_records(path):
    return sum(1 for _ in event_file_loader.RawEventFileLoader(path).Load())


def check_corruption(path):
    intact = count_records(path)
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, os.path.basename(path))
        shutil.copy(path, bad)
        data = bytearray(open(bad, "rb").read())
        data[len(data) // 2] ^= 0x10
        open(bad, "wb").write(bytes(data))
        kept = count_records(bad)
        check(kept < intact, f"corrupted copy: the reader stops at the bad record ({kept} of {intact} read)")
        try:
            import tensorflow as tf
        except ImportError:
            return
        try:
            for _ in tf.compat.v1.io.tf_record_iterator(bad):
                pass
            check(False, "corrupted copy: TensorFlow's record reader raises DataLossError")
        except tf.errors.DataLossError as e:
            check("crc" in str(e).lower() or "corrupt" in str(e).lower(),
                  f"corrupted copy: TensorFlow raises DataLossError ({str(e)[:60]}...)")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    logdir, history = sys.argv[1], json.load(open(sys.argv[2]))
    epochs = history["epochs"]
    train, val = load(os.path.join(logdir, "train")), load(os.path.join(logdir, "validation"))
    check_scalars(train, "train", {"epoch_loss": history["loss"], "epoch_accuracy": history["accuracy"],
                                   "epoch_learning_rate": history["lr"], "epoch_lr": history["lr"]})
    check_scalars(val, "validation", {"epoch_loss": history["val_loss"], "epoch_accuracy": history["val_accuracy"]})
    check_iterations(val, history)
    check_weights(train, epochs)
    check_corruption(sorted(glob.glob(os.path.join(logdir, "train", "events.out.tfevents.*")))[-1])
    print(f"{len(failures)} failed" if failures else "all TensorBoard checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
