#!/usr/bin/python3
"""Reference outputs for cnnlab's augmentation (tests/test_augment.c).

Two parts, each run with the interpreter that has its library (from the repository root):

    /usr/bin/python3 scripts/ref_augment.py study          # Debian's python3-skimage 0.19
    $PYTHON scripts/ref_augment.py keras                   # TensorFlow/Keras 2.15 from PyPI
                                                           # (PYTHON defaults to bench/.venv/bin/python,
                                                           #  made by scripts/deps.sh --bench)

`study` applies the study's per-image transform (spec section 5.1: scikit-image `warp` with the matrix
[[s, 0, tx], [0, s, ty], [0, 0, 1]] and preserve_range=True, then `rotate` by an integer angle, both with
their defaults: bilinear, constant fill 0, clip) to the first 100 Fashion-MNIST test images (float32 / 255)
with fixed parameters, drawn here once with NumPy as the study draws them (the first four cases pin the
extremes). `keras` applies `ImageDataGenerator(fill_mode=..., cval=...).apply_transform` with fixed
transform parameters to test images, covering every fill mode, the flips, a non-square crop (28 x 20) and
three channels.

Each part writes tests/data/augment_<part>_ref.txt (one case per line, described in its header) and
tests/data/augment_<part>_ref.f32.gz (every output image, float32 little-endian, in case order). The outputs
are deterministic; commit them. Not run in CI.
"""
import gzip
import os
import sys

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
OUT = "tests/data"


def test_images():
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw.reshape(-1, 28, 28).astype("float32") / 255


def write(part, header, lines, images):
    with open(os.path.join(OUT, f"augment_{part}_ref.txt"), "w") as f:
        f.write(header)
        f.write("".join(line + "\n" for line in lines))
    blob = b"".join(np.ascontiguousarray(im, dtype="<f4").tobytes() for im in images)
    # mtime=0: the same bytes on every run.
    with open(os.path.join(OUT, f"augment_{part}_ref.f32.gz"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(blob)


def study():
    from skimage.transform import rotate, warp

    x = test_images()
    rng = np.random.RandomState(5)
    pinned = [(0.8, -6, -6, -30), (1.2, 5, 5, 29), (1.0, 0, 0, 0), (0.8, 5, -6, 29)]
    lines, images = [], []
    for i in range(100):
        if i < len(pinned):
            s, tx, ty, angle = pinned[i]
        else:  # the study's draws, in its order
            s = rng.uniform(0.8, 1.2)
            tx = rng.randint(-6, 6)
            ty = rng.randint(-6, 6)
            angle = rng.randint(-30, 30)
        matrix = np.array([[s, 0, tx], [0, s, ty], [0, 0, 1]])
        out = rotate(warp(x[i], matrix, preserve_range=True), angle)
        assert out.dtype == np.float32 and out.shape == (28, 28)
        lines.append(f"{i} {s!r} {tx} {ty} {angle}")
        images.append(out)
    header = "# test_image s tx ty angle (one 28x28 output each, in order)\n"
    write("study", header, lines, images)


KERAS_CASES = [
    # name, first image, channels, first column, width, theta, tx, ty, shear, zx, zy, flip_h, flip_v, fill, cval
    ("rotate", 0, 1, 0, 28, 17.3, 0, 0, 0, 1, 1, 0, 0, "constant", 0.0),
    ("shift", 1, 1, 0, 28, 0, 3.4, -2.2, 0, 1, 1, 0, 0, "nearest", 0.0),
    ("shear", 2, 1, 0, 28, 0, 0, 0, 12.0, 1, 1, 0, 0, "reflect", 0.0),
    ("zoom", 3, 1, 0, 28, 0, 0, 0, 0, 0.8, 1.15, 0, 0, "wrap", 0.0),
    ("all_constant", 4, 1, 0, 28, -23.0, -4.5, 5.1, -8.0, 1.2, 0.9, 0, 0, "constant", 0.0),
    ("all_nearest", 5, 1, 0, 28, -23.0, -4.5, 5.1, -8.0, 1.2, 0.9, 0, 0, "nearest", 0.0),
    ("all_reflect", 6, 1, 0, 28, -23.0, -4.5, 5.1, -8.0, 1.2, 0.9, 0, 0, "reflect", 0.0),
    ("all_wrap", 7, 1, 0, 28, -23.0, -4.5, 5.1, -8.0, 1.2, 0.9, 0, 0, "wrap", 0.0),
    ("flip_h_cval", 8, 1, 0, 28, 10.0, 0, 0, 0, 1, 1, 1, 0, "constant", 0.5),
    ("flip_v_zoom", 9, 1, 0, 28, 0, 0, 0, 0, 0.7, 0.7, 0, 1, "nearest", 0.0),
    ("flips_only", 10, 1, 0, 28, 0, 0, 0, 0, 1, 1, 1, 1, "constant", 0.0),
    ("far_wrap", 11, 1, 0, 28, 5.0, 30.0, -41.0, 0, 1, 1, 0, 0, "wrap", 0.0),
    ("far_reflect", 12, 1, 0, 28, 5.0, 61.5, -70.25, 0, 1, 1, 0, 0, "reflect", 0.0),
    ("nonsquare_reflect", 13, 1, 4, 20, 31.0, 2.5, -3.0, 5.0, 1.1, 0.85, 1, 0, "reflect", 0.0),
    ("nonsquare_wrap", 14, 1, 4, 20, -12.0, -6.0, 4.0, 0, 0.9, 1.3, 0, 1, "wrap", 0.0),
    ("rgb_nearest", 15, 3, 0, 28, 40.0, 1.5, 2.5, 15.0, 1.05, 0.95, 1, 0, "nearest", 0.0),
]


def keras():
    from keras.preprocessing.image import ImageDataGenerator

    x = test_images()
    lines, images = [], []
    for (name, first, c, col0, width, theta, tx, ty, shear, zx, zy, fh, fv, fill, cval) in KERAS_CASES:
        img = np.stack([x[first + k, :, col0:col0 + width] for k in range(c)], axis=-1)
        gen = ImageDataGenerator(fill_mode=fill, cval=cval)
        params = {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                  "flip_horizontal": bool(fh), "flip_vertical": bool(fv)}
        out = gen.apply_transform(img, params)
        assert out.shape == img.shape
        lines.append(" ".join([name, str(first), str(c), str(col0), str(width)] +
                              [repr(float(v)) for v in (theta, tx, ty, shear, zx, zy)] +
                              [str(fh), str(fv), fill, repr(cval)]))
        images.append(out.astype("float32"))
    header = ("# name first_test_image channels first_column width theta tx ty shear zx zy flip_h flip_v "
              "fill_mode cval\n# (the image: test images first .. first+channels-1 as channels, columns "
              "first_column ..; one 28 x width x channels output each, in order)\n")
    write("keras", header, lines, images)


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else ""
    if part == "study":
        study()
    elif part == "keras":
        keras()
    else:
        sys.exit("usage: ref_augment.py study|keras")
