#!/usr/bin/env bash
# Real daemons from Debian's packages for version-detection tests (-sV next to nmap -sV), run
# inside the lab's target namespace by `scripts/lab.sh up` with LAB_DAEMONS=1. Each one listens
# on every address, so it answers for the whole 198.19.0.0/16 the target holds; configuration,
# keys and pid files live in DIR, nothing of the host's is changed.
#
#   21 vsftpd      22 OpenSSH      53 dnsmasq (TCP)   80 nginx        443 openssl s_server -www
#   1883 mosquitto 6379 redis      11211 memcached    2323 socat accepting and closing at once
#   UDP: 53 dnsmasq, 123 chrony (an NTP server), 161 net-snmp's snmpd
#
# Usage (inside the namespace): lab-daemons.sh DIR
set -euo pipefail
DIR=${1:?usage: lab-daemons.sh DIR}
mkdir -p "$DIR"
cd "$DIR"

# OpenSSH: its own host key and privilege-separation directory.
mkdir -p /run/sshd
[ -f ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f ssh_host_ed25519_key
/usr/sbin/sshd -D -f /dev/null -h "$DIR/ssh_host_ed25519_key" -o PidFile="$DIR/sshd.pid" \
    -o ListenAddress=0.0.0.0 -o ListenAddress=:: >"$DIR/sshd.log" 2>&1 &

# nginx: the distribution's build, a minimal site.
mkdir -p "$DIR/nginx"
cat >"$DIR/nginx.conf" <<EOF
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx;
    server { listen 80; listen [::]:80; location / { return 200 "xdpscan lab\n"; } }
}
EOF
nginx -c "$DIR/nginx.conf" -p "$DIR/nginx" >"$DIR/nginx.log" 2>&1 &

# vsftpd: standalone, no logins.
mkdir -p /var/run/vsftpd/empty
cat >"$DIR/vsftpd.conf" <<EOF
listen=YES
background=NO
anonymous_enable=NO
local_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
EOF
vsftpd "$DIR/vsftpd.conf" >"$DIR/vsftpd.log" 2>&1 &

# A TLS server: OpenSSL's own, answering HTTP inside TLS.
[ -f tls.key ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.crt \
    -days 2 -subj /CN=lab.example >/dev/null 2>&1
openssl s_server -accept 443 -cert tls.crt -key tls.key -www -quiet >"$DIR/tls.log" 2>&1 &

# mosquitto: an anonymous listener on every address.
printf 'listener 1883\nallow_anonymous true\n' >"$DIR/mosquitto.conf"
mosquitto -c "$DIR/mosquitto.conf" >"$DIR/mosquitto.log" 2>&1 &

redis-server --port 6379 --bind '* -::*' --protected-mode no --save '' --appendonly no \
    --dir "$DIR" --daemonize no >"$DIR/redis.log" 2>&1 &

memcached -u nobody -l 0.0.0.0 -p 11211 -U 0 >"$DIR/memcached.log" 2>&1 &

# dnsmasq: a DNS server with nothing to resolve (its TCP port answers version.bind).
dnsmasq --no-daemon --conf-file=/dev/null --port=53 --no-resolv --no-hosts \
    --user=nobody --pid-file="$DIR/dnsmasq.pid" >"$DIR/dnsmasq.log" 2>&1 &

# chrony serving NTP to anyone, no command port; net-snmp's agent with a read-only community.
printf 'allow all\nport 123\ncmdport 0\npidfile %s/chronyd.pid\nlocal stratum 8\n' "$DIR" >"$DIR/chrony.conf"
chronyd -d -x -f "$DIR/chrony.conf" >"$DIR/chrony.log" 2>&1 &
printf 'rocommunity public default\nsysDescr xdpscan lab\n' >"$DIR/snmpd.conf"
snmpd -f -Lo -C -c "$DIR/snmpd.conf" -p "$DIR/snmpd.pid" udp:161,udp6:161 >"$DIR/snmpd.log" 2>&1 &

# A port that accepts and closes before saying anything (nmap: tcpwrapped).
socat TCP-LISTEN:2323,fork,reuseaddr SYSTEM:'exit 0' >"$DIR/socat.log" 2>&1 &

# Ready when every port listens.
for _ in $(seq 100); do
    up=0
    for p in 21 22 53 80 443 1883 2323 6379 11211; do
        ss -Hltn "sport = :$p" | grep -q . && up=$((up + 1))
    done
    for p in 53 123 161; do
        ss -Hlun "sport = :$p" | grep -q . && up=$((up + 1))
    done
    [ "$up" = 12 ] && exit 0
    sleep 0.1
done
echo "lab-daemons: not every daemon listens:" >&2
ss -Hltnp >&2
for f in "$DIR"/*.log; do echo "== $f" >&2; tail -3 "$f" >&2; done
exit 1
