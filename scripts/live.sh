#!/usr/bin/env bash
# Live scans at the scanner's own limit (issue 25): the lab's target side answers in XDP
# (bpf/responder.bpf.c, examples/xdp_responder: SYN-ACK, RST, ICMP unreachable or silence by a
# fixed rule of (address, port), UDP echo, ICMP echo), far faster than a kernel stack, so what is measured is
# the scanner. First the responder's own capacity (answers/s while examples/xsk_floor floods it
# with SYNs from the scanner's side), then xdpscan at --rate 0: probes/s at the scanner
# (probes / (wall time - cooldown)), what the responder answered, and the open (address, port)
# pairs found against the rule's truth.
#
# Shapes: a /16 x 100 ports; the whole of 198.18.0.0/15 x 8 ports (1,048,576 probes; the
# issue's /12 lies outside the benchmarking range); an IPv6 /108 x 2 ports. Prints a Markdown
# table for BENCHMARKS.md. ZMap and masscan against the responder are not here yet: at their
# unlimited rates on this veth they received next to nothing (BENCHMARKS.md, "Live at the
# scanner's limit").
# Every packet stays in the lab's namespaces (198.18.0.0/15, 2001:db8::/32).
# Usage: scripts/live.sh (as root)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
bash scripts/setup.sh --test >/dev/null
cargo build --release -q --bin xdpscan --example xdp_responder --example xsk_floor
BIN=$PWD/target/release/xdpscan
RESP=$PWD/target/release/examples/xdp_responder
FLOOR=$PWD/target/release/examples/xsk_floor
P="xv$$"
SCAN="$P-scan"; TGT="$P-tgt"; VS="${P}s"; VT="${P}t"
OUT=$(mktemp -d)
RPID=""
cleanup() {
    [ -n "$RPID" ] && { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; } || true
    bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT
bash scripts/lab.sh up "$P" >/dev/null
MAC=$(ip netns exec "$TGT" cat "/sys/class/net/$VT/address")
ip netns exec "$TGT" "$RESP" "$VT" >"$OUT/resp.log" &
RPID=$!
until grep -q attached "$OUT/resp.log" 2>/dev/null; do sleep 0.1; done
answered() { tail -1 "$OUT/resp.log" | awk '{print $1 + $2 + $3 + $4}'; }

# Open (address, port) pairs of the rule over a range, and those found (a file of "ip port"
# lines): "found truth missed extra".
check() {
    python3 - "$@" <<'PY'
import ipaddress, sys
net, ports, found = sys.argv[1], sys.argv[2], sys.argv[3]
lo, hi = (int(x) for x in ports.split('-')) if '-' in ports else (int(ports), int(ports))
M = 0xffffffff
def rule_open(addr, port):
    h = ((addr * 0x9e3779b1) & M) ^ ((port * 0x85ebca6b) & M)
    h ^= h >> 15; h = (h * 0x2c1b3c6d) & M; h ^= h >> 12
    return (h & 15) < 4
n = ipaddress.ip_network(net)
base = int(n.network_address)
truth = set()
for i in range(n.num_addresses):
    a = base + i
    for p in range(lo, hi + 1):
        if rule_open(a & M, p):
            truth.add((a, p))
got = set()
for line in open(found):
    ip, port = line.split()
    got.add((int(ipaddress.ip_address(ip)), int(port)))
print(len(got), len(truth), len(truth - got), len(got - truth))
PY
}

ROWS=()
# run TOOL SHAPE NET PORTS PROBES WAIT CMD...: times CMD, then checks the "ip port" list the
# caller's converter left in $OUT/found.
run() {
    local tool=$1 shape=$2 net=$3 ports=$4 probes=$5 wait=$6; shift 6
    local a0 t0 t1 a1
    a0=$(answered); t0=$(date +%s.%N)
    "$@" >"$OUT/stdout" 2>"$OUT/stderr" || { cat "$OUT/stderr" >&2; return 1; }
    t1=$(date +%s.%N); sleep 0.3; a1=$(answered)
    "found_$tool"
    read -r found truth missed extra < <(check "$net" "$ports" "$OUT/found")
    local pps
    pps=$(python3 -c "print(round($probes / max($t1 - $t0 - $wait, 1e-3)))")
    echo "$tool $shape: $pps probes/s, answered $((a1 - a0)), open found $found of $truth (missed $missed, extra $extra)" >&2
    ROWS+=("| $shape | $tool | $probes | $pps | $((a1 - a0)) | $found / $truth | $missed | $extra |")
}
found_xdpscan() { python3 -c '
import json, sys
for l in open(sys.argv[1]):
    v = json.loads(l)
    if v["state"] == "open": print(v["ip"], v["port"])' "$OUT/stdout" >"$OUT/found"; }
X=(ip netns exec "$SCAN" "$BIN" --rate 0 --wait 1 -q -o - --gateway-mac "$MAC")

# The responder's capacity: 4 M SYNs as fast as AF_XDP sends them, answers counted per second.
a0=$(answered); t0=$(date +%s.%N)
ip netns exec "$SCAN" "$FLOOR" "$VS" 198.18.0.1 198.19.0.5 "$MAC" 4000000 >/dev/null
t1=$(date +%s.%N); sleep 0.3; a1=$(answered)
CAP=$(python3 -c "print(round(($a1 - $a0) / ($t1 - $t0)))")
echo "responder: $((a1 - a0)) answers in $(python3 -c "print(round($t1 - $t0, 2))") s: $CAP answers/s" >&2

run xdpscan "/16 x 100" 198.19.0.0/16 1-100 6553600 1 "${X[@]}" 198.19.0.0/16 -p 1-100
run xdpscan "/15 x 8" 198.18.0.0/15 1-8 1048576 1 "${X[@]}" 198.18.0.0/15 -p 1-8

run xdpscan "IPv6 /108 x 2" 2001:db8:1::/108 1-2 2097152 1 "${X[@]}" 2001:db8:1::/108 -p 1-2

echo
echo "The responder: $CAP answers/s (one flow, xsk_floor's SYNs)."
echo
echo "| shape | tool | probes | probes/s | responder answers | open found / truth | missed | extra |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
