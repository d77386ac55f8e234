#!/usr/bin/env python3
"""How often libhdf5 itself crashes or hangs on damaged files (docs/correctness.md, docs/reliability.md).

Makes N byte-edited copies of tests/data/keras_h5/vgg_small.h5 (copy i: random.Random(i) picks 1-4 offsets
and a random byte for each) and reads each in a child process with h5py (Debian python3-h5py, on Debian's
libhdf5 1.10): every attribute and every dataset, as the Keras weight loader reads them. A child killed by a
signal is a crash of libhdf5 (h5py turns every error libhdf5 reports into an exception), one past 60 s a hang.

    /usr/bin/python3 docs/bench-logs/2026-12-02-records/hdf5_damage.py [N=300]
"""
import os
import random
import subprocess
import sys
import tempfile

READ = r"""
import sys, h5py
def visit(name, obj):
    for k in obj.attrs: obj.attrs[k]
    if isinstance(obj, h5py.Dataset): obj[()]
with h5py.File(sys.argv[1], "r") as f:
    for k in f.attrs: f.attrs[k]
    f.visititems(visit)
"""


def main(n):
    src = open("tests/data/keras_h5/vgg_small.h5", "rb").read()
    counts = {"read": 0, "error": 0, "crash": 0, "hang": 0}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "damaged.h5")
        for i in range(n):
            rng = random.Random(i)
            data = bytearray(src)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            with open(path, "wb") as f:
                f.write(data)
            try:
                rc = subprocess.run([sys.executable, "-c", READ, path], capture_output=True, timeout=60).returncode
                kind = "read" if rc == 0 else "crash" if rc < 0 else "error"
            except subprocess.TimeoutExpired:
                kind, rc = "hang", None
            counts[kind] += 1
            if kind in ("crash", "hang"):
                print("copy %d: %s (%s)" % (i, kind, "signal %d" % -rc if rc else "60 s"))
    print("%d copies of %d bytes: %s" % (n, len(src), ", ".join("%s %d" % kv for kv in counts.items())))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
