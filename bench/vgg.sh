#!/bin/sh
# VGG16 base speed, side by side (bench/run.sh --vgg runs this): images per second of cnnlab, PyTorch
# (torchvision vgg16().features) and Keras (keras.applications.VGG16), each with its own initialisation.
#
#   bench/run.sh --vgg [--modes forward,train] [--sizes 32,56] [--batches 64,512] [--isas LIST] [--steps N]
#                      [--threads T] [--repeats R] [--logs DIR]
#
# forward: the base alone, inference. train: one training step as Model_10_VGG16_AL trains (block5 trainable,
# blocks 1-4 frozen with input gradients through them to a trainable 1x1 gray->RGB layer, Flatten, Dense 10,
# Adam); the networks are bench/vgg/*.spec (cnnlab, bench/vgg_speed.c), bench/torch_ref.py vgg16 and
# bench/keras_ref.py vgg16. Each run is a fresh process: one untimed warm-up step, then --steps timed steps
# (default 3), reporting the median step's images/s. For each point (mode, size, batch) the runs interleave:
# cnnlab on each kernel path of --isas (default: every path this CPU has among avx512 and avx2, set through
# CNNLAB_ISA), pytorch, keras; --repeats R (default 1) repeats that round and the table takes medians.
# Goals (issue 8): cnnlab >= 1.1x PyTorch's images/s forward, >= 1.2x in training, on every kernel path.
# The last lines are machine-readable, one per point:
#   VGG mode=M size=S batch=B threads=T cnnlab_<isa>=.. pytorch=.. keras=.. cpu_<framework>=..
#       x_pytorch_<isa>=.. x_pytorch_cpu_<isa>=.. goal=G met=yes|no cpu=.. isa=.. openblas_coretype=.. blas_core=..
# (images/s; cpu_*: images per CPU second of the process, all threads, which other processes on a shared
# machine move much less than the wall time; x_pytorch_<isa> = cnnlab's images/s / PyTorch's: above 1 means
# cnnlab is faster, x_pytorch_cpu_<isa> the same per CPU second; met: every path reaches the goal in images/s). Environment as bench/run.sh (KERAS_PYTHON, else PYTHON, names the Keras interpreter; CNNLAB is the cnnlab binary, for the kernel path and
# machine line; VGG_SPEED the benchmark binary, default build/bench/vgg_speed, which `make` builds).
set -u

cd "$(dirname "$0")/.." || exit 2

MODES=forward,train SIZES=32,56 BATCHES=64,512 ISAS="" STEPS=3 THREADS=2 REPEATS=1 LOGS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --vgg) shift ;;
        --modes) MODES="${2:?}"; shift 2 ;;
        --sizes) SIZES="${2:?}"; shift 2 ;;
        --batches) BATCHES="${2:?}"; shift 2 ;;
        --isas) ISAS="${2:?}"; shift 2 ;;
        --steps) STEPS="${2:?}"; shift 2 ;;
        --threads) THREADS="${2:?}"; shift 2 ;;
        --repeats) REPEATS="${2:?}"; shift 2 ;;
        --logs) LOGS="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "vgg.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$STEPS" "$THREADS" "$REPEATS"; do
    case "$v" in ''|*[!0-9]*|0) echo "vgg.sh: --steps, --threads and --repeats take positive integers" >&2; exit 2 ;; esac
done
for v in $(echo "$MODES,$SIZES,$BATCHES" | tr ',' ' '); do
    case "$v" in forward|train|32|56) ;; ''|*[!0-9]*|0) echo "vgg.sh: bad mode, size or batch '$v'" >&2; exit 2 ;; esac
done

CNNLAB="${CNNLAB:-build/cnnlab}"
SPEED="${VGG_SPEED:-build/bench/vgg_speed}"
TORCH_PY="${TORCH_PYTHON:-/usr/bin/python3}"
if [ -n "${KERAS_PYTHON:-}" ]; then KERAS_PY="$KERAS_PYTHON"
elif [ -n "${PYTHON:-}" ]; then KERAS_PY="$PYTHON"
elif [ -x bench/.venv/bin/python ]; then KERAS_PY=bench/.venv/bin/python
else KERAS_PY=python3; fi

if [ ! -x "$SPEED" ]; then echo "vgg.sh: $SPEED not found (make builds it)" >&2; exit 1; fi
FWS=""
if [ -z "$ISAS" ]; then  # every path this CPU has, best first
    grep -qw avx512f /proc/cpuinfo && ISAS=avx512
    grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && ISAS="${ISAS:+$ISAS,}avx2"
    [ -n "$ISAS" ] || ISAS=generic
fi
for i in $(echo "$ISAS" | tr ',' ' '); do FWS="$FWS cnnlab_$i"; done
if "$TORCH_PY" -c 'import torch, torchvision' >/dev/null 2>&1; then FWS="$FWS pytorch"
else echo "pytorch: unavailable ($TORCH_PY cannot import torch and torchvision)"; fi
if "$KERAS_PY" -c 'import tensorflow' >/dev/null 2>&1; then FWS="$FWS keras"
else echo "keras: unavailable ($KERAS_PY cannot import tensorflow)"; fi

if [ -n "$LOGS" ]; then mkdir -p "$LOGS" || exit 2; W=$LOGS
elif ! W=$(mktemp -d "${TMPDIR:-/tmp}/cnnlab-vgg.XXXXXX"); then exit 2
else trap 'rm -rf "$W"' EXIT; fi
trap 'exit 130' INT TERM

MACHINE=$(scripts/machine_info.sh "$CNNLAB")
echo "vgg: modes $MODES, sizes $SIZES, batches $BATCHES, threads $THREADS, $STEPS timed steps per run, $REPEATS round(s), interleaved:$FWS"
echo "vgg: $MACHINE commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "vgg: uptime: $(uptime)"

one() {  # fw mode size batch round -> appends images/s to $W/<point>.<fw>
    log="$W/$2_$3_$4.$1.$5.log"
    case "$1" in
        cnnlab_*) CNNLAB_ISA="${1#cnnlab_}" "$SPEED" "bench/vgg/$2_$3.spec" "$2" "$4" "$STEPS" "$THREADS" ;;
        pytorch) OMP_WAIT_POLICY=PASSIVE "$TORCH_PY" bench/torch_ref.py vgg16 --mode "$2" --size "$3" \
            --batch "$4" --steps "$STEPS" --threads "$THREADS" ;;
        keras) "$KERAS_PY" bench/keras_ref.py vgg16 --mode "$2" --size "$3" --batch "$4" --steps "$STEPS" \
            --threads "$THREADS" ;;
    esac >"$log" 2>&1
    ips=$(sed -n 's/^RESULT .*images_s=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
    if [ -z "$ips" ]; then
        echo "  $1 FAILED; last lines:"; tail -n 3 "$log" | sed 's/^/    | /'; return
    fi
    cps=$(sed -n 's/^RESULT .*images_cpu_s=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
    echo "$ips" >>"$W/$2_$3_$4.$1"
    echo "${cps:-NA}" >>"$W/$2_$3_$4.$1.cpu"
    printf "  %-14s round %s: %8s images/s  %8s images/CPU-s\n" "$1" "$5" "$ips" "${cps:-NA}"
}

median() { [ -s "$1" ] || { echo NA; return; }; sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.2f\n", a / b }'; }

OUT=""
for mode in $(echo "$MODES" | tr ',' ' '); do
    goal=1.1; [ "$mode" = train ] && goal=1.2
    for size in $(echo "$SIZES" | tr ',' ' '); do
        for batch in $(echo "$BATCHES" | tr ',' ' '); do
            echo "== $mode ${size}x$size batch $batch"
            r=1
            while [ $r -le "$REPEATS" ]; do
                for fw in $FWS; do one "$fw" "$mode" "$size" "$batch" $r; done
                r=$((r + 1))
            done
            tp=$(median "$W/${mode}_${size}_$batch.pytorch")
            line="VGG mode=$mode size=$size batch=$batch threads=$THREADS" xs="" met=yes
            tc=$(median "$W/${mode}_${size}_$batch.pytorch.cpu")
            for fw in $FWS; do line="$line $fw=$(median "$W/${mode}_${size}_$batch.$fw")"; done
            for fw in $FWS; do line="$line cpu_$fw=$(median "$W/${mode}_${size}_$batch.$fw.cpu")"; done
            for fw in $FWS; do
                case $fw in cnnlab_*) ;; *) continue ;; esac
                x=$(ratio "$(median "$W/${mode}_${size}_$batch.$fw")" "$tp")
                xs="$xs x_pytorch_${fw#cnnlab_}=$x"
                xs="$xs x_pytorch_cpu_${fw#cnnlab_}=$(ratio "$(median "$W/${mode}_${size}_$batch.$fw.cpu")" "$tc")"
                awk -v x="$x" -v g="$goal" 'BEGIN { exit !(x != "NA" && x + 0 >= g) }' || met=no
            done
            OUT="$OUT$line$xs goal=$goal met=$met $MACHINE
"
        done
    done
done
echo
printf "%s" "$OUT"
