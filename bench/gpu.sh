#!/bin/bash
# Issue 30's GPU figures in one device call. On the accelerator machine (../shared/gpu/README.md):
#   bash ../shared/gpu/prepare.sh && cp bench/gpu.sh .gpu/commands.sh
#   then one device run: carry [".gpu"], command "bash .gpu/run.sh", timeout 590 s (the steps' limits add up
#   to 500 s; run.sh's set-up takes about a minute).
# run.sh gives $CIFAR (15,000 training images), $IMAGENET (500 images) and $R (packed into gpu.tgz).
# Each step has its own time limit, so one slow step cannot eat the others' time.
set +e
B="python3 -m bench.train"
step() { local name=$1 limit=$2; shift 2; echo "=== $name"; timeout $limit "$@" > $R/$name.log 2>&1; echo "rc $?" >> $R/$name.log; tail -1 $R/$name.log; }
# most important first; the limits add up to 500 s (each figure itself takes seconds). The concurrent
# runs time 300 steps per copy, so a copy that starts a moment late hardly changes the sum.
step search_bf16 30 $B --what darts-search --steps 60 --data-dir $CIFAR --json $R/darts_search_bf16.json
step final_bf16 35 $B --what darts-final --steps 30 --data-dir $CIFAR --json $R/darts_final_bf16.json
step final_fp32 35 $B --what darts-final --steps 30 --precision fp32 --data-dir $CIFAR --json $R/darts_final_fp32.json
step search_x4 90 $B --what darts-search --steps 300 --concurrent 4 --threads 2 --json $R/darts_search_x4.json
step ofa_eval 30 $B --what ofa-eval --data-dir $IMAGENET --workers 8 --json $R/ofa_eval_224.json
step predictor 40 python3 -m bench.predictors --space nb201 --predictor narformer --train-size 781 --seed 0 --quiet \
  --set device=cuda --json $R/predictor.json
# a real training end to end: 3 epochs of the search preset on the 15,000 images, evaluation included
step train_search 45 python3 -m search.train --arch darts_v2 --preset search --set epochs=3 --data-dir $CIFAR \
  --quiet --out $R/train_search
step search_fp32 20 $B --what darts-search --steps 60 --precision fp32 --data-dir $CIFAR --json $R/darts_search_fp32.json
step search_x2 50 $B --what darts-search --steps 300 --concurrent 2 --threads 4 --json $R/darts_search_x2.json
step input_device 20 $B --what imagenet-input --decode device --data-dir $IMAGENET --workers 8 --json $R/input_device.json
step input_workers 20 $B --what imagenet-input --decode workers --data-dir $IMAGENET --workers 14 --json $R/input_workers.json
step search_compile 40 $B --what darts-search --steps 60 --compile --json $R/darts_search_compile.json
step search_fp16 20 $B --what darts-search --steps 60 --precision fp16 --data-dir $CIFAR --json $R/darts_search_fp16.json
# issue 32: all zero-cost proxies of 100 NB201 cells on the GPU (seconds per cell beside the CPU's)
step zero_cost 25 python3 -m bench.zero_cost --space nb201 --sample 100 --device cuda --data-dir $CIFAR --quiet \
  --cache $R/zero_cost_cache.jsonl --json $R/zero_cost_cuda.json
rm -f $R/zero_cost_cache.jsonl
find $R -name checkpoint.pt -delete
