#!/bin/sh
# Data-parallel scaling on one machine (issue 13, docs/scaling.md): the Model_2_s2 training pass on
#   2 MPI ranks x 1 thread,  1 process x 1 thread,  1 process x 2 threads,
# interleaved, REPS rounds; prints every run and the medians. The goal on a 2-core machine: 2 ranks at least
# 1.8x one rank, and no slower than one process on 2 threads.
#   bench/mpi_scaling.sh [LIMIT [REPS]]   LIMIT training images (default 60000: a whole epoch), REPS (default 3)
# The machine must be quiet: a rank that loses its core for a timeslice stalls the other in the allreduce.
# The log starts with the CPU, the kernel path (CNNLAB_ISA) and the load average, which it also prints after
# every round, and warns when the machine was not idle. Each 2-rank line ends with the allreduce's share of
# the training pass and the time spent waiting for the slower rank.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-build/cnnlab}
LIMIT=${1:-60000}
REPS=${2:-3}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common="train Model_2_s2 --epochs 1 --limit $LIMIT --quiet --overwrite"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# What the figures were taken on: a figure means something only with the CPU, the kernel path and the load.
echo "machine: $(nproc) CPUs, $($BIN --version | sed -n 's/^kernels: //p') kernels (CNNLAB_ISA=${CNNLAB_ISA:-auto})"
echo "$(${MPIRUN%% *} --version 2>/dev/null | head -n 1), mpirun command: $MPIRUN"
echo "Model_2_s2, $LIMIT training images, batch 512, $REPS rounds; load average before: $(loadavg)"
[ "$(loadavg | cut -d' ' -f1 | cut -d. -f1)" -lt 1 ] ||
    echo "WARNING: the machine is not idle (load average $(loadavg)): these figures are noisy"

seconds() { sed -n 's/.*"seconds_per_epoch": *\([0-9.e+-]*\).*/\1/p' "$1/run.json"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for r in $(seq "$REPS"); do
    $BIN $common --threads 1 --out "$tmp/t1" >/dev/null
    echo "1 process x 1 thread : $(seconds "$tmp/t1") s" | tee -a "$tmp/one1"
    $BIN $common --threads 2 --out "$tmp/t2" >/dev/null
    echo "1 process x 2 threads: $(seconds "$tmp/t2") s" | tee -a "$tmp/one2"
    $MPIRUN -np 2 $BIN $common --out "$tmp/r2" >"$tmp/mpi.out"
    echo "2 ranks x 1 thread   : $(seconds "$tmp/r2") s   $(grep 'gradient allreduce' "$tmp/mpi.out" | cut -d: -f2-)" |
        tee -a "$tmp/two"
    echo "   (load average after round $r: $(loadavg))"
done
m1=$(sed 's/.*: \([0-9.e+-]*\) s.*/\1/' "$tmp/one1" | median)
m2=$(sed 's/.*: \([0-9.e+-]*\) s.*/\1/' "$tmp/one2" | median)
mr=$(sed 's/.*: \([0-9.e+-]*\) s.*/\1/' "$tmp/two" | median)
echo "medians over $REPS rounds, $LIMIT training images: 1x1 $m1 s, 1x2 $m2 s, 2 ranks x 1 $mr s"
awk -v a="$m1" -v b="$m2" -v c="$mr" 'BEGIN {printf "2 ranks: %.2fx one rank, %.2fx one process on 2 threads\n", a / c, b / c}'
echo "load average at the end: $(loadavg)"
