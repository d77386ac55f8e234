#!/bin/sh
# The shared library exports the public API and nothing else: every defined dynamic symbol of
# BUILD/libcnnlab.so starts with cnn_ and is declared in include/cnnlab.h, and every function declared there
# that the library defines (BUILD/libcnnlab.a) is exported. A function left out of the export list lacks
# CNN_API in front of its declaration. Prints cmocka-style PASSED/FAILED lines for tests/run.sh.
set -u
build=${1:-build}
root=$(dirname "$0")/..
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$build/libcnnlab.so" | awk 'NF == 3 {print $3}' | sort -u > "$tmp/exported" || exit 1
nm -g --defined-only "$build/libcnnlab.a" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u > "$tmp/defined"
grep -o 'cnn_[A-Za-z0-9_]*(' "$root/include/cnnlab.h" | tr -d '(' | sort -u > "$tmp/declared"
comm -23 "$tmp/exported" "$tmp/declared" > "$tmp/extra"
comm -12 "$tmp/declared" "$tmp/defined" | comm -23 - "$tmp/exported" > "$tmp/missing"
fail=0
if [ -s "$tmp/extra" ]; then
    echo "exported but not part of include/cnnlab.h's API:"
    sed 's/^/  /' "$tmp/extra"
    fail=1
fi
if [ -s "$tmp/missing" ]; then
    echo "declared in include/cnnlab.h and defined, but not exported (missing CNN_API?):"
    sed 's/^/  /' "$tmp/missing"
    fail=1
fi
if [ ! -s "$tmp/exported" ]; then
    echo "$build/libcnnlab.so exports nothing"
    fail=1
fi
echo "$(wc -l < "$tmp/exported") symbols exported by $build/libcnnlab.so"
if [ $fail -eq 0 ]; then
    echo "[  PASSED  ] 1 test(s)."
else
    echo "[  FAILED  ] 1 test(s), listed above."
fi
exit $fail
