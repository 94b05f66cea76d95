//! Traceroute (`--traceroute`): each target gets one probe per TTL in `--ttl LO-HI`, and every
//! reply names its hop without any table of what was sent, as Scapy's
//! `sr(IP(dst=..., ttl=(1,30))/TCP(flags="S"))` and yarrp do.
//!
//! Each probe carries its TTL, its send time and a keyed mark, in fields that both the target's
//! reply and a router's ICMP time-exceeded (which quotes our IP header and the first 8 bytes
//! above it) bring back:
//!
//! | probe      | TTL in                | send time in  | mark (keyed) in                 |
//! |------------|-----------------------|---------------|---------------------------------|
//! | TCP SYN    | source port lo+TTL-1  | seq high half | seq low half                    |
//! | UDP        | source port lo+TTL-1  | IP id         | payload (quotes: the checksum)  |
//! | ICMP echo  | identifier lo+TTL-1   | sequence      | payload (quotes: the checksum)  |
//!
//! The send time is in units of 100 µs, 16 bits: RTTs up to 6.5 s.

use std::{net::IpAddr, time::Instant};

use crate::wire::{
    repr::{IcmpRepr, L4Repr, UdpRepr},
    IcmpPacket,
};
use crate::{
    cookie::{PortRange, ProbeCookie},
    wire::{
        checksum, get_u16, icmp, icmpv6,
        tcp::QuotedTcp,
        template::{FrameParams, FrameTemplate},
        Family, IcmpKind, IpPacket, TcpFlags, TcpSegment, UdpDatagram, Unreach, PROTO_TCP,
        PROTO_UDP,
    },
};

use super::{
    tcp::{icmp_reason, quoted, TcpProbe},
    Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason, Replies,
};

/// The protocol of traceroute probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProto {
    Tcp,
    Udp,
    Icmp,
}

impl TraceProto {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TraceProto::Tcp => "tcp",
            TraceProto::Udp => "udp",
            TraceProto::Icmp => "icmp",
        }
    }

    /// The destination port when none is given: 80 (TCP), traceroute's 33434 (UDP), none (ICMP).
    pub(crate) fn default_port(self) -> u16 {
        match self {
            TraceProto::Tcp => 80,
            TraceProto::Udp => 33434,
            TraceProto::Icmp => 0,
        }
    }
}

/// How a hop answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopKind {
    /// A router on the way: ICMP time exceeded.
    Transit,
    /// The path ended here: the target answered, or a router said it cannot go on.
    End(PortState, Reason),
}

/// One validated traceroute reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub(crate) target: IpAddr,
    pub(crate) port: u16,
    /// The TTL the probe left with.
    pub(crate) probe_ttl: u8,
    /// Who answered.
    pub(crate) responder: IpAddr,
    /// Round trip in microseconds (100 µs resolution); `None` when the reply carries no time
    /// (a UDP answer from the target).
    pub(crate) rtt_us: Option<u32>,
    pub(crate) kind: HopKind,
    /// TTL of the reply as received.
    pub(crate) reply_ttl: u8,
}

/// The traceroute probe module.
#[derive(Debug, Clone)]
pub struct TracerouteScan {
    proto: TraceProto,
    ttls: (u8, u8),
    ports: PortRange,
    start: Instant,
}

/// Bytes of mark after the UDP and ICMP headers.
const MARK_LEN: usize = 2;

impl TracerouteScan {
    /// `ttls` must fit the source-port range (config checks it): TTL t uses port `lo + t - 1`.
    pub fn new(proto: TraceProto, ttls: (u8, u8), ports: PortRange) -> Self {
        Self {
            proto,
            ttls,
            ports,
            start: Instant::now(),
        }
    }

    /// Now, in the 100 µs units of the send-time field.
    fn now(&self) -> u16 {
        (self.start.elapsed().as_micros() / 100) as u16
    }

    fn rtt_us(&self, sent: u16) -> u32 {
        self.now().wrapping_sub(sent) as u32 * 100
    }

    fn port_of(&self, ttl: u8) -> u16 {
        self.ports.lo + ttl as u16 - 1
    }

    /// The TTL a port of ours stands for, if it is one.
    fn ttl_of(&self, port: u16) -> Option<u8> {
        let t = port.checked_sub(self.ports.lo)? as u32 + 1;
        (t >= self.ttls.0 as u32 && t <= self.ttls.1 as u32).then_some(t as u8)
    }

    fn l4_proto(&self, family: Family) -> u8 {
        match self.proto {
            TraceProto::Tcp => PROTO_TCP,
            TraceProto::Udp => PROTO_UDP,
            TraceProto::Icmp => family.icmp_proto(),
        }
    }

    fn result_proto_of(&self) -> Proto {
        match self.proto {
            TraceProto::Tcp => Proto::Tcp,
            TraceProto::Udp => Proto::Udp,
            TraceProto::Icmp => Proto::Icmp,
        }
    }

    fn hop(&self, target: IpAddr, port: u16, ttl: u8, ip: &IpPacket) -> Hop {
        Hop {
            target,
            port,
            probe_ttl: ttl,
            responder: ip.src(),
            rtt_us: None,
            kind: HopKind::Transit,
            reply_ttl: ip.ttl(),
        }
    }

    /// A reply from the target itself (not an ICMP error).
    fn classify_direct(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified<Hop> {
        let tag = self.cookie_tag();
        match (self.proto, ip.protocol()) {
            (TraceProto::Tcp, PROTO_TCP) => {
                let Ok(seg) = TcpSegment::new_checked(ip.payload()) else {
                    return Classified::Unrelated;
                };
                let Some(ttl) = self.ttl_of(seg.dst_port()) else {
                    return Classified::Unrelated;
                };
                let c = ctx.jar.cookie(ip.dst(), ip.src(), seg.src_port(), tag);
                let f = seg.flags();
                if !f.has(TcpFlags::ACK) {
                    return Classified::Invalid;
                }
                let sent = seg.ack().wrapping_sub(1);
                let ts = (sent >> 16) as u16;
                if sent as u16 != mark(&c, ttl, ts) {
                    return Classified::Invalid;
                }
                let end = if f.has(TcpFlags::SYN) {
                    (PortState::Open, Reason::SynAck)
                } else if f.has(TcpFlags::RST) {
                    (PortState::Closed, Reason::Reset)
                } else {
                    return Classified::Unrelated;
                };
                Classified::Reply(Hop {
                    rtt_us: Some(self.rtt_us(ts)),
                    kind: HopKind::End(end.0, end.1),
                    ..self.hop(ip.src(), seg.src_port(), ttl, ip)
                })
            }
            (TraceProto::Udp, PROTO_UDP) => {
                // An answer from an open port echoes nothing of ours but the port pair.
                let Ok(d) = UdpDatagram::new_checked(ip.payload()) else {
                    return Classified::Unrelated;
                };
                match self.ttl_of(d.dst_port()) {
                    Some(ttl) => Classified::Reply(Hop {
                        kind: HopKind::End(PortState::Open, Reason::UdpResponse),
                        ..self.hop(ip.src(), d.src_port(), ttl, ip)
                    }),
                    None => Classified::Unrelated,
                }
            }
            (TraceProto::Icmp, p) if p == ip.family().icmp_proto() => {
                let Some(m) = ip.icmp() else {
                    return Classified::Unrelated;
                };
                if m.kind != IcmpKind::EchoReply {
                    return Classified::Unrelated;
                }
                let Some(ttl) = self.ttl_of(m.ident) else {
                    return Classified::Unrelated;
                };
                let ts = m.seq;
                let c = ctx.jar.cookie(ip.dst(), ip.src(), 0, tag);
                let body = m.body;
                if body.len() < MARK_LEN || get_u16(body, 0) != mark(&c, ttl, ts) {
                    return Classified::Invalid;
                }
                Classified::Reply(Hop {
                    rtt_us: Some(self.rtt_us(ts)),
                    kind: HopKind::End(PortState::Up, Reason::EchoReply),
                    ..self.hop(ip.src(), 0, ttl, ip)
                })
            }
            _ => Classified::Unrelated,
        }
    }

    /// An ICMP error quoting one of our probes: a hop on the way, or the end of the path.
    fn classify_error(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified<Hop> {
        let Some((msg, q)) = quoted(ip, ctx) else {
            return Classified::Unrelated;
        };
        if q.protocol() != self.l4_proto(q.family()) {
            return Classified::Unrelated;
        }
        let tag = self.cookie_tag();
        let l4 = q.payload();
        if l4.len() < 8 {
            return Classified::Unrelated;
        }
        let target = q.dst();
        let (port, ttl, ts, ok) = match self.proto {
            TraceProto::Tcp => {
                let Ok(qt) = QuotedTcp::parse(l4) else {
                    return Classified::Unrelated;
                };
                let Some(ttl) = self.ttl_of(qt.src_port) else {
                    return Classified::Unrelated;
                };
                let c = ctx.jar.cookie(q.src(), target, qt.dst_port, tag);
                let ts = (qt.seq >> 16) as u16;
                (qt.dst_port, ttl, ts, qt.seq as u16 == mark(&c, ttl, ts))
            }
            TraceProto::Udp => {
                let (sport, dport, quoted_sum) = (get_u16(l4, 0), get_u16(l4, 2), get_u16(l4, 6));
                let Some(ttl) = self.ttl_of(sport) else {
                    return Classified::Unrelated;
                };
                let c = ctx.jar.cookie(q.src(), target, dport, tag);
                let ts = q.ident() as u16;
                let want = probe_checksum(q.src(), target, sport, dport, mark(&c, ttl, ts), None);
                (dport, ttl, ts, quoted_sum == want)
            }
            TraceProto::Icmp => {
                if l4[0] != echo_request(q.family()) {
                    return Classified::Unrelated;
                }
                let (id, seq, quoted_sum) = (get_u16(l4, 4), get_u16(l4, 6), get_u16(l4, 2));
                let Some(ttl) = self.ttl_of(id) else {
                    return Classified::Unrelated;
                };
                let c = ctx.jar.cookie(q.src(), target, 0, tag);
                let want =
                    probe_checksum(q.src(), target, id, seq, mark(&c, ttl, seq), Some(l4[0]));
                (0, ttl, seq, quoted_sum == want)
            }
        };
        if !ok {
            return Classified::Invalid;
        }
        let from = ip.src();
        let kind = match msg.kind {
            IcmpKind::TimeExceeded => HopKind::Transit,
            IcmpKind::Unreachable(u) => {
                let reason = icmp_reason(msg.kind, msg.family).unwrap_or(Reason::HostUnreach);
                let from_target = from == target;
                let state = match self.proto {
                    // The target's own port unreachable: the path ends at a closed port.
                    TraceProto::Udp if from_target && u == Unreach::Port => PortState::Closed,
                    TraceProto::Icmp if from_target => PortState::Up,
                    TraceProto::Icmp => PortState::Down,
                    _ => PortState::Filtered,
                };
                HopKind::End(state, reason)
            }
            _ => return Classified::Unrelated,
        };
        Classified::Reply(Hop {
            rtt_us: Some(self.rtt_us(ts)),
            kind,
            ..self.hop(target, port, ttl, ip)
        })
    }

    /// Reads a reply as a hop of the path (or the end of it).
    pub fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified<Hop> {
        if ip.icmp().is_some_and(|m| m.is_error()) {
            return self.classify_error(ip, ctx);
        }
        self.classify_direct(ip, ctx)
    }
}

/// The keyed mark of a probe: its target's cookie mixed with its TTL and send time, so a reply
/// proves it saw this very probe.
#[inline]
fn mark(c: &ProbeCookie, ttl: u8, ts: u16) -> u16 {
    let m = (c.seq as u16)
        ^ ((c.seq >> 16) as u16)
        ^ ts.rotate_left(7)
        ^ (ttl as u16).wrapping_mul(0x9e37);
    // The UDP checksum field carries it in quotes, where 0 would mean "no checksum".
    if m == 0 {
        0x5a5a
    } else {
        m
    }
}

/// The echo request type of a family (8, or ICMPv6's 128).
fn echo_request(family: Family) -> u8 {
    match family {
        Family::V4 => icmp::TYPE_ECHO_REQUEST,
        Family::V6 => icmpv6::TYPE_ECHO_REQUEST,
    }
}

/// The checksum of our UDP probe (`echo_type` `None`: header + the 2-byte mark, `a`/`b` the
/// ports) or echo request (`a`/`b` identifier and sequence), as a quote of it must carry. The
/// UDP and ICMPv6 checksums cover the pseudo header; ICMPv4's does not.
fn probe_checksum(
    src: IpAddr,
    dst: IpAddr,
    a: u16,
    b: u16,
    mark: u16,
    echo_type: Option<u8>,
) -> u16 {
    let len = (8 + MARK_LEN) as u32;
    let fields = a as u64 + b as u64 + mark as u64;
    match echo_type {
        None => {
            let acc = checksum::pseudo_header_ip(src, dst, PROTO_UDP, len) + len as u64 + fields;
            match checksum::finish(acc) {
                0 => 0xffff,
                v => v,
            }
        }
        Some(t) => {
            let pseudo = if src.is_ipv6() {
                checksum::pseudo_header_ip(src, dst, icmpv6_proto(), len)
            } else {
                0
            };
            checksum::finish(pseudo + ((t as u64) << 8) + fields)
        }
    }
}

fn icmpv6_proto() -> u8 {
    Family::V6.icmp_proto()
}

impl ProbeModule for TracerouteScan {
    fn scan(&self) -> super::ScanType {
        super::ScanType::Traceroute
    }

    fn cookie_tag(&self) -> u8 {
        // Apart from the port scans' tags: a traceroute cookie never validates a scan reply.
        match self.proto {
            TraceProto::Tcp => 0xf6,
            TraceProto::Udp => 0xf7,
            TraceProto::Icmp => 0xf8,
        }
    }

    fn result_proto(&self) -> Proto {
        self.result_proto_of()
    }

    fn template(&self, params: &FrameParams, _port: u16) -> FrameTemplate {
        match self.proto {
            // nmap's SYN probe, as the SYN scan sends it.
            TraceProto::Tcp => TcpProbe {
                flags: TcpFlags::SYN,
            }
            .template(params),
            // Ports, identifier, sequence and the mark are per probe.
            TraceProto::Udp => FrameTemplate::new(
                params,
                &L4Repr::Udp(UdpRepr {
                    src_port: 0,
                    dst_port: 0,
                    payload: &[0; MARK_LEN],
                }),
            ),
            TraceProto::Icmp => FrameTemplate::new(
                params,
                &L4Repr::Icmp(IcmpRepr {
                    msg_type: echo_request(params.family()),
                    code: 0,
                    ident: 0,
                    seq: 0,
                    data: &[0; MARK_LEN],
                }),
            ),
        }
    }

    /// One template per TTL: a target's probes leave together, lowest TTL first.
    fn variants(&self, params: &FrameParams, port: u16) -> Vec<FrameTemplate> {
        (self.ttls.0..=self.ttls.1)
            .map(|ttl| self.template(&FrameParams { ttl, ..*params }, port))
            .collect()
    }

    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        let ttl = tpl.ttl();
        let ts = self.now();
        let m = mark(c, ttl, ts);
        let sport = self.port_of(ttl);
        let n = tpl.stamp(frame, dst, ts as u32);
        let l4 = &mut frame[tpl.l4_offset()..n];
        match self.proto {
            TraceProto::Tcp => {
                let seq = (ts as u32) << 16 | m as u32;
                let mut s = TcpSegment::patch(l4);
                s.set_src_port(sport);
                s.set_dst_port(dport);
                s.set_seq(seq);
                let sum = tpl.l4_sum()
                    + tpl.dst_sum(dst)
                    + sport as u64
                    + dport as u64
                    + checksum::sum_u32(seq);
                s.set_checksum(checksum::finish(sum));
            }
            TraceProto::Udp => {
                let mut d = UdpDatagram::patch(l4);
                d.set_src_port(sport);
                d.set_dst_port(dport);
                d.payload_mut()[..MARK_LEN].copy_from_slice(&m.to_be_bytes());
                d.set_checksum(probe_checksum(tpl.src(), dst, sport, dport, m, None));
            }
            TraceProto::Icmp => {
                let t = echo_request(tpl.family());
                let mut e = IcmpPacket::patch(l4);
                e.set_echo_ident(sport);
                e.set_echo_seq(ts);
                e.payload_mut()[..MARK_LEN].copy_from_slice(&m.to_be_bytes());
                e.set_checksum(probe_checksum(tpl.src(), dst, sport, ts, m, Some(t)));
            }
        }
        n
    }

    fn silence(&self) -> (PortState, Reason) {
        match self.proto {
            TraceProto::Icmp => (PortState::Down, Reason::NoResponse),
            TraceProto::Udp => (PortState::OpenFiltered, Reason::NoResponse),
            TraceProto::Tcp => (PortState::Filtered, Reason::NoResponse),
        }
    }

    fn replies(&self) -> Replies {
        Replies {
            echo_replies: self.proto == TraceProto::Icmp,
            any_quoted: self.proto == TraceProto::Icmp,
            ..Replies::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::{self, ctx, params, DST, ROUTER, SRC};
    use crate::wire::{
        template::{IP_OFFSET, L4_OFFSET},
        IcmpPacket, Ipv4Packet,
    };
    use etherparse::PacketBuilder;

    fn scan(p: TraceProto) -> TracerouteScan {
        TracerouteScan::new(p, (1, 30), ctx().jar.ports())
    }

    /// The frame for `ttl` and its cookie.
    fn probe(m: &TracerouteScan, port: u16, ttl: u8) -> Vec<u8> {
        let ctx = ctx();
        let tpl = &m.variants(&params(), port)[ttl as usize - 1];
        let c = ctx.jar.cookie(SRC, DST, port, m.cookie_tag());
        let mut f = vec![0u8; 256];
        let n = m.write(&mut f, tpl, DST, port, &c);
        f.truncate(n);
        f
    }

    /// What a router (or the target) sends back: an ICMP error quoting `frame`'s IP packet.
    fn icmp_about(frame: &[u8], from: IpAddr, ty: u8, code: u8, quote_len: usize) -> Vec<u8> {
        let IpAddr::V4(from) = from else {
            panic!("IPv4 only")
        };
        let quoted = &frame[IP_OFFSET..(IP_OFFSET + quote_len).min(frame.len())];
        let t = if ty == icmp::TYPE_TIME_EXCEEDED {
            etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            )
        } else {
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0).unwrap(),
            )
        };
        let mut v = Vec::new();
        PacketBuilder::ipv4(from.octets(), [198, 18, 0, 1], 64)
            .icmpv4(t)
            .write(&mut v, quoted)
            .unwrap();
        v
    }

    fn hop(m: &TracerouteScan, pkt: &[u8]) -> Hop {
        match m.classify(&IpPacket::parse(pkt).unwrap(), &ctx()) {
            Classified::Reply(h) => h,
            other => panic!("not a hop: {other:?}"),
        }
    }

    #[test]
    fn probes_carry_ttl_and_valid_checksums() {
        for p in [TraceProto::Tcp, TraceProto::Udp, TraceProto::Icmp] {
            let m = scan(p);
            for ttl in [1u8, 7, 30] {
                let f = probe(&m, p.default_port(), ttl);
                let ip = Ipv4Packet::new_checked(&f[IP_OFFSET..]).unwrap();
                assert!(ip.verify_checksum());
                assert_eq!(ip.ttl(), ttl);
                let l4 = ip.payload();
                match p {
                    TraceProto::Tcp => {
                        let s = TcpSegment::new_checked(l4).unwrap();
                        assert!(s.verify_checksum(0xc612_0001, 0xc613_0105));
                        assert_eq!(s.src_port(), 61000 + ttl as u16 - 1);
                    }
                    TraceProto::Udp => {
                        let acc = checksum::pseudo_header_ip(SRC, DST, PROTO_UDP, l4.len() as u32);
                        assert!(checksum::verify(checksum::sum(acc, l4)));
                        assert_eq!(get_u16(l4, 0), 61000 + ttl as u16 - 1);
                    }
                    TraceProto::Icmp => {
                        assert!(IcmpPacket::new_checked(l4).unwrap().verify_checksum());
                        assert_eq!(get_u16(l4, 4), 61000 + ttl as u16 - 1);
                    }
                }
            }
        }
    }

    #[test]
    fn time_exceeded_names_the_hop_even_from_8_quoted_bytes() {
        for p in [TraceProto::Tcp, TraceProto::Udp, TraceProto::Icmp] {
            let m = scan(p);
            let f = probe(&m, p.default_port(), 3);
            for quote in [28, 200] {
                let h = hop(
                    &m,
                    &icmp_about(&f, ROUTER, icmp::TYPE_TIME_EXCEEDED, 0, quote),
                );
                assert_eq!(h.kind, HopKind::Transit, "{p:?}");
                assert_eq!((h.target, h.probe_ttl, h.responder), (DST, 3, ROUTER));
                assert_eq!(h.port, p.default_port());
                assert!(h.rtt_us.unwrap() < 1_000_000);
            }
            // A tampered quote (another TTL's port, same mark) is refused.
            let mut bad = icmp_about(&f, ROUTER, icmp::TYPE_TIME_EXCEEDED, 0, 28);
            let at = 20 + 8 + 20 + if p == TraceProto::Icmp { 5 } else { 1 };
            bad[at] ^= 1;
            assert!(
                matches!(
                    m.classify(&IpPacket::parse(&bad).unwrap(), &ctx()),
                    Classified::Invalid | Classified::Unrelated
                ),
                "{p:?}"
            );
        }
    }

    #[test]
    fn the_target_ends_the_path() {
        let m = scan(TraceProto::Tcp);
        let f = probe(&m, 80, 4);
        let seg = TcpSegment::new_checked(&f[L4_OFFSET..]).unwrap();
        let synack = testutil::tcp_reply(
            DST,
            80,
            seg.src_port(),
            9,
            seg.seq().wrapping_add(1),
            "SA",
            64240,
        );
        let h = hop(&m, &synack);
        assert_eq!(h.kind, HopKind::End(PortState::Open, Reason::SynAck));
        assert_eq!((h.probe_ttl, h.responder), (4, DST));
        let rst = testutil::tcp_reply(
            DST,
            80,
            seg.src_port(),
            0,
            seg.seq().wrapping_add(1),
            "RA",
            0,
        );
        assert_eq!(
            hop(&m, &rst).kind,
            HopKind::End(PortState::Closed, Reason::Reset)
        );
        let forged = testutil::tcp_reply(
            DST,
            80,
            seg.src_port(),
            9,
            seg.seq().wrapping_add(2),
            "SA",
            0,
        );
        assert_eq!(
            m.classify(&IpPacket::parse(&forged).unwrap(), &ctx()),
            Classified::Invalid
        );

        let m = scan(TraceProto::Udp);
        let f = probe(&m, 33434, 5);
        let h = hop(&m, &icmp_about(&f, DST, icmp::TYPE_DEST_UNREACH, 3, 200));
        assert_eq!(h.kind, HopKind::End(PortState::Closed, Reason::PortUnreach));
        let h = hop(&m, &icmp_about(&f, ROUTER, icmp::TYPE_DEST_UNREACH, 1, 28));
        assert_eq!(
            h.kind,
            HopKind::End(PortState::Filtered, Reason::HostUnreach)
        );

        // An open UDP port answers from the port we sent to; its reply carries no send time.
        let mut v = Vec::new();
        let sport = get_u16(&f[L4_OFFSET..], 0);
        PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 60)
            .udp(33434, sport)
            .write(&mut v, b"answer")
            .unwrap();
        let h = hop(&m, &v);
        assert_eq!(h.kind, HopKind::End(PortState::Open, Reason::UdpResponse));
        assert_eq!((h.probe_ttl, h.rtt_us), (5, None));

        let m = scan(TraceProto::Icmp);
        let f = probe(&m, 0, 6);
        let req = &f[L4_OFFSET..];
        let mut v = Vec::new();
        PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 60)
            .icmpv4_echo_reply(get_u16(req, 4), get_u16(req, 6))
            .write(&mut v, &req[8..])
            .unwrap();
        let h = hop(&m, &v);
        assert_eq!(h.kind, HopKind::End(PortState::Up, Reason::EchoReply));
        assert_eq!(h.probe_ttl, 6);
    }
}
