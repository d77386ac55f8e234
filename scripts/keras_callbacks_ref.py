#!/usr/bin/env python3
"""Keras 2.15 reference for cnnlab's callbacks and schedules (tests/test_callbacks.c reads what it writes).

Regenerate (TensorFlow 2.15 from PyPI; scripts/deps.sh --bench makes bench/.venv), from the repository root:

    "${PYTHON:-bench/.venv/bin/python}" scripts/keras_callbacks_ref.py

It writes tests/data/keras_callbacks_ref.txt (or the path given as the only argument), atomically; the
output is deterministic, so regenerating restores the same bytes. Commit it.

Each scenario drives real Keras callbacks (EarlyStopping, ReduceLROnPlateau, LearningRateScheduler and the
study's CustomModelCheckpoint: ModelCheckpoint plus an epoch file, spec section 3.4) the way fit does, with
scripted logs: before each epoch's end the weights are set to a marker of that epoch (1000 * (e + 1) + i), so
the weights left after a restore, and the weights in a checkpoint file, tell whose copy they are. Format:

    scenario NAME
    lr LR                               initial learning rate (Adam)
    epochs N                            epochs driven (fewer when a callback stops training)
    val_loss V... | val_loss none       scripted values (none: a fit without validation data)
    val_accuracy V... | val_accuracy none
    callback EarlyStopping|ReduceLROnPlateau|ModelCheckpoint OPTIONS    cnnlab's option text (Keras's kwargs)
    callback LearningRateScheduler step THRESH LR_AFTER | exp THRESH   the study's schedules (spec 3.5)
    stopped E                           epoch at which training stopped, -1
    marker E                            the epoch whose weights the model holds at the end
    used LR...                          lr during each epoch (float32 values, exact)
    end LR...                           lr after each epoch's callbacks (Keras's logs["lr"])
    state I KEY VALUE...                callback I after the fit: wait, best, best_epoch, cooldown
    checkpoint I file E... epoch E...   callback I after each epoch: the epoch whose weights its file holds
                                        and the number in its epoch file (-1: no file yet)
    end
    schedule cosine INITIAL DECAY_STEPS ALPHA WARMUP_STEPS WARMUP_TARGET
    schedule piecewise B1 B2 ... / V1 V2 ...
    lr LR...                            the schedule's value at epochs 0, 1, ... (float32)

Floats are written with repr() (float32 values as the double they are), so strtod reads them exactly.
best_epoch: Keras leaves it at 0 when nothing improved (best still +-inf); cnnlab says -1 then, and so
does the file (written as -1 when best is not finite).
"""
import logging
import math
import os
import tempfile

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np  # noqa: E402
import refdata  # noqa: E402  (scripts/, the folder of this script)
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

logging.getLogger("tensorflow").setLevel(logging.ERROR)
nan = float("nan")


def model(lr):
    m = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    return m


def marker(m, e):
    out, k = [], 0
    for w in m.get_weights():
        n = w.size
        out.append((1000 * (e + 1) + np.arange(k, k + n)).reshape(w.shape).astype(np.float32))
        k += n
    m.set_weights(out)


def marker_of_weights(ws):
    flat = np.concatenate([w.ravel() for w in ws])
    e = int(flat[0] // 1000) - 1
    assert np.array_equal(flat, 1000 * (e + 1) + np.arange(flat.size)), "not one epoch's marker"
    return e


class CustomModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """The study's subclass (spec 3.4): after the parent's processing, the epoch number goes to the epoch
    file whenever current <= best (loss) or current >= best (accuracy)."""

    def __init__(self, epoch_path, **kw):
        super().__init__(**kw)
        self.epoch_path = epoch_path

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if (current <= self.best) if self.monitor_op == np.less else (current >= self.best):
            with open(self.epoch_path, "w") as f:
                f.write(str(epoch))


def step_schedule(thresh, lr_after):
    return lambda e, lr: lr if e < thresh else lr_after


def exp_schedule(thresh):
    return lambda e, lr: lr if e < thresh else lr * tf.math.exp(-0.1)


def options_text(kw):
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return repr(v) if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in kw.items())


def make_callbacks(specs, tmp):
    cbs, lines = [], []
    for i, (kind, arg) in enumerate(specs):
        if kind == "EarlyStopping":
            cbs.append(keras.callbacks.EarlyStopping(**arg))
        elif kind == "ReduceLROnPlateau":
            cbs.append(keras.callbacks.ReduceLROnPlateau(**arg))
        elif kind == "ModelCheckpoint":
            cbs.append(CustomModelCheckpoint(os.path.join(tmp, f"ck{i}.epoch"),
                                             filepath=os.path.join(tmp, f"ck{i}.h5"), **arg))
        elif arg[0] == "step":
            cbs.append(keras.callbacks.LearningRateScheduler(step_schedule(arg[1], arg[2])))
        else:
            cbs.append(keras.callbacks.LearningRateScheduler(exp_schedule(arg[1])))
        if kind == "LearningRateScheduler":
            lines.append(f"callback {kind} " + " ".join(str(a) for a in arg))
        else:
            lines.append(f"callback {kind} {options_text(arg)}")
    return cbs, lines


def checkpoint_state(cb, probe):
    """(epoch of the weights in the file, number in the epoch file), -1 for a missing file."""
    held = -1
    if os.path.exists(cb.filepath):
        if cb.save_weights_only:
            probe.load_weights(cb.filepath)
            held = marker_of_weights(probe.get_weights())
        else:
            held = marker_of_weights(keras.models.load_model(cb.filepath, compile=False).get_weights())
    epoch = -1
    if os.path.exists(cb.epoch_path):
        with open(cb.epoch_path) as f:
            epoch = int(f.read())
    return held, epoch


def f32(x):
    return repr(float(np.float32(x)))


def drive(m, cbs, vl, va, n):
    probe = model(0.01)
    for c in cbs:
        c.set_model(m)
    m.stop_training = False
    for c in cbs:
        c.on_train_begin()
    used, end, stopped = [], [], -1
    ck = {i: ([], []) for i, c in enumerate(cbs) if isinstance(c, CustomModelCheckpoint)}
    for e in range(n):
        for c in cbs:
            c.on_epoch_begin(e, {})
        marker(m, e)
        used.append(float(keras.backend.get_value(m.optimizer.lr)))
        logs = {"loss": 1.0 / (e + 1), "accuracy": 0.5}
        if va is not None:
            logs["val_loss"], logs["val_accuracy"] = vl[e], va[e]
        for c in cbs:
            c.on_epoch_end(e, logs)
        end.append(float(keras.backend.get_value(m.optimizer.lr)))
        for i, (files, epochs) in ck.items():
            held, epoch = checkpoint_state(cbs[i], probe)
            files.append(held)
            epochs.append(epoch)
        if m.stop_training:
            stopped = e
            break
    for c in cbs:
        c.on_train_end()
    return dict(stopped=stopped, marker=marker_of_weights(m.get_weights()), used=used, end=end, ck=ck)


def state_line(i, c):
    if isinstance(c, keras.callbacks.EarlyStopping):
        be = c.best_epoch if math.isfinite(c.best) else -1
        return f"state {i} wait {c.wait} best {float(c.best)!r} best_epoch {be}"
    if isinstance(c, keras.callbacks.ReduceLROnPlateau):
        return f"state {i} wait {c.wait} best {float(c.best)!r} cooldown {c.cooldown_counter}"
    if isinstance(c, keras.callbacks.ModelCheckpoint):
        return f"state {i} best {float(c.best)!r}"
    return None


def scenario(out, name, lr, specs, vl, va, n):
    with tempfile.TemporaryDirectory() as tmp:
        cbs, lines = make_callbacks(specs, tmp)
        r = drive(model(lr), cbs, vl, va, n)
    out.append(f"scenario {name}")
    out.append(f"lr {lr!r}")
    out.append(f"epochs {n}")
    out.append("val_loss " + (" ".join(repr(float(v)) for v in vl[:n]) if va is not None else "none"))
    out.append("val_accuracy " + (" ".join(repr(float(v)) for v in va[:n]) if va is not None else "none"))
    out.extend(lines)
    out.append(f"stopped {r['stopped']}")
    out.append(f"marker {r['marker']}")
    out.append("used " + " ".join(f32(x) for x in r["used"]))
    out.append("end " + " ".join(f32(x) for x in r["end"]))
    out.extend(s for s in (state_line(i, c) for i, c in enumerate(cbs)) if s)
    for i, (files, epochs) in r["ck"].items():
        out.append(f"checkpoint {i} file " + " ".join(map(str, files)) + " epoch " + " ".join(map(str, epochs)))
    out.append("end")


# ------------------------------------------------------------------------------------------- the scenarios

ES, RL, CK = "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"
STEP = ("LearningRateScheduler", ("step", 7, 0.001))


def study(start=4, swap=False, sched=STEP):
    """The study's callback list (spec 3.4, without TensorBoard)."""
    es_loss = (ES, dict(monitor="val_loss", patience=5, restore_best_weights=True, start_from_epoch=start))
    es_acc = (ES, dict(monitor="val_accuracy", patience=10, restore_best_weights=True))
    return [(RL, dict(monitor="val_loss", factor=0.2, patience=2, min_lr=1e-8)),
            es_acc if swap else es_loss, es_loss if swap else es_acc,
            (CK, dict(monitor="val_accuracy", save_best_only=True, save_weights_only=True)),
            (CK, dict(monitor="val_loss", save_best_only=True, save_weights_only=True)),
            sched]


A_VL = [1.00, 0.70, 0.95, 0.96, 0.80, 0.85, 0.79995, 0.81, 0.82, 0.83, 0.84, 0.85, 0.5]
A_VA = [0.50, 0.60, 0.62, 0.61, 0.65, 0.66, 0.67, 0.66, 0.68, 0.68, 0.66, 0.66, 0.9]
B_VL = [1.0, 0.9, 0.8, 0.85, 0.75, 0.76, 0.77, 0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.1]
B_VA = [0.5, 0.6, 0.8, 0.70, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.99]
VL5 = [1.0, 0.95, 0.92, 0.85, 0.80]
FLAT8 = [1.0] * 8


def scenarios(out):
    scenario(out, "study_A", 0.005, study(), A_VL, A_VA, len(A_VL))
    scenario(out, "study_A_start0", 0.005, study(0), A_VL, A_VA, len(A_VL))
    scenario(out, "study_A_11_epochs", 0.005, study(), A_VL, A_VA, 11)
    scenario(out, "study_B", 0.005, study(), B_VL, B_VA, len(B_VL))
    scenario(out, "study_B_swapped", 0.005, study(swap=True), B_VL, B_VA, len(B_VL))
    scenario(out, "study_A_exp4", 0.001, study(sched=("LearningRateScheduler", ("exp", 4))), A_VL, A_VA,
             len(A_VL))
    scenario(out, "plateau_alternation", 0.005,
             [(RL, dict(factor=0.5, patience=2, min_lr=1e-4, min_delta=0.005)), STEP], [0.5] * 14, [0.8] * 14, 14)
    es = [
        ("es_min_delta", dict(min_delta=0.1, patience=2), VL5, [0.0] * 5, 5),
        ("es_min_delta_negative", dict(min_delta=-0.1, patience=2), VL5, [0.0] * 5, 5),
        ("es_no_min_delta", dict(patience=2), VL5, [0.0] * 5, 5),
        ("es_max_a1", dict(monitor="val_accuracy", min_delta=0.1, patience=1, restore_best_weights=True), VL5,
         [0.5, 0.55, 0.9], 3),
        ("es_max_a2", dict(monitor="val_accuracy", min_delta=0.1, patience=1, restore_best_weights=True), VL5,
         [0.5, 0.65, 0.6], 3),
        ("es_baseline", dict(monitor="val_accuracy", baseline=0.9, patience=3, restore_best_weights=True),
         [1.0] * 6, [0.5, 0.6, 0.7, 0.8, 0.75, 0.76], 6),
        ("es_no_baseline", dict(monitor="val_accuracy", patience=3, restore_best_weights=True), [1.0] * 6,
         [0.5, 0.6, 0.7, 0.8, 0.75, 0.76], 6),
        ("es_baseline_beaten", dict(monitor="val_accuracy", baseline=0.9, patience=3), [1.0] * 6,
         [0.5, 0.95, 0.94, 0.93, 0.92, 0.91], 6),
        ("es_mode_max_loss", dict(mode="max", restore_best_weights=True), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
        ("es_auto_loss", dict(restore_best_weights=True), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
        ("es_acc_mode_min", dict(monitor="val_accuracy", mode="min"), [1.0, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
        ("es_nan_epoch0", dict(), [nan, 0.9, 0.8], [0.1, 0.2, 0.3], 3),
        ("es_nan_restore", dict(patience=2, start_from_epoch=2, restore_best_weights=True),
         [0.1, 0.1, nan, nan, nan], [0.5] * 5, 5),
    ]
    for name, kw, vl, va, n in es:
        scenario(out, name, 0.01, [(ES, kw)], vl, va, n)
    scenario(out, "no_validation", 0.01,
             [(ES, dict(restore_best_weights=True)), (RL, dict(patience=0)), (ES, dict(monitor="loss", mode="max")),
              (CK, dict(save_best_only=True))], [1.0, 2.0, 3.0, 4.0, 5.0], None, 5)
    rl = [
        ("rlr_cooldown2", dict(factor=0.5, patience=1, cooldown=2, min_delta=0.0), FLAT8, 8),
        ("rlr_cooldown0", dict(factor=0.5, patience=1, min_delta=0.0), FLAT8, 8),
        ("rlr_min_lr", dict(factor=0.5, patience=2, min_lr=0.03), FLAT8, 8),
        ("rlr_min_delta_a", dict(factor=0.5, patience=1, min_delta=0.01), [1.0, 0.995, 0.5], 3),
        ("rlr_min_delta_b", dict(factor=0.5, patience=1, min_delta=0.01), [1.0, 0.985, 0.5], 3),
        ("rlr_acc_max", dict(monitor="val_accuracy", factor=0.5, patience=2, min_delta=0.0),
         [0.5, 0.6, 0.6, 0.6], 4),
        ("rlr_acc_min", dict(monitor="val_accuracy", mode="min", factor=0.5, patience=2, min_delta=0.0),
         [0.5, 0.6, 0.6, 0.6], 4),
    ]
    for name, kw, v, n in rl:
        scenario(out, name, 0.1, [(RL, kw)], v, v, n)
    ck = [
        ("ck_ties", dict(save_best_only=True, save_weights_only=True), [1.0, 0.8, 0.8, 0.9, 0.7],
         [0.0] * 5, 5),
        ("ck_every_epoch", dict(monitor="val_accuracy"), [1.0, 0.8, 0.8, 0.9], [0.3, 0.2, 0.4, 0.1], 4),
        ("ck_threshold", dict(monitor="val_accuracy", save_best_only=True, initial_value_threshold=0.6),
         [0.5, 0.7, 0.65, 0.7], [0.5, 0.7, 0.65, 0.7], 4),
        ("ck_max_on_loss", dict(mode="max", save_best_only=True), [1.0, 0.8, 1.2, 1.2], [0.0] * 4, 4),
        ("ck_nan", dict(save_best_only=True), [nan, 0.9, nan, 0.9], [0.0] * 4, 4),
    ]
    for name, kw, vl, va, n in ck:
        scenario(out, name, 0.01, [(CK, kw)], vl, va, n)
    scenario(out, "ck_with_restore", 0.01,
             [(ES, dict(patience=2, restore_best_weights=True)), (CK, dict(save_best_only=False))],
             [0.5, 0.4, 0.6, 0.7, 0.3], [0.0] * 5, 5)


def schedules(out):
    def emit(head, fn, n):
        out.append(head)
        out.append("lr " + " ".join(f32(fn(e).numpy()) for e in range(n)))

    S = keras.optimizers.schedules
    for init, steps, alpha, wsteps, wtarget, n in [(0.1, 10, 0.1, 0, None, 26), (0.0, 10, 0.0, 4, 0.2, 16),
                                                   (0.05, 6, 0.1, 0, None, 7), (0.001, 7, 0.0, 0, None, 9),
                                                   (0.01, 5, 0.2, 3, 0.05, 10)]:
        cd = S.CosineDecay(init, steps, alpha=alpha, warmup_target=wtarget, warmup_steps=wsteps)
        emit(f"schedule cosine {init!r} {steps} {alpha!r} {wsteps} {float(wtarget or 0.0)!r}", cd, n)
    for bounds, values, n in [([3, 6], [0.1, 0.01, 0.001], 9), ([0], [0.5, 0.25], 3),
                              ([2, 4, 5], [1e-3, 5e-4, 2.5e-4, 1e-4], 8)]:
        pw = S.PiecewiseConstantDecay(bounds, values)
        emit("schedule piecewise " + " ".join(map(str, bounds)) + " / " + " ".join(map(repr, values)), pw, n)


def main():
    import keras as keras_package

    out = [f"# Generated by scripts/keras_callbacks_ref.py with TensorFlow {tf.__version__} "
           f"(Keras {keras_package.__version__}); do not edit."]
    scenarios(out)
    schedules(out)
    refdata.write_lines("tests/data/keras_callbacks_ref.txt", out)


if __name__ == "__main__":
    main()
