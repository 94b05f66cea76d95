#!/usr/bin/env bash
# Real TLS, HTTP and SSH servers for --grab's tests, run inside the lab's target namespace by
# `scripts/lab.sh up` with LAB_GRAB=1. Each listens on every address, so it answers for the
# whole 198.19.0.0/16 the target holds. Certificates come from openssl here: a root, an
# intermediate, and leaves under it; keys and configuration live in DIR.
#
#   22    OpenSSH, ed25519 host key        2022  OpenSSH, ECDSA P-256     2122  OpenSSH, RSA 3072
#   80    nginx HTTP, a page with a title
#   443   nginx TLS 1.2/1.3, RSA 2048 leaf + intermediate, SANs (lab.example, www.lab.example,
#         198.19.0.5), HTTP inside
#   8443  nginx TLS 1.2/1.3, ECDSA P-256 leaf + intermediate
#   8444  nginx TLS 1.3 only, RSA leaf + intermediate
#   4433  openssl s_server -tls1, AES128-SHA (RSA key exchange, CBC) at @SECLEVEL=0, self-signed
#   4434  openssl s_server: the self-signed legacy certificate, or the RSA leaf to SNI lab.example
#   For --grab auto, protocols on ports that do not name them:
#   8081  nginx TLS (the ECDSA leaf)     2222  nginx HTTP
#   For --http-redirects:
#   8082  nginx HTTP: / is 302 /hop (a relative Location), /hop is 301 http://ADDRESS:8082/index.html
#   8083  nginx HTTP: / is 301 https://ADDRESS/ (another port: not followed)
#   443 of 198.19.20.0/24 is OpenSSH (nftables redirects it to 22)
#   2323  accepts and closes at once     2324  accepts, says nothing, closes on any data
#   9999  accepts and says nothing, ever
#
# Usage (inside the namespace): lab-grab.sh DIR
set -euo pipefail
DIR=${1:?usage: lab-grab.sh DIR}
mkdir -p "$DIR"
cd "$DIR"

# The certificates: root -> intermediate -> leaves.
if [ ! -f root.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days 30 \
        -subj "/C=XX/O=xdpscan lab/CN=xdpscan lab root" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr \
        -subj "/C=XX/O=xdpscan lab/CN=xdpscan lab intermediate" >/dev/null 2>&1
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n' >ca.ext
    openssl x509 -req -in inter.csr -CA root.crt -CAkey root.key -CAcreateserial \
        -out inter.crt -days 30 -extfile ca.ext >/dev/null 2>&1
    printf 'subjectAltName=DNS:lab.example,DNS:www.lab.example,IP:198.19.0.5\n' >leaf.ext
    leaf() { # name, key options
        openssl req -newkey "$2" -nodes -keyout "$1.key" -out "$1.csr" \
            -subj "/C=XX/ST=Lab/L=Namespace/O=xdpscan lab/CN=lab.example" >/dev/null 2>&1
        openssl x509 -req -in "$1.csr" -CA inter.crt -CAkey inter.key -CAcreateserial \
            -out "$1.crt" -days 7 -sha256 -extfile leaf.ext >/dev/null 2>&1
        cat "$1.crt" inter.crt >"$1.chain"
    }
    leaf rsa rsa:2048
    openssl ecparam -name prime256v1 -out p256.pem
    leaf ecdsa ec:p256.pem
    openssl req -x509 -newkey rsa:2048 -nodes -keyout legacy.key -out legacy.crt -days 7 \
        -subj "/CN=legacy.lab.example" >/dev/null 2>&1
fi

# OpenSSH, one host key type per daemon.
mkdir -p /run/sshd
for k in ed25519:22 ecdsa:2022 rsa:2122; do
    t=${k%%:*} p=${k##*:}
    [ -f "ssh_host_${t}_key" ] || ssh-keygen -q -t "$t" -N '' -f "ssh_host_${t}_key"
    /usr/sbin/sshd -D -f /dev/null -h "$DIR/ssh_host_${t}_key" -o PidFile="$DIR/sshd-$t.pid" \
        -o Port="$p" -o ListenAddress=0.0.0.0 -o ListenAddress=:: -o MaxStartups=10000 \
        >"$DIR/sshd-$t.log" 2>&1 &
done

# A whole /16 may connect at once (scripts/grab-scale.sh): queues deep enough for it.
sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535

# nginx: HTTP, and TLS with each certificate.
mkdir -p "$DIR/nginx"
cat >"$DIR/index.html" <<HTML
<!DOCTYPE html>
<html><head><title>xdpscan grab lab</title></head>
<body><p>A page for --grab http.</p></body></html>
HTML
cat >"$DIR/nginx.conf" <<NGINX
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
worker_processes 2;
events { worker_connections 65536; }
worker_rlimit_nofile 140000;
http {
    access_log off;
    client_body_temp_path $DIR/nginx;
    default_type text/html;
    root $DIR;
    server { listen 80 backlog=65535; listen 2222; listen [::]:80; }
    server {
        listen 8082; absolute_redirect off;
        location = / { return 302 /hop; }
        location = /hop { return 301 http://\$host:8082/index.html; }
    }
    server { listen 8083; location = / { return 301 https://\$host/; } }
    server {
        listen 443 ssl; listen [::]:443 ssl;
        ssl_certificate $DIR/rsa.chain; ssl_certificate_key $DIR/rsa.key;
    }
    server {
        listen 8443 ssl backlog=65535; listen 8081 ssl;
        ssl_certificate $DIR/ecdsa.chain; ssl_certificate_key $DIR/ecdsa.key;
    }
    server {
        listen 8444 ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $DIR/rsa.chain; ssl_certificate_key $DIR/rsa.key;
    }
}
NGINX
nginx -c "$DIR/nginx.conf" -p "$DIR/nginx" >"$DIR/nginx.log" 2>&1 &

# A server only TLS 1.0 and RSA key exchange reach: what rustls refuses.
openssl s_server -accept 4433 -cert legacy.crt -key legacy.key -tls1 \
    -cipher 'AES128-SHA:@SECLEVEL=0' -www -quiet >"$DIR/legacy.log" 2>&1 &

# SNI: the legacy certificate, or the lab.example one to a client that asks for that name.
openssl s_server -accept 4434 -cert legacy.crt -key legacy.key -servername lab.example \
    -cert2 rsa.crt -key2 rsa.key -www -quiet >"$DIR/sni.log" 2>&1 &

# Ports that open and carry no service.
socat TCP-LISTEN:2323,fork,reuseaddr SYSTEM:'exit 0' >/dev/null 2>&1 &
socat TCP-LISTEN:2324,fork,reuseaddr SYSTEM:'head -c1 >/dev/null' >/dev/null 2>&1 &
socat TCP-LISTEN:9999,fork,reuseaddr SYSTEM:'sleep 3600' >/dev/null 2>&1 &

# SSH behind 443 for one /24.
nft -f - <<NFT
table ip grab {
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        ip daddr 198.19.20.0/24 tcp dport 443 redirect to :22
    }
}
NFT

for _ in $(seq 100); do
    up=0
    for p in 22 2022 2122 80 443 8443 8444 4433 4434 8081 8082 8083 2222 2323 2324 9999; do
        ss -Hltn "sport = :$p" | grep -q . && up=$((up + 1))
    done
    [ "$up" = 16 ] && exit 0
    sleep 0.1
done
echo "lab-grab: not every server listens:" >&2
ss -Hltnp >&2
for f in "$DIR"/*.log; do echo "== $f" >&2; tail -3 "$f" >&2; done
exit 1
