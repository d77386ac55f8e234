#!/bin/sh
# A/B of the frozen Conv2D input gradient as a convolution (and the deep layers' plans), issue 8.
# A = main at 57db8a2, B1 = branch vggdx commit 1 (dx_conv only), B2 = vggdx commit 2 (dx_conv + deep plans);
# each build's build/bench/vgg_speed copied to $BIN/{A,B1,B2}. One thread, 2 timed steps after 1 warm-up,
# interleaved per round, at nice 10 on a shared 2-core machine: the figure to compare is the user CPU seconds
# of the whole process (/usr/bin/time %U: build + warm-up + 2 steps) and vgg_speed's images_cpu_s (images per
# CPU second of the timed steps), never the wall time.
#   run.sh > train_32.txt                                   (MODE=train, batches 64 and 512, A B1 B2)
#   MODE=forward BATCHES=64 VARIANTS="A B2" run.sh > forward_32.txt
BIN=${BIN:-/tmp/vggdx-bin}
MODE=${MODE:-train}
for batch in ${BATCHES:-64 512}; do
    for round in 1 2; do
        for v in ${VARIANTS:-A B1 B2}; do
            printf '%s batch=%s round=%s ' "$v" "$batch" "$round"
            /usr/bin/time -f 'user_s=%U' nice -n 10 "$BIN/$v" "bench/vgg/${MODE}_32.spec" "$MODE" "$batch" 2 1 2>&1 |
                tr '\n' ' '
            echo
        done
    done
done
