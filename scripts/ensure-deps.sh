#!/usr/bin/env bash
# Installs what the build needs and a fresh machine may lack. Idempotent and quick when
# everything is present. Today: a C compiler (the linker rustc calls), a C++ compiler (the
# fuzz crate builds libFuzzer), and Mesa lavapipe with the Vulkan loader (the software Vulkan
# driver the wgpu tests run on where there is no GPU; nothing Vulkan is needed to build), and
# libclang (bindgen in librocksdb-sys, the node's storage, needs it at build time). The Rust
# toolchain itself comes with the machine.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v c++ >/dev/null 2>&1 || need+=(g++)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 \
  || need+=(mesa-vulkan-drivers libvulkan1)
# libclang itself, not libclang-cpp (which LLVM packages install without it).
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/*/libclang-[0-9]*.so* >/dev/null 2>&1 \
  || need+=(libclang-dev)

if [ "${#need[@]}" -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install a Rust toolchain (rustup) first" >&2; exit 1; }
