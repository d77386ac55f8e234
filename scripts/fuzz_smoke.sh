#!/bin/sh
# Runs every libFuzzer harness of build-fuzz/fuzz/ for SECONDS each (default 30: the CI smoke run; `make fuzz`
# passes FUZZ_SECONDS) on its seed corpus fuzz/corpus/NAME/ (and dictionary fuzz/NAME.dict and extra flags
# fuzz/NAME.options, if any), keeping new inputs in build-fuzz/corpus/NAME/.
# Builds the harnesses first. Prints each harness's executions; exits non-zero at the first crash, leak,
# timeout or out-of-memory, whose input is left as build-fuzz/crash-NAME-* (replay: build-fuzz/fuzz/NAME FILE).
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-30}
make --no-print-directory fuzz-build >/dev/null
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for bin in build-fuzz/fuzz/fuzz_*; do
    name=$(basename "$bin")
    work="build-fuzz/corpus/$name"
    mkdir -p "$work" "fuzz/corpus/$name"
    log="build-fuzz/$name.log"
    dict=""
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    options=""
    [ -f "fuzz/$name.options" ] && options=$(cat "fuzz/$name.options")
    # -rss_limit_mb: a harness may build a large (legal) model, but a few bytes must not take gigabytes.
    if "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 $dict $options \
        -artifact_prefix="build-fuzz/crash-$name-" "$work" "fuzz/corpus/$name" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "$name: ${runs:-?} executions in ${seconds} s, no crash"
    else
        echo "$name: FAILED (see $log)"
        grep -E "^==[0-9]+==ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5
        status=1
    fi
done
exit $status
