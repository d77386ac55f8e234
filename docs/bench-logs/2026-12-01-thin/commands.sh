#!/bin/sh
# A/B of the fused first convolution (branch thin) against its parent e095593, interleaved, at nice 10, on the
# shared 2-core development machine (a study run and other helpers' jobs loaded it: load average 4-6).
# OLD = the parent's build/cnnlab and bench/first_conv.c linked against the parent's libcnnlab.a; NEW = this
# branch's. Outputs: first_conv-<isa>.txt, profile-<old|new>-<round>.txt (each with its `time -f %U` CPU seconds).
OLD_BENCH=${OLD_BENCH:-/tmp/thin/first_conv.old} NEW_BENCH=${NEW_BENCH:-build/bench/first_conv}
OLD=${OLD:-/tmp/thin/cnnlab.old} NEW=${NEW:-build/cnnlab} D=docs/bench-logs/2026-12-01-thin
for isa in avx512 avx2 generic; do
    for round in 1 2 3; do
        echo "== round $round old"; CNNLAB_ISA=$isa nice -n 10 $OLD_BENCH 10
        echo "== round $round new"; CNNLAB_ISA=$isa nice -n 10 $NEW_BENCH 10
    done > $D/first_conv-$isa.txt 2>&1
done
for round in 1 2; do
    for v in old new; do
        eval bin=\$$(echo $v | tr a-z A-Z)
        /usr/bin/time -f "user %U s" nice -n 10 $bin profile Model_2_s2 --threads 1 --steps 5 > $D/profile-$v-$round.txt 2>&1
    done
done
