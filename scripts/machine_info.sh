#!/bin/sh
# Prints, on one line, what a benchmark or a training result depends on besides the code:
#   cpu=<model name> cpu_id=<vendor-family-model-stepping> isa=<cnnlab kernel path>
#   openblas_coretype=<value|unset> blas_core=<OpenBLAS's choice>
#   scripts/machine_info.sh [CNNLAB_BINARY]      (default build/cnnlab)
# cpu: /proc/cpuinfo's model name, spaces as _; cpu_id: its vendor, family, model and stepping (a virtual
# machine's model name can be as bare as "Intel(R) Xeon(R) Processor"). isa: the "kernels:" line of
# `cnnlab --version`; for a binary from before that line, avx512-compiled when its code uses AVX-512 (zmm)
# registers, else unknown.
# blas_core: the kernel set OpenBLAS picks under the current OPENBLAS_CORETYPE (BLAS_LIB: the library cnnlab
# links, default the Debian OpenMP build). Used by bench/run.sh and scripts/study_at_head.sh.
set -u
CNNLAB="${1:-build/cnnlab}"
BLAS_LIB="${BLAS_LIB:-/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0}"

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1 | tr -s ' \t' '__')

field() { sed -n "s/^$1[[:space:]]*:[[:space:]]*//p" /proc/cpuinfo 2>/dev/null | head -n 1; }
cpu_id="$(field vendor_id)-$(field 'cpu family')-$(field model)-$(field stepping)"

isa=$("$CNNLAB" --version 2>/dev/null | sed -n 's/^kernels: \([^ ]*\).*/\1/p')
if [ -z "$isa" ]; then
    if [ -x "$CNNLAB" ] && command -v objdump >/dev/null 2>&1 &&
        objdump -d --no-show-raw-insn "$CNNLAB" 2>/dev/null | grep -q zmm; then
        isa=avx512-compiled
    else
        isa=unknown
    fi
fi

core=$(/usr/bin/python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1]); lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())' "$BLAS_LIB" 2>/dev/null)

echo "cpu=${cpu:-unknown} cpu_id=$cpu_id isa=$isa openblas_coretype=${OPENBLAS_CORETYPE:-unset} blas_core=${core:-unknown}"
