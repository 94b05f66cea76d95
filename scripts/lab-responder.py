#!/usr/bin/env python3
"""A BSD-like TCP stack for 198.19.10.0/24 in the lab target, where Linux's own answers do not
cover every nmap state: its RSTs to ACK probes carry a non-zero window on listening ports (what
nmap's window scan reads as open), and it ignores FIN/NULL/Xmas/Maimon probes to listening ports.

  SYN            -> SYN-ACK on listening ports, else RST+ACK
  ACK-bearing    -> RST (seq = their ack), window 4096 on listening ports, 0 elsewhere;
                    FIN+ACK (Maimon) to a listening port is ignored
  FIN/NULL/Xmas  -> ignored on listening ports, else RST+ACK

The kernel is kept out by an nftables drop for this range (a packet socket sees frames before
netfilter). Usage: lab-responder.py IFACE PORTS"""
import ctypes
import socket
import struct
import sys

NET, MASK = 0xC6130A00, 0xFFFFFF00  # 198.19.10.0/24
ETH_P_IP = 0x0800


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def attach_filter(sock):
    # ldh [12]; jne 0x800 -> drop; ld [30]; and MASK; jne NET -> drop; ldb [23]; jne 6 -> drop; accept
    insns = [
        (0x28, 0, 0, 12), (0x15, 0, 6, ETH_P_IP), (0x20, 0, 0, 30), (0x54, 0, 0, MASK),
        (0x15, 0, 3, NET), (0x30, 0, 0, 23), (0x15, 0, 1, 6), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0),
    ]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
    prog = struct.pack("HL", len(insns), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, 26, prog)  # SO_ATTACH_FILTER
    return buf


def main():
    iface, ports = sys.argv[1], {int(p) for p in sys.argv[2].split(",")}
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    keep = attach_filter(s)
    # Absorb bursts (a connect scan opens hundreds at once) instead of dropping them.
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((iface, ETH_P_IP))
    while True:
        frame, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        eth, ip = frame[:14], frame[14:]
        ihl = (ip[0] & 15) * 4
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        flags = tcp[13]
        fin, syn, rst, ackf = flags & 1, flags & 2, flags & 4, flags & 16
        listening = dport in ports
        payload_len = len(ip) - ihl - (tcp[12] >> 4) * 4
        if rst:
            continue
        if syn and not ackf:
            if listening:
                out_flags, out_seq, out_ack, win = 0x12, 0x5EED0000, (seq + 1) & 0xFFFFFFFF, 65535
            else:
                out_flags, out_seq, out_ack, win = 0x14, 0, (seq + 1) & 0xFFFFFFFF, 0
        elif ackf:
            if fin and listening:
                continue
            out_flags, out_seq, out_ack, win = 0x04, ack, 0, 4096 if listening else 0
        else:
            if listening:
                continue
            out_flags, out_seq, out_ack, win = 0x14, 0, (seq + payload_len + fin) & 0xFFFFFFFF, 0
        th = struct.pack("!HHIIBBHHH", dport, sport, out_seq, out_ack, 5 << 4, out_flags, win, 0, 0)
        pseudo = dst + src + struct.pack("!BBH", 0, 6, len(th))
        th = th[:16] + struct.pack("!H", csum(pseudo + th)) + th[18:]
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0, 0x4000, 64, 6, 0, dst, src)
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        s.send(eth[6:12] + eth[0:6] + eth[12:14] + iph + th)
    del keep


if __name__ == "__main__":
    main()
