#!/usr/bin/env bash
# Publishing results to NATS JetStream against writing them as NDJSON to a file, in the lab:
#   1. `cargo bench --bench publish`: results per second through the worker's sink to a local
#      broker (acknowledged, file storage) and through the NDJSON sink to a file, same run.
#   2. The same /16 scan (4 ports, about 257,000 results) three ways, alternating, REPS times:
#      -oJ FILE, --publish (one message per result), and a one-shard job run by a worker
#      (batches), all to a broker local to the scanner (its namespace's loopback). Reported:
#      the scan's achieved probe rate and wall time, and their ratios to the file run.
# Writes BENCHMARKS-publish.md. Every packet stays in the lab's namespaces (198.18.0.0/15).
# Usage: sudo scripts/bench-publish.sh [REPS] [RATE]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
REPS=${1:-3}
RATE=${2:-150000}

bash scripts/setup.sh --test >/dev/null
cargo build --release -q --bin xdpscan
BIN=$PWD/target/release/xdpscan
P="xp$$"
STORE=$(mktemp -d)
OUT=$(mktemp -d)
trap 'bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true; rm -rf "$STORE" "$OUT"' EXIT
bash scripts/lab.sh up "$P" >/dev/null
SCAN="$P-scan"
ip netns exec "$SCAN" nats-server -js -a 127.0.0.1 -p 4222 -sd "$STORE" >/dev/null 2>&1 &
sleep 1
URL=nats://127.0.0.1:4222
SCANARGS=(198.19.0.0/16 -p 22,80,443,8080 --rate "$RATE" --wait 2 -q)

micro=$(cargo bench -q --bench publish 2>/dev/null | grep '^round' || true)

meta() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(int(m['rate']['achieved_pps']), m['counts']['results'], round(m['duration_secs'],2))" "$1"; }
ROWS=()
for rep in $(seq "$REPS"); do
    ip netns exec "$SCAN" "$BIN" "${SCANARGS[@]}" -oJ "$OUT/a.json" -m "$OUT/a.meta"
    read -r fpps fres fdur < <(meta "$OUT/a.meta")
    ip netns exec "$SCAN" "$BIN" "${SCANARGS[@]}" --publish "$URL/bench.pub$rep" -m "$OUT/b.meta" >/dev/null
    read -r ppps pres pdur < <(meta "$OUT/b.meta")
    ip netns exec "$SCAN" "$BIN" submit --nats "$URL" --job "bench$rep" --shards 1 "${SCANARGS[@]}" 2>/dev/null
    t0=$(date +%s.%N)
    ip netns exec "$SCAN" "$BIN" worker --nats "$URL" --job "bench$rep" --exit-when-idle -q
    wdur=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
    read -r wpps wres < <(ip netns exec "$SCAN" "$BIN" status --nats "$URL" --job "bench$rep" --json \
        | python3 -c "import json,sys; s=json.load(sys.stdin); print(int(s['per_shard'][0]['rate_pps']), s['results'])")
    ROWS+=("| $rep | $fpps, $fres results, ${fdur} s | $ppps, $pres results, ${pdur} s ($(python3 -c "print(f'{$ppps/$fpps:.3f}')")) | $wpps, $wres results, ${wdur} s ($(python3 -c "print(f'{$wpps/$fpps:.3f}')")) |")
done

{
    echo "# Publishing to NATS JetStream"
    echo
    echo "Measured by \`sudo scripts/bench-publish.sh $REPS $RATE\` on $(date -u +%Y-%m-%d), $(nproc) cores, nats-server $(nats-server --version | awk '{print $2}')."
    echo
    echo "## The sink alone (\`cargo bench --bench publish\`)"
    echo
    echo '```'
    echo "$micro"
    echo '```'
    echo
    echo "## A /16 scan of 4 ports at --rate $RATE (achieved probes/s, results, wall time; ratio of probes/s to the file run)"
    echo
    echo "| run | -oJ file | --publish | worker (1 shard) |"
    echo "| --- | --- | --- | --- |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Probes/s is the scan's achieved send rate (metadata; for the worker, its shard record)."
    echo "The worker's wall time also holds its connection, taking the shard and the last"
    echo "acknowledgements. The broker runs on the scanner's own two cores here: every message it"
    echo "stores is CPU the transmit thread does not get. One message per result (--publish) costs"
    echo "it most; a worker's batches of up to 1,024 results cost it little."
} | tee BENCHMARKS-publish.md
