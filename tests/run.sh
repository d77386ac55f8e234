#!/bin/sh
# Runs every test binary of the given build folders, the export check of each folder's shared library
# (tests/check_exports.sh) and the man page check of its binary (tests/check_manpage.sh), the install check
# (tests/check_install.sh: make install, the README's example built against it) and the check that every log
# the docs cite is in the repository (scripts/check_doc_figures.sh) on the first folder, and ends with one
# line: "N passed, N failed, N skipped". Each binary is a cmocka group; its own output shows which tests failed
# or were skipped and why. A binary that exits non-zero without reporting a failed test,
# or that prints no cmocka summary at all (it crashed before the end, or is not a cmocka group), counts as
# one failed test: no outcome is silent.
set -u
passed=0
failed=0
skipped=0
broken=""
export CMOCKA_MESSAGE_OUTPUT=STDOUT
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"

# The count on cmocka's summary line "[  TAG  ] N test(s)" ($2 = TAG), or nothing when there is none.
count() {
    printf '%s\n' "$1" | sed -n "s/^\[  *$2  *\] \([0-9]*\) test(s).*/\1/p" | tail -n 1
}

# Runs one test program (its arguments follow) and adds its counts to the totals.
run_one() {
    echo "== $*"
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(count "$out" PASSED)
    f=$(count "$out" FAILED)
    s=$(count "$out" SKIPPED)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    skipped=$((skipped + ${s:-0}))
    if [ -z "$p" ] || { [ $rc -ne 0 ] && [ -z "$f" ]; }; then
        broken="$broken $1"
        failed=$((failed + 1))
    fi
}

first=${1:-}
for dir in "$@"; do
    for t in "$dir"/tests/test_*; do
        case "$t" in *.o | *.d) continue ;; esac
        [ -x "$t" ] || continue
        run_one "$t"
    done
    [ -f "$dir/libcnnlab.so" ] && run_one "$(dirname "$0")/check_exports.sh" "$dir"
    [ -x "$dir/cnnlab" ] && run_one "$(dirname "$0")/check_manpage.sh" "$dir"
    [ "$dir" = "$first" ] && [ -f "$dir/libcnnlab.so" ] && run_one "$(dirname "$0")/check_install.sh" "$dir"
    [ "$dir" = "$first" ] && run_one "$(dirname "$0")/../scripts/check_doc_figures.sh"
done
[ -z "$broken" ] || echo "crashed, exited non-zero or printed no cmocka summary:$broken"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
