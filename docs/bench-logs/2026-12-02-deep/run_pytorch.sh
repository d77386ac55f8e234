#!/bin/sh
# A, B and PyTorch (bench/torch_ref.py vgg16, 1 thread, as bench/vgg.sh runs it), interleaved, train 32x32
# batch 64: compare images_cpu_s (PyTorch's user seconds include Python's start).
BIN=${BIN:-/tmp/deep-bin}
PYTHON=${PYTHON:-/usr/bin/python3}
for round in $(seq 1 ${ROUNDS:-2}); do
    for v in A B; do
        printf '%s round=%s ' "$v" "$round"
        /usr/bin/time -f 'user_s=%U' nice -n 10 "$BIN/$v" bench/vgg/train_32.spec train 64 2 1 2>&1 | tr '\n' ' '
        echo
    done
    printf 'pytorch round=%s ' "$round"
    /usr/bin/time -f 'user_s=%U' nice -n 10 "$PYTHON" bench/torch_ref.py vgg16 --mode train --size 32 --batch 64 \
        --steps 2 --threads 1 2>&1 | grep -E 'RESULT|user_s' | tr '\n' ' '
    echo
done
