#!/usr/bin/env bash
# Side-by-side speed of xdpscan, zmap and masscan on the lab, measured at the target.
#
#   sink: the target's veth drops every frame in XDP (XDP_DROP), its receive work on the other
#         core (RPS); probes per second are counted at the target. Only the sender is measured.
#   live: the target's kernel answers; found / truly open at each rate.
#
# Writes BENCHMARKS.md. Every packet stays in the lab's namespaces (198.18.0.0/15).
# Usage: sudo scripts/bench.sh [--quick]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
QUICK=${1:-}

bash scripts/setup.sh --test >/dev/null
cargo build --release -q --bin xdpscan --example xsk_floor
BIN=$PWD/target/release/xdpscan
FLOOR=$PWD/target/release/examples/xsk_floor
P="xb$$"
trap 'bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true' EXIT
SCAN="$P-scan"; TGT="$P-tgt"; VS="${P}s"; VT="${P}t"
PORTS=16                      # sink runs: 65536 addresses x 16 = 1,048,576 probes per tool
NET=198.19.0.0/16
NET6=2001:db8:1::/112
OPEN80=63232                  # lab ground truth: open port-80 targets in the /16
ROWS=()

# Runs a command while one sampler inside the target namespace reads the frame counter every
# 10 ms (veth counts XDP-dropped frames as rx_packets too); prints "probes pps". The rate is
# that of the middle 90 % of the frames, so start-up, stray frames and cooldown do not count.
# In live mode only SYNs are probes (an nftables counter): the peers' kernels answer each
# SYN-ACK with a RST, which arrives interleaved and is scaled out.
measure() {
    local mode=$1; shift
    local log; log=$(mktemp)
    ip netns exec "$TGT" python3 -c '
import sys, time
f = "/sys/class/net/" + sys.argv[1] + "/statistics/rx_packets"
while True:
    print(time.time(), open(f).read().strip(), flush=True)
    time.sleep(0.01)
' "$VT" >"$log" 2>/dev/null &
    local sampler=$!
    local syn0=0
    [ "$mode" = live ] && syn0=$(syns)
    sleep 0.2
    "$@" >/dev/null 2>&1 || true
    sleep 0.3
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    local probes=""
    [ "$mode" = live ] && probes=$(( $(syns) - syn0 ))
    python3 - "$log" "$probes" <<'PY'
import sys
pts = [(float(t), int(n)) for t, n in (l.split() for l in open(sys.argv[1]) if len(l.split()) == 2)]
n0 = pts[0][1]
frames = pts[-1][1] - n0
if frames < 100:
    print(0, 0)
    sys.exit()
# The middle 90 % of the frames: robust to start-up, stragglers and the sampling step.
def when(frac):
    return next(t for t, n in pts if n - n0 >= frac * frames)
rate = 0.9 * frames / max(when(0.95) - when(0.05), 1e-3)
probes = int(sys.argv[2]) if sys.argv[2] else frames
print(probes, int(rate * probes / frames))
PY
    rm -f "$log"
}

# SYNs the target received (live mode).
syns() {
    ip netns exec "$TGT" nft list counter inet bench syns | awk '/packets/ {print $2}'
}

lab() {
    bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true
    LAB_RPS=$([ "$1" = sink ] && echo 1 || echo 0) bash scripts/lab.sh up "$P" >/dev/null
    if [ "$1" = sink ]; then
        bash scripts/lab.sh sink "$P"
    else
        ip netns exec "$TGT" nft -f - <<'NFT'
table inet bench {
    counter syns {}
    chain pre {
        type filter hook prerouting priority -400; policy accept;
        tcp flags & (syn | ack) == syn counter name syns
    }
}
NFT
    fi
    MAC=$(ip netns exec "$SCAN" ip neigh show 198.18.0.2 | awk '{print $5}')
}

echo "== sink mode: 1,048,576 probes per tool, counted at the target"
lab sink
for t in 1 2; do
    read -r n pps < <(measure sink ip netns exec "$SCAN" "$BIN" "$NET" -p 1-$PORTS --rate 0 --wait 0 -q --tx-threads "$t" --gateway-mac "$MAC")
    echo "xdpscan T=$t: $n frames, $pps pps"; ROWS+=("sink|xdpscan|$t|$n|$pps|")
done
# The same walk over IPv6 (2001:db8:1::/112, 65,536 addresses): 78-byte frames against 58.
for t in 1 2; do
    read -r n pps < <(measure sink ip netns exec "$SCAN" "$BIN" "$NET6" -p 1-$PORTS --rate 0 --wait 0 -q --tx-threads "$t" --gateway-mac "$MAC")
    echo "xdpscan IPv6 T=$t: $n frames, $pps pps"; ROWS+=("sink|xdpscan-ipv6|$t|$n|$pps|")
done
# The kernel's floor: the smallest AF_XDP transmit loop (one frame, produce/kick/reclaim only).
read -r n pps < <(measure sink ip netns exec "$SCAN" "$FLOOR" "$VS" 198.18.0.1 198.19.0.5 "$MAC" 1048576)
echo "kernel floor T=1: $n frames, $pps pps"; ROWS+=("sink|kernel-floor|1|$n|$pps|")
for t in 1 2; do
    read -r n pps < <(measure sink ip netns exec "$SCAN" zmap -p 80 "$NET" -P $PORTS -i "$VS" -S 198.18.0.1 -G "$MAC" -b /dev/null -r 0 -T "$t" -c 0 -o /dev/null -q)
    echo "zmap T=$t: $n frames, $pps pps"; ROWS+=("sink|zmap|$t|$n|$pps|")
done
read -r n pps < <(measure sink ip netns exec "$SCAN" masscan "$NET" -p1-$PORTS --rate 100000000 --interface "$VS" --adapter-ip 198.18.0.1 --router-mac "$MAC" --wait 0 -oL /dev/null)
echo "masscan: $n frames, $pps pps"; ROWS+=("sink|masscan|1|$n|$pps|")

echo "== live mode: 198.19.0.0/16 port 80 ($OPEN80 truly open), found at each rate"
RATES="50000 100000 200000 0"
[ "$QUICK" = --quick ] && RATES="100000 0"
lab live
for r in $RATES; do
    read -r n pps < <(measure live ip netns exec "$SCAN" "$BIN" "$NET" -p 80 --rate "$r" --wait 2 -q -oL /tmp/xb-x.list --gateway-mac "$MAC")
    f=$(grep -c '^open' /tmp/xb-x.list || true); echo "xdpscan rate=$r: $pps pps, found $f/$OPEN80"; ROWS+=("live|xdpscan|$r|$n|$pps|$f")
    zr=$([ "$r" = 0 ] && echo 0 || echo "$r")
    read -r n pps < <(measure live ip netns exec "$SCAN" zmap -p 80 "$NET" -i "$VS" -S 198.18.0.1 -G "$MAC" -b /dev/null -r "$zr" -T 2 -c 2 -o /tmp/xb-z.csv -q)
    f=$(grep -c . /tmp/xb-z.csv || true); echo "zmap rate=$r: $pps pps, found $f/$OPEN80"; ROWS+=("live|zmap|$r|$n|$pps|$f")
    mr=$([ "$r" = 0 ] && echo 100000000 || echo "$r")
    read -r n pps < <(measure live ip netns exec "$SCAN" masscan "$NET" -p80 --rate "$mr" --interface "$VS" --adapter-ip 198.18.0.1 --adapter-port 61000 --router-mac "$MAC" --wait 2 -oL /tmp/xb-m.list)
    f=$(grep -c '^open' /tmp/xb-m.list || true); echo "masscan rate=$r: $pps pps, found $f/$OPEN80"; ROWS+=("live|masscan|$r|$n|$pps|$f")
done

# Issue 11's sweep: 198.19.0.0/18 x 500 ports (8.2 M probes, all but the silent zone answer) at
# --rate 0 with the default single transmit thread; peak RSS of the scanner, per-second rates.
echo "== scale: 198.19.0.0/18 x 1-500 at --rate 0"
ip netns exec "$SCAN" "$BIN" 198.19.0.0/18 -p 1-500 --rate 0 --wait 3 -q --gateway-mac "$MAC" \
    -o /tmp/xb-s.ndjson -m /tmp/xb-s.json --status-file /tmp/xb-s.csv
SCALE_RSS=$(python3 -c "import json; print(json.load(open('/tmp/xb-s.json'))['peak_rss_mib'])")
SCALE_LINES=$(wc -l < /tmp/xb-s.ndjson)
echo "scale: $SCALE_LINES results, peak RSS $SCALE_RSS MiB"
# The /0 dry run: probes built per second on one thread, no I/O.
rm -f /tmp/xb-d.json
(cd /tmp && "$BIN" 0.0.0.0/0 -p 80 --dry-run --rate 0 --max-runtime 10 -q -S 198.18.0.1 \
    --gateway-mac 02:00:00:00:00:01 -o /dev/null -m /tmp/xb-d.json --resume-file /tmp/xb-d.resume) || true
DRY_PPS=$(python3 -c "import json; print(int(json.load(open('/tmp/xb-d.json'))['rate']['achieved_pps']))")
echo "dry run /0: $DRY_PPS probes/s"

{
    echo "# Benchmarks"
    echo
    echo "Measured by \`sudo scripts/bench.sh\` on $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
    echo "Probes per second are counted at the target over the middle 90 % of each run's frames (live mode: SYNs only);"
    echo "absolute numbers drift on shared machines, so compare tools within one run."
    echo
    echo "## Sink mode (target drops in XDP; 1,048,576 probes per tool)"
    echo
    echo "| tool | threads | frames at target | probes/s | ratio to best zmap |"
    echo "| --- | --- | --- | --- | --- |"
    best=0
    for row in "${ROWS[@]}"; do IFS='|' read -r m tool t n pps f <<<"$row"; [ "$m" = sink ] && [ "$tool" = zmap ] && [ "$pps" -gt "$best" ] && best=$pps; done
    for row in "${ROWS[@]}"; do
        IFS='|' read -r m tool t n pps f <<<"$row"
        [ "$m" = sink ] || continue
        echo "| $tool | $t | $n | $pps | $(python3 -c "print(f'{$pps/max($best,1):.2f}x')") |"
    done
    echo
    echo "## IPv6 against IPv4 (sink mode, same run)"
    echo
    echo "| threads | IPv4 probes/s | IPv6 probes/s | IPv6 / IPv4 |"
    echo "| --- | --- | --- | --- |"
    for t in 1 2; do
        v4=0; v6=0
        for row in "${ROWS[@]}"; do
            IFS='|' read -r m tool tt n pps f <<<"$row"
            [ "$m" = sink ] && [ "$tt" = "$t" ] && [ "$tool" = xdpscan ] && v4=$pps
            [ "$m" = sink ] && [ "$tt" = "$t" ] && [ "$tool" = xdpscan-ipv6 ] && v6=$pps
        done
        echo "| $t | $v4 | $v6 | $(python3 -c "print(f'{$v6/max($v4,1):.2f}')") |"
    done
    echo
    echo "## Transmit against the kernel's floor (sink mode, same run)"
    echo
    echo "The floor is \`examples/xsk_floor.rs\`: the scanner's AF_XDP socket set-up and the smallest loop"
    echo "that keeps its transmit ring full (one frame written once; produce, kick, reclaim)."
    echo
    fl=0; x1=0
    for row in "${ROWS[@]}"; do
        IFS='|' read -r m tool t n pps f <<<"$row"
        [ "$m" = sink ] && [ "$tool" = kernel-floor ] && fl=$pps
        [ "$m" = sink ] && [ "$tool" = xdpscan ] && [ "$t" = 1 ] && x1=$pps
    done
    echo "| kernel floor, 1 thread | xdpscan, 1 thread | xdpscan / floor |"
    echo "| --- | --- | --- |"
    echo "| $fl | $x1 | $(python3 -c "print(f'{$x1/max($fl,1):.2f}')") |"
    echo
    echo "## Scale (198.19.0.0/18 x ports 1-500 at --rate 0, one transmit thread)"
    echo
    python3 - /tmp/xb-s.json /tmp/xb-s.csv "$SCALE_RSS" "$SCALE_LINES" <<'PY'
import csv, json, sys
m = json.load(open(sys.argv[1]))
c = m["counts"]
print(f"8,192,000 probes; the lab's truth is 8,063,744 replies (the silent zone and zone 9's port 80 never answer).")
print()
print("| results written | duplicates | dropped | peak RSS | probes/s | governor |")
print("| --- | --- | --- | --- | --- | --- |")
g = m["rate"].get("governor", {})
print(f"| {sys.argv[4]} | {c['duplicates']} | {c['dropped']} | {sys.argv[3]} MiB | {m['rate']['achieved_pps']:.0f} | "
      f"final limit {g.get('final_limit_pps')}, lowest {g.get('lowest_limit_pps')}, cuts {g.get('cuts')} |")
print()
print("Sent rate and drops over time (from `--status-file`):")
print()
print("| second | sent in that second | replies in that second | drops in that second |")
print("| --- | --- | --- | --- |")
rows = list(csv.DictReader(open(sys.argv[2])))
step = max(1, len(rows) // 12)
for r in rows[::step]:
    print(f"| {r['time-elapsed']} | {r['sent-last-one-sec']} | {r['recv-success-last-one-sec']} | {r['drop-last-one-sec']} |")
PY
    echo
    echo "## Generation (no I/O)"
    echo
    echo "\`xdpscan 0.0.0.0/0 -p 80 --dry-run --rate 0\` (default blocklist) for 10 s on one thread: $DRY_PPS probes/s."
    echo
    echo "## Live mode (198.19.0.0/16 port 80, $OPEN80 truly open)"
    echo
    echo "| rate asked | tool | probes/s at target | found / truly open |"
    echo "| --- | --- | --- | --- |"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r m tool r n pps f <<<"$row"
        [ "$m" = live ] || continue
        echo "| $([ "$r" = 0 ] && echo max || echo "$r") | $tool | $pps | $f / $OPEN80 ($(python3 -c "print(f'{100*$f/$OPEN80:.2f}%')")) |"
    done
} > BENCHMARKS.md
echo "== written BENCHMARKS.md"
