#!/usr/bin/env python3
# Usage: python3 scripts/keras_callbacks_ref.py   (TensorFlow 2.15 from PyPI, e.g. bench/.venv/bin/python)
# The expected sequences asserted in tests/test_callbacks.c were checked against its output.
# Drives real Keras 2.15 callbacks with the scripted logs of tests/test_callbacks.c and prints what happened.
import os, math
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
from tensorflow import keras
import logging; logging.getLogger("tensorflow").setLevel(logging.ERROR)
nan = float("nan")

def model(lr):
    m = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    return m

def marker(m, e):
    ws = m.get_weights(); k = 0; out = []
    for w in ws:
        n = w.size; out.append((1000 * (e + 1) + np.arange(k, k + n)).reshape(w.shape).astype(np.float32)); k += n
    m.set_weights(out)

def marker_of(m):
    return int(m.get_weights()[0].flat[0] // 1000) - 1

def drive(m, cbs, vl, va, n):
    for c in cbs: c.set_model(m)
    m.stop_training = False
    for c in cbs: c.on_train_begin()
    used, end, stopped = [], [], -1
    for e in range(n):
        for c in cbs: c.on_epoch_begin(e, {})
        marker(m, e)
        used.append(float(keras.backend.get_value(m.optimizer.lr)))
        logs = {"loss": 1.0 / (e + 1), "accuracy": 0.5}
        if va is not None: logs["val_loss"] = vl[e]; logs["val_accuracy"] = va[e]
        for c in cbs: c.on_epoch_end(e, logs)
        end.append(float(keras.backend.get_value(m.optimizer.lr)))
        if m.stop_training: stopped = e; break
    for c in cbs: c.on_train_end()
    return dict(stopped=stopped, marker=marker_of(m), used=used, end=end)

def step(e, lr): return lr if e < 7 else 0.001
def study(start=4):
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2, min_lr=1e-8),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True, start_from_epoch=start),
            keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=10, restore_best_weights=True),
            keras.callbacks.LearningRateScheduler(step)]

A_VL = [1.00, 0.70, 0.95, 0.96, 0.80, 0.85, 0.79995, 0.81, 0.82, 0.83, 0.84, 0.85, 0.5]
A_VA = [0.50, 0.60, 0.62, 0.61, 0.65, 0.66, 0.67, 0.66, 0.68, 0.68, 0.66, 0.66, 0.9]
B_VL = [1.0, 0.9, 0.8, 0.85, 0.75, 0.76, 0.77, 0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.1]
B_VA = [0.5, 0.6, 0.8, 0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.99]

def show(name, r, cbs=()):
    extra = " ".join(f"{type(c).__name__}:best_epoch={getattr(c,'best_epoch','-')},wait={c.wait}" for c in cbs if hasattr(c, "wait"))
    print(f"{name}: stopped={r['stopped']} marker={r['marker']} {extra}")
    print("   used", [repr(np.float32(x)) for x in r["used"]])
    print("   end ", [repr(np.float32(x)) for x in r["end"]])

c = study(); show("A", drive(model(0.005), c, A_VL, A_VA, len(A_VL)), c)
c = study(0); show("A0", drive(model(0.005), c, A_VL, A_VA, len(A_VL)), c)
c = study(); show("C", drive(model(0.005), c, A_VL, A_VA, 11), c)
c = study(); show("B", drive(model(0.005), c, B_VL, B_VA, len(B_VL)), c)
c = study(); c[1], c[2] = c[2], c[1]; show("B swapped", drive(model(0.005), c, B_VL, B_VA, len(B_VL)), c)
c = [keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=1e-4, min_delta=0.005), keras.callbacks.LearningRateScheduler(step)]
show("alternation", drive(model(0.005), c, [0.5]*14, [0.8]*14, 14), c)

ES = keras.callbacks.EarlyStopping
vl5 = [1.0, 0.95, 0.92, 0.85, 0.80]; z = [0]*5
for name, kw, vl, va, n in [
    ("min_delta .1", dict(min_delta=0.1, patience=2), vl5, z, 5),
    ("min_delta -.1", dict(min_delta=-0.1, patience=2), vl5, z, 5),
    ("no min_delta", dict(patience=2), vl5, z, 5),
    ("max a1", dict(monitor="val_accuracy", min_delta=0.1, patience=1, restore_best_weights=True), vl5, [0.5, 0.55, 0.9], 3),
    ("max a2", dict(monitor="val_accuracy", min_delta=0.1, patience=1, restore_best_weights=True), vl5, [0.5, 0.65, 0.6], 3),
    ("baseline", dict(monitor="val_accuracy", baseline=0.9, patience=3, restore_best_weights=True), [1]*6, [0.5, 0.6, 0.7, 0.8, 0.75, 0.76], 6),
    ("no baseline", dict(monitor="val_accuracy", patience=3, restore_best_weights=True), [1]*6, [0.5, 0.6, 0.7, 0.8, 0.75, 0.76], 6),
    ("baseline beaten", dict(monitor="val_accuracy", baseline=0.9, patience=3), [1]*6, [0.5, 0.95, 0.94, 0.93, 0.92, 0.91], 6),
    ("mode max loss", dict(mode="max", restore_best_weights=True), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
    ("auto loss", dict(restore_best_weights=True), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
    ("acc mode min", dict(monitor="val_accuracy", mode="min"), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
    ("nan e0", dict(), [nan, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
    ("nan restore", dict(patience=2, start_from_epoch=2, restore_best_weights=True), [0.1, 0.1, nan, nan, nan], [0.5]*5, 5),
    ("second fit", dict(patience=2, start_from_epoch=2, restore_best_weights=True), [0.5]*5, [0.5]*5, 5),
]:
    c = [ES(**kw)]; r = drive(model(0.01), c, vl, va, n); print(f"{name}: stopped={r['stopped']} marker={r['marker']} best_epoch={c[0].best_epoch} wait={c[0].wait}")

c = [ES(restore_best_weights=True), keras.callbacks.ReduceLROnPlateau(patience=0), ES(monitor="loss", mode="max")]
r = drive(model(0.01), c, [1, 2, 3, 4, 5], None, 5); print(f"no validation: stopped={r['stopped']} es0 wait={c[0].wait}")

RL = keras.callbacks.ReduceLROnPlateau
for name, kw, v, n in [
    ("cooldown 2", dict(factor=0.5, patience=1, cooldown=2, min_delta=0), [1]*8, 8),
    ("cooldown 0", dict(factor=0.5, patience=1, min_delta=0), [1]*8, 8),
    ("min_lr", dict(factor=0.5, patience=2, min_lr=0.03), [1]*8, 8),
    ("min_delta a", dict(factor=0.5, patience=1, min_delta=0.01), [1.0, 0.995, 0.5], 3),
    ("min_delta b", dict(factor=0.5, patience=1, min_delta=0.01), [1.0, 0.985, 0.5], 3),
    ("acc max", dict(monitor="val_accuracy", factor=0.5, patience=2, min_delta=0), [0.5, 0.6, 0.6, 0.6], 4),
    ("acc min", dict(monitor="val_accuracy", mode="min", factor=0.5, patience=2, min_delta=0), [0.5, 0.6, 0.6, 0.6], 4),
]:
    c = [RL(**kw)]; r = drive(model(0.1), c, v, v, n)
    print(f"{name}: end={[repr(np.float32(x)) for x in r['end']]} wait={c[0].wait} cooldown={c[0].cooldown_counter} best={c[0].best}")

# schedules
cd = keras.optimizers.schedules.CosineDecay(0.1, 10, alpha=0.1)
print("cosine", [repr(np.float32(cd(e).numpy())) for e in range(0, 26)])
cw = keras.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=0.2, warmup_steps=4)
print("cosine warmup", [repr(np.float32(cw(e).numpy())) for e in range(0, 16)])
cs6 = keras.optimizers.schedules.CosineDecay(0.05, 6, alpha=0.1)
print("cosine 0.05/6", [repr(np.float32(cs6(e).numpy())) for e in range(0, 7)])
pw = keras.optimizers.schedules.PiecewiseConstantDecay([3, 6], [0.1, 0.01, 0.001])
print("piecewise", [repr(np.float32(pw(e).numpy())) for e in range(9)])
