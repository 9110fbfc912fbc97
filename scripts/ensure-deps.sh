#!/usr/bin/env bash
# Installs what the build needs and a fresh machine may lack. Idempotent and quick when
# everything is present. Today: a C compiler (the linker rustc calls) and a C++ compiler (the
# fuzz crate builds libFuzzer). The Rust toolchain itself comes with the machine.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v c++ >/dev/null 2>&1 || need+=(g++)

if [ "${#need[@]}" -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install a Rust toolchain (rustup) first" >&2; exit 1; }
