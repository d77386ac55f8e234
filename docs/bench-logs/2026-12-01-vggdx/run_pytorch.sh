#!/bin/sh
# A and B2 (see run.sh) beside PyTorch (bench/torch_ref.py vgg16, as bench/vgg.sh runs it), train 32x32,
# batch 64, 1 thread, 2 rounds interleaved: run_pytorch.sh > train_32_pytorch.txt
BIN=${BIN:-/tmp/vggdx-bin}
for r in 1 2; do
    for b in A B2; do
        printf '%s train b64 r%s ' "$b" "$r"
        /usr/bin/time -f 'user_s=%U' nice -n 10 "$BIN/$b" bench/vgg/train_32.spec train 64 2 1 2>&1 | tr '\n' ' '
        echo
    done
    printf 'pytorch train b64 r%s ' "$r"
    OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f 'user_s=%U' nice -n 10 /usr/bin/python3 bench/torch_ref.py vgg16 \
        --mode train --size 32 --batch 64 --steps 2 --threads 1 2>&1 | tail -2 | tr '\n' ' '
    echo
done
