#!/bin/sh
# A/B of the deep Conv2D layers' packed kernels and trainable dx as a convolution (issue 8).
# Each build's build/bench/vgg_speed copied to $BIN/<variant>. One thread, 2 timed steps after 1 warm-up,
# interleaved per round, at nice 10 on a shared 2-core machine: compare the user CPU seconds of the whole
# process (/usr/bin/time %U: build + warm-up + 2 steps) and vgg_speed's images_cpu_s (images per CPU second
# of the timed steps), never the wall time.
#   run.sh > train_32.txt
#   MODE=forward BATCHES=64 run.sh > forward_32.txt
BIN=${BIN:-/tmp/deep-bin}
MODE=${MODE:-train}
SIZE=${SIZE:-32}
for batch in ${BATCHES:-64 512}; do
    for round in $(seq 1 ${ROUNDS:-2}); do
        for v in ${VARIANTS:-A B}; do
            printf '%s size=%s batch=%s round=%s ' "$v" "$SIZE" "$batch" "$round"
            /usr/bin/time -f 'user_s=%U' nice -n 10 "$BIN/$v" "bench/vgg/${MODE}_${SIZE}.spec" "$MODE" "$batch" 2 1 2>&1 |
                tr '\n' ' '
            echo
        done
    done
done
