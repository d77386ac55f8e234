#!/bin/sh
# Installs the Debian packages cnnlab needs, if any are missing. Used by `make run`, `make test` and .ci/run.
#   scripts/deps.sh            build, test and run dependencies
#   scripts/deps.sh --bench    also the reference frameworks used by bench/ (PyTorch, TensorFlow/Keras)
# As root it uses apt-get; otherwise sudo when available; otherwise it prints the command and stops.
set -eu

# clang with libFuzzer (clang, libclang-rt-14-dev): the fuzz harnesses (make fuzz, scripts/fuzz_smoke.sh).
# groff-base: tests/check_install.sh renders the man page.
# Open MPI (libopenmpi-dev, openmpi-bin): `mpirun -np N cnnlab train|study` and its test (tests/test_mpi.c).
PKGS="build-essential pkg-config libopenblas-openmp-dev zlib1g-dev libcmocka-dev libhdf5-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin
      libcairo2-dev libfontconfig-dev fonts-dejavu-core libzip-dev libprotobuf-c-dev protobuf-c-compiler
      unzip python3-venv clang libclang-rt-14-dev groff-base"
if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS python3-torch python3-torchvision python3-numpy python3-pip python3-venv"
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    cmd="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" = 0 ]; then
        echo "deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        $cmd
    elif command -v sudo >/dev/null 2>&1; then
        echo "deps: installing$missing (sudo)"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive $cmd
    else
        echo "deps: missing Debian packages:$missing" >&2
        echo "deps: run as root:  apt-get update && $cmd" >&2
        exit 1
    fi
fi

if [ "${1:-}" = "--bench" ]; then
    # Keras is the study's own framework; Debian does not package TensorFlow, so it comes from PyPI,
    # into a virtual environment of its own under bench/.venv.
    venv="$(dirname "$0")/../bench/.venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q "tensorflow-cpu==2.15.1"
    fi
fi
