#!/usr/bin/env sh
# Writes a seed corpus for the three targets from the hex vectors in chain.json:
#   corpus/decode_block   every block (genesis, Bytom test blocks) and the negative cases
#   corpus/decode_header  every header and every block (a full block's header decodes too)
#   corpus/decode_tx      every transaction and the negative cases
# The corpus is generated, never committed. Run from anywhere; needs python3.
# Vectors: $BYSTACK_VECTORS, else ../shared/vectors beside the repository.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vectors=${BYSTACK_VECTORS:-$here/../../shared/vectors}
python3 - "$vectors/chain.json" "$here/corpus" <<'PY'
import hashlib, json, os, sys

chain = json.load(open(sys.argv[1]))
corpus = sys.argv[2]
seeds = {"decode_block": set(), "decode_header": set(), "decode_tx": set()}

def add(targets, text):
    if isinstance(text, str) and text:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return
        for t in targets:
            seeds[t].add(raw)

for net in chain["genesis"].values():
    if not isinstance(net, dict):
        continue
    add(["decode_block", "decode_header"], net.get("block_hex"))
    add(["decode_header"], net.get("header_hex"))
    for tx in net.get("txs") or []:
        add(["decode_tx"], tx.get("hex"))
files = chain["bytom_test_file_vectors"]
for v in files["vectors"]:
    kind = v.get("kind", "")
    if kind == "tx":
        add(["decode_tx"], v["hex"])
    elif kind == "block":
        add(["decode_block", "decode_header"], v["hex"])
        for tx in (v.get("decoded") or {}).get("txs") or []:
            add(["decode_tx"], tx.get("hex"))
    elif kind.startswith("block_header"):
        add(["decode_header"], v["hex"])
for v in files["negative_cases"]:
    add(list(seeds), v["hex"])
for v in chain["independent_impl_tx_vectors"]["vectors"]:
    add(["decode_tx"], v["hex"])

for target, items in seeds.items():
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    for raw in items:
        with open(os.path.join(d, hashlib.sha1(raw).hexdigest()), "wb") as f:
            f.write(raw)
    print(f"{d}: {len(items)} seeds")
PY
