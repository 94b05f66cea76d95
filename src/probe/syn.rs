//! SYN scan (`-sS`): open on SYN-ACK, closed on RST, filtered on ICMP unreachable.

use crate::{
    cookie::ProbeCookie,
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet, TcpFlags, PROTO_TCP},
};

use super::{
    tcp::{self, QuoteMatch},
    Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason, Verdict,
};

/// nmap's SYN probes advertise a 1024-byte window.
const WINDOW: u16 = 1024;

#[derive(Debug, Default, Clone, Copy)]
pub struct SynScan;

impl ProbeModule for SynScan {
    fn name(&self) -> &'static str {
        "syn"
    }

    fn ip_proto(&self) -> u8 {
        PROTO_TCP
    }

    fn template(&self, params: &FrameParams) -> FrameTemplate {
        tcp::template(params, TcpFlags::SYN, WINDOW)
    }

    #[inline(always)]
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: u32,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        tcp::write(frame, tpl, dst, dport, c)
    }

    fn classify(&self, ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() == PROTO_TCP {
            let Some(r) = tcp::match_segment(ip, ctx) else {
                return Classified::Invalid;
            };
            let verdict = |state, reason| {
                Classified::Verdict(Verdict {
                    ip: r.from,
                    port: r.port,
                    proto: Proto::Tcp,
                    state,
                    reason,
                    ttl: r.ttl,
                    responder: r.from,
                })
            };
            let f = r.flags;
            if f.has(TcpFlags::SYN | TcpFlags::ACK) && !f.has(TcpFlags::RST) {
                if r.ack == r.seq_sent.wrapping_add(1) {
                    return verdict(PortState::Open, Reason::SynAck);
                }
            } else if f.has(TcpFlags::RST) {
                // A RST answering a SYN acknowledges seq+1; some stacks echo seq itself.
                if r.ack == r.seq_sent.wrapping_add(1) || r.ack == r.seq_sent {
                    return verdict(PortState::Closed, Reason::Reset);
                }
            }
            return Classified::Invalid;
        }
        match tcp::match_icmp_tcp(ip, ctx) {
            QuoteMatch::Ours(q) => match tcp::icmp_reason(q.icmp_type, q.icmp_code) {
                Some(reason) => Classified::Verdict(Verdict {
                    ip: q.target,
                    port: q.port,
                    proto: Proto::Tcp,
                    state: PortState::Filtered,
                    reason,
                    ttl: q.ttl,
                    responder: q.from,
                }),
                None => Classified::Unrelated,
            },
            QuoteMatch::Forged => Classified::Invalid,
            QuoteMatch::NotOurs => Classified::Unrelated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cookie::{CookieJar, PortRange},
        wire::{template::IP_OFFSET, MacAddr},
    };
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};

    const SRC: u32 = 0xc612_0001; // 198.18.0.1
    const DST: u32 = 0xc613_0105; // 198.19.1.5
    const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn ctx() -> ClassifyCtx {
        ClassifyCtx {
            jar: CookieJar::new(
                [7; 16],
                PortRange {
                    lo: 61000,
                    hi: 65535,
                },
            ),
            src_ip: SRC,
        }
    }

    fn params() -> FrameParams {
        FrameParams {
            src_mac: MacAddr(SMAC),
            dst_mac: MacAddr(DMAC),
            src_ip: SRC,
            ttl: 64,
        }
    }

    fn probe(ctx: &ClassifyCtx, dst: u32, port: u16) -> (Vec<u8>, ProbeCookie) {
        let m = SynScan;
        let tpl = m.template(&params());
        let c = ctx.jar.cookie(SRC, dst, port, PROTO_TCP);
        let mut f = vec![0u8; 128];
        let n = m.write(&mut f, &tpl, dst, port, &c);
        f.truncate(n);
        (f, c)
    }

    #[test]
    fn frame_matches_etherparse_byte_for_byte() {
        let ctx = ctx();
        for (dst, port) in [(DST, 80u16), (0x0102_0304, 1), (0xffff_fffe, 65535), (0, 0)] {
            let (ours, c) = probe(&ctx, dst, port);
            let mut ip =
                Ipv4Header::new(24, 64, IpNumber::TCP, SRC.to_be_bytes(), dst.to_be_bytes())
                    .unwrap();
            ip.identification = c.ip_id;
            ip.dont_fragment = false;
            let mut expect = Vec::new();
            PacketBuilder::ethernet2(SMAC, DMAC)
                .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
                .tcp(c.src_port, port, c.seq, WINDOW)
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
        // Fixed key: a regression vector for the whole frame.
        let ctx = ClassifyCtx {
            jar: CookieJar::new(
                [0; 16],
                PortRange {
                    lo: 61000,
                    hi: 61000,
                },
            ),
            src_ip: SRC,
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
        assert_eq!(&f[IP_OFFSET..IP_OFFSET + 4], &[0x45, 0, 0, 44]);
        assert_eq!(
            &f[IP_OFFSET + 12..IP_OFFSET + 20],
            &[198, 18, 0, 1, 198, 19, 1, 5]
        );
    }

    /// Builds the IPv4 packet a target would answer with.
    fn tcp_reply(
        from: u32,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        syn: bool,
        rst: bool,
    ) -> Vec<u8> {
        let b = PacketBuilder::ipv4(from.to_be_bytes(), SRC.to_be_bytes(), 63)
            .tcp(sport, dport, seq, 65535);
        let b = if syn { b.syn() } else { b };
        let b = if rst { b.rst() } else { b };
        let mut v = Vec::new();
        b.ack(ack).write(&mut v, &[]).unwrap();
        v
    }

    fn classify(ctx: &ClassifyCtx, pkt: &[u8]) -> Classified {
        SynScan.classify(&Ipv4Packet::new_checked(pkt).unwrap(), ctx)
    }

    #[test]
    fn syn_ack_is_open_rst_is_closed() {
        let ctx = ctx();
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_TCP);
        let open = classify(
            &ctx,
            &tcp_reply(DST, 443, c.src_port, 9, c.seq.wrapping_add(1), true, false),
        );
        let Classified::Verdict(v) = open else {
            panic!("{open:?}")
        };
        assert_eq!(
            (v.ip, v.port, v.state, v.reason, v.ttl),
            (DST, 443, PortState::Open, Reason::SynAck, 63)
        );
        for ack in [c.seq.wrapping_add(1), c.seq] {
            let closed = classify(&ctx, &tcp_reply(DST, 443, c.src_port, 0, ack, false, true));
            assert!(matches!(
                closed,
                Classified::Verdict(Verdict {
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
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_TCP);
        // Wrong ack, wrong source port, wrong responder, plain ACK.
        assert_eq!(
            classify(
                &ctx,
                &tcp_reply(DST, 443, c.src_port, 9, c.seq.wrapping_add(2), true, false)
            ),
            Classified::Invalid
        );
        let other = if c.src_port == 61000 { 61001 } else { 61000 };
        assert_eq!(
            classify(
                &ctx,
                &tcp_reply(DST, 443, other, 9, c.seq.wrapping_add(1), true, false)
            ),
            Classified::Invalid
        );
        assert_eq!(
            classify(
                &ctx,
                &tcp_reply(
                    DST + 1,
                    443,
                    c.src_port,
                    9,
                    c.seq.wrapping_add(1),
                    true,
                    false
                )
            ),
            Classified::Invalid
        );
        assert_eq!(
            classify(
                &ctx,
                &tcp_reply(DST, 443, c.src_port, 9, c.seq.wrapping_add(1), false, false)
            ),
            Classified::Invalid
        );
    }

    fn icmp_error(ctx: &ClassifyCtx, code: u8, tamper: bool) -> Vec<u8> {
        let (frame, _) = probe(ctx, DST, 8080);
        let mut quoted = frame[IP_OFFSET..IP_OFFSET + 28].to_vec();
        if tamper {
            quoted[24] ^= 1; // sequence number
        }
        let b = PacketBuilder::ipv4(0xc612_0002u32.to_be_bytes(), SRC.to_be_bytes(), 64).icmpv4(
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0).unwrap(),
            ),
        );
        let mut v = Vec::new();
        b.write(&mut v, &quoted).unwrap();
        v
    }

    #[test]
    fn icmp_unreachable_is_filtered_with_nmaps_reason() {
        let ctx = ctx();
        for (code, reason) in [
            (0, Reason::NetUnreach),
            (1, Reason::HostUnreach),
            (2, Reason::ProtoUnreach),
            (3, Reason::PortUnreach),
            (9, Reason::NetProhibited),
            (10, Reason::HostProhibited),
            (13, Reason::AdminProhibited),
        ] {
            let Classified::Verdict(v) = classify(&ctx, &icmp_error(&ctx, code, false)) else {
                panic!("code {code}")
            };
            assert_eq!(
                (v.ip, v.port, v.state, v.reason, v.responder),
                (DST, 8080, PortState::Filtered, reason, 0xc612_0002)
            );
        }
        assert_eq!(
            classify(&ctx, &icmp_error(&ctx, 4, false)),
            Classified::Unrelated
        );
        assert_eq!(
            classify(&ctx, &icmp_error(&ctx, 13, true)),
            Classified::Invalid
        );
    }
}
