#!/usr/bin/env bash
# --grab at scale (issue 23): one TLS server (nginx, an ECDSA P-256 chain, port 8443) and one
# HTTP server (nginx, port 80) answer for the whole 198.19.0.0/16 (the lab target's local route:
# AnyIP), less the /24s the lab shapes (198.19.1-10.0/24 and 198.19.20.0/24): 62,720 servers
# per port. xdpscan --grab and masscan --banners, one after the other at the same rate:
# complete grabs (a certificate for tls, an HTTP response for http) per second of the run, and
# the share of the lab's servers captured. Then xdpscan's peak RSS for 65,536 targets (the /16
# x 8443) and for 1,048,576 (the /16 x 16 ports, tls on 8443): grabs held at once are bounded
# by --max-inflight, not by the number of targets. Prints a Markdown table for BENCHMARKS.md.
# Every packet stays in the lab's namespaces (198.18.0.0/15).
# TLS runs at GRAB_TLS_RATE (5000 by default): the lab's nginx signs every handshake's key
# exchange on the same two cores, and a /16 of handshakes at 20 kpps outruns it (39 % captured
# within the 6 s wait); spread over the 1,048,576-target run, 20 kpps is 1,200 handshakes/s.
# --max-inflight 65536: a port waiting for a busy server is held, not reported without its grab.
# Usage: scripts/grab-scale.sh (as root); GRAB_RATE=20000 by default; GRAB_ROWS="tls http big"
# picks rows.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
bash scripts/setup.sh --test >/dev/null
cargo build --release -q --bin xdpscan
BIN=$PWD/target/release/xdpscan
RATE=${GRAB_RATE:-20000}
P="gs$$"
SCAN="$P-scan"; TGT="$P-tgt"; VS="${P}s"; VT="${P}t"
OUT=$(mktemp -d)
cleanup() {
    bash scripts/lab.sh down "$P" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT
LAB_GRAB=1 bash scripts/lab.sh up "$P" >/dev/null
# masscan's pcap sees replies on a veth only with GRO on (docs/design.md, "Lab facts").
ip netns exec "$SCAN" ethtool -K "$VS" gro on >/dev/null
MAC=$(ip netns exec "$TGT" cat "/sys/class/net/$VT/address")
EXCL=198.19.1.0/24,198.19.2.0/24,198.19.3.0/24,198.19.4.0/24,198.19.5.0/24,198.19.6.0/24
EXCL=$EXCL,198.19.7.0/24,198.19.8.0/24,198.19.9.0/24,198.19.10.0/24,198.19.20.0/24
TRUTH=62720

now() { date +%s.%N; }
printf '| module | tool | targets | rate | wall s | complete grabs | share of %s servers | grabs/s | peak RSS |\n' "$TRUTH"
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'

xdp() { # module port ports [rate]
    local module=$1 port=$2 ports=$3 RATE=${4:-$RATE} t0 t1 n rss targets
    t0=$(now)
    ip netns exec "$SCAN" /usr/bin/time -v -o "$OUT/time" "$BIN" 198.19.0.0/16 --exclude "$EXCL" \
        -p "$ports" --grab "$module:$port" --rate "$RATE" --max-inflight 65536 -q \
        -oZ "$OUT/z.json" -o /dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
    t1=$(now)
    n=$(python3 - "$OUT/z.json" "$module" <<'PY'
import json, sys
ok = 0
for l in open(sys.argv[1]):
    r = json.loads(l)["data"].get(sys.argv[2], {})
    if r.get("status") != "success":
        continue
    res = r["result"]
    if sys.argv[2] == "tls" and "certificate" not in res["handshake_log"].get("server_certificates", {}):
        continue
    ok += 1
print(ok)
PY
)
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MiB", $2/1024}' "$OUT/time")
    targets=$(( 65536 * $(echo "$ports" | tr ',' '\n' | awk -F- '{n += ($2 ? $2 - $1 + 1 : 1)} END {print n}') ))
    printf '| %s | xdpscan | %s | %s | %.1f | %s | %.2f %% | %.0f | %s |\n' "$module" "$targets" "$RATE" \
        "$(echo "$t1 - $t0" | bc)" "$n" "$(echo "100 * $n / $TRUTH" | bc -l)" \
        "$(echo "$n / ($t1 - $t0)" | bc -l)" "$rss"
}

mass() { # module port hello [rate]
    local module=$1 port=$2 hello=$3 RATE=${4:-$RATE} t0 t1 n
    t0=$(now)
    # masscan --banners can wait for its connections without end: stopped (and its list
    # flushed) 60 s after the last probe would have gone out.
    timeout -s INT $(( 65536 / RATE + 90 )) ip netns exec "$SCAN" masscan 198.19.0.0/16 \
        --exclude "$EXCL" -p "$port" --banners --hello "$hello" --source-ip 198.18.0.3 \
        --router-mac "$MAC" -e "$VS" --rate "$RATE" --wait 10 --connection-timeout 10 \
        -oL "$OUT/m.txt" >/dev/null 2>&1 || true
    cp "$OUT/m.txt" "${TMPDIR:-/tmp}/grab-scale-masscan-$module.txt"
    t1=$(now)
    case $module in
        tls) n=$(awk '$1 == "banner" && $6 == "X509" {print $4}' "$OUT/m.txt" | sort -u | wc -l) ;;
        http) n=$(awk '$1 == "banner" && $6 == "http" {print $4}' "$OUT/m.txt" | sort -u | wc -l) ;;
    esac
    printf '| %s | masscan | 65536 | %s | %.1f | %s | %.2f %% | %.0f | - |\n' "$module" "$RATE" \
        "$(echo "$t1 - $t0" | bc)" "$n" "$(echo "100 * $n / $TRUTH" | bc -l)" \
        "$(echo "$n / ($t1 - $t0)" | bc -l)"
}

TLS_RATE=${GRAB_TLS_RATE:-5000}
ROWS=" ${GRAB_ROWS:-tls http big} "
if [[ $ROWS == *" tls "* ]]; then
    xdp tls 8443 8443 "$TLS_RATE"
    mass tls 8443 ssl "$TLS_RATE"
fi
if [[ $ROWS == *" http "* ]]; then
    xdp http 80 80
    mass http 80 http
fi
[[ $ROWS != *" big "* ]] || xdp tls 8443 8443,1-15
