# Where a bf16 VGG16-base epoch spends its time: perf's profile of one training run (512 images, one step of
# 512, then validation on 512 test images and the run's records), binary of d2d5f23, AMD EPYC (Zen 4), avx512
# with AVX512_BF16, 2 threads; the machine was loaded (a study model training), so only the shares count.
# /tmp/small512: the training files and the first 512 test images (as bench/bf16.sh makes them).
D=docs/bench-logs/2026-12-02-bf16-perf
for p in bf16 fp32; do
    perf record -o /tmp/perf-$p.data -- build/cnnlab train --model Model_10_VGG16_AL --vgg-weights none \
        --limit 512 --data /tmp/small512 --epochs 1 --threads 2 --seed 1 --precision $p --quiet --overwrite \
        --out /tmp/perf-run-$p > /dev/null 2>&1
    perf report -i /tmp/perf-$p.data --no-children --sort symbol 2>/dev/null | grep -v '^#' | grep '%' |
        head -20 > $D/perf-$p.txt
done
