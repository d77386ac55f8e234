#!/bin/sh
# Reruns the whole study with the binary of HEAD and keeps its results in the repository:
#
#   scripts/study_at_head.sh [--threads N] [--keep DIR] [--commit] [SPEC...] [-- MORE STUDY OPTIONS]
#
# Builds build/cnnlab, runs `cnnlab study SPEC... --retrain --threads N` (default: models/seed/, 2 threads)
# in a temporary folder (or in DIR with --keep, which is then kept: a run cut short can be copied from it
# or resumed), and copies into docs/runs/study-<date>-<commit>/:
#   results.csv                 the study's table (one row per model)
#   <model>/history.csv         each model's per-epoch history
#   <model>/metrics.json        each model's test figures, epochs, best epoch, stop reason
#   <model>/run.json            each model's run record, where the binary writes one
#   study.log                   everything the study printed
#   run.txt                     the commit, date, command, machine (scripts/machine_info.sh: CPU model,
#                               kernel path, OPENBLAS_CORETYPE, OpenBLAS core), compiler, cores
# --commit then commits that folder. The tree must be clean (the commit recorded must be the code that ran).
# The study takes about an hour on 2 cores; run it on an idle machine, since it also records seconds per epoch.
set -eu

cd "$(dirname "$0")/.."
THREADS=2
COMMIT=0
KEEP=
SPECS=
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS="${2:?}"; shift 2 ;;
        --commit) COMMIT=1; shift ;;
        --keep) KEEP="${2:?}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "study_at_head.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        *) SPECS="$SPECS $1"; shift ;;
    esac
done

if ! git diff --quiet HEAD -- || [ -n "$(git ls-files --others --exclude-standard -- src include models)" ]; then
    echo "study_at_head.sh: the tree has uncommitted changes; commit or stash them first" >&2
    exit 2
fi
make -j"$(nproc)" all >/dev/null

rev=$(git rev-parse --short HEAD)
dest="docs/runs/study-$(date -u +%F)-$rev"
if [ -n "$KEEP" ]; then
    work="$KEEP"
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/cnnlab-study.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
SPECS="${SPECS:- models/seed/}"
mkdir -p "$dest"

cmd="build/cnnlab study$SPECS --retrain --threads $THREADS --quiet --out $work/study $*"
{
    echo "commit: $(git rev-parse HEAD)"
    echo "date: $(date -u '+%F %T UTC')"
    echo "command: build/cnnlab study$SPECS --retrain --threads $THREADS --quiet $*"
    echo "machine: $(scripts/machine_info.sh build/cnnlab)"
    echo "version: $(build/cnnlab --version | tr '\n' ' ')"
    echo "compiler: $(${CC:-cc} --version | head -n 1)"
    echo "cores: $(nproc)"
} >"$dest/run.txt"

# sh has no pipefail: the study's exit status goes through a file
# shellcheck disable=SC2086  # the extra study options are words
{ $cmd; echo $? >"$work/rc"; } 2>&1 | tee "$dest/study.log"
rc=$(cat "$work/rc")

[ -f "$work/study/results.csv" ] && cp "$work/study/results.csv" "$dest/"
for dir in "$work"/study/*/; do
    [ -f "$dir/metrics.json" ] || continue
    model=$(basename "$dir")
    mkdir -p "$dest/$model"
    for f in history.csv metrics.json run.json; do
        if [ -f "$dir/$f" ]; then cp "$dir/$f" "$dest/$model/"; fi
    done
done
echo "study_at_head.sh: results in $dest"
if [ "$rc" != 0 ]; then
    echo "study_at_head.sh: the study failed (exit $rc); $dest is incomplete and not committed" >&2
    exit 1
fi

if [ $COMMIT = 1 ]; then
    git add "$dest"
    git commit -q -m "docs/runs: the study at $rev ($THREADS threads)" -- "$dest"
    echo "study_at_head.sh: committed $dest"
fi
