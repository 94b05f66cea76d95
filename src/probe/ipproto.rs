//! IP protocol scan (`-sO`): the "ports" are protocol numbers 0-255. Each protocol nmap knows
//! gets a proper header (ICMP echo, IGMP query, TCP ACK, UDP, SCTP INIT); the rest a bare IP
//! header. The cookie is in the IP identification (and in ports / echo id where there are some).
//! `open` (any reply in that protocol, or port unreachable from the host), `closed` (protocol
//! unreachable from the host), `filtered` (other ICMP unreachable codes, or any from a router),
//! `open|filtered` (silence).
//!
//! Over IPv6 the "protocols" are next-header values: 58 (ICMPv6) gets an echo request, and an
//! ICMPv6 parameter problem with code 1 (unrecognised next header) from the host is `closed`.
//!
//! nmap also marks ICMP open on any ICMP from the host while its own ICMP probe is still
//! unanswered, so its ICMP verdict depends on arrival order; here the ICMP probe's own answer
//! decides, which is what nmap reports whenever that answer arrives first.

use std::net::IpAddr;

use crate::wire::repr::L4Repr;
use crate::{
    cookie::ProbeCookie,
    wire::{
        put_u16, put_u32, sctp,
        template::{FrameParams, FrameTemplate},
        Family, IcmpKind, IpPacket, TcpFlags, TcpSegment, UdpDatagram, Unreach, PROTO_TCP,
        PROTO_UDP,
    },
};

use super::{
    ping, tcp, udp, Classified, ClassifyCtx, PortScan, PortState, ProbeModule, Proto, Reason,
    Replies, Verdict,
};

/// Cookie tag of protocol probes: distinct from every IP protocol's own scans.
pub(crate) const TAG: u8 = 255;
const PROTO_IGMP: u8 = 2;
use crate::wire::sctp::PROTO_SCTP;
/// Where nmap's protocol probes go for TCP, UDP, SCTP.
const TCP_PORT: u16 = 80;
const UDP_PORT: u16 = 40125;
const SCTP_PORT: u16 = 80;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IpProtoScan;

fn tcp_probe() -> tcp::TcpProbe {
    tcp::TcpProbe {
        flags: TcpFlags::ACK,
    }
}

impl ProbeModule for IpProtoScan {
    fn scan(&self) -> super::ScanType {
        super::ScanType::IpProto
    }

    fn cookie_tag(&self) -> u8 {
        TAG
    }

    fn result_proto(&self) -> Proto {
        Proto::Ip
    }

    fn per_port_templates(&self) -> bool {
        true
    }

    fn template(&self, params: &FrameParams, port: u16) -> FrameTemplate {
        let proto = port as u8;
        if proto == params.family().icmp_proto() {
            return ping::echo_template(params);
        }
        match proto {
            PROTO_IGMP if params.family() == Family::V4 => {
                // IGMPv2 general membership query; nothing in it varies, so checksum it now.
                let mut l4 = [0x11, 0, 0, 0, 0, 0, 0, 0];
                let c = crate::wire::checksum::finish(crate::wire::checksum::sum(0, &l4));
                l4[2..4].copy_from_slice(&c.to_be_bytes());
                FrameTemplate::new(params, &L4Repr::Raw(PROTO_IGMP, &l4))
            }
            PROTO_TCP => tcp_probe().template(params),
            PROTO_UDP => udp::template(params, &[]),
            PROTO_SCTP => {
                FrameTemplate::new(params, &L4Repr::Raw(PROTO_SCTP, &sctp::init(SCTP_PORT)))
            }
            p => FrameTemplate::new(params, &L4Repr::Raw(p, &[])),
        }
    }

    #[inline]
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        let ident = c.ident(tpl.family());
        match dport as u8 {
            p if p == tpl.family().icmp_proto() => ping::write_echo(frame, tpl, dst, c),
            PROTO_TCP => tcp_probe().write(frame, tpl, dst, TCP_PORT, c),
            PROTO_UDP => udp::write(frame, tpl, dst, c.src_port, UDP_PORT, ident),
            PROTO_SCTP => {
                let n = tpl.stamp(frame, dst, ident);
                let l4 = tpl.l4_offset();
                put_u16(frame, l4, c.src_port);
                put_u32(frame, l4 + sctp::INIT_TAG_AT, c.seq);
                put_u32(frame, l4 + sctp::INIT_TSN_AT, c.seq);
                sctp::fill_checksum(&mut frame[l4..n]);
                n
            }
            _ => tpl.stamp(frame, dst, ident),
        }
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::OpenFiltered, Reason::NoResponse)
    }

    fn replies(&self) -> Replies {
        Replies {
            echo_replies: true,
            any_quoted: true,
            all_protocols: true,
            ..Replies::default()
        }
    }
}

impl PortScan for IpProtoScan {
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
        let open = |proto: u8, reason| {
            Classified::Reply(Verdict {
                ip: ip.src(),
                port: proto as u16,
                proto: Proto::Ip,
                state: PortState::Open,
                reason,
                ttl: ip.ttl(),
                responder: ip.src(),
            })
        };
        // Our source port for protocol `p` to this host, checked against a reply's destination port.
        let ours =
            |p: u8, dport: u16| ctx.jar.cookie(ip.dst(), ip.src(), p as u16, TAG).src_port == dport;
        match ip.protocol() {
            // The ACK probe's RST takes its sequence number from our acknowledgement: all 32
            // bits of the cookie, not only the port.
            PROTO_TCP => match TcpSegment::new_checked(ip.payload()) {
                Ok(s) if s.src_port() == TCP_PORT => {
                    let c = ctx.jar.cookie(ip.dst(), ip.src(), PROTO_TCP as u16, TAG);
                    let reply = tcp::TcpReply {
                        from: ip.src(),
                        port: s.src_port(),
                        flags: s.flags(),
                        window: s.window(),
                        seq: s.seq(),
                        ack: s.ack(),
                        ttl: ip.ttl(),
                        cookie: c,
                    };
                    if c.src_port == s.dst_port()
                        && s.flags().has(TcpFlags::RST)
                        && tcp_probe().rst_answers(&reply)
                    {
                        open(PROTO_TCP, Reason::ProtoResponse)
                    } else {
                        Classified::Invalid
                    }
                }
                _ => Classified::Invalid,
            },
            PROTO_UDP => match UdpDatagram::new_checked(ip.payload()) {
                Ok(d) if ours(PROTO_UDP, d.dst_port()) => open(PROTO_UDP, Reason::UdpResponse),
                _ => Classified::Invalid,
            },
            PROTO_SCTP if ip.payload().len() >= sctp::HEADER_LEN => {
                let dport = u16::from_be_bytes([ip.payload()[2], ip.payload()[3]]);
                if ours(PROTO_SCTP, dport) {
                    open(PROTO_SCTP, Reason::ProtoResponse)
                } else {
                    Classified::Invalid
                }
            }
            p if p == ip.family().icmp_proto() => match ip.icmp() {
                Some(m) => match ping::is_echo_reply(ip, &m, ctx, p as u16, TAG) {
                    Some(true) => open(p, Reason::EchoReply),
                    Some(false) => Classified::Invalid,
                    None => classify_icmp_error(ip, ctx),
                },
                None => Classified::Invalid,
            },
            _ => Classified::Unrelated,
        }
    }
}

/// An ICMP error quoting one of our protocol probes (its cookie in the quoted IP id or flow
/// label), read as nmap's -sO reads it.
fn classify_icmp_error(ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
    let Some((msg, q)) = tcp::quoted(ip, ctx) else {
        return Classified::Unrelated;
    };
    let p = q.protocol();
    let c = ctx.jar.cookie(q.src(), q.dst(), p as u16, TAG);
    if c.ident(q.family()) != q.ident() {
        return Classified::Invalid;
    }
    let verdict = |state, reason| {
        Classified::Reply(Verdict {
            ip: q.dst(),
            port: p as u16,
            proto: Proto::Ip,
            state,
            reason,
            ttl: ip.ttl(),
            responder: ip.src(),
        })
    };
    let from_target = ip.src() == q.dst();
    match msg.kind {
        // Only the host itself can say it lacks a protocol, or that its transport layer took
        // the packet (port unreachable: the protocol is there).
        IcmpKind::Unreachable(Unreach::Protocol) if from_target => {
            verdict(PortState::Closed, Reason::ProtoUnreach)
        }
        _ if from_target && msg.is_next_header_problem() => {
            verdict(PortState::Closed, Reason::ParamProblem)
        }
        IcmpKind::Unreachable(Unreach::Port) if from_target => {
            verdict(PortState::Open, Reason::PortUnreach)
        }
        kind => match tcp::icmp_reason(kind, msg.family) {
            Some(reason) => verdict(PortState::Filtered, reason),
            None => Classified::Unrelated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::*;
    use crate::wire::{checksum, IcmpPacket, Ipv4Packet, PROTO_ICMP};

    #[test]
    fn every_protocol_gets_a_valid_packet() {
        let ctx = ctx();
        for p in [0u16, 1, 2, 6, 17, 47, 132, 255] {
            let (f, c) = build(&IpProtoScan, &ctx, DST, p);
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum(), "proto {p}");
            assert_eq!((ip.protocol() as u16, ip.ident()), (p, c.ip_id));
            let l4 = ip.payload();
            match p as u8 {
                PROTO_ICMP => assert!(IcmpPacket::new_checked(l4).unwrap().verify_checksum()),
                PROTO_IGMP => assert!(checksum::verify(checksum::sum(0, l4))),
                PROTO_TCP | PROTO_UDP => {
                    let acc = checksum::pseudo_header_ip(SRC, DST, p as u8, l4.len() as u32);
                    assert!(checksum::verify(checksum::sum(acc, l4)), "proto {p}");
                }
                PROTO_SCTP => {
                    let mut copy = l4.to_vec();
                    let stored = u32::from_le_bytes(copy[8..12].try_into().unwrap());
                    copy[8..12].fill(0);
                    assert_eq!(sctp::crc32c(&copy), stored);
                }
                _ => assert!(l4.is_empty()),
            }
        }
    }

    /// Issue 20, item 12: the TCP probe's RST is checked on all 32 bits its sequence number
    /// carries, not only on our source port.
    #[test]
    fn the_tcp_probes_reset_carries_the_cookie() {
        let ctx = ctx();
        let c = ctx.jar.cookie(SRC, DST, PROTO_TCP as u16, TAG);
        let rst = |seq: u32| {
            classify(
                &IpProtoScan,
                &ctx,
                &tcp_reply(DST, TCP_PORT, c.src_port, seq, 0, "R", 0),
            )
        };
        let Classified::Reply(v) = rst(c.ack()) else {
            panic!("{:?}", rst(c.ack()))
        };
        assert_eq!((v.port, v.state), (6, PortState::Open));
        for forged in [0, c.ack().wrapping_add(1), c.seq] {
            assert_eq!(rst(forged), Classified::Invalid, "seq {forged:#x}");
        }
        assert_eq!(
            classify(
                &IpProtoScan,
                &ctx,
                &tcp_reply(DST, TCP_PORT, c.src_port, 1, c.seq, "SA", 0)
            ),
            Classified::Invalid,
            "not a reset"
        );
    }

    #[test]
    fn protocol_unreachable_is_closed() {
        let ctx = ctx();
        // From the host: GRE is closed.
        let Classified::Reply(v) = classify(
            &IpProtoScan,
            &ctx,
            &icmp_error_from(&IpProtoScan, &ctx, 47, 2, false, DST),
        ) else {
            panic!()
        };
        assert_eq!(
            (v.ip, v.port, v.state, v.reason),
            (DST, 47, PortState::Closed, Reason::ProtoUnreach)
        );
        // From a router: filtered, and nothing about the host's ICMP.
        let Classified::Reply(v) = classify(
            &IpProtoScan,
            &ctx,
            &icmp_error(&IpProtoScan, &ctx, 47, 2, false),
        ) else {
            panic!()
        };
        assert_eq!(v.state, PortState::Filtered);
        let Classified::Reply(v) = classify(
            &IpProtoScan,
            &ctx,
            &icmp_error(&IpProtoScan, &ctx, 47, 13, false),
        ) else {
            panic!()
        };
        assert_eq!(v.state, PortState::Filtered);
        let Classified::Reply(v) = classify(
            &IpProtoScan,
            &ctx,
            &icmp_error_from(&IpProtoScan, &ctx, 6, 3, false, DST),
        ) else {
            panic!()
        };
        assert_eq!(
            (v.port, v.state),
            (6, PortState::Open),
            "port unreachable from the host: TCP is there"
        );
        assert_eq!(
            classify(
                &IpProtoScan,
                &ctx,
                &icmp_error(&IpProtoScan, &ctx, 47, 2, true)
            ),
            Classified::Invalid
        );
    }
}
