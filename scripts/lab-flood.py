#!/usr/bin/env python3
"""Hostile traffic for the lab: forged replies and malformed frames sent at the scanner from the
target namespace, at layer 2 (AF_PACKET), so VLAN tags, runts and lying lengths arrive as they
were written. Every frame goes to the scanner's own MAC on the lab's veth; nothing leaves the
namespaces the lab made (198.18.0.0/15, 2001:db8::/32).

    lab-flood.py IFACE SCANNER_MAC SCANNER_IP HOSTS_CIDR PORTS COUNT [--udp] [--seed N]
                 [--sport-range LO-HI] [--scanner-ip6 ADDR] [--kinds a,b,...] [--list]

HOSTS_CIDR: the addresses the forged replies claim to come from (scanned hosts, answering or
silent); PORTS: the ports they claim to answer from. Prints one JSON object: frames sent per
kind and in all.
"""

import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import sys

TCP, UDP, ICMP = 6, 17, 1
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Flood:
    def __init__(self, a, rng):
        self.a = a
        self.r = rng
        self.dst_mac = bytes.fromhex(a.scanner_mac.replace(":", ""))
        self.src_mac = bytes.fromhex(a.own_mac.replace(":", ""))
        self.me = ipaddress.IPv4Address(a.scanner_ip).packed
        self.me6 = ipaddress.IPv6Address(a.scanner_ip6).packed
        net = ipaddress.IPv4Network(a.hosts)
        self.first, self.size = int(net.network_address), net.num_addresses
        self.ports = [int(p) for p in a.ports.split(",")]
        lo, hi = (int(x) for x in a.sport_range.split("-"))
        self.our_ports = (lo, hi)

    # ---- pieces ---------------------------------------------------------------------------
    def host(self):
        return struct.pack("!I", self.first + self.r.randrange(self.size))

    def port(self):
        return self.r.choice(self.ports)

    def ours(self):
        return self.r.randint(*self.our_ports)

    def rnd(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def eth(self, payload, etype=0x0800, dst=None):
        return (dst or self.dst_mac) + self.src_mac + struct.pack("!H", etype) + payload

    def ip(self, proto, payload, src=None, ihl=5, opts=b"", totlen=None, frag=0, ver=4, ttl=64):
        src = src or self.host()
        tl = totlen if totlen is not None else ihl * 4 + len(payload)
        h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | (ihl & 15), 0, tl & 0xFFFF,
                        self.r.getrandbits(16), frag, ttl, proto, 0, src, self.me)
        h += opts
        c = csum(h[:20] + opts)
        h = h[:10] + struct.pack("!H", c) + h[12:]
        return h + payload

    def tcp(self, src, flags, sport=None, dport=None, seq=None, ack=None, doff=5, opts=b"",
            data=b"", good_sum=True):
        sport = sport if sport is not None else self.port()
        dport = dport if dport is not None else self.ours()
        seq = self.r.getrandbits(32) if seq is None else seq
        ack = self.r.getrandbits(32) if ack is None else ack
        h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (doff & 15) << 4, flags,
                        self.r.choice([0, 1024, 29200, 65535]), 0, 0) + opts + data
        ph = src + self.me + struct.pack("!BBH", 0, TCP, len(h))
        c = csum(ph + h) if good_sum else self.r.getrandbits(16)
        return h[:16] + struct.pack("!H", c) + h[18:]

    def udp(self, src, data, sport=None, dport=None, length=None):
        sport = sport if sport is not None else self.port()
        dport = dport if dport is not None else self.ours()
        ln = length if length is not None else 8 + len(data)
        h = struct.pack("!HHHH", sport, dport, ln & 0xFFFF, 0) + data
        ph = src + self.me + struct.pack("!BBH", 0, UDP, len(h))
        c = csum(ph + h) or 0xFFFF
        return h[:6] + struct.pack("!H", c) + h[8:]

    def quoted_probe(self, dst, proto=TCP):
        """The start of a probe we might have sent to `dst`, with a random cookie."""
        if proto == TCP:
            l4 = struct.pack("!HHI", self.ours(), self.port(), self.r.getrandbits(32))
        else:
            l4 = struct.pack("!HHHH", self.ours(), self.port(), 8 + 32, 0)
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 40, self.r.getrandbits(16), 0,
                        self.r.randint(1, 64), proto, 0, self.me, dst)
        return h + l4

    def icmp(self, src, typ, code, body):
        h = struct.pack("!BBHI", typ, code, 0, 0) + body
        return h[:2] + struct.pack("!H", csum(h)) + h[4:]

    def outside(self):
        """An address beside the scanned ones but outside them (still in the lab's range)."""
        return struct.pack("!I", self.first + self.size + self.r.randrange(self.size))

    def v4(self, proto, l4fn, src=None, **ip):
        src = src or self.host()
        return self.eth(self.ip(proto, l4fn(src), src=src, **ip))

    # ---- the kinds ------------------------------------------------------------------------
    def k_synack(self):
        return self.v4(TCP, lambda s: self.tcp(s, SYN | ACK, opts=b"\x02\x04\x05\xb4", doff=6))

    def k_bare_syn(self):
        # A SYN with no ACK to one of our source ports: it acknowledges nothing of ours.
        return self.v4(TCP, lambda s: self.tcp(s, SYN, ack=0))

    def k_outside_bare_syn(self):
        return self.v4(TCP, lambda s: self.tcp(s, SYN, ack=0), src=self.outside())

    def k_outside_synack(self):
        return self.v4(TCP, lambda s: self.tcp(s, SYN | ACK), src=self.outside())

    def k_outside_udp(self):
        return self.v4(UDP, lambda s: self.udp(s, self.rnd(self.r.randint(0, 64))),
                       src=self.outside())

    def k_rst(self):
        return self.v4(TCP, lambda s: self.tcp(s, RST, ack=0))

    def k_rstack(self):
        return self.v4(TCP, lambda s: self.tcp(s, RST | ACK))

    def k_ack_data(self):
        return self.v4(TCP, lambda s: self.tcp(s, ACK | PSH, data=self.rnd(self.r.randint(1, 200))))

    def k_synack_bad_checksum(self):
        return self.v4(TCP, lambda s: self.tcp(s, SYN | ACK, good_sum=False))

    def k_tcp_data_offset(self):
        # Data offset below 5, or past the end of the segment.
        return self.v4(TCP, lambda s: self.tcp(s, SYN | ACK, doff=self.r.choice([0, 1, 4, 15])))

    def k_tcp_truncated(self):
        src = self.host()
        seg = self.tcp(src, SYN | ACK)[: self.r.randint(4, 19)]
        return self.eth(self.ip(TCP, seg, src=src))

    def k_icmp_unreach(self):
        return self.v4(ICMP, lambda s: self.icmp(s, 3, self.r.choice([0, 1, 2, 3, 9, 10, 13]),
                                                 self.quoted_probe(s)))

    def k_icmp_time_exceeded(self):
        return self.v4(ICMP, lambda s: self.icmp(s, 11, 0, self.quoted_probe(s)))

    def k_icmp_quote_udp(self):
        return self.v4(ICMP, lambda s: self.icmp(s, 3, 3, self.quoted_probe(s, UDP)))

    def k_icmp_quote_truncated(self):
        return self.v4(ICMP, lambda s: self.icmp(s, 3, 1, self.quoted_probe(s)[: self.r.randint(0, 27)]))

    def k_icmp_quote_garbage(self):
        # A quote that names our port range but is otherwise noise (bad IHL, bad version).
        def body(s):
            q = bytearray(self.quoted_probe(s))
            q[0] = self.r.choice([0x40, 0x41, 0x44, 0x4F, 0x65, 0x00])
            q[9] = self.r.choice([TCP, UDP, 0, 255])
            return bytes(q) + self.rnd(self.r.randint(0, 16))
        return self.v4(ICMP, lambda s: self.icmp(s, 3, 3, body(s)))

    def k_icmp_truncated(self):
        src = self.host()
        return self.eth(self.ip(ICMP, self.icmp(src, 3, 3, b"")[: self.r.randint(1, 7)], src=src))

    def k_icmp_echo_reply(self):
        def body(s):
            return struct.pack("!HH", self.ours(), self.r.getrandbits(16)) + self.rnd(8)
        return self.v4(ICMP, lambda s: self.icmp(s, 0, 0, body(s)))

    def k_ihl_short(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src, ihl=self.r.randint(0, 4)))

    def k_ihl_15(self):
        # IHL 15 (60 bytes of header) over a packet that ends sooner.
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK)[:16], src=src, ihl=15))

    def k_ip_options(self):
        n = self.r.randint(1, 10)
        opts = bytes([1] * (n * 4 - 1)) + b"\0"
        if self.r.random() < 0.5:
            opts = bytes([0x44, n * 4]) + self.rnd(n * 4 - 2)  # a timestamp option of noise
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src, ihl=5 + n, opts=opts))

    def k_total_length_long(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src,
                                totlen=self.r.randint(60, 65535)))

    def k_total_length_short(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src,
                                totlen=self.r.randint(0, 39)))

    def k_ip_version(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src,
                                ver=self.r.choice([0, 5, 6, 15])))

    def k_fragment_first(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src, frag=0x2000))

    def k_fragment_later(self):
        # Offset > 0: its first bytes are payload that happens to look like our ports.
        src = self.host()
        off = self.r.randint(1, 0x1FFF) | self.r.choice([0, 0x2000])
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src, frag=off))

    def k_vlan(self):
        src = self.host()
        inner = self.ip(TCP, self.tcp(src, SYN | ACK), src=src)
        tag = struct.pack("!HH", self.r.randint(1, 4094), 0x0800)
        return self.eth(tag + inner, etype=0x8100)

    def k_qinq(self):
        src = self.host()
        inner = self.ip(UDP, self.udp(src, self.rnd(32)), src=src)
        tags = struct.pack("!HHHH", 100, 0x8100, self.r.randint(1, 4094), 0x0800)
        return self.eth(tags + inner, etype=0x88A8)

    def k_ipv6_synack(self):
        src = ipaddress.IPv6Address("2001:db8:1::%x" % self.r.randint(1, 0xFFFF)).packed
        seg = struct.pack("!HHIIBBHHH", self.port(), self.ours(), self.r.getrandbits(32),
                          self.r.getrandbits(32), 0x50, SYN | ACK, 1024, 0, 0)
        h = struct.pack("!IHBB16s16s", 0x60000000, len(seg), TCP, 64, src, self.me6)
        return self.eth(h + seg, etype=0x86DD)

    def k_ipv6_ext_headers(self):
        src = ipaddress.IPv6Address("2001:db8:1::%x" % self.r.randint(1, 0xFFFF)).packed
        seg = struct.pack("!HHIIBBHHH", self.port(), self.ours(), self.r.getrandbits(32),
                          self.r.getrandbits(32), 0x50, SYN | ACK, 1024, 0, 0)
        # Hop-by-hop, destination options, then a fragment header, then TCP.
        hbh = struct.pack("!BB6s", 60, 0, b"\x01\x04\0\0\0\0")
        dst = struct.pack("!BB6s", 44, 0, b"\x01\x04\0\0\0\0")
        frag = struct.pack("!BBHI", TCP, 0, self.r.choice([0, 1, 8]), self.r.getrandbits(32))
        chain = hbh + dst + frag + seg
        if self.r.random() < 0.3:
            chain = chain[: self.r.randint(1, len(chain) - 1)]
        h = struct.pack("!IHBB16s16s", 0x60000000, len(chain), 0, 64, src, self.me6)
        return self.eth(h + chain, etype=0x86DD)

    def k_ipv6_truncated(self):
        return self.eth(self.k_ipv6_synack()[14: 14 + self.r.randint(1, 39)], etype=0x86DD)

    def k_runt(self):
        return self.eth(b"")[: self.r.randint(1, 14)] if self.r.random() < 0.5 else \
            self.eth(self.rnd(self.r.randint(0, 19)))

    def k_arp_garbage(self):
        return self.eth(self.rnd(self.r.randint(8, 60)), etype=0x0806)

    def k_unknown_ethertype(self):
        return self.eth(self.rnd(self.r.randint(20, 80)), etype=self.r.choice([0x88B5, 0x9000, 0x0000, 0xFFFF]))

    def k_broadcast(self):
        src = self.host()
        return self.eth(self.ip(TCP, self.tcp(src, SYN | ACK), src=src), dst=b"\xff" * 6)

    def k_udp_random(self):
        return self.v4(UDP, lambda s: self.udp(s, self.rnd(self.r.randint(0, 200))))

    def k_udp_length_lies(self):
        return self.v4(UDP, lambda s: self.udp(s, self.rnd(self.r.randint(0, 64)),
                                                length=self.r.choice([0, 1, 7, 9, 300, 65535])))

    def k_udp_dns_like(self):
        # A well-formed DNS answer with a random ID and the question in plain case.
        def body(s):
            q = b"\x07example\x03com\x00\x00\x01\x00\x01"
            return struct.pack("!HHHHHH", self.r.getrandbits(16), 0x8180, 1, 1, 0, 0) + q + \
                b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + self.rnd(4)
        return self.v4(UDP, lambda s: self.udp(s, body(s), sport=53))

    def k_unknown_protocol(self):
        return self.v4(self.r.choice([47, 50, 132, 253]), lambda s: self.rnd(self.r.randint(0, 40)))

    def kinds(self):
        return sorted(k[2:] for k in dir(self) if k.startswith("k_"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("scanner_mac")
    p.add_argument("scanner_ip")
    p.add_argument("hosts")
    p.add_argument("ports")
    p.add_argument("count", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sport-range", default="61000-65535")
    p.add_argument("--scanner-ip6", default="2001:db8::1")
    p.add_argument("--kinds", default="")
    p.add_argument("--list", action="store_true")
    a = p.parse_args()
    a.own_mac = open("/sys/class/net/%s/address" % a.iface).read().strip()
    f = Flood(a, random.Random(a.seed))
    kinds = a.kinds.split(",") if a.kinds else f.kinds()
    if a.list:
        print("\n".join(kinds))
        return
    frames = {k: [getattr(f, "k_" + k)() for _ in range(64)] for k in kinds}
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = {k: 0 for k in kinds}
    for i in range(a.count):
        k = kinds[i % len(kinds)]
        frame = frames[k][(i // len(kinds)) % 64]
        # Every 64 rounds, a fresh set: random fields keep changing over the flood.
        if i % (len(kinds) * 64) == len(kinds) * 64 - 1:
            frames = {k: [getattr(f, "k_" + k)() for _ in range(64)] for k in kinds}
        try:
            s.send(frame)
            sent[k] += 1
        except OSError:
            pass
    print(json.dumps({"sent": sum(sent.values()), "kinds": sent}))


if __name__ == "__main__":
    sys.exit(main())
