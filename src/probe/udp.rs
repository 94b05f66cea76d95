//! UDP scan (`-sU`): a datagram per payload the port has (see `udp_payloads`); the cookie is in
//! the source port and the IP identification, and in the field of the payload its protocol
//! echoes (`udp_echo`: DNS ID and 0x20 case, NTP origin, SNMP request-id...), which a reply must
//! carry back. `open` (a UDP reply), `closed` (ICMP port unreachable), `filtered` (other ICMP
//! unreachable codes), `open|filtered` (silence).

use std::net::IpAddr;

use crate::wire::repr::{L4Repr, UdpRepr};
use crate::{
    cookie::ProbeCookie,
    wire::{
        checksum,
        template::{FrameParams, FrameTemplate},
        IcmpKind, IpPacket, UdpDatagram, Unreach, PROTO_UDP,
    },
};

use super::{
    tcp::{self, icmp_reason},
    udp_echo::Echo,
    udp_payloads::Payloads,
    Classified, ClassifyCtx, PortScan, PortState, ProbeModule, Proto, Reason, Verdict,
};

#[derive(Debug, Clone)]
pub(crate) struct UdpScan {
    payloads: Payloads,
}

impl UdpScan {
    pub(crate) fn new(payloads: Payloads) -> Self {
        Self { payloads }
    }
}

/// The template of a UDP probe carrying `payload` (ports and checksum zero).
pub(crate) fn template(params: &FrameParams, payload: &[u8]) -> FrameTemplate {
    FrameTemplate::new(
        params,
        &L4Repr::Udp(UdpRepr {
            src_port: 0,
            dst_port: 0,
            payload,
        }),
    )
}

/// Stamps a UDP template: source port from the cookie, destination port, checksum, and the IP
/// identification (IPv4 id or IPv6 flow label).
#[inline(always)]
pub(crate) fn write(
    frame: &mut [u8],
    tpl: &FrameTemplate,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    ident: u32,
) -> usize {
    write_stamped(frame, tpl, dst, sport, dport, ident, None)
}

/// [`write`], with cookie bits stamped into the payload where its protocol echoes them.
#[inline(always)]
pub(crate) fn write_stamped(
    frame: &mut [u8],
    tpl: &FrameTemplate,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    ident: u32,
    stamp: Option<(Echo, u32)>,
) -> usize {
    let n = tpl.stamp(frame, dst, ident);
    let mut extra = 0u64;
    if let Some((echo, bits)) = stamp {
        // The template's sum holds its own payload bytes: take out the old words, add the new.
        let payload = &mut frame[tpl.l4_offset() + 8..n];
        let old = words_sum(payload);
        echo.stamp(payload, bits);
        extra = words_sum(payload) + (payload.len().div_ceil(2) as u64) * 0xffff - old;
    }
    let mut d = UdpDatagram::patch(&mut frame[tpl.l4_offset()..n]);
    d.set_src_port(sport);
    d.set_dst_port(dport);
    let sum = tpl.l4_sum() + tpl.dst_sum(dst) + sport as u64 + dport as u64 + extra;
    d.set_checksum(match checksum::finish(sum) {
        0 => 0xffff, // zero means "no checksum" in UDP
        c => c,
    });
    n
}

/// The payload as 16-bit words (it starts at an even offset of the UDP header), unfolded.
fn words_sum(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|w| u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u64)
        .sum()
}

/// An ICMP error quoting a probe of ours of protocol `proto` whose cookie is its source port
/// and IP identification (IPv4 id, or IPv6 flow label): UDP's, and SCTP's (whose first 8 bytes
/// hold the ports where UDP's do).
pub(crate) fn match_icmp_by_port(
    ip: &IpPacket,
    ctx: &ClassifyCtx,
    proto: u8,
    tag: u8,
) -> tcp::QuoteMatch {
    let Some((msg, q)) = tcp::quoted(ip, ctx) else {
        return tcp::QuoteMatch::NotOurs;
    };
    if q.protocol() != proto {
        return tcp::QuoteMatch::NotOurs;
    }
    let Ok(qu) = UdpDatagram::new_checked(q.payload()) else {
        return tcp::QuoteMatch::NotOurs;
    };
    if !ctx.jar.ports().contains(qu.src_port()) {
        return tcp::QuoteMatch::NotOurs;
    }
    match ctx
        .jar
        .check_port(q.src(), q.dst(), qu.src_port(), qu.dst_port(), tag)
    {
        Some(c) if c.ident(q.family()) == q.ident() => {
            tcp::QuoteMatch::Ours(tcp::QuotedProbe::new(ip, &msg, q.dst(), qu.dst_port()))
        }
        _ => tcp::QuoteMatch::Forged,
    }
}

impl ProbeModule for UdpScan {
    fn scan(&self) -> super::ScanType {
        super::ScanType::Udp
    }

    fn cookie_tag(&self) -> u8 {
        PROTO_UDP
    }

    fn result_proto(&self) -> Proto {
        Proto::Udp
    }

    fn template(&self, params: &FrameParams, port: u16) -> FrameTemplate {
        match self.payloads.for_port(port).first() {
            Some(p) => template(params, p).with_mark(p.echo.to_mark()),
            None => template(params, &[]),
        }
    }

    fn per_port_templates(&self) -> bool {
        true
    }

    fn variants(&self, params: &FrameParams, port: u16) -> Vec<FrameTemplate> {
        match self.payloads.for_port(port) {
            [] => vec![template(params, &[])],
            list => list
                .iter()
                .map(|p| template(params, p).with_mark(p.echo.to_mark()))
                .collect(),
        }
    }

    #[inline(always)]
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        // The template says where its payload takes the cookie: no lookup per probe.
        let stamp = match tpl.mark() {
            0 => None,
            m => Some((Echo::from_mark(m), c.seq)),
        };
        write_stamped(
            frame,
            tpl,
            dst,
            c.src_port,
            dport,
            c.ident(tpl.family()),
            stamp,
        )
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::OpenFiltered, Reason::NoResponse)
    }
}

impl PortScan for UdpScan {
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() == PROTO_UDP {
            let Ok(d) = UdpDatagram::new_checked(ip.payload()) else {
                return Classified::Invalid;
            };
            let Some(c) =
                ctx.jar
                    .check_port(ip.dst(), ip.src(), d.dst_port(), d.src_port(), PROTO_UDP)
            else {
                return Classified::Invalid;
            };
            // Where the port's payload has a field its protocol echoes, the reply must carry
            // the cookie there (or be the datagram sent back unchanged).
            let list = self.payloads.for_port(d.src_port());
            if list.iter().any(|p| p.echo != Echo::None) {
                // The payload as this probe carried it, rebuilt on the stack (built-in payloads
                // with an echoed field fit in a frame).
                let mut buf = [0u8; 1500];
                let answered = list.iter().any(|p| {
                    let Some(sent) = buf.get_mut(..p.len()) else {
                        return false;
                    };
                    sent.copy_from_slice(p);
                    p.echo.stamp(sent, c.seq);
                    p.echo.answers(sent, d.payload())
                });
                if !answered {
                    return Classified::Invalid;
                }
            }
            return Classified::Reply(Verdict {
                ip: ip.src(),
                port: d.src_port(),
                proto: Proto::Udp,
                state: PortState::Open,
                reason: Reason::UdpResponse,
                ttl: ip.ttl(),
                responder: ip.src(),
            });
        }
        match match_icmp_by_port(ip, ctx, PROTO_UDP, PROTO_UDP) {
            tcp::QuoteMatch::Ours(q) => {
                // Only the target itself can say its port is closed; a router saying so is a filter.
                if q.kind == IcmpKind::Unreachable(Unreach::Port) && q.is_from_target() {
                    return q.verdict(Proto::Udp, PortState::Closed, Reason::PortUnreach);
                }
                match icmp_reason(q.kind, q.family) {
                    Some(reason) => q.verdict(Proto::Udp, PortState::Filtered, reason),
                    None => Classified::Unrelated,
                }
            }
            tcp::QuoteMatch::Forged => Classified::Invalid,
            tcp::QuoteMatch::NotOurs => Classified::Unrelated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn frames_carry_each_payload_with_valid_checksum() {
        let ctx = ctx();
        let m = UdpScan::new(Payloads::builtin());
        let tpls = m.variants(&params(), 161);
        assert_eq!(tpls.len(), 2);
        let c = ctx.jar.cookie(SRC, DST, 161, PROTO_UDP);
        for t in &tpls {
            let mut f = vec![0u8; 2048];
            let n = m.write(&mut f, t, DST, 161, &c);
            let s = SlicedPacket::from_ethernet(&f[..n]).unwrap();
            let Some(TransportSlice::Udp(u)) = s.transport else {
                panic!()
            };
            assert_eq!((u.source_port(), u.destination_port()), (c.src_port, 161));
            let ip = crate::wire::Ipv4Packet::new_checked(&f[14..n]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ident(), c.ip_id);
            let acc = checksum::pseudo_header_ip(SRC, DST, PROTO_UDP, ip.payload().len() as u32);
            assert!(checksum::verify(checksum::sum(acc, ip.payload())));
            // Byte for byte what etherparse builds.
            let mut want = Vec::new();
            let mut h = etherparse::Ipv4Header::new(
                (8 + u.payload().len()) as u16,
                64,
                etherparse::IpNumber::UDP,
                [198, 18, 0, 1],
                [198, 19, 1, 5],
            )
            .unwrap();
            h.identification = c.ip_id;
            h.dont_fragment = false;
            PacketBuilder::ethernet2(SMAC, DMAC)
                .ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
                .udp(c.src_port, 161)
                .write(&mut want, u.payload())
                .unwrap();
            assert_eq!(&f[..n], &want[..]);
        }
        assert_eq!(
            m.variants(&params(), 9).len(),
            1,
            "empty datagram for ports without payload"
        );
    }

    #[test]
    fn reply_is_open_port_unreachable_is_closed() {
        let ctx = ctx();
        let m = UdpScan::new(Payloads::builtin());
        let (probe, c) = build(&m, &ctx, DST, 53);
        // The lab's echo responder: the datagram back unchanged, cookie and all.
        let v = udp_reply(DST, 53, c.src_port, &probe[14 + 20 + 8..]);
        let Classified::Reply(r) = classify(&m, &ctx, &v) else {
            panic!()
        };
        assert_eq!(
            (r.port, r.state, r.reason),
            (53, PortState::Open, Reason::UdpResponse)
        );
        let Classified::Reply(r) =
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 53, 3, false, DST))
        else {
            panic!()
        };
        assert_eq!(
            (r.port, r.state, r.reason),
            (53, PortState::Closed, Reason::PortUnreach)
        );
        // A router cannot know the port is closed: nmap calls that filtered.
        let Classified::Reply(r) = classify(&m, &ctx, &icmp_error(&m, &ctx, 53, 3, false)) else {
            panic!()
        };
        assert_eq!(
            (r.state, r.reason, r.responder),
            (PortState::Filtered, Reason::PortUnreach, ROUTER)
        );
        let Classified::Reply(r) = classify(&m, &ctx, &icmp_error(&m, &ctx, 53, 13, false)) else {
            panic!()
        };
        assert_eq!(
            (r.state, r.reason),
            (PortState::Filtered, Reason::AdminProhibited)
        );
        assert_eq!(
            classify(&m, &ctx, &icmp_error(&m, &ctx, 53, 3, true)),
            Classified::Invalid
        );
        assert_eq!(m.silence().0, PortState::OpenFiltered);
    }

    #[test]
    fn a_reply_must_carry_the_cookie_where_its_protocol_echoes_it() {
        let ctx = ctx();
        let m = UdpScan::new(Payloads::builtin());
        let (probe, c) = build(&m, &ctx, DST, 53);
        let query = &probe[14 + 20 + 8..];
        // A DNS server's answer: our ID, our question in its 0x20 case, an answer appended.
        let mut answer = query.to_vec();
        answer[2] = 0x85;
        answer[7] = 1;
        answer.extend_from_slice(b"\xc0\x0c\x00\x10\x00\x03\0\0\0\0\0\x07\x06dnsmsq");
        assert!(matches!(
            classify(&m, &ctx, &udp_reply(DST, 53, c.src_port, &answer)),
            Classified::Reply(_)
        ));
        // Every ID and case pattern but ours is forged, though the port is right.
        let mut forged = answer.clone();
        forged[1] ^= 0x40;
        assert_eq!(
            classify(&m, &ctx, &udp_reply(DST, 53, c.src_port, &forged)),
            Classified::Invalid
        );
        let mut recased = answer;
        let letter = recased[13..24]
            .iter()
            .position(|b| b.is_ascii_alphabetic())
            .unwrap()
            + 13;
        recased[letter] ^= 0x20;
        assert_eq!(
            classify(&m, &ctx, &udp_reply(DST, 53, c.src_port, &recased)),
            Classified::Invalid
        );
        // The UDP checksum of a stamped probe is right.
        let ip = crate::wire::Ipv4Packet::new_checked(&probe[14..]).unwrap();
        let acc = checksum::pseudo_header_ip(SRC, DST, PROTO_UDP, ip.payload().len() as u32);
        assert!(checksum::verify(checksum::sum(acc, ip.payload())));
        // NTP: the transmit timestamp comes back as the origin timestamp.
        let (probe, c) = build(&m, &ctx, DST, 123);
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x24;
        ntp[24..32].copy_from_slice(&probe[14 + 20 + 8 + 40..14 + 20 + 8 + 48]);
        assert!(matches!(
            classify(&m, &ctx, &udp_reply(DST, 123, c.src_port, &ntp)),
            Classified::Reply(_)
        ));
        ntp[24] ^= 1;
        assert_eq!(
            classify(&m, &ctx, &udp_reply(DST, 123, c.src_port, &ntp)),
            Classified::Invalid
        );
        // A port whose payload echoes nothing keeps the port check alone.
        let c = ctx.jar.cookie(SRC, DST, 9, PROTO_UDP);
        assert!(matches!(
            classify(&m, &ctx, &udp_reply(DST, 9, c.src_port, b"anything")),
            Classified::Reply(_)
        ));
    }

    #[test]
    fn a_quic_port_takes_quic_with_our_connection_id_or_a_dtls_record_nothing_else() {
        let ctx = ctx();
        let m = UdpScan::new(Payloads::builtin());
        let c = ctx.jar.cookie(SRC, DST, 443, PROTO_UDP);
        let reply = |data: &[u8]| classify(&m, &ctx, &udp_reply(DST, 443, c.src_port, data));
        // The right port alone no longer passes: DTLS's missing echo let anything through.
        assert_eq!(reply(b"anything"), Classified::Invalid);
        // Version Negotiation: our DCID comes back as its SCID.
        let vn = |scid: [u8; 8]| {
            let mut v = vec![0x80, 0, 0, 0, 0, 0, 8];
            v.extend_from_slice(&scid);
            v.extend_from_slice(&[0, 0, 0, 1]);
            v
        };
        let mut dcid = [0u8; 8];
        dcid[..4].copy_from_slice(&c.seq.to_be_bytes());
        dcid[4..].copy_from_slice(&(!c.seq).to_be_bytes());
        assert!(matches!(reply(&vn(dcid)), Classified::Reply(_)));
        let mut wrong = dcid;
        wrong[0] ^= 1;
        assert_eq!(reply(&vn(wrong)), Classified::Invalid);
        // OpenSSL 3's HelloVerifyRequest as it answers our ClientHello (record sequence 0).
        let mut hvr = vec![
            22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x23, 3, 0, 0, 0x17,
        ];
        hvr.resize(13 + 0x23, 0);
        assert!(matches!(reply(&hvr), Classified::Reply(_)));
        // A record whose length overruns the datagram is not one.
        assert_eq!(reply(&hvr[..20]), Classified::Invalid);
    }

    #[test]
    fn ipv6_probe_reply_and_icmpv6_port_unreachable() {
        let ctx = ctx();
        let m = UdpScan::new(Payloads::builtin());
        let (f, c) = build(&m, &ctx, DST6, 53);
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip6)) = s.net else {
            panic!("not ipv6")
        };
        assert_eq!(ip6.header().flow_label().value(), c.flow);
        let Some(TransportSlice::Udp(u)) = s.transport else {
            panic!()
        };
        assert_eq!((u.source_port(), u.destination_port()), (c.src_port, 53));
        // Verify the UDP checksum over the IPv6 pseudo header.
        let l4 = &f[54..];
        let acc = checksum::pseudo_header_ip(SRC6, DST6, PROTO_UDP, l4.len() as u32);
        assert!(checksum::verify(checksum::sum(acc, l4)));
        let Classified::Reply(r) = classify(&m, &ctx, &udp_reply(DST6, 53, c.src_port, &f[62..]))
        else {
            panic!()
        };
        // The right port but no cookie in the DNS ID: forged.
        assert_eq!(
            classify(&m, &ctx, &udp_reply(DST6, 53, c.src_port, b"a")),
            Classified::Invalid
        );
        assert_eq!((r.ip, r.state), (DST6, PortState::Open));
        // ICMPv6 port unreachable (code 4) from the target: closed; from a router: filtered.
        let Classified::Reply(r) =
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 53, 4, false, DST6))
        else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason),
            (DST6, PortState::Closed, Reason::PortUnreach)
        );
        let Classified::Reply(r) =
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 53, 1, false, ROUTER6))
        else {
            panic!()
        };
        assert_eq!(
            (r.state, r.reason, r.responder),
            (PortState::Filtered, Reason::AdminProhibited, ROUTER6)
        );
        // A quote whose flow label is not our cookie is forged.
        assert_eq!(
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 53, 4, true, DST6)),
            Classified::Invalid
        );
    }
}
