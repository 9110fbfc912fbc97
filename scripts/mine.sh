#!/usr/bin/env bash
# The main job: bystack-miner with no source starts an embedded devnet node (temporary data
# directory, a fresh mining key whose address it prints) and mines on the best backend,
# printing every block found and the hash rate, until Ctrl-C. Extra arguments go to the miner:
#   scripts/mine.sh --blocks 3            # stop after 3 blocks, with a summary
#   scripts/mine.sh --node http://127.0.0.1:9888
#   scripts/mine.sh --pool stratum+tcp://pool:3333 --user acct.rig1
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec cargo run --release --locked -q -p bystack-miner -- "$@"
