#!/usr/bin/python3
"""Reference values for cnnlab's metrics (tests/test_metrics.c), computed with scikit-learn.

Regenerate (Debian's python3-sklearn 1.2.1 and python3-numpy, run from the repository root):

    /usr/bin/python3 scripts/ref_metrics.py > tests/data/metrics_ref.txt

The output is deterministic (fixed NumPy seed); commit it. Each case holds the inputs (labels,
float32 probabilities written with %.9g, which round-trip exactly) and scikit-learn's outputs:

    case NAME
    n N k K digits D
    class "raw class name"          (k lines, only when the report uses target names)
    y_true <n ints>
    probs                            (then n lines of k floats)
    y_pred <n ints>                  np.argmax(probs, axis=1)
    accuracy A
    confusion <k*k ints>             row = true class, column = predicted class
    precision|recall|f1 <k floats>   precision_recall_fscore_support(labels=range(k), zero_division="warn")
    support <k ints>
    macro P R F S                    average="macro" over the labels present in y_true or y_pred
    weighted P R F S
    auc_ovo X | error                roc_auc_score(multi_class="ovo", average="macro")
    auc_ovr X | error                roc_auc_score(multi_class="ovr", average="macro")
                                     (k = 2: mean of roc_auc_score(y_true == c, probs[:, c]) over c)
    auc_binary X                     k = 2 only: roc_auc_score(y_true, probs[:, 1])
    report L                         classification_report(digits=D[, target_names]); then its L lines
    end

Target names are the study's f"{i} - {name:<11}" (spec section 3.7). Probabilities are multinomial
counts divided by a small total, so they sum to one (as roc_auc_score requires) and have many ties,
both within a column (tied scores in the AUC) and within a row (argmax ties go to the first index).
"""
import sys
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score)

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
UKRAINIAN = ["Футболка/топ", "Штани", "Пуловер", "Сукня", "Пальто", "Босоніжки", "Сорочка", "Кросівки",
             "Сумка", "Черевики"]

rng = np.random.default_rng(20240308)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def counts_to_probs(m, total):
    return (m / total).astype(np.float32)


def make_probs(y, k, sharpness, total, never=None):
    """Row i: multinomial counts (out of total) drawn around a softmax that favours y[i]; a class in
    `never` is redrawn until it is not the argmax, so it is never predicted."""
    n = len(y)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += sharpness
    p = softmax(logits)
    m = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        while True:
            m[i] = rng.multinomial(total, p[i])
            if never is None or np.argmax(m[i]) != never:
                break
    return counts_to_probs(m, total)


def fmt_float(x):
    return repr(float(x))


def auc_or_error(y, probs, mode):
    if probs.shape[1] == 2:
        # roc_auc_score takes two columns as a binary problem and refuses them; Hand & Till from the
        # two binary AUCs (ovo and ovr coincide for two classes).
        pair = [roc_auc_score(y == c, probs[:, c]) for c in (0, 1)]
        return fmt_float(np.average(pair))
    try:
        return fmt_float(roc_auc_score(y, probs, multi_class=mode, average="macro"))
    except ValueError:
        return "error"


def write_case(out, name, y, probs, digits=2, classes=None):
    n, k = probs.shape
    y = np.asarray(y, dtype=np.int64)
    y_pred = np.argmax(probs, axis=1)
    labels = np.arange(k)
    print(f"case {name}", file=out)
    print(f"n {n} k {k} digits {digits}", file=out)
    for c in classes or []:
        print(f'class "{c}"', file=out)
    print("y_true " + " ".join(map(str, y)), file=out)
    print("probs", file=out)
    for row in probs:
        print(" ".join(format(float(v), ".9g") for v in row), file=out)
    print("y_pred " + " ".join(map(str, y_pred)), file=out)
    print("accuracy " + fmt_float(accuracy_score(y, y_pred)), file=out)
    cm = confusion_matrix(y, y_pred, labels=labels)
    print("confusion " + " ".join(map(str, cm.ravel())), file=out)
    p, r, f, s = precision_recall_fscore_support(y, y_pred, labels=labels)
    for key, arr in (("precision", p), ("recall", r), ("f1", f)):
        print(key + " " + " ".join(map(fmt_float, arr)), file=out)
    print("support " + " ".join(map(str, s)), file=out)
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y, y_pred, average=avg)
        print(f"{avg} {fmt_float(ap)} {fmt_float(ar)} {fmt_float(af)} {n}", file=out)
    print("auc_ovo " + auc_or_error(y, probs, "ovo"), file=out)
    print("auc_ovr " + auc_or_error(y, probs, "ovr"), file=out)
    if k == 2:
        print("auc_binary " + fmt_float(roc_auc_score(y, probs[:, 1])), file=out)
    names = [f"{i} - {c:<11}" for i, c in enumerate(classes)] if classes else None
    report = classification_report(y, y_pred, digits=digits, target_names=names)
    assert report.endswith("\n")
    lines = report.split("\n")[:-1]
    print(f"report {len(lines)}", file=out)
    for line in lines:
        print(line, file=out)
    print("end", file=out)


def labels_with_every_class(n, k, missing=()):
    present = [c for c in range(k) if c not in missing]
    y = rng.choice(present, size=n)
    y[: len(present)] = present
    rng.shuffle(y)
    return y


def main():
    warnings.simplefilter("ignore", UndefinedMetricWarning)
    out = sys.stdout
    print("# Generated by scripts/ref_metrics.py with scikit-learn; do not edit.", file=out)

    y = labels_with_every_class(20, 3)
    write_case(out, "small_k3", y, make_probs(y, 3, 1.0, 10))

    y = labels_with_every_class(1000, 10)
    write_case(out, "fashion_k10_n1000", y, make_probs(y, 10, 2.5, 1000), classes=FASHION)

    y = labels_with_every_class(300, 10)
    write_case(out, "ukrainian_k10_digits4", y, make_probs(y, 10, 1.5, 50), digits=4, classes=UKRAINIAN)

    # Class 2 occurs in y_true but is never predicted: its precision and F1 are 0/0 -> 0.
    y = labels_with_every_class(60, 4)
    write_case(out, "never_predicted_k4", y, make_probs(y, 4, 1.0, 20, never=2))

    # Class 4 occurs in neither y_true nor y_pred: no report row, no part in the averages; ROC-AUC
    # raises in scikit-learn (and is an error in cnnlab).
    y = labels_with_every_class(40, 5, missing=(4,))
    probs = make_probs(y, 5, 1.0, 20, never=4)
    write_case(out, "absent_class_k5", y, probs)

    # Every score tied: argmax is always class 0, every AUC is 0.5.
    y = labels_with_every_class(9, 3)
    write_case(out, "all_tied_k3", y, np.full((9, 3), 1 / 3, dtype=np.float32))

    y = labels_with_every_class(200, 2)
    write_case(out, "binary_k2", y, make_probs(y, 2, 0.8, 100))


if __name__ == "__main__":
    main()
