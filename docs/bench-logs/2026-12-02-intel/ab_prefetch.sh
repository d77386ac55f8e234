#!/bin/sh
# A/B: base vs prefetch binaries, interleaved, one epoch each; prints training-pass seconds from history.csv
cd /work/main
for m in $1; do
for r in $(seq 1 $2); do
  for v in base pf; do
    out=/tmp/ab-$v-$m; rm -rf $out
    /tmp/cnnlab-$v train --model $m --epochs 1 --threads 2 --quiet --out $out --seed $r >/dev/null 2>&1
    t=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="epoch_seconds"||$i=="time"||$i=="seconds") c=i} NR==2{print $c}' $out/history.csv)
    echo "$m $v $r $t $(md5sum < $out/model.cnn | cut -c1-8)"
  done
done; done
