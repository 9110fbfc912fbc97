#!/usr/bin/env bash
# wgpu tile-variant sweep on the GPU (one-off tuning run).
set -u
out="$1"; mkdir -p "$out"
b=$PWD/.carry/bystack-bench
export XDG_RUNTIME_DIR=$(mktemp -d); chmod 700 $XDG_RUNTIME_DIR
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
for t in b a c; do
  echo "== tile $t" | tee -a $out/sweep.log
  BYSTACK_WGPU_TILE=$t timeout 60 $b conformance --backend wgpu,wgpu-f16 --products 300 --hashes 32 \
    --vectors .carry/vectors/tensority.json --json >>$out/conformance.json 2>>$out/sweep.log || echo "conformance $t failed" | tee -a $out/sweep.log
  BYSTACK_WGPU_TILE=$t timeout 80 $b tensority --backend wgpu,wgpu-f16 --batch 512,2048 --seconds 2 --repeats 3 \
    --seed-builds 1 --json >>$out/tensority.json 2>>$out/sweep.log || echo "tensority $t failed" | tee -a $out/sweep.log
  tail -4 $out/tensority.json | cut -c1-200
done
BYSTACK_WGPU_TILE=b BYSTACK_WGPU_CHECKED=1 timeout 30 $b tensority --backend wgpu --batch 2048 --seconds 2 --repeats 2 --seed-builds 1 --json >>$out/checked.json 2>>$out/sweep.log
cat $out/conformance.json | cut -c1-220
cat $out/checked.json | cut -c1-200
