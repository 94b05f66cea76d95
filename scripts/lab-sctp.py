#!/usr/bin/env python3
"""A user-space SCTP endpoint for the lab target, whose kernel has no SCTP: it answers for every
address the target owns (198.19.0.0/16, 2001:db8:1::/48), after nftables has shaped the ranges
(raw sockets see packets past the input hook, so a dropped or rejected probe never reaches it).

  INIT         -> INIT ACK (tag = the INIT's initiate tag) on listening ports, else ABORT
  COOKIE ECHO  -> dropped on listening ports (a cookie no endpoint issued), else ABORT with the
                  T bit (tag reflected), as RFC 9260 8.4 has a stack answer out-of-the-blue
  anything else-> ignored (never answer an ABORT)

A raw socket bound to protocol 132 also keeps the kernel from answering protocol unreachable.
Usage: lab-sctp.py PORTS"""
import os
import select
import socket
import struct
import sys

PROTO = 132
INIT, INIT_ACK, ABORT, COOKIE_ECHO = 1, 2, 6, 10
IPV6_RECVPKTINFO, IPV6_PKTINFO, IPV6_FREEBIND = 49, 50, 78


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (0x82F63B78 ^ (c >> 1)) if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def packet(sport, dport, vtag, chunk):
    p = struct.pack("!HHII", sport, dport, vtag, 0) + chunk
    return p[:8] + struct.pack("<I", crc32c(p)) + p[12:]


def answer(sctp, ports):
    """The SCTP packet answering `sctp`, or None."""
    if len(sctp) < 16:
        return None
    sport, dport, vtag = struct.unpack("!HHI", sctp[:8])
    kind = sctp[12]
    listening = dport in ports
    if kind == INIT and len(sctp) >= 32:
        (their_tag,) = struct.unpack("!I", sctp[16:20])
        if listening:
            my_tag = int.from_bytes(os.urandom(4), "big") or 1
            cookie = struct.pack("!HH", 7, 8) + os.urandom(4)  # State Cookie parameter
            body = struct.pack("!IIHHI", my_tag, 65535, 10, 10, my_tag) + cookie
            chunk = struct.pack("!BBH", INIT_ACK, 0, 4 + len(body)) + body
        else:
            chunk = struct.pack("!BBH", ABORT, 0, 4)
        return packet(dport, sport, their_tag, chunk)
    if kind == COOKIE_ECHO and not listening:
        return packet(dport, sport, vtag, struct.pack("!BBH", ABORT, 1, 4))
    return None


def serve_v4(s, ports):
    data, _ = s.recvfrom(65535)
    ihl = (data[0] & 15) * 4
    src, dst = data[12:16], data[16:20]
    reply = answer(data[ihl:], ports)
    if reply is None:
        return
    # Our own header (IP_HDRINCL): the reply leaves from the address probed, which the /16's
    # local route makes ours though no interface holds it. The kernel fills id and checksum.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(reply), 0, 0, 64, PROTO, 0, dst, src)
    s.sendto(ip + reply, (socket.inet_ntoa(src), 0))


def serve_v6(s, ports):
    data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
    dst = next((d[:16] for lvl, ty, d in anc if lvl == socket.IPPROTO_IPV6 and ty == IPV6_PKTINFO), None)
    reply = answer(data, ports)
    if reply is None or dst is None:
        return
    info = struct.pack("16sI", dst, 0)
    s.sendmsg([reply], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, info)], 0, (addr[0], 0))


def main():
    ports = {int(p) for p in sys.argv[1].split(",") if p}
    v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
    v4.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, PROTO)
    v6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    # Replies leave from the address probed, which the /48's local route covers but no
    # interface holds.
    v6.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    for s in (v4, v6):
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: absorb bursts
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    while True:
        ready, _, _ = select.select([v4, v6], [], [])
        for s in ready:
            try:
                (serve_v4 if s is v4 else serve_v6)(s, ports)
            except OSError:
                pass  # one unanswerable packet must not stop the rest


if __name__ == "__main__":
    main()
