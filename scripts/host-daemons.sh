#!/usr/bin/env bash
# Lists the lab's daemons (the ones setup.sh --test installs) running in the host's network
# namespace, one "name pid" per line. The lab starts them only inside its own namespaces, so
# scripts/test.sh compares this list before and after the tests: it must not grow.
set -euo pipefail
# The namespace this script runs in: the host's, where scripts/test.sh runs.
host_ns=$(readlink /proc/self/ns/net)
for name in sshd nginx vsftpd redis-server memcached dnsmasq mosquitto chronyd snmpd nats-server \
    openssl socat; do
    for pid in $(pgrep -x "$name" || true); do
        if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null || true)" = "$host_ns" ]; then
            echo "$name $pid"
        fi
    done
done | sort
