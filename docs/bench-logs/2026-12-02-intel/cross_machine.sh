#!/bin/sh
# The same bits on the Intel Xeon as on the AMD EPYC (Zen 4)? The binary copied to another folder, each kernel
# path and thread count; md5 of model.cnn against the Zen 4 logs: Model_1 --limit 3000 (c17cfcc4...,
# docs/bench-logs/2026-12-02-records/isa_model1_limit3000.txt), Model_2_s2 --limit 2048 fp32 (19565ce6...) and
# bf16 (33729f5c..., docs/bench-logs/2026-12-02-bf16fast/md5.txt).
set -u
B=$(mktemp -d); cp build/cnnlab "$B/cnnlab"; O=$(mktemp -d)
echo "# commit $(git rev-parse --short HEAD); $(scripts/machine_info.sh build/cnnlab)"
for isa in generic avx2 avx512; do
    CNNLAB_ISA=$isa "$B/cnnlab" train models/seed/Model_1.spec --epochs 1 --limit 3000 --seed 1 --threads 2 --quiet --out $O/m1-$isa > $O/log 2>&1
    echo "Model_1 limit=3000 isa=$isa threads=2 $(md5sum < $O/m1-$isa/model.cnn | cut -d' ' -f1) $(grep -o 'Test accuracy: [0-9.]*%' $O/log)"
done
for prec in fp32 bf16; do for isa in avx2 avx512; do for t in 1 2; do
    [ $prec = bf16 ] && [ $isa = avx2 ] && continue
    OMP_NUM_THREADS=$t CNNLAB_ISA=$isa "$B/cnnlab" train models/seed/Model_2_s2.spec --precision $prec --epochs 1 --limit 2048 --threads $t --out $O/m2 --overwrite > $O/log 2>&1
    echo "Model_2_s2 limit=2048 precision=$prec isa=$isa threads=$t $(md5sum < $O/m2/model.cnn | cut -d' ' -f1) $(grep -o 'Test accuracy: [0-9.]*%' $O/log)"
done; done; done
rm -rf "$B" "$O"
