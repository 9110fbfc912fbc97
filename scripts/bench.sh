#!/usr/bin/env bash
# The Tensority benchmark on the best CPU backend, with 1
# thread and with every core (medians over repeats). Extra arguments go to the benchmark, e.g.
#   scripts/bench.sh --backend all --json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec cargo run --release --locked -q -p bystack-bench -- tensority "$@"
