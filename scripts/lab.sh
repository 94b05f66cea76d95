#!/usr/bin/env bash
# The test lab: two network namespaces joined by a veth pair, nothing else.
#
#   netns <P>-scan                          netns <P>-tgt
#     <P>s 198.18.0.1/24  <──── veth ────>    <P>t 198.18.0.2/24
#     route 198.19.0.0/16 via 198.18.0.2      local route 198.19.0.0/16 (answers for all of it)
#     xdpscan runs here                        TCP listeners on 22, 80, 443 (LAB_TCP_PORTS);
#                                              UDP responders on 53, 161 (LAB_UDP_PORTS);
#                                              nftables shapes sub-ranges (table below)
#
# Ground truth for a TCP SYN scan (tests/common/lab.rs mirrors it; keep the two in step):
#   198.19.1.0/24     dropped silently                      -> no reply
#   198.19.2.0/24     reject icmp host-unreachable (3/1)    -> filtered host-unreach
#   198.19.3.0/24     reject icmp admin-prohibited (3/13)   -> filtered admin-prohibited
#   198.19.4.0/25     reject icmp host-prohibited (3/10)    -> filtered host-prohibited
#   198.19.4.128/25   reject icmp net-unreachable (3/0)     -> filtered net-unreach
#   198.19.5.0/24     reject icmp prot-unreachable (3/2)    -> filtered proto-unreach
#   198.19.6.0/24     reject icmp port-unreachable (3/3)    -> filtered port-unreach
#   198.19.7.0/24     reject icmp net-prohibited (3/9)      -> filtered net-prohibited
#   198.19.8.0/24     reject with tcp reset                 -> closed reset (listening or not)
#   198.19.9.0/24     tcp port 80 dropped                   -> 80 silent, others as below
#   198.19.10.0/24    a BSD-like TCP stack (lab-responder.py): like the rest for SYN scans, but
#                     its RSTs carry window 4096 on listening ports (-sW: open) and it ignores
#                     FIN+ACK there (-sM: open|filtered)
#   everything else   listeners open (syn-ack), other ports closed (reset)
# SCTP (lab-sctp.py, a user-space endpoint: the kernel has no SCTP) listens on the TCP ports of
# every address; the rules above shape it as they shape TCP where they name no protocol (1-7),
# and 8-10 leave it alone. -sY: INIT ACK open, ABORT closed; -sZ: silence open|filtered, ABORT
# closed.
#
# LAB_WORKERS=N: the target's side becomes a bridge (<P>br, 198.18.0.2) and N more scanner
# namespaces join it, <P>-w1 ... <P>-wN at 198.18.0.11 ..., each on a veth of its own and routed
# to 198.19.0.0/16 like the scanner: the workers of a distributed scan (tests/distributed.rs).
#
# IPv6 (2001:db8::/32 only): scanner 2001:db8::1/64, target 2001:db8::2/64 with no static
# neighbour (the scanner resolves it by neighbour discovery), and the target answers all of
# 2001:db8:1::/48 (a local route). Ground truth for a TCP SYN scan (tests/common mirrors it):
#   2001:db8:1:1::/64  dropped silently                       -> no reply
#   2001:db8:1:2::/64  reject icmpv6 addr-unreachable (1/3)   -> filtered host-unreach
#   2001:db8:1:3::/64  reject icmpv6 admin-prohibited (1/1)   -> filtered admin-prohibited
#   2001:db8:1:6::/64  reject icmpv6 no-route (1/0)           -> filtered no-route
#   2001:db8:1:8::/64  reject with tcp reset                  -> closed reset
#   2001:db8:1:9::/64  tcp port 80 dropped                    -> 80 silent, others as below
#   everything else    listeners open (syn-ack), other ports closed (reset)
# nftables' ICMPv6 rejects leave from the target's link address 2001:db8::2 (the kernel picks
# the source by route: the /48 is not an interface address), so they name a responder.
#   2001:db8:1:ff::1-4 are real addresses of the target (on lo): errors about them come from
#   them (UDP port unreachable: closed, as nmap -6 reads it).
#
# LAB_DAEMONS=1 runs Debian's real daemons instead (scripts/lab-daemons.sh: vsftpd, OpenSSH,
# dnsmasq, nginx, openssl s_server, mosquitto, redis, memcached, a socat that hangs up; UDP:
# dnsmasq, chrony, snmpd).
# LAB_GRAB=1 runs real TLS, HTTP and SSH servers for --grab (scripts/lab-grab.sh: nginx with an
# RSA and an ECDSA chain and a TLS 1.3-only server, openssl s_server -tls1, three sshd with one
# host key type each, protocols on unexpected ports, ports with no service).
# LAB_SERVICES=1 replaces the bare TCP listeners with real services on every address
# (scripts/lab-services.py): 22 an SSH-like greeting, 80 Python's HTTP server, 443 the same in
# TLS, 9999 silent.
# Other scan types read the same table: tests/common/lab.rs spells out each one's expectation.
#
# Usage: scripts/lab.sh up|path|down|sink [PREFIX] | exec [PREFIX] CMD...
# Every packet stays inside these namespaces: the scanner side has no route anywhere else.
set -euo pipefail

cmd=${1:-}
P=${2:-xlab}
SCAN="$P-scan"
TGT="$P-tgt"
VS="${P}s"
VT="${P}t"
TCP_PORTS=${LAB_TCP_PORTS:-22,80,443}
UDP_PORTS=${LAB_UDP_PORTS:-53,161}
QUEUES=${LAB_QUEUES:-2}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "lab.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ ${#VS} -le 15 ] || die "prefix '$P' too long for interface names (max 14 characters)"

down() {
    for ns in "$TGT" "$SCAN" "$P-r1" "$P-r2" "$P-r3" $(ip netns list | awk '{print $1}' | grep "^$P-w[0-9]*$"); do
        if ip netns list | grep -qw "^$ns"; then
            # Processes outlive their namespace's name; end them first.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    ip link del "$VS" 2>/dev/null || true
    rm -rf "${TMPDIR:-/tmp}/xdpscan-$P-services"
}

# Pings ADDR from NS over IPv6 until it answers (neighbour discovery on the way), or dies.
v6_warm() {
    for _ in $(seq 10); do
        ip netns exec "$1" ping -6 -c1 -W1 "$2" >/dev/null 2>&1 && return 0
    done
    die "no IPv6 answer from $2"
}

up() {
    down
    ip netns add "$SCAN"
    ip netns add "$TGT"
    ip link add "$VS" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
        peer name "$VT" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
    ip link set "$VS" netns "$SCAN"
    ip link set "$VT" netns "$TGT"

    ip -n "$SCAN" link set lo up
    ip -n "$SCAN" addr add 198.18.0.1/24 dev "$VS"
    ip -n "$SCAN" link set "$VS" up
    ip -n "$SCAN" route add 198.19.0.0/16 via 198.18.0.2
    ip -n "$SCAN" -6 addr add 2001:db8::1/64 dev "$VS" nodad
    ip -n "$SCAN" -6 route add 2001:db8:1::/48 via 2001:db8::2

    ip -n "$TGT" link set lo up
    # LAB_WORKERS=N: the target's side is a bridge, and N more scanner namespaces (<P>-w1...,
    # 198.18.0.11...) join it, for distributed scans (see workers_up).
    TGT_IF="$VT"
    if [ "${LAB_WORKERS:-0}" -gt 0 ]; then
        TGT_IF="${P}br"
        ip -n "$TGT" link add "$TGT_IF" type bridge
        ip -n "$TGT" link set "$VT" master "$TGT_IF"
        ip -n "$TGT" link set "$TGT_IF" up
        ip netns exec "$TGT" ethtool -K "$TGT_IF" tx off >/dev/null
    fi
    ip -n "$TGT" addr add 198.18.0.2/24 dev "$TGT_IF"
    ip -n "$TGT" link set "$VT" up
    ip -n "$TGT" route add local 198.19.0.0/16 dev lo
    ip -n "$TGT" -6 addr add 2001:db8::2/64 dev "$TGT_IF" nodad
    ip -n "$TGT" -6 route add local 2001:db8:1::/48 dev lo
    # Real addresses: the kernel's own ICMPv6 errors about them leave from them.
    for h in 1 2 3 4; do ip -n "$TGT" -6 addr add "2001:db8:1:ff::$h/128" dev lo nodad; done
    # Unfinished checksums otherwise (veth offload); replies must be valid on the wire.
    ip netns exec "$TGT" ethtool -K "$VT" tx off >/dev/null
    ip netns exec "$SCAN" ethtool -K "$VS" tx off >/dev/null
    # The target answers every probe: no ICMP rate limit, deep SYN queues (syncookies beyond).
    ip netns exec "$TGT" sysctl -qw net.ipv4.icmp_ratelimit=0 \
        net.ipv4.icmp_msgs_per_sec=100000000 net.ipv4.icmp_msgs_burst=100000000 \
        net.ipv4.tcp_max_syn_backlog=1048576 net.core.somaxconn=1048576 net.ipv4.tcp_syncookies=1 \
        net.ipv4.tcp_synack_retries=${LAB_SYNACK_RETRIES:-0} net.ipv6.icmp.ratelimit=0
    # LAB_RPS=1 moves the target's receive work to the last core (sink-mode rate runs). Off by
    # default: the target then answers in the sender's softirq, in bursts no larger than one
    # transmit kick, which veth's 256-frame XDP ring on the scanner side always absorbs.
    if [ "${LAB_RPS:-0}" = 1 ]; then
        mask=$(printf '%x' $((1 << ($(nproc) - 1))))
        ip netns exec "$TGT" sh -c "for f in /sys/class/net/$VT/queues/rx-*/rps_cpus; do echo $mask > \$f; done"
    fi

    ip netns exec "$TGT" nft -f - <<NFT
table inet lab {
    chain input {
        type filter hook input priority 0; policy accept;
        ip daddr 198.19.1.0/24 drop
        ip daddr 198.19.2.0/24 reject with icmp type host-unreachable
        ip daddr 198.19.3.0/24 reject with icmp type admin-prohibited
        ip daddr 198.19.4.0/25 reject with icmp type host-prohibited
        ip daddr 198.19.4.128/25 reject with icmp type net-unreachable
        ip daddr 198.19.5.0/24 reject with icmp type prot-unreachable
        ip daddr 198.19.6.0/24 reject with icmp type port-unreachable
        ip daddr 198.19.7.0/24 reject with icmp type net-prohibited
        ip daddr 198.19.8.0/24 meta l4proto tcp reject with tcp reset
        ip daddr 198.19.9.0/24 tcp dport 80 drop
        ip daddr 198.19.10.0/24 meta l4proto tcp drop
        ip6 daddr 2001:db8:1:1::/64 drop
        ip6 daddr 2001:db8:1:2::/64 reject with icmpv6 type addr-unreachable
        ip6 daddr 2001:db8:1:3::/64 reject with icmpv6 type admin-prohibited
        ip6 daddr 2001:db8:1:6::/64 reject with icmpv6 type no-route
        ip6 daddr 2001:db8:1:8::/64 meta l4proto tcp reject with tcp reset
        ip6 daddr 2001:db8:1:9::/64 tcp dport 80 drop
    }
}
NFT
    if [ "${LAB_GRAB:-0}" = 1 ]; then
        # Real TLS, HTTP and SSH servers for --grab: see lab-grab.sh.
        TCP_PORTS=22,80,443,2022,2122,2222,2323,2324,4433,4434,8081,8082,8083,8443,8444,9999
        LISTENERS=16 # lab-grab.sh waited for them; not every one listens on IPv6
        ip netns exec "$TGT" bash "$HERE/lab-grab.sh" "${TMPDIR:-/tmp}/xdpscan-$P-services" \
            || die "lab grab servers did not start"
    elif [ "${LAB_DAEMONS:-0}" = 1 ]; then
        # Debian's real daemons (openssh, nginx, vsftpd, redis...): see lab-daemons.sh.
        TCP_PORTS=21,22,53,80,443,1883,2323,6379,11211
        ip netns exec "$TGT" bash "$HERE/lab-daemons.sh" "${TMPDIR:-/tmp}/xdpscan-$P-services" \
            || die "lab daemons did not start"
    elif [ "${LAB_SERVICES:-0}" = 1 ]; then
        # Real services instead of the bare listeners (banners, -sV): see lab-services.py.
        TCP_PORTS=22,80,443,9999
        ip netns exec "$TGT" python3 "$HERE/lab-services.py" "${TMPDIR:-/tmp}/xdpscan-$P-services" \
            >/dev/null 2>&1 &
        ip netns exec "$TGT" python3 "$HERE/lab-listener.py" --udp "$UDP_PORTS" >/dev/null 2>&1 &
    else
        ip netns exec "$TGT" python3 "$HERE/lab-listener.py" --tcp "$TCP_PORTS" --udp "$UDP_PORTS" \
            >/dev/null 2>&1 &
    fi
    ip netns exec "$TGT" python3 "$HERE/lab-responder.py" "$TGT_IF" "$TCP_PORTS" >/dev/null 2>&1 &
    # SCTP (-sY, -sZ): the kernel has none; a user-space endpoint listens on the TCP ports.
    ip netns exec "$TGT" python3 "$HERE/lab-sctp.py" "$TCP_PORTS" >/dev/null 2>&1 &
    # Ready when every listener is bound, one per family and port.
    for _ in $(seq 200); do
        n=$(ip netns exec "$TGT" ss -Hltn | wc -l)
        [ "$n" -ge "${LISTENERS:-$((2 * $(echo "$TCP_PORTS" | tr ',' '\n' | grep -c .)))}" ] && break
        sleep 0.05
    done
    # Resolve the gateway once so the first scan need not ARP.
    ip netns exec "$SCAN" ping -c1 -W1 198.18.0.2 >/dev/null || die "lab link does not answer"
    # The target must know the scanner's MAC before a scan: while a neighbour is unresolved the
    # kernel queues only a few packets for it and drops the rest of a reply burst. Resolve both
    # ways, then make the scanner forget the target so every scan does its own discovery.
    v6_warm "$SCAN" 2001:db8::2
    ip -n "$SCAN" -6 neigh flush all
    [ "${LAB_WORKERS:-0}" -gt 0 ] && workers_up
    return 0
}

# The worker namespaces of LAB_WORKERS=N: <P>-wK at 198.18.0.(10+K) on the target's bridge,
# each with its own veth (a NIC of its own), routed to 198.19.0.0/16 like the scanner.
workers_up() {
    local k ns w b
    for k in $(seq "$LAB_WORKERS"); do
        ns="$P-w$k" w="${P}w$k" b="${P}p$k"
        ip netns add "$ns"
        ip link add "$w" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
            peer name "$b" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
        ip link set "$w" netns "$ns"
        ip link set "$b" netns "$TGT"
        ip -n "$TGT" link set "$b" master "$TGT_IF"
        ip -n "$TGT" link set "$b" up
        ip netns exec "$TGT" ethtool -K "$b" tx off >/dev/null
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "198.18.0.$((10 + k))/24" dev "$w"
        ip -n "$ns" link set "$w" up
        ip -n "$ns" route add 198.19.0.0/16 via 198.18.0.2
        ip netns exec "$ns" ethtool -K "$w" tx off >/dev/null
        ip netns exec "$ns" ping -c1 -W2 198.18.0.2 >/dev/null || die "worker $k does not reach the target"
    done
}

# The path lab (traceroute): three routers between scanner and target, each hop its own address.
#
#   <P>-scan 198.18.0.1 ── 198.18.0.2 <P>-r1 198.18.1.1 ── 198.18.1.2 <P>-r2 198.18.2.1 ──
#     198.18.2.2 <P>-r3 198.18.3.1 ── 198.18.3.2 <P>-tgt (local 198.19.0.0/16)
#
# ICMP time-exceeded leaves each router from its interface toward the scanner, so the hops
# are 198.18.0.2, 198.18.1.2, 198.18.2.2, then the target itself (TTL 4). IPv6 follows the same
# path: hops 2001:db8::2, 2001:db8:0:1::2, 2001:db8:0:2::2, then the target (hop limit 4), with
# 2001:db8:1:1::/64 dropped by r3 and 2001:db8:1:2::/64 refused by r2 (addr-unreachable).
# Shaped ranges:
#   198.19.1.0/24   dropped by r3: the path ends at r3 (TTL 3), unreached
#   198.19.2.0/24   r2 forwards nothing, answering host-unreachable: TTL 1 r1, TTL 2 r2
#                   (time exceeded comes first), TTL >= 3 r2's unreachable ends the path
#   everything else reached at TTL 4: TCP 80 open (listener), UDP 33434 closed, ICMP echo up
path_up() {
    down
    local ns prev addr
    for ns in "$SCAN" "$P-r1" "$P-r2" "$P-r3" "$TGT"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 \
            net.ipv4.icmp_msgs_per_sec=100000000 net.ipv4.icmp_msgs_burst=100000000 \
            net.ipv4.tcp_synack_retries=0
    done
    # link NAME_A NS_A ADDR_A NAME_B NS_B ADDR_B
    link() {
        ip link add "$1" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
            peer name "$4" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
        ip link set "$1" netns "$2"
        ip link set "$4" netns "$5"
        ip -n "$2" addr add "$3" dev "$1"
        ip -n "$5" addr add "$6" dev "$4"
        ip -n "$2" link set "$1" up
        ip -n "$5" link set "$4" up
        ip netns exec "$2" ethtool -K "$1" tx off >/dev/null
        ip netns exec "$5" ethtool -K "$4" tx off >/dev/null
    }
    link "$VS" "$SCAN" 198.18.0.1/24 "${P}1a" "$P-r1" 198.18.0.2/24
    link "${P}1b" "$P-r1" 198.18.1.1/30 "${P}2a" "$P-r2" 198.18.1.2/30
    link "${P}2b" "$P-r2" 198.18.2.1/30 "${P}3a" "$P-r3" 198.18.2.2/30
    link "${P}3b" "$P-r3" 198.18.3.1/30 "$VT" "$TGT" 198.18.3.2/30
    for ns in "$P-r1" "$P-r2" "$P-r3"; do
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    done
    ip -n "$SCAN" route add 198.19.0.0/16 via 198.18.0.2
    ip -n "$P-r1" route add 198.19.0.0/16 via 198.18.1.2
    ip -n "$P-r1" route add 198.18.2.0/23 via 198.18.1.2
    ip -n "$P-r2" route add 198.19.0.0/16 via 198.18.2.2
    ip -n "$P-r2" route add 198.18.0.0/24 via 198.18.1.1
    ip -n "$P-r2" route add 198.18.3.0/30 via 198.18.2.2
    ip -n "$P-r3" route add 198.19.0.0/16 via 198.18.3.2
    ip -n "$P-r3" route add 198.18.0.0/23 via 198.18.2.1
    ip -n "$TGT" route add default via 198.18.3.1
    ip -n "$TGT" route add local 198.19.0.0/16 dev lo
    # IPv6: the same path, one /64 per link, 2001:db8:1::/48 at the target.
    ip -n "$SCAN" -6 addr add 2001:db8::1/64 dev "$VS" nodad
    ip -n "$P-r1" -6 addr add 2001:db8::2/64 dev "${P}1a" nodad
    ip -n "$P-r1" -6 addr add 2001:db8:0:1::1/64 dev "${P}1b" nodad
    ip -n "$P-r2" -6 addr add 2001:db8:0:1::2/64 dev "${P}2a" nodad
    ip -n "$P-r2" -6 addr add 2001:db8:0:2::1/64 dev "${P}2b" nodad
    ip -n "$P-r3" -6 addr add 2001:db8:0:2::2/64 dev "${P}3a" nodad
    ip -n "$P-r3" -6 addr add 2001:db8:0:3::1/64 dev "${P}3b" nodad
    ip -n "$TGT" -6 addr add 2001:db8:0:3::2/64 dev "$VT" nodad
    for ns in "$P-r1" "$P-r2" "$P-r3"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.icmp.ratelimit=0
    done
    ip netns exec "$TGT" sysctl -qw net.ipv6.icmp.ratelimit=0
    ip -n "$SCAN" -6 route add 2001:db8:1::/48 via 2001:db8::2
    ip -n "$P-r1" -6 route add 2001:db8:1::/48 via 2001:db8:0:1::2
    ip -n "$P-r1" -6 route add 2001:db8:0:2::/63 via 2001:db8:0:1::2
    ip -n "$P-r2" -6 route add 2001:db8:1::/48 via 2001:db8:0:2::2
    ip -n "$P-r2" -6 route add 2001:db8::/64 via 2001:db8:0:1::1
    ip -n "$P-r2" -6 route add 2001:db8:0:3::/64 via 2001:db8:0:2::2
    ip -n "$P-r3" -6 route add 2001:db8:1::/48 via 2001:db8:0:3::2
    ip -n "$P-r3" -6 route add 2001:db8::/63 via 2001:db8:0:2::1
    ip -n "$TGT" -6 route add default via 2001:db8:0:3::1
    ip -n "$TGT" -6 route add local 2001:db8:1::/48 dev lo
    # Real addresses: the kernel's own ICMPv6 errors about them leave from them.
    for h in 1 2 3 4; do ip -n "$TGT" -6 addr add "2001:db8:1:ff::$h/128" dev lo nodad; done
    printf 'table inet lab {\n chain transit {\n  type filter hook forward priority 0;\n  ip daddr 198.19.1.0/24 drop\n  ip6 daddr 2001:db8:1:1::/64 drop\n }\n}\n' \
        | ip netns exec "$P-r3" nft -f -
    printf 'table inet lab {\n chain transit {\n  type filter hook forward priority 0;\n  ip daddr 198.19.2.0/24 reject with icmp type host-unreachable\n  ip6 daddr 2001:db8:1:2::/64 reject with icmpv6 type addr-unreachable\n }\n}\n' \
        | ip netns exec "$P-r2" nft -f -
    ip netns exec "$TGT" python3 "$HERE/lab-listener.py" --tcp 80 >/dev/null 2>&1 &
    for _ in $(seq 200); do
        [ "$(ip netns exec "$TGT" ss -Hltn | wc -l)" -ge 1 ] && break
        sleep 0.05
    done
    ip netns exec "$SCAN" ping -c1 -W1 198.19.0.1 >/dev/null || die "path lab does not answer end to end"
    # Every hop resolves its IPv6 neighbours on the first packet; the first pings may be lost.
    v6_warm "$SCAN" 2001:db8:1::1
}

# Sink mode: the target drops everything at the driver (pure transmit-rate measurements).
sink() {
    ip netns exec "$TGT" ip link set dev "$VT" xdp obj "$(sink_obj)" sec xdp 2>/dev/null \
        || die "cannot attach the XDP_DROP sink (build it with scripts/bench.sh)"
}

sink_obj() {
    local o="${TMPDIR:-/tmp}/xdpscan-sink.o"
    if [ ! -f "$o" ]; then
        printf '%s\n' '#include <linux/bpf.h>' '__attribute__((section("xdp"), used)) int sink(struct xdp_md *c) { return XDP_DROP; }' \
            'char _l[] __attribute__((section("license"), used)) = "GPL";' \
            | clang -O2 -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -x c -c - -o "$o"
    fi
    echo "$o"
}

case "$cmd" in
    up) up; echo "lab $P up: run the scanner with 'ip netns exec $SCAN ...'" ;;
    path) path_up; echo "path lab $P up: run the scanner with 'ip netns exec $SCAN ...'" ;;
    down) down ;;
    sink) sink ;;
    exec) shift 2; exec ip netns exec "$SCAN" "$@" ;;
    *) die "usage: $0 up|path|down|sink|exec [PREFIX] [CMD...]" ;;
esac
