#!/usr/bin/env bash
# Sets everything up, builds a fresh lab, and runs a real SYN scan of its 65536 addresses.
# Every packet stays inside the two namespaces the lab creates; they are removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."

bash scripts/setup.sh
cargo build --release
P="xdemo$$"
trap 'bash scripts/lab.sh down "$P"' EXIT
bash scripts/lab.sh up "$P"
echo "demo: scanning the lab (198.19.0.0/16, ports 22,80,443,8080) at 100 kpps"
ip netns exec "$P-scan" ./target/release/xdpscan 198.19.0.0/16 -p 22,80,443,8080 --rate 100k --wait 2 \
    -o /tmp/xdpscan-demo.ndjson
echo "demo: results in /tmp/xdpscan-demo.ndjson; by state:"
python3 - <<'PY'
import collections, json
c = collections.Counter()
for line in open("/tmp/xdpscan-demo.ndjson"):
    r = json.loads(line)
    c[(r["state"], r["reason"])] += 1
for (state, reason), n in sorted(c.items()):
    print(f"  {state:10} {reason:18} {n}")
PY
