#!/bin/sh
# --precision bf16 against fp32: one-epoch training runs of the same model, interleaved (fp32, bf16, fp32, ...)
# because the machine may be shared, with the same threads, batch and seed; prints each run's training-pass
# seconds (history.csv, wall clock) and the whole process's user CPU seconds (/usr/bin/time: data loading and
# the final test-set evaluation included; on a shared machine the steadier of the two), the medians of each and
# their ratios fp32 / bf16, with the CPU, the kernel path and the load average.
#
#   bench/bf16.sh [--models model_2_s2,vgg16] [--repeats R] [--threads T] [--limit N] [--logs DIR]
#
# model_2_s2: Model_2_s2 on the 60,000 training images (the study's epoch).
# vgg16: Model_10_VGG16_AL (the VGG16 base at 56x56, trainable from block5_conv1, Dense on top) with
#   --vgg-weights none, on the first N training images (default 2048: an epoch of all 60,000 takes an hour
#   on 2 cores); its test set is cut to 512 images in a temporary data folder, so that the final evaluation
#   does not outlast the timed epoch (the timing is the training pass alone either way).
# Environment: CNNLAB (binary, default build/cnnlab), FMNIST_DIR (default /usr/share/datasets/fashion-mnist).
set -eu
MODELS=model_2_s2,vgg16
REPEATS=3
THREADS=2
LIMIT=2048
LOGS=
while [ $# -gt 0 ]; do
    case "$1" in
    --models) MODELS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --logs) LOGS=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bf16.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
CNNLAB=${CNNLAB:-build/cnnlab}
DATA=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
[ -n "$LOGS" ] && mkdir -p "$LOGS"

# The training files as they are, the first n test images and labels (IDX: big-endian count at byte 4).
small_data() {
    n=$1 d=$W/data
    mkdir -p "$d"
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte; do
        for x in "" .gz; do [ -e "$DATA/$f$x" ] && ln -sf "$(realpath "$DATA/$f$x")" "$d/$f$x"; done
    done
    count=$(printf '\\%03o\\%03o\\%03o\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))
    cut_idx() { # file header_bytes bytes_per_item
        src=$DATA/$1
        { if [ -e "$src" ]; then cat "$src"; else gzip -dc "$src.gz"; fi; } | head -c $(($2 + n * $3)) >"$W/raw"
        { head -c 4 "$W/raw"; printf "$count"; tail -c +9 "$W/raw"; } >"$d/$1"
    }
    cut_idx t10k-images-idx3-ubyte 16 784
    cut_idx t10k-labels-idx1-ubyte 8 1
    echo "$d"
}

# Runs one epoch; prints the training-pass seconds.
one() { # model precision repeat
    out=$W/run-$1-$2-$3
    case "$1" in
    model_2_s2) set -- "$1" "$2" "$3" --model Model_2_s2 --data "$DATA" ;;
    vgg16) set -- "$1" "$2" "$3" --model Model_10_VGG16_AL --vgg-weights none --limit "$LIMIT" --data "$SMALL" ;;
    esac
    m=$1 p=$2 r=$3
    shift 3
    /usr/bin/time -f '%U' -o "$W/user" "$CNNLAB" train "$@" --epochs 1 --threads "$THREADS" --seed 1 \
        --precision "$p" --quiet --overwrite --out "$out" >"$W/log" 2>&1 || { cat "$W/log" >&2; exit 1; }
    if [ -n "$LOGS" ]; then
        cp "$out/history.csv" "$LOGS/$m.$p.$r.history.csv"
        cp "$out/train.log" "$LOGS/$m.$p.$r.train.log"
    fi
    s=$(tr -d '\r' <"$out/history.csv" | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") s = i; next } { print $s }')
    echo "$s $(tail -1 "$W/user")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' _)
ISA=$("$CNNLAB" --version | sed -n 's/^kernels: \([a-z0-9]*\).*/\1/p')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bf16.sh: $REPEATS interleaved repeats x 1 epoch, $THREADS threads; cpu $CPU, kernels $ISA; load average at start $LOAD"
echo "(the machine may be shared: compare the ratio, measured in one run, not the seconds)"
case ",$MODELS," in *,vgg16,*) SMALL=$(small_data 512) ;; esac
for m in $(echo "$MODELS" | tr , ' '); do
    : >"$W/fp32" && : >"$W/bf16"
    r=1
    while [ "$r" -le "$REPEATS" ]; do
        for p in fp32 bf16; do
            t=$(one "$m" "$p" "$r")
            echo "  $m $p repeat $r: epoch ${t% *} s, user CPU ${t#* } s (load $(cut -d' ' -f1 /proc/loadavg))"
            echo "$t" >>"$W/$p"
        done
        r=$((r + 1))
    done
    f=$(cut -d' ' -f1 "$W/fp32" | median) b=$(cut -d' ' -f1 "$W/bf16" | median)
    fu=$(cut -d' ' -f2 "$W/fp32" | median) bu=$(cut -d' ' -f2 "$W/bf16" | median)
    ratio() { awk -v f="$1" -v b="$2" 'BEGIN { printf "%.2f", f / b }'; }
    echo "BF16 model=$m threads=$THREADS fp32_s=$f bf16_s=$b speedup=$(ratio "$f" "$b")" \
        "fp32_user_s=$fu bf16_user_s=$bu speedup_user=$(ratio "$fu" "$bu") cpu=$CPU isa=$ISA" \
        "load_at_start=$(echo "$LOAD" | tr ' ' /)"
done
