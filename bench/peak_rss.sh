#!/bin/sh
# Peak memory of one training epoch: cnnlab against the PyTorch reference (bench/torch_ref.py), side by side.
#
#   bench/peak_rss.sh [--model Model_2_s2] [--threads 2] [--repeats 2] [--logs DIR]
#
# Each round runs `cnnlab train --model M --epochs 1 --batch 512` and `torch_ref.py m --epochs 1 --batch 512`,
# interleaved, each a fresh process under `/usr/bin/time -v`, and takes its "Maximum resident set size" (the
# kernel's high-water mark of the whole process: data set, model, activations, libraries, the test-set
# evaluation and every output written). Prints one line per run, the machine line (CPU, cnnlab's kernel
# path: scripts/machine_info.sh), and the medians with their ratio:
#   RSS model=Model_2_s2 cnnlab_mb=... pytorch_mb=... ratio=... cpu=... isa=...
# Environment: CNNLAB (default build/cnnlab), TORCH_PYTHON (default /usr/bin/python3), FMNIST_DIR.
# Peak RSS does not depend on the machine's load, so a shared machine gives the same figures.
set -eu
cd "$(dirname "$0")/.."
model=Model_2_s2
threads=2
repeats=2
logs=
while [ $# -gt 0 ]; do
    case $1 in
    --model) model=$2; shift ;;
    --threads) threads=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    --logs) logs=$2; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "peak_rss.sh: unknown option '$1'" >&2 && exit 2 ;;
    esac
    shift
done
CNNLAB=${CNNLAB:-build/cnnlab}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
lower=$(echo "$model" | tr 'A-Z' 'a-z')
[ -x "$CNNLAB" ] || { echo "peak_rss.sh: $CNNLAB is missing (make)" >&2 && exit 2; }
[ -x /usr/bin/time ] || { echo "peak_rss.sh: /usr/bin/time is missing (apt-get install time)" >&2 && exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
logs=${logs:-$tmp/logs}
mkdir -p "$logs"

# peak LOG: the maximum resident set size of a `time -v` log, in MB (10^6 bytes).
peak() {
    sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$1" | awk '{printf "%.1f\n", $1 * 1024 / 1e6}'
}
median() {
    sort -n | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

machine=$(scripts/machine_info.sh "$CNNLAB")
echo "machine: $machine"
for r in $(seq 1 "$repeats"); do
    log=$logs/cnnlab-$r.log
    /usr/bin/time -v "$CNNLAB" train --model "$model" --epochs 1 --batch 512 --threads "$threads" --seed "$r" \
        --out "$tmp/run-$r" --quiet > "$log" 2>&1 || { tail -n 20 "$log" >&2 && exit 1; }
    echo "run $r cnnlab: $(peak "$log") MB"
    peak "$log" >> "$tmp/cnnlab"
    log=$logs/pytorch-$r.log
    if /usr/bin/time -v "$TORCH_PYTHON" bench/torch_ref.py "$lower" --epochs 1 --batch 512 --threads "$threads" \
        --seed "$r" > "$log" 2>&1; then
        echo "run $r pytorch: $(peak "$log") MB"
        peak "$log" >> "$tmp/pytorch"
    else
        echo "run $r pytorch: FAILED (see $log)"
    fi
done
c=$(median < "$tmp/cnnlab")
p=$([ -s "$tmp/pytorch" ] && median < "$tmp/pytorch" || echo NA)
ratio=$([ "$p" = NA ] && echo NA || awk -v c="$c" -v p="$p" 'BEGIN {printf "%.2f", c / p}')
cpu=$(echo "$machine" | sed -n 's/.*cpu=\([^ ]*\).*/\1/p')
isa=$(echo "$machine" | sed -n 's/.*isa=\([^ ]*\).*/\1/p')
echo "RSS model=$model threads=$threads cnnlab_mb=$c pytorch_mb=$p ratio=$ratio cpu=$cpu isa=$isa"
