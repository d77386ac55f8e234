#!/bin/sh
# Runs every test binary of the given build folders and ends with one line: "N passed, N failed".
# Each binary is a cmocka group; its own output shows which tests failed and why.
set -u
passed=0
failed=0
crashed=""
export CMOCKA_MESSAGE_OUTPUT=STDOUT
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
for dir in "$@"; do
    for t in "$dir"/tests/test_*; do
        case "$t" in *.o | *.d) continue ;; esac
        [ -x "$t" ] || continue
        echo "== $t"
        out=$("$t" 2>&1)
        rc=$?
        printf '%s\n' "$out"
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
        passed=$((passed + ${p:-0}))
        failed=$((failed + ${f:-0}))
        if [ $rc -ne 0 ] && [ -z "$f" ]; then
            crashed="$crashed $t"
            failed=$((failed + 1))
        fi
    done
done
[ -z "$crashed" ] || echo "crashed or exited non-zero:$crashed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
