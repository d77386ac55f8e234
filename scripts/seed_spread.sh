#!/bin/sh
# Trains models with several seeds and keeps the records in the repository, for the seed-spread table of
# docs/study.md:
#
#   scripts/seed_spread.sh [--threads N] [--keep DIR] --seeds 2,3,4 SPEC...
#
# For every SPEC and seed runs `build/cnnlab train SPEC --seed S --threads N --quiet` (default 2 threads)
# and copies each run's history.csv, metrics.json and run.json, and its log, into
# docs/runs/seeds-<date>-<commit>/<model>-seed<S>/, with run.txt (commit, date, machine). The tree must be
# clean, as for scripts/study_at_head.sh, so that the recorded commit is the code that ran.
set -eu

cd "$(dirname "$0")/.."
THREADS=2
SEEDS=
KEEP=
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS="${2:?}"; shift 2 ;;
        --seeds) SEEDS=$(echo "${2:?}" | tr ',' ' '); shift 2 ;;
        --keep) KEEP="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "seed_spread.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ -z "$SEEDS" ] || [ $# -eq 0 ]; then
    echo "seed_spread.sh: give --seeds and at least one spec (see --help)" >&2
    exit 2
fi
if ! git diff --quiet HEAD -- src include models; then
    echo "seed_spread.sh: the tree has uncommitted changes; commit or stash them first" >&2
    exit 2
fi
make -j"$(nproc)" all >/dev/null

rev=$(git rev-parse --short HEAD)
dest="docs/runs/seeds-$(date -u +%F)-$rev"
if [ -n "$KEEP" ]; then work="$KEEP"; mkdir -p "$work"; else
    work=$(mktemp -d "${TMPDIR:-/tmp}/cnnlab-seeds.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$dest"
{
    echo "commit: $(git rev-parse HEAD)"
    echo "date: $(date -u '+%F %T UTC')"
    echo "command: scripts/seed_spread.sh --threads $THREADS --seeds $(echo $SEEDS | tr ' ' ',') $*"
    echo "machine: $(scripts/machine_info.sh build/cnnlab)"
    echo "cores: $(nproc)"
} >"$dest/run.txt"

failed=0
for spec in "$@"; do
    model=$(basename "$spec" .spec)
    for seed in $SEEDS; do
        out="$dest/$model-seed$seed"
        mkdir -p "$out"
        run="$work/$model-seed$seed"
        if build/cnnlab train "$spec" --seed "$seed" --threads "$THREADS" --quiet --overwrite --out "$run" \
            >"$out/train.log" 2>&1; then
            for f in history.csv metrics.json run.json; do
                if [ -f "$run/$f" ]; then cp "$run/$f" "$out/"; fi
            done
            echo "seed_spread.sh: $model seed $seed: $(grep -o '"test_accuracy": *[0-9.]*' "$out/metrics.json")"
        else
            echo "seed_spread.sh: $model seed $seed failed (see $out/train.log)" >&2
            failed=1
        fi
    done
done
echo "seed_spread.sh: records in $dest"
exit $failed
