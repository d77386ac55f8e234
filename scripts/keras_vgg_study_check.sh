#!/bin/sh
# The study's VGG16 models, trained in cnnlab, predict the same in Keras (issue 8's export round trip):
#
#   PYTHON=bench/.venv/bin/python scripts/keras_vgg_study_check.sh [--images N] RUN_DIR...
#
# Each RUN_DIR is a run folder of Model_5_VGG16 ... Model_10_VGG16_AL (cnnlab train or study; its model.cnn and
# its model name from the folder's name). For each: `cnnlab export-weights` writes the weights in Keras's
# layout, `cnnlab predict` gives the probabilities for the first N test images (default 200), and
# `scripts/keras_vgg16_ref.py check-study-model` builds the study's model as Keras builds it, loads the
# exported weights and predicts the same images; it prints the largest difference of any probability and
# fails above 1e-4. Not run in CI (TensorFlow 2.15 from PyPI: $PYTHON, default bench/.venv/bin/python).
# Environment: CNNLAB (default build/cnnlab), FMNIST_DIR (default /usr/share/datasets/fashion-mnist).
set -eu
cd "$(dirname "$0")/.."
N=200
if [ "${1:-}" = --images ]; then N=${2:?}; shift 2; fi
[ $# -gt 0 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
case "$N" in '' | *[!0-9]* | 0) echo "keras_vgg_study_check.sh: --images takes a positive integer" >&2; exit 2 ;; esac
CNNLAB=${CNNLAB:-build/cnnlab}
PY=${PYTHON:-bench/.venv/bin/python}
DATA=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# The first N test images as an IDX file of their own (the count is the big-endian word at byte 4).
src=$DATA/t10k-images-idx3-ubyte
{ if [ -e "$src" ]; then cat "$src"; else gzip -dc "$src.gz"; fi; } | head -c $((16 + N * 784)) >"$W/raw"
count=$(printf '\\%03o\\%03o\\%03o\\%03o' $((N >> 24 & 255)) $((N >> 16 & 255)) $((N >> 8 & 255)) $((N & 255)))
mkdir "$W/data"
# shellcheck disable=SC2059  # the format is the count's four bytes as octal escapes
{ head -c 4 "$W/raw"; printf "$count"; tail -c +9 "$W/raw"; } >"$W/data/t10k-images-idx3-ubyte"

rc=0
for run in "$@"; do
    model=$(basename "$run")
    "$CNNLAB" export-weights "$run/model.cnn" "$W/$model.h5" >/dev/null
    "$CNNLAB" predict "$run/model.cnn" --images "$W/data/t10k-images-idx3-ubyte" --threads 2 \
        --out "$W/$model.csv" >/dev/null
    "$PY" scripts/keras_vgg16_ref.py check-study-model "$W/$model.h5" "$model" "$W/$model.csv" "$W/data" ||
        rc=1
done
exit $rc
