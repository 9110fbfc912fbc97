#!/usr/bin/env bash
# The device check for a machine with an NVIDIA GPU (see bench/README.md).
#
#   bench/device-check.sh [OUT_DIR]          (default OUT_DIR: ./device-out)
#
# 1. Gets `bystack-bench`: $BYSTACK_BIN_DIR/bystack-bench if set (a release build carried from
#    another x86-64 Linux machine: GPU machines are often offline), else `cargo build --release`
#    with the default features (CUDA and wgpu both on).
# 2. Finds the CUDA driver and NVRTC at run time (nothing CUDA is linked at build time) and a
#    Vulkan loader for wgpu.
# 3. Conformance of every GPU backend against the reference (12 vectors, 1,000 random products,
#    64 random full hashes), then hash rates (`tensority --json`, with a batch-size sweep for
#    the tensor-core kernels), and batched PoW verification.
# Everything lands in OUT_DIR as JSON plus logs; the exit status is non-zero if any backend
# disagrees with the reference. Steps that cannot run here (no Vulkan, no GPU) are logged and
# skipped, never silently.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-./device-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log="$out/device-check.log"
: >"$log"
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$log"; }
status=0
start=$(date +%s)

# --- 1. the binary -------------------------------------------------------------------------
bench=""
if [ -n "${BYSTACK_BIN_DIR:-}" ] && [ -x "$BYSTACK_BIN_DIR/bystack-bench" ]; then
  bench="$BYSTACK_BIN_DIR/bystack-bench"
  say "using carried binary $bench"
else
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then
    say "no Rust toolchain: installing one with rustup (needs network)"
    curl -sSf --max-time 60 https://sh.rustup.rs | sh -s -- -y --profile minimal >>"$log" 2>&1 \
      && export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if [ -n "${bench:-}" ]; then
  :
elif command -v cargo >/dev/null 2>&1; then
  say "building bystack-bench (release, CUDA + wgpu)"
  (cd "$here" && cargo build --release --locked -p bystack-bench) >>"$log" 2>&1 || { say "build failed"; exit 2; }
  bench="$here/target/release/bystack-bench"
else
  say "no cargo and no \$BYSTACK_BIN_DIR/bystack-bench: build on an x86-64 Linux machine with"
  say "  cargo build --release -p bystack-bench   and set BYSTACK_BIN_DIR to target/release"
  exit 2
fi

# --- 2. run-time libraries -----------------------------------------------------------------
libdir="$(mktemp -d)"
for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
# cudarc looks for libnvrtc.so / libnvrtc.so.12; CUDA 13 installs ship libnvrtc.so.13 (and pip
# wheels keep theirs under site-packages), so link whatever NVRTC exists under the plain name.
nvrtc="$( (ldconfig -p 2>/dev/null | awk '/libnvrtc\.so/ {print $NF}';
           find /usr/local/cuda* /usr/lib /opt /usr/local/lib -name 'libnvrtc.so*' 2>/dev/null) \
         | grep -v -e builtins -e alt | head -n1)"
if [ -n "$nvrtc" ]; then
  ln -sf "$nvrtc" "$libdir/libnvrtc.so"
  for b in $(dirname "$nvrtc")/libnvrtc-builtins.so*; do [ -e "$b" ] && ln -sf "$b" "$libdir/"; done
  say "NVRTC: $nvrtc"
else
  say "NVRTC not found: the CUDA backends will report themselves unavailable"
fi
export LD_LIBRARY_PATH="$libdir:${LD_LIBRARY_PATH:-}"
# wgpu on NVIDIA needs the Vulkan loader and the driver's ICD; install the loader if apt can,
# and point at the ICD when the loader has none configured.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && command -v apt-get >/dev/null 2>&1; then
  say "installing the Vulkan loader (libvulkan1)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvulkan1) >>"$log" 2>&1 \
    || say "could not install libvulkan1: the wgpu backends will be unavailable"
fi
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && { export VK_DRIVER_FILES="$icd"; say "Vulkan ICD: $icd"; break; }
  done
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true; } >"$out/gpu.csv" 2>>"$log"
cat "$out/gpu.csv" | tee -a "$log"
"$bench" list --json >"$out/backends.json" 2>>"$log"
say "backends:"; "$bench" list 2>>"$log" | tee -a "$log"

gpu_backends=()
for b in cuda cuda-wgmma cuda-mma cuda-dp4a wgpu wgpu-f16; do
  if "$bench" list --json | grep "\"name\":\"$b\"" | grep -q '"available":true'; then
    gpu_backends+=("$b")
  else
    say "backend $b not available here: $("$bench" list --json | grep "\"name\":\"$b\"")"
  fi
done
[ "${#gpu_backends[@]}" -gt 0 ] || { say "no GPU backend available"; exit 2; }
list="$(IFS=,; echo "${gpu_backends[*]}")"

# Register use and spills of the CUDA kernels, when nvcc is around (informational).
if command -v nvcc >/dev/null 2>&1; then
  nvcc -arch=sm_90a -cubin -o /dev/null --ptxas-options=-v \
    "$here/kernels/src/tensority/cuda/tensority.cu" >"$out/ptxas.txt" 2>&1 || true
fi

# --- 3. conformance, then speed ------------------------------------------------------------
vectors=""
for v in "${BYSTACK_VECTORS:-}" "$here/../shared/vectors" "$here/shared/vectors" "$here/bench/vectors"; do
  [ -n "$v" ] && [ -f "$v/tensority.json" ] && { vectors="$v/tensority.json"; break; }
done
[ -n "$vectors" ] && say "vectors: $vectors" || say "tensority.json not found: vectors skipped (random cases still run)"

say "conformance: $list"
timeout 240 "$bench" conformance --backend "$list" --products 1000 --hashes 64 \
  ${vectors:+--vectors "$vectors"} --json >"$out/conformance.json" 2>>"$log"
rc=$?
cat "$out/conformance.json" | tee -a "$log"
[ $rc -eq 0 ] || { say "CONFORMANCE FAILED (rc $rc)"; status=1; }

say "hash rates"
for b in "${gpu_backends[@]}"; do
  case "$b" in
    cuda-wgmma) batches="${CUDA_BATCHES:-528,0,4224}" ;;
    *) batches=0 ;;
  esac
  timeout 150 "$bench" tensority --backend "$b" --batch "$batches" --seconds 3 --repeats 3 \
    --seed-builds 1 --json >>"$out/tensority.json" 2>>"$log" || say "tensority $b failed"
done
timeout 60 "$bench" tensority --backend cpu --threads "$(nproc)" --seconds 3 --repeats 3 \
  --seed-builds 1 --json >>"$out/tensority.json" 2>>"$log" || say "tensority cpu failed"
cat "$out/tensority.json" | tee -a "$log"

if "$bench" help verify >/dev/null 2>&1; then
  say "batched PoW verification"
  timeout 90 "$bench" verify --backend "${gpu_backends[0]}" --blocks 2048 --json \
    >>"$out/verify.json" 2>>"$log" || say "verify ${gpu_backends[0]} failed"
  timeout 60 "$bench" verify --backend cpu --blocks 256 --json >>"$out/verify.json" 2>>"$log" \
    || say "verify cpu failed"
  cat "$out/verify.json" 2>/dev/null | tee -a "$log"
fi

if "$bench" help suite >/dev/null 2>&1; then
  # The suite's report and plots for the GPU backends and the best CPU kernel (checksums
  # included), then a tuned profile for this GPU: about 4 more minutes.
  say "suite report: $out/suite"
  timeout 240 "$bench" suite --backend "$list,cpu" --threads "$(nproc)" --seconds 2 --repeats 3 \
    --skip decode,pswv,pswv-rocksdb,relay,get-work,stratum --out "$out/suite" >>"$log" 2>&1 \
    || { say "suite: wrong results or failures (see report.md)"; status=1; }
  say "tune: $out/tuned-gpu.toml"
  timeout 300 "$bench" tune --backend "$list" --seconds 2 --repeats 3 --force \
    --out "$out/tuned-gpu.toml" >>"$log" 2>&1 || say "tune failed"
fi

say "done in $(( $(date +%s) - start )) s, status $status"
exit $status
