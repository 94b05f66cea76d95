#!/usr/bin/env bash
# Banner grabbing and traceroute, side by side with a peer in the same run:
#   banners:    services lab, 198.19.16.0/24 x 22,80,443 (768 open ports, each with a banner);
#               xdpscan --banners against masscan --banners: wall time, open ports found,
#               ports that gave a banner; and xdpscan -sV: ports named as the lab defines.
#   traceroute: path lab (three routers); xdpscan against nmap --traceroute on the same 48
#               targets (16 from each kind of path), then xdpscan alone on a /20 (4096 x 30 TTLs).
# Writes BENCHMARKS-detection.md. Every packet stays in the labs' namespaces (198.18.0.0/15).
# Usage: sudo scripts/bench-detect.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
bash scripts/setup.sh --test >/dev/null
cargo build --release -q
BIN=$PWD/target/release/xdpscan
P="xd$$"
trap 'bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true' EXIT
SCAN="$P-scan"; T=$(mktemp -d)
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }

LAB_SERVICES=1 bash scripts/lab.sh up "$P" >/dev/null
MAC=$(ip netns exec "$SCAN" ip neigh show 198.18.0.2 | awk '{print $5}')
NET=198.19.16.0/24; PORTS=22,80,443
t0=$(now); ip netns exec "$SCAN" masscan "$NET" -p "$PORTS" --banners --interface "${P}s" \
    --adapter-ip 198.18.0.99 --router-mac "$MAC" --rate 20000 --wait 5 -oL "$T/m.txt" >/dev/null 2>&1
t1=$(now); m_time=$(secs "$t0" "$t1")
m_open=$(grep -c '^open' "$T/m.txt" || true)
m_ban=$(grep '^banner' "$T/m.txt" | awk '{print $3, $4}' | sort -u | wc -l)
t0=$(now); ip netns exec "$SCAN" "$BIN" "$NET" -p "$PORTS" --banners --rate 20000 --wait 1 -q -oL "$T/x.txt"
t1=$(now); x_time=$(secs "$t0" "$t1")
x_open=$(grep -c '^open' "$T/x.txt" || true)
x_ban=$(grep '^banner' "$T/x.txt" | awk '{print $3, $4}' | sort -u | wc -l)
t0=$(now); ip netns exec "$SCAN" "$BIN" "$NET" -p "$PORTS" -sV --rate 20000 --wait 1 -q -oJ "$T/v.json"
t1=$(now); v_time=$(secs "$t0" "$t1")
v_ok=$(python3 - "$T/v.json" <<'PY'
import json, sys
want = {22: ("ssh", "OpenSSH"), 80: ("http", "SimpleHTTPServer"), 443: ("ssl", None)}
ok = 0
for l in open(sys.argv[1]):
    r = json.loads(l); s = r.get("service", {})
    ok += (s.get("name"), s.get("product")) == want[r["port"]]
print(ok)
PY
)
bash scripts/lab.sh down "$P" >/dev/null

bash scripts/lab.sh path "$P" >/dev/null
SAMPLE=(198.19.0.0/28 198.19.1.0/28 198.19.2.0/28)
t0=$(now); ip netns exec "$SCAN" nmap -n -Pn -sS -p 80 --traceroute "${SAMPLE[@]}" -oX "$T/n.xml" >/dev/null
t1=$(now); n_time=$(secs "$t0" "$t1")
n_ok=$(python3 - "$T/n.xml" <<'PY'
import re, sys
x = open(sys.argv[1]).read()
ok = 0
R = ["198.18.0.2", "198.18.1.2", "198.18.2.2"]
for h in x.split("<host ")[1:]:
    ip = re.search(r'addr="([\d.]+)"', h).group(1)
    hops = re.findall(r'<hop ttl="\d+" ipaddr="([\d.]+)"', h)
    want = {"1": R, "2": R[:2] + [R[1]]}.get(ip.split(".")[2], R + [ip])
    # nmap keeps listing a router's unreachable at every TTL above it: compare up to the end.
    ok += hops[:len(want)] == want
print(ok)
PY
)
check() {
python3 - "$1" <<'PY'
import json, sys
ok = 0
for l in open(sys.argv[1]):
    r = json.loads(l); o = [int(x) for x in r["ip"].split(".")]
    hops = [h["ip"] for h in r["trace"]["hops"]]
    want = {1: ["198.18.0.2", "198.18.1.2", "198.18.2.2"], 2: ["198.18.0.2", "198.18.1.2", "198.18.1.2"]}
    ok += hops == want.get(o[2], ["198.18.0.2", "198.18.1.2", "198.18.2.2", r["ip"]])
print(ok)
PY
}
t0=$(now); ip netns exec "$SCAN" "$BIN" "$(IFS=,; echo "${SAMPLE[*]}")" --traceroute --wait 1 -q > "$T/s.json"
t1=$(now); s_time=$(secs "$t0" "$t1"); s_ok=$(check "$T/s.json")
t0=$(now); ip netns exec "$SCAN" "$BIN" 198.19.0.0/20 --traceroute --rate 50k --wait 1 -q > "$T/t.json"
t1=$(now); t_time=$(secs "$t0" "$t1"); t_ok=$(check "$T/t.json")
ratio() { python3 -c "print(f'{$1/max($2,1e-9):.1f}x')"; }

{
    echo "# Detection benchmarks"
    echo
    echo "Measured by \`sudo scripts/bench-detect.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($(uname -r)); wall-clock"
    echo "times include each tool's own wait for late answers, as a user sees them."
    echo
    echo "## Banners: $NET x $PORTS (768 open ports; SSH-like greeting, HTTP, TLS)"
    echo
    echo "| tool | wall time (s) | open found | ports with a banner | named right (-sV) |"
    echo "| --- | --- | --- | --- | --- |"
    echo "| xdpscan --banners | $x_time | $x_open / 768 | $x_ban / 768 | |"
    echo "| xdpscan -sV | $v_time | | | $v_ok / 768 |"
    echo "| masscan --banners | $m_time | $m_open / 768 | $m_ban / 768 | |"
    echo
    echo "Time masscan / xdpscan: $(ratio "$m_time" "$x_time"); open ports found: $x_open against $m_open."
    echo
    echo "## Traceroute: path lab, TCP SYN to port 80, TTL 1-30"
    echo
    echo "| tool | targets | wall time (s) | paths exactly right |"
    echo "| --- | --- | --- | --- |"
    echo "| xdpscan --traceroute | 48 | $s_time | $s_ok / 48 |"
    echo "| nmap -sS --traceroute | 48 | $n_time | $n_ok / 48 |"
    echo "| xdpscan --traceroute (50 kpps) | 4096 | $t_time | $t_ok / 4096 |"
    echo
    echo "Time nmap / xdpscan on the same 48 targets: $(ratio "$n_time" "$s_time"). The 48 are 16 reachable targets,"
    echo "16 dropped behind the third router and 16 the second router answers with host-unreachable; nmap"
    echo "spends its time on the last two kinds (on reachable targets alone it is about as quick). nmap's"
    echo "lists are compared up to where the path ends: it repeats the unreachable router for every TTL above."
} > BENCHMARKS-detection.md
cat BENCHMARKS-detection.md
