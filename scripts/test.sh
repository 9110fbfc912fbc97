#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Works on a fresh machine of our kind (Debian, root, Rust toolchain present): it installs any
# system package the build needs before building.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh

# wgpu tests: run on Mesa lavapipe (software Vulkan, deterministic) unless a Vulkan driver or a
# wgpu backend was chosen already (set VK_ICD_FILENAMES to a GPU driver's manifest to run them
# on the GPU). A fresh private XDG_RUNTIME_DIR keeps the driver quiet on stderr.
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${WGPU_BACKEND:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/lvp_icd.x86_64.json /usr/share/vulkan/icd.d/lvp_icd.*.json; do
    if [ -e "$icd" ]; then
      export VK_ICD_FILENAMES="$icd" WGPU_BACKEND=vulkan
      break
    fi
  done
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ] || [ ! -w "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 0700 "$XDG_RUNTIME_DIR"
  export XDG_RUNTIME_DIR
fi

export CARGO_TERM_COLOR=never
# Keep the 2-core CI machine responsive: tests run two at a time.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (workspace)"
test_log="$(mktemp)"
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$test_log"

echo "== fuzz targets compile (running them: fuzz/README.md)"
# Not --locked: the fuzz crate has its own lock file, which follows the engine's dependencies.
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== bench smoke: bystack-bench suite --quick (every benchmark, report and plots in target/bench-report)"
cargo run --locked -q -p bystack-bench -- suite --quick --out target/bench-report

# One closing line for the whole suite (cargo prints one per test binary, the last of which is
# often an empty doc-test run).
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$test_log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$test_log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
