#!/bin/sh
# TensorBoard reads cnnlab's logs: a real fit with the TensorBoard callback (build/tests/test_report_tb, its
# logs kept with TB_TEST_OUT) checked by scripts/check_tensorboard.py with TensorBoard's own reader.
#   scripts/check_tensorboard.sh [BUILD]      (default build/)
# The interpreter is $PYTHON when set, else bench/.venv/bin/python (scripts/deps.sh --bench), else a small
# venv with only tensorboard from PyPI, made once in BUILD/.venv-tb.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
py=${PYTHON:-bench/.venv/bin/python}
if ! "$py" -c 'import tensorboard' 2>/dev/null; then
    py=$build/.venv-tb/bin/python
    if ! "$py" -c 'import tensorboard' 2>/dev/null; then
        /usr/bin/python3 -m venv "$build/.venv-tb"
        "$build/.venv-tb/bin/pip" install -q "tensorboard==2.15.*" "numpy<2"
    fi
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
TB_TEST_OUT=$out "$build/tests/test_report_tb" >/dev/null
"$py" scripts/check_tensorboard.py "$out/tensorboard_tiny" "$out/history.json"
