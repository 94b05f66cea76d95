#!/usr/bin/env python3
"""Lab target services: TCP listeners that never accept (the kernel answers SYNs) and UDP
responders that echo a short reply to any datagram. Runs inside the target namespace."""
import argparse
import selectors
import socket
import time


def ports(spec):
    return [int(p) for p in spec.split(",") if p.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", default="")
    ap.add_argument("--udp", default="")
    a = ap.parse_args()
    keep = []
    for p in ports(a.tcp):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p))
        s.listen(1 << 20)
        keep.append(s)
    sel = selectors.DefaultSelector()
    for p in ports(a.udp):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Replies must come from the address that was asked (the target answers for a /16).
        s.setsockopt(socket.SOL_IP, 8, 1)  # IP_PKTINFO
        s.bind(("0.0.0.0", p))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    while True:
        if not sel.get_map():
            time.sleep(3600)
            continue
        for key, _ in sel.select():
            s = key.fileobj
            try:
                while True:
                    data, anc, _flags, peer = s.recvmsg(2048, socket.CMSG_SPACE(12))
                    s.sendmsg([b"lab-udp-reply\n"], anc, 0, peer)
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main()
