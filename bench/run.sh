#!/bin/sh
# Side-by-side training benchmark: cnnlab against PyTorch and Keras on the study's models (see bench/README.md).
#
#   bench/run.sh [--models model_1,model_2,model_2_s2] [--threads T] [--repeats R] [--epochs E] [--batch B]
#                [--coretype NAME] [--logs DIR]
#   bench/run.sh --vgg [...]    VGG16 base forward and training speed instead (bench/vgg.sh --help)
#
# Defaults: --models model_1 --threads 2 --repeats 3 --epochs 1 --batch 512.
# --coretype NAME sets OPENBLAS_CORETYPE=NAME for every run (OpenBLAS picks its kernels by it, so it moves the
# baselines); without it the variable is passed on as the environment has it. --logs DIR keeps every run's log
# in DIR (created), for committing next to docs/benchmarks.md; otherwise they go to a temporary folder.
# For each model the runs interleave: cnnlab, pytorch, keras, cnnlab, pytorch, keras, ... each a fresh process
# training E epochs. Every run gives the median and the minimum of its epochs' training-pass times (60,000
# images, no evaluation); the table shows, per framework, the median over runs of those medians, the smallest
# epoch seen, and the median test accuracy. The last lines are machine-readable:
#   BENCH model=model_1 threads=2 cnnlab_s=.. pytorch_s=.. keras_s=.. ratio_pytorch=.. ratio_keras=..
#         cpu=.. isa=.. openblas_coretype=.. blas_core=..
# (one line each; NA where a framework gave no result). ratio_* = cnnlab median / framework median: below 1 means
# cnnlab is faster. cpu, isa (cnnlab's kernel path), openblas_coretype and blas_core (the core OpenBLAS chose)
# come from scripts/machine_info.sh.
#
# Environment:
#   CNNLAB        cnnlab binary (default build/cnnlab)
#   OMP_WAIT_POLICY  passed to cnnlab's runs (default PASSIVE, as bench/torch_ref.py sets for PyTorch)
#   TORCH_PYTHON  interpreter with torch (default /usr/bin/python3); it runs bench/torch_ref.py
#   BLAS_LIB      the OpenBLAS cnnlab links, for blas_core (see scripts/machine_info.sh)
#   KERAS_PYTHON  interpreter with tensorflow (default bench/.venv/bin/python, else python3 if it has tensorflow)
#   FMNIST_DIR    Fashion-MNIST gz files, passed on to the references (default /usr/share/datasets/fashion-mnist)
#   BENCH_KEEP=1  keep the folder of run logs (printed at the end)
#
# Exit status: non-zero only when cnnlab itself fails (or the arguments are wrong); a reference framework that
# is missing or fails is reported and skipped.
set -u

cd "$(dirname "$0")/.." || exit 2

MODELS=model_1
THREADS=2
REPEATS=3
EPOCHS=1
BATCH=512
LOGS=""

for a in "$@"; do [ "$a" = --vgg ] && exec bench/vgg.sh "$@"; done

usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --models)  MODELS="${2:?}"; shift 2 ;;
        --threads) THREADS="${2:?}"; shift 2 ;;
        --repeats) REPEATS="${2:?}"; shift 2 ;;
        --epochs)  EPOCHS="${2:?}"; shift 2 ;;
        --batch)   BATCH="${2:?}"; shift 2 ;;
        --coretype) export OPENBLAS_CORETYPE="${2:?}"; shift 2 ;;
        --logs)    LOGS="${2:?}"; shift 2 ;;
        --coretype=*) export OPENBLAS_CORETYPE="${1#*=}"; shift ;;
        --logs=*)  LOGS="${1#*=}"; shift ;;
        --models=*)  MODELS="${1#*=}"; shift ;;
        --threads=*) THREADS="${1#*=}"; shift ;;
        --repeats=*) REPEATS="${1#*=}"; shift ;;
        --epochs=*)  EPOCHS="${1#*=}"; shift ;;
        --batch=*)   BATCH="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

for v in "$THREADS" "$REPEATS" "$EPOCHS" "$BATCH"; do
    case "$v" in ''|*[!0-9]*|0) echo "run.sh: --threads, --repeats, --epochs and --batch take positive integers" >&2; exit 2 ;; esac
done

# model_1 -> Model_1 (cnnlab's name); accepts either spelling in --models
MODEL_LIST=""
for m in $(echo "$MODELS" | tr ',' ' '); do
    m=$(echo "$m" | tr '[:upper:]' '[:lower:]')
    case "$m" in
        model_1|model_2|model_2_s2) MODEL_LIST="$MODEL_LIST $m" ;;
        *) echo "run.sh: unknown model '$m' (model_1, model_2, model_2_s2)" >&2; exit 2 ;;
    esac
done
cnnlab_name() { echo "$1" | sed 's/^model/Model/'; }

CNNLAB="${CNNLAB:-build/cnnlab}"
# OpenMP threads that spin while they wait lose their core's time slices on a shared machine: on 2 cores at load
# 25, Model_1's training pass took 25.9 s spinning and 1.9 s passive (measured 2026-12-01). bench/torch_ref.py
# sets PASSIVE for PyTorch itself; cnnlab gets the same unless OMP_WAIT_POLICY says otherwise.
CNNLAB_WAIT="${OMP_WAIT_POLICY:-PASSIVE}"
TORCH_PY="${TORCH_PYTHON:-/usr/bin/python3}"
TORCH_REF=bench/torch_ref.py

if [ -n "$LOGS" ]; then
    mkdir -p "$LOGS" || exit 2
    W=$LOGS
    trap 'echo "run.sh: logs in $W"' EXIT
elif ! W=$(mktemp -d "${TMPDIR:-/tmp}/cnnlab-bench.XXXXXX"); then
    exit 2
elif [ "${BENCH_KEEP:-0}" = 1 ]; then
    trap 'echo "run.sh: logs kept in $W"' EXIT
else
    trap 'rm -rf "$W"' EXIT
fi
trap 'exit 130' INT TERM

# ---- which frameworks can run -------------------------------------------------------------------------------
HAVE_CNNLAB=1 HAVE_TORCH=1 HAVE_KERAS=1
CNNLAB_FAILED=0
if [ ! -x "$CNNLAB" ]; then
    echo "cnnlab: unavailable ($CNNLAB not found; build it with make)"
    HAVE_CNNLAB=0 CNNLAB_FAILED=1
fi
if ! "$TORCH_PY" -c 'import torch' >/dev/null 2>&1; then
    echo "pytorch: unavailable ($TORCH_PY cannot import torch; scripts/deps.sh --bench installs python3-torch)"
    HAVE_TORCH=0
fi
if [ -n "${KERAS_PYTHON:-}" ]; then
    KERAS_PY="$KERAS_PYTHON"
elif [ -x bench/.venv/bin/python ]; then
    KERAS_PY=bench/.venv/bin/python
else
    KERAS_PY=python3
fi
if ! "$KERAS_PY" -c 'import tensorflow' >/dev/null 2>&1; then
    echo "keras: unavailable ($KERAS_PY cannot import tensorflow; scripts/deps.sh --bench makes bench/.venv)"
    HAVE_KERAS=0
fi

# ---- what the numbers depend on, recorded in every BENCH line -------------------------------------------------
MACHINE=$(scripts/machine_info.sh "$CNNLAB")

# ---- one run of each framework: appends "median min acc" to $W/<model>.<fw> ----------------------------------
fail() {  # fw model repeat log why
    echo "  $1 run $3 of $2 FAILED ($5); last lines of its output:"
    tail -n 5 "$4" 2>/dev/null | sed 's/^/    | /'
    echo "$3" >>"$W/$2.$1.failed"
}

run_cnnlab() {  # model repeat
    log="$W/$1.cnnlab.$2.log" out="$W/run"
    rm -rf "$out"
    OMP_WAIT_POLICY="$CNNLAB_WAIT" "$CNNLAB" train --model "$(cnnlab_name "$1")" --epochs "$EPOCHS" --batch "$BATCH" --threads "$THREADS" \
        --seed "$2" --out "$out" --quiet >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then fail cnnlab "$1" "$2" "$log" "exit status $rc"; CNNLAB_FAILED=1; return; fi
    # per-epoch training-pass seconds from the `seconds` column; test accuracy = last val_accuracy (validation = test set)
    res=$(tr -d '\r' <"$out/history.csv" 2>/dev/null | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "seconds") s = i; if ($i == "val_accuracy") v = i }; next }
        s && $s != "" { t[++n] = $s + 0; acc = v ? $v : "NA" }
        END {
            if (!s || n == 0) exit 1
            for (i = 2; i <= n; i++) { x = t[i]; for (j = i - 1; j >= 1 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
            med = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
            printf "%.3f %.3f %s\n", med, t[1], acc
        }')
    if [ -z "$res" ]; then fail cnnlab "$1" "$2" "$log" "no seconds in $out/history.csv"; CNNLAB_FAILED=1; return; fi
    cp "$out/history.csv" "$W/$1.cnnlab.$2.history.csv" 2>/dev/null
    echo "$res" >>"$W/$1.cnnlab"
    echo "cnnlab $2 $res" | awk '{ printf "  %-8s run %s epoch_s_median=%s epoch_s_min=%s test_acc=%s\n", $1, $2, $3, $4, $5 }'
}

result_line() {  # log -> "median min acc" from the RESULT line
    grep '^RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | awk -F= '
        $1 == "epoch_s_median" { m = $2 } $1 == "epoch_s_min" { n = $2 } $1 == "test_acc" { a = $2 }
        END { if (m != "") printf "%s %s %s\n", m, (n != "" ? n : m), (a != "" ? a : "NA") }'
}

run_ref() {  # fw model repeat
    log="$W/$2.$1.$3.log"
    if [ "$1" = pytorch ]; then
        OMP_WAIT_POLICY=PASSIVE "$TORCH_PY" "$TORCH_REF" "$2" --epochs "$EPOCHS" --batch "$BATCH" \
            --threads "$THREADS" --seed "$3" >"$log" 2>&1
    else
        "$KERAS_PY" bench/keras_ref.py "$2" --epochs "$EPOCHS" --batch "$BATCH" --threads "$THREADS" >"$log" 2>&1
    fi
    rc=$?
    if [ $rc -ne 0 ]; then fail "$1" "$2" "$3" "$log" "exit status $rc"; return; fi
    res=$(result_line "$log")
    if [ -z "$res" ]; then fail "$1" "$2" "$3" "$log" "no RESULT line"; return; fi
    echo "$res" >>"$W/$2.$1"
    echo "$1 $3 $res" | awk '{ printf "  %-8s run %s epoch_s_median=%s epoch_s_min=%s test_acc=%s\n", $1, $2, $3, $4, $5 }'
}

# ---- the runs, interleaved -----------------------------------------------------------------------------------
echo "bench: models$MODEL_LIST, threads $THREADS, batch $BATCH, $REPEATS repeats x $EPOCHS epoch(s), interleaved"
echo "bench: cnnlab=$CNNLAB (OMP_WAIT_POLICY=$CNNLAB_WAIT)  pytorch=$TORCH_PY $TORCH_REF  keras=$KERAS_PY bench/keras_ref.py"
echo "bench: $MACHINE commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
for m in $MODEL_LIST; do
    echo "== $m"
    r=1
    while [ $r -le "$REPEATS" ]; do
        [ $HAVE_CNNLAB = 1 ] && run_cnnlab "$m" "$r"
        [ $HAVE_TORCH = 1 ] && run_ref pytorch "$m" "$r"
        [ $HAVE_KERAS = 1 ] && run_ref keras "$m" "$r"
        r=$((r + 1))
    done
done

rm -rf "$W/run"

# ---- summary --------------------------------------------------------------------------------------------------
summary() {  # model fw -> "median_of_medians min_of_mins median_acc runs" or "NA NA NA 0"
    f="$W/$1.$2"
    if [ ! -s "$f" ]; then echo "NA NA NA 0"; return; fi
    awk '
        function med(a, n,   i, j, x) {
            for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { m[++n] = $1 + 0; if (n == 1 || $2 + 0 < lo) lo = $2 + 0; if ($3 != "NA") c[++k] = $3 + 0 }
        END { printf "%.3f %.3f %s %d\n", med(m, n), lo, (k ? sprintf("%.4f", med(c, k)) : "NA"), n }' "$f"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.3f\n", a / b }'; }

BENCH="" S_cnnlab=NA S_pytorch=NA S_keras=NA
for m in $MODEL_LIST; do
    echo
    echo "$m: threads $THREADS, batch $BATCH, $REPEATS repeats x $EPOCHS epoch(s); seconds per training epoch (60,000 images)"
    printf "  %-9s %10s %10s %9s %6s\n" framework median_s min_s test_acc runs
    for fw in cnnlab pytorch keras; do
        # shellcheck disable=SC2046  # four words: median min acc runs
        set -- $(summary "$m" $fw)
        case $fw in cnnlab) S_cnnlab=$1 ;; pytorch) S_pytorch=$1 ;; keras) S_keras=$1 ;; esac
        nf=0; [ -f "$W/$m.$fw.failed" ] && nf=$(wc -l <"$W/$m.$fw.failed")
        note=""; [ "$nf" -gt 0 ] && note="  ($nf failed)"
        printf "  %-9s %10s %10s %9s %6s%s\n" $fw "$1" "$2" "$3" "$4/$REPEATS" "$note"
    done
    rp=$(ratio "$S_cnnlab" "$S_pytorch") rk=$(ratio "$S_cnnlab" "$S_keras")
    echo "  ratio cnnlab/pytorch = $rp   cnnlab/keras = $rk   (medians; < 1: cnnlab faster)"
    BENCH="${BENCH}BENCH model=$m threads=$THREADS cnnlab_s=$S_cnnlab pytorch_s=$S_pytorch keras_s=$S_keras ratio_pytorch=$rp ratio_keras=$rk $MACHINE
"
done
echo
printf "%s" "$BENCH"

if [ $CNNLAB_FAILED -ne 0 ]; then
    echo "run.sh: cnnlab failed or is missing" >&2
    exit 1
fi
exit 0
