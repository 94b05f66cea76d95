#!/usr/bin/env python3
"""Lab target services: TCP listeners that never accept (the kernel answers SYNs) and UDP
responders that send every datagram back unchanged (an echo: a reply that rewrote the payload
would not carry the scan's cookie, see src/probe/udp_echo.rs). Runs inside the target
namespace."""
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
        for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((any_addr, p))
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
        # IPv6: the same, the asked address coming back in IPV6_PKTINFO.
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        # The /48 answered by a local route holds no interface address; sending from one needs
        # IPV6_TRANSPARENT (root, which the lab is).
        s6.setsockopt(socket.IPPROTO_IPV6, 75, 1)
        s6.bind(("::", p))
        s6.setblocking(False)
        sel.register(s6, selectors.EVENT_READ)
    while True:
        if not sel.get_map():
            time.sleep(3600)
            continue
        for key, _ in sel.select():
            s = key.fileobj
            try:
                while True:
                    data, anc, _flags, peer = s.recvmsg(2048, socket.CMSG_SPACE(20))
                    if s.family == socket.AF_INET6:
                        # Keep the asked address; the interface it came in on (lo, for the
                        # local route) is not the way out.
                        anc = [(lvl, ty, d[:16] + bytes(4)) for lvl, ty, d in anc]
                    s.sendmsg([data], anc, 0, peer)
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main()
