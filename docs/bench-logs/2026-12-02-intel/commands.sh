#!/bin/sh
# Session 2026-12-02d on a second machine kind: 2-core Intel Xeon (family 6, model 207, stepping 2; KVM guest;
# AVX-512 with two FMA ports, AVX512_BF16, no AMX exposed; lscpu.txt). OpenBLAS 0.3.21 does not know this
# model and picks its Prescott kernels (blas_core in every BENCH line). Nothing else ran during the timed runs.
# avx512/ and avx2/: binary of a979a8a. bf16/: binary of 7472973 (adds only the peak measurement and the note
# on bf16's rate; the products are the same code). kernel_rate*.txt: binary of the commit that adds this folder.
set -u
bench/run.sh --models model_1,model_2_s2 --repeats 3 --logs avx512 > avx512/summary.txt
CNNLAB_ISA=avx2 bench/run.sh --models model_1,model_2_s2 --repeats 3 --logs avx2 > avx2/summary.txt
bench/bf16.sh --models model_2_s2,vgg16 --repeats 3 --limit 512 --logs bf16 > bf16/summary.txt
bench/run.sh --models model_1,model_2_s2 --repeats 3 --coretype SkylakeX --logs skylakex > skylakex/summary.txt
build/bench/kernel_rate 3 > kernel_rate.txt
build/bench/bf16_gemm 3 > bf16_gemm.txt
build/cnnlab profile Model_2_s2 --batch 64 --steps 2 --precision bf16 > profile-Model_2_s2-bf16.txt 2>&1
build/cnnlab profile Model_1 --threads 2 > profile-Model_1.txt 2>&1
build/cnnlab profile Model_2_s2 --threads 2 > profile-Model_2_s2.txt 2>&1
OPENBLAS_CORETYPE=SkylakeX bench/run.sh --vgg --steps 2 --logs vgg > vgg-summary.txt 2>&1   # binary of 636d893
