#!/usr/bin/env python3
"""Lab services for banner and version detection, one of each kind, on every lab address:

  22    an SSH-like greeting (the server speaks first, then waits)
  80    Python's HTTP server (silent until asked; answers GET and closes)
  443   the same HTTP server inside TLS (a self-signed certificate made with openssl)
  9999  a silent service (accepts, never says anything, never closes)

Runs inside the target namespace; DIR holds the certificate and the served page."""
import http.server
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time

GREETING = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET
    request_queue_size = 4096
    tls = None

    def get_request(self):
        sock, addr = self.socket.accept()
        # A client that never finishes must not hold up the others: time out, and leave the
        # TLS handshake to the connection's own thread (its first read runs it).
        sock.settimeout(30)
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class Server6(Server):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def serve_http(port, directory, tls=None):
    handler = lambda *a, **k: Quiet(*a, directory=directory, **k)  # noqa: E731
    for cls, addr in ((Server, "0.0.0.0"), (Server6, "::")):
        srv = cls((addr, port), handler)
        srv.tls = tls
        threading.Thread(target=srv.serve_forever, daemon=True).start()


def serve_raw(port, on_accept):
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        serve_raw_on(fam, addr, port, on_accept)


def serve_raw_on(fam, addr, port, on_accept):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    s.listen(4096)

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=on_accept, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def ssh_like(c):
    try:
        c.sendall(GREETING)
        c.settimeout(30)
        while c.recv(4096):
            pass
    except OSError:
        pass
    finally:
        c.close()


def silent(c):
    try:
        c.settimeout(60)
        while c.recv(4096):
            pass
    except OSError:
        pass
    finally:
        c.close()


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<html><head><title>xdpscan lab</title></head><body>lab</body></html>\n")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=lab.xdpscan.test", "-keyout", key, "-out", cert],
            check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    serve_raw(22, ssh_like)
    serve_http(80, d)
    serve_http(443, d, tls)
    serve_raw(9999, silent)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
