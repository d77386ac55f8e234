#!/bin/sh
cd /work/wt-hostile
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for name in fuzz_model_file fuzz_idx fuzz_spec; do
  mkdir -p build-fuzz/corpus/$name
  dict=""; [ -f fuzz/$name.dict ] && dict="-dict=fuzz/$name.dict"
  echo "start $name $(date)" >> /tmp/fuzzlong/times
  nice -n 10 /tmp/fuzzlong/$name -max_total_time=300 -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 $dict \
     -artifact_prefix=/tmp/fuzzlong/crash-$name- build-fuzz/corpus/$name fuzz/corpus/$name > /tmp/fuzzlong/$name.log 2>&1
  echo "end $name rc=$? $(date)" >> /tmp/fuzzlong/times
done
