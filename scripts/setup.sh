#!/usr/bin/env bash
# Installs what a fresh Debian machine needs, in two steps. `setup.sh` alone: what building
# xdpscan and the demo need (the BPF toolchain, the lab's tools, the Rust components).
# `setup.sh --test` also: what the tests and benchmarks compare with and run in the lab's
# namespaces (peer scanners, Debian's real daemons, the NATS broker). Safe to re-run. No daemon
# starts on the host, now or at boot.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

PKGS=(
    # build: the XDP program (clang, libbpf headers) and libxdp/libbpf built by xsk-rs
    clang llvm m4 libelf-dev zlib1g-dev pkg-config libbpf-dev linux-libc-dev make gcc
    # lab: namespaces, veth, nftables, counters, offloads
    iproute2 nftables ethtool iputils-ping python3
)
if [ "${1:-}" = --test ]; then
    PKGS+=(
        # lab services: the TLS listener's self-signed certificate
        openssl
        # peers and inspection: reference tools the tests and benchmarks compare with
        nmap ndiff zmap masscan tshark python3-scapy libxml2-utils xsltproc
        # -sV next to nmap -sV: Debian's real daemons, started only inside lab namespaces
        # (scripts/lab-daemons.sh)
        openssh-server nginx-light vsftpd redis-server memcached dnsmasq-base mosquitto socat chrony snmpd
        # distributed scans: the NATS JetStream broker the tests start in lab namespaces, and
        # curl for its monitoring page and the workers' metrics
        nats-server curl
        # the order of a scan's fsyncs and renames (tests/shards_and_dry_run.rs)
        strace
        # pip, for the one reference Debian does not package (below)
        python3-pip
    )
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    # tshark asks whether non-root users may capture; answer no without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    # No daemon may start on the host when its package installs (invoke-rc.d asks
    # policy-rc.d; 101 = action forbidden); ours is removed again, one already there is kept.
    placed=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        placed=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || {
        [ -z "$placed" ] || $SUDO rm -f /usr/sbin/policy-rc.d
        exit 1
    }
    [ -z "$placed" ] || $SUDO rm -f /usr/sbin/policy-rc.d
    # Nor at the next boot: the units of the daemons installed here for the lab are disabled
    # (a daemon the machine already had is not touched).
    if [ -d /run/systemd/system ]; then
        for p in "${missing[@]}"; do
            case $p in
                openssh-server) unit=ssh ;; nginx-light) unit=nginx ;; redis-server) unit=redis-server ;;
                vsftpd | memcached | mosquitto | chrony | snmpd | nats-server) unit=$p ;;
                *) continue ;;
            esac
            $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
        done
    fi
fi

# JARM's reference (pyjarm, which sends Salesforce's hellos byte for byte), from PyPI into a
# directory of its own: tests/daemons_grab compares `--grab jarm` with it.
ORACLES=${XDPSCAN_ORACLES:-/opt/xdpscan-oracles}
if [ "${1:-}" = --test ] && [ ! -d "$ORACLES/python/jarm" ]; then
    echo "setup: installing pyjarm 0.0.5 into $ORACLES/python"
    $SUDO python3 -m pip install -q --root-user-action=ignore --disable-pip-version-check \
        --target "$ORACLES/python" pyjarm==0.0.5
fi

if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "setup: no Rust toolchain (install rustup, then re-run)" >&2; exit 1; }
if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi
echo "setup: ready"
