//! SYN scan (`-sS`): open on SYN-ACK, closed on RST, filtered on ICMP unreachable or silence.

use crate::wire::TcpFlags;

use super::{
    tcp::{TcpReading, TcpReply, TcpScan},
    PortState, Reason,
};

/// nmap's reading of a SYN scan.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SynReading;

impl TcpReading for SynReading {
    fn reset(&self, _r: &TcpReply) -> (PortState, Reason) {
        (PortState::Closed, Reason::Reset)
    }

    fn syn_ack(&self, _r: &TcpReply) -> Option<(PortState, Reason)> {
        Some((PortState::Open, Reason::SynAck))
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Filtered, Reason::NoResponse)
    }
}

pub(crate) type SynScan = TcpScan<SynReading>;

impl SynScan {
    pub(crate) fn new(flags: u8) -> Self {
        TcpScan::with(super::ScanType::Syn, flags, SynReading)
    }
}

impl Default for SynScan {
    fn default() -> Self {
        Self::new(TcpFlags::SYN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cookie::ProbeCookie,
        probe::{tcp, testutil::*, Classified, ClassifyCtx, Verdict},
        wire::PROTO_TCP,
    };
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};

    fn probe(ctx: &ClassifyCtx, dst: std::net::IpAddr, port: u16) -> (Vec<u8>, ProbeCookie) {
        build(&SynScan::default(), ctx, dst, port)
    }

    #[test]
    fn frame_matches_etherparse_byte_for_byte() {
        let ctx = ctx();
        for (dst, port) in [
            (0xc613_0105u32, 80u16),
            (0x0102_0304, 1),
            (0xffff_fffe, 65535),
            (0, 0),
        ] {
            let (ours, c) = probe(&ctx, std::net::IpAddr::V4(dst.into()), port);
            let mut ip =
                Ipv4Header::new(24, 64, IpNumber::TCP, [198, 18, 0, 1], dst.to_be_bytes()).unwrap();
            ip.identification = c.ip_id;
            ip.dont_fragment = false;
            let mut expect = Vec::new();
            PacketBuilder::ethernet2(SMAC, DMAC)
                .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
                .tcp(c.src_port, port, c.seq, tcp::WINDOW)
                .syn()
                .options_raw(&tcp::MSS_OPTION)
                .unwrap()
                .write(&mut expect, &[])
                .unwrap();
            assert_eq!(ours, expect, "dst {dst:#x} port {port}");
        }
    }

    #[test]
    fn known_frame_bytes() {
        let ctx = ClassifyCtx {
            jar: crate::cookie::CookieJar::new(
                [0; 16],
                crate::cookie::PortRange {
                    lo: 61000,
                    hi: 61000,
                },
            ),
            src_v4: Some([198, 18, 0, 1].into()),
            src_v6: None,
        };
        let (f, c) = probe(&ctx, DST, 80);
        assert_eq!(c.src_port, 61000);
        let sliced = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Tcp(t)) = sliced.transport else {
            panic!("not tcp")
        };
        assert!(t.syn() && !t.ack());
        assert_eq!(
            (t.source_port(), t.destination_port(), t.sequence_number()),
            (61000, 80, c.seq)
        );
        assert_eq!(&f[..14], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        assert_eq!(&f[14..18], &[0x45, 0, 0, 44]);
        assert_eq!(&f[26..34], &[198, 18, 0, 1, 198, 19, 1, 5]);
    }

    #[test]
    fn syn_ack_is_open_rst_is_closed() {
        let ctx = ctx();
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_TCP);
        let m = SynScan::default();
        let open = classify(
            &m,
            &ctx,
            &tcp_reply(DST, 443, c.src_port, 9, c.seq.wrapping_add(1), "SA", 65535),
        );
        let Classified::Reply(v) = open else {
            panic!("{open:?}")
        };
        assert_eq!(
            (v.ip, v.port, v.state, v.reason, v.ttl),
            (DST, 443, PortState::Open, Reason::SynAck, 63)
        );
        for ack in [c.seq.wrapping_add(1), c.seq] {
            let closed = classify(&m, &ctx, &tcp_reply(DST, 443, c.src_port, 0, ack, "RA", 0));
            assert!(matches!(
                closed,
                Classified::Reply(Verdict {
                    state: PortState::Closed,
                    reason: Reason::Reset,
                    ..
                })
            ));
        }
    }

    #[test]
    fn wrong_cookie_is_invalid() {
        let ctx = ctx();
        let m = SynScan::default();
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_TCP);
        let ok = c.seq.wrapping_add(1);
        assert_eq!(
            classify(
                &m,
                &ctx,
                &tcp_reply(DST, 443, c.src_port, 9, c.seq.wrapping_add(2), "SA", 1)
            ),
            Classified::Invalid
        );
        let other = if c.src_port == 61000 { 61001 } else { 61000 };
        assert_eq!(
            classify(&m, &ctx, &tcp_reply(DST, 443, other, 9, ok, "SA", 1)),
            Classified::Invalid
        );
        assert_eq!(
            classify(
                &m,
                &ctx,
                &tcp_reply(plus(DST, 1), 443, c.src_port, 9, ok, "SA", 1)
            ),
            Classified::Invalid
        );
        assert_eq!(
            classify(&m, &ctx, &tcp_reply(DST, 443, c.src_port, 9, ok, "A", 1)),
            Classified::Invalid
        );
    }

    /// A bare SYN to the right source port acknowledges nothing, so it is invalid: before,
    /// one forged SYN in a few thousand became an open port (issue 20, item 9).
    #[test]
    fn a_bare_syn_is_never_open() {
        let ctx = ctx();
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_TCP);
        for m in [
            SynScan::default(),
            SynScan::new(crate::wire::TcpFlags::SYN | 0x08),
        ] {
            for ack in [0, c.seq.wrapping_add(1)] {
                assert_eq!(
                    classify(&m, &ctx, &tcp_reply(DST, 443, c.src_port, 9, ack, "S", 1)),
                    Classified::Invalid
                );
            }
        }
    }

    #[test]
    fn icmp_unreachable_is_filtered_with_nmaps_reason() {
        let ctx = ctx();
        let m = SynScan::default();
        for (code, reason) in [
            (0, Reason::NetUnreach),
            (1, Reason::HostUnreach),
            (2, Reason::ProtoUnreach),
            (3, Reason::PortUnreach),
            (9, Reason::NetProhibited),
            (10, Reason::HostProhibited),
            (13, Reason::AdminProhibited),
        ] {
            let Classified::Reply(v) = classify(&m, &ctx, &icmp_error(&m, &ctx, 8080, code, false))
            else {
                panic!("code {code}")
            };
            assert_eq!(
                (v.ip, v.port, v.state, v.reason, v.responder),
                (DST, 8080, PortState::Filtered, reason, ROUTER)
            );
        }
        assert_eq!(
            classify(&m, &ctx, &icmp_error(&m, &ctx, 8080, 4, false)),
            Classified::Unrelated
        );
        assert_eq!(
            classify(&m, &ctx, &icmp_error(&m, &ctx, 8080, 13, true)),
            Classified::Invalid
        );
    }

    #[test]
    fn ipv6_syn_matches_etherparse_and_replies_classify() {
        let ctx = ctx();
        let m = SynScan::default();
        let (ours, c) = probe(&ctx, DST6, 443);
        let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (SRC6, DST6) else {
            unreachable!()
        };
        let mut expect = Vec::new();
        PacketBuilder::ethernet2(SMAC, DMAC)
            .ipv6(s.octets(), d.octets(), 64)
            .tcp(c.src_port, 443, c.seq, tcp::WINDOW)
            .syn()
            .options_raw(&tcp::MSS_OPTION)
            .unwrap()
            .write(&mut expect, &[])
            .unwrap();
        // etherparse sends flow label 0; ours carries the cookie's.
        expect[15] = (c.flow >> 16) as u8;
        expect[16] = (c.flow >> 8) as u8;
        expect[17] = c.flow as u8;
        assert_eq!(ours.len(), 14 + 40 + 24, "Ethernet, IPv6, TCP with MSS");
        assert_eq!(ours, expect);
        let Classified::Reply(v) = classify(
            &m,
            &ctx,
            &tcp_reply(DST6, 443, c.src_port, 9, c.seq.wrapping_add(1), "SA", 1),
        ) else {
            panic!()
        };
        assert_eq!((v.ip, v.port, v.state), (DST6, 443, PortState::Open));
        let Classified::Reply(v) = classify(
            &m,
            &ctx,
            &tcp_reply(DST6, 443, c.src_port, 0, c.seq.wrapping_add(1), "RA", 0),
        ) else {
            panic!()
        };
        assert_eq!(v.state, PortState::Closed);
        assert_eq!(
            classify(
                &m,
                &ctx,
                &tcp_reply(
                    plus(DST6, 1),
                    443,
                    c.src_port,
                    9,
                    c.seq.wrapping_add(1),
                    "SA",
                    1
                )
            ),
            Classified::Invalid
        );
        // ICMPv6 codes read as nmap -6 reads them.
        for (code, reason) in [
            (0, Reason::NoRoute),
            (1, Reason::AdminProhibited),
            (2, Reason::BeyondScope),
            (3, Reason::HostUnreach),
            (4, Reason::PortUnreach),
            (5, Reason::AdminProhibited),
            (6, Reason::RejectRoute),
        ] {
            let Classified::Reply(v) = classify(
                &m,
                &ctx,
                &icmp_error_from(&m, &ctx, 8080, code, false, ROUTER6),
            ) else {
                panic!("code {code}")
            };
            assert_eq!(
                (v.ip, v.port, v.state, v.reason, v.responder),
                (DST6, 8080, PortState::Filtered, reason, ROUTER6)
            );
        }
        assert_eq!(
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 8080, 1, true, ROUTER6)),
            Classified::Invalid
        );
    }
}
