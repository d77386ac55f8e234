#!/bin/bash
# Loaded machine (a study run holds both cores at raised priority), one thread: main's binary (b4bc1ae,
# copied to /tmp/wino/cnnlab-main) against wino's (6a2386c, copied to /tmp/wino/cnnlab-wino), interleaved.
# Each spec runs `cnnlab profile ... --steps 2` and `--steps 8`; the CPU time (user + sys) of one step is
# the difference over 6 steps, so start-up (model build, the peak and sgemm reference measurements) cancels.
# The per-layer wall times in the profile-*.txt files vary with the load: compare the per-step CPU times
# (summary.txt). SPECS="train_32 forward_32" ROUND=2 run.sh repeats those as a second round (files -r2);
# BINS="main wino2" ROUND=3 compares main with wino2, the binary of 2b6e9a9 (the final rule: VGG16's block5 at
# 2x2 on Winograd too), copied to /tmp/wino/cnnlab-wino2.
cd "$(dirname "$0")/../../.."
OUT=docs/bench-logs/2026-12-02-wino
cpu() { awk '/^# cpu/ {print $4 + $7}' "$1"; }
for isa in avx512 avx2; do
  for spec in ${SPECS:-train_32 forward_32 train_56 forward_56}; do
    for bin in ${BINS:-main wino}; do
      for steps in 2 8; do
        f=$OUT/profile-$spec-$isa-$bin-s$steps${ROUND:+-r$ROUND}.txt
        cmd="CNNLAB_ISA=$isa /tmp/wino/cnnlab-$bin profile bench/vgg/$spec.spec --batch 64 --threads 1 --steps $steps"
        { echo "# $cmd   (loaded machine, one thread; $(date -u +%FT%TZ))"
          CNNLAB_ISA=$isa /usr/bin/time -f "# cpu user %U s sys %S s wall %e s" nice -n 10 \
              /tmp/wino/cnnlab-$bin profile bench/vgg/$spec.spec --batch 64 --threads 1 --steps $steps 2>&1; } > $f
      done
      s2=$(cpu $OUT/profile-$spec-$isa-$bin-s2${ROUND:+-r$ROUND}.txt)
      s8=$(cpu $OUT/profile-$spec-$isa-$bin-s8${ROUND:+-r$ROUND}.txt)
      echo "$isa $spec $bin${ROUND:+ (round $ROUND)} cpu_per_step_s $(echo "($s8 - $s2) / 6" | bc -l | cut -c1-6)" | tee -a $OUT/summary.txt
    done
  done
done
echo DONE
