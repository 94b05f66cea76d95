//! SCTP scans (nmap's `-sY` and `-sZ`): an INIT, or a COOKIE ECHO no endpoint issued, from a
//! source port chosen by the cookie, with the cookie as the tag the answer must carry (the
//! INIT's initiate tag, the COOKIE ECHO's verification tag; RFC 9260 makes both the
//! verification tag of an INIT ACK or ABORT sent back). `-sY`: INIT ACK open, ABORT closed,
//! ICMP unreachable or silence filtered. `-sZ`: ABORT closed, ICMP unreachable filtered,
//! silence open|filtered (an open port drops a stale cookie).

use std::net::IpAddr;

use crate::{
    cookie::ProbeCookie,
    wire::{
        put_u16, put_u32,
        repr::L4Repr,
        sctp::{self, SctpHeader, PROTO_SCTP},
        template::{FrameParams, FrameTemplate},
        IpPacket,
    },
};

use super::{
    tcp::{self, icmp_reason},
    udp, Classified, ClassifyCtx, PortScan, PortState, ProbeModule, Proto, Reason, ScanType,
    Verdict,
};

/// Which chunk the probes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Init,
    CookieEcho,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SctpScan {
    chunk: Chunk,
}

impl SctpScan {
    /// `-sY`
    pub(crate) fn init() -> Self {
        Self { chunk: Chunk::Init }
    }

    /// `-sZ`
    pub(crate) fn cookie_echo() -> Self {
        Self {
            chunk: Chunk::CookieEcho,
        }
    }
}

/// The tag a probe carries and its answer must: the cookie, never zero (an INIT with initiate
/// tag 0 is aborted whatever the port).
#[inline(always)]
fn tag(c: &ProbeCookie) -> u32 {
    c.seq.max(1)
}

impl ProbeModule for SctpScan {
    fn scan(&self) -> ScanType {
        match self.chunk {
            Chunk::Init => ScanType::SctpInit,
            Chunk::CookieEcho => ScanType::SctpCookieEcho,
        }
    }

    fn cookie_tag(&self) -> u8 {
        PROTO_SCTP
    }

    fn result_proto(&self) -> Proto {
        Proto::Sctp
    }

    fn template(&self, params: &FrameParams, _port: u16) -> FrameTemplate {
        let packet = match self.chunk {
            Chunk::Init => sctp::init(0),
            Chunk::CookieEcho => sctp::cookie_echo(0),
        };
        FrameTemplate::new(params, &L4Repr::Raw(PROTO_SCTP, &packet))
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
        let n = tpl.stamp(frame, dst, c.ident(tpl.family()));
        let l4 = tpl.l4_offset();
        put_u16(frame, l4, c.src_port);
        put_u16(frame, l4 + 2, dport);
        match self.chunk {
            Chunk::Init => {
                put_u32(frame, l4 + sctp::INIT_TAG_AT, tag(c));
                put_u32(frame, l4 + sctp::INIT_TSN_AT, c.seq);
            }
            Chunk::CookieEcho => put_u32(frame, l4 + sctp::VTAG_AT, tag(c)),
        }
        sctp::fill_checksum(&mut frame[l4..n]);
        n
    }

    fn silence(&self) -> (PortState, Reason) {
        match self.chunk {
            Chunk::Init => (PortState::Filtered, Reason::NoResponse),
            Chunk::CookieEcho => (PortState::OpenFiltered, Reason::NoResponse),
        }
    }
}

impl PortScan for SctpScan {
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() != PROTO_SCTP {
            return classify_icmp(ip, ctx);
        }
        let Some(h) = SctpHeader::parse(ip.payload()) else {
            return Classified::Invalid;
        };
        let Some(c) = ctx
            .jar
            .check_port(ip.dst(), ip.src(), h.dst_port, h.src_port, PROTO_SCTP)
        else {
            return Classified::Invalid;
        };
        if h.vtag != tag(&c) {
            return Classified::Invalid;
        }
        let (state, reason) = match (h.chunk, self.chunk) {
            (sctp::CHUNK_INIT_ACK, Chunk::Init) => (PortState::Open, Reason::InitAck),
            (sctp::CHUNK_ABORT, _) => (PortState::Closed, Reason::Abort),
            _ => return Classified::Unrelated,
        };
        Classified::Reply(Verdict {
            ip: ip.src(),
            port: h.src_port,
            proto: Proto::Sctp,
            state,
            reason,
            ttl: ip.ttl(),
            responder: ip.src(),
        })
    }
}

/// An ICMP error quoting one of our SCTP probes, checked as a UDP probe's is (quoted source
/// port and IP identification): `filtered`, with the code's reason, as nmap reads them.
fn classify_icmp(ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
    match udp::match_icmp_by_port(ip, ctx, PROTO_SCTP, PROTO_SCTP) {
        tcp::QuoteMatch::Ours(q) => match icmp_reason(q.kind, q.family) {
            Some(reason) => q.verdict(Proto::Sctp, PortState::Filtered, reason),
            None => Classified::Unrelated,
        },
        tcp::QuoteMatch::Forged => Classified::Invalid,
        tcp::QuoteMatch::NotOurs => Classified::Unrelated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::*;

    /// An SCTP packet from `from:sport` to us with `vtag` and one chunk of type `chunk`.
    fn sctp_reply(from: IpAddr, sport: u16, dport: u16, vtag: u32, chunk: u8) -> Vec<u8> {
        let mut l4 = sctp::init(dport);
        put_u16(&mut l4, 0, sport);
        put_u32(&mut l4, sctp::VTAG_AT, vtag);
        l4[sctp::HEADER_LEN] = chunk;
        sctp::fill_checksum(&mut l4);
        let mut v = Vec::new();
        match (from, src_for(from)) {
            (IpAddr::V4(f), IpAddr::V4(t)) => {
                etherparse::Ipv4Header::new(l4.len() as u16, 63, 132.into(), f.octets(), t.octets())
                    .unwrap()
                    .write(&mut v)
                    .unwrap()
            }
            (IpAddr::V6(f), IpAddr::V6(t)) => etherparse::Ipv6Header {
                payload_length: l4.len() as u16,
                next_header: 132.into(),
                hop_limit: 63,
                source: f.octets(),
                destination: t.octets(),
                ..Default::default()
            }
            .write(&mut v)
            .unwrap(),
            _ => unreachable!(),
        }
        v.extend_from_slice(&l4);
        v
    }

    #[test]
    fn probes_carry_the_cookie_in_port_and_tag_with_a_valid_crc() {
        let ctx = ctx();
        for (m, at) in [
            (SctpScan::init(), sctp::INIT_TAG_AT),
            (SctpScan::cookie_echo(), sctp::VTAG_AT),
        ] {
            for dst in [DST, DST6] {
                let (f, c) = build(&m, &ctx, dst, 80);
                let ip = IpPacket::from_frame(&f).unwrap();
                assert_eq!(ip.protocol(), PROTO_SCTP);
                assert_eq!(ip.ident(), c.ident(ip.family()));
                let mut p = ip.payload().to_vec();
                let h = SctpHeader::parse(&p).unwrap();
                assert_eq!((h.src_port, h.dst_port), (c.src_port, 80));
                assert_eq!(
                    u32::from_be_bytes(p[at..at + 4].try_into().unwrap()),
                    tag(&c)
                );
                let stored = u32::from_le_bytes(p[8..12].try_into().unwrap());
                p[8..12].fill(0);
                assert_eq!(sctp::crc32c(&p), stored);
            }
        }
    }

    #[test]
    fn answers_read_as_nmap_reads_them() {
        let ctx = ctx();
        let cases = [
            (
                SctpScan::init(),
                sctp::CHUNK_INIT_ACK,
                Some((PortState::Open, Reason::InitAck)),
            ),
            (
                SctpScan::init(),
                sctp::CHUNK_ABORT,
                Some((PortState::Closed, Reason::Abort)),
            ),
            (
                SctpScan::cookie_echo(),
                sctp::CHUNK_ABORT,
                Some((PortState::Closed, Reason::Abort)),
            ),
            (SctpScan::cookie_echo(), sctp::CHUNK_INIT_ACK, None),
        ];
        for (m, chunk, want) in cases {
            for dst in [DST, DST6] {
                let (_, c) = build(&m, &ctx, dst, 80);
                let got = classify(&m, &ctx, &sctp_reply(dst, 80, c.src_port, tag(&c), chunk));
                match want {
                    Some((state, reason)) => {
                        let Classified::Reply(v) = got else {
                            panic!("{got:?}")
                        };
                        assert_eq!(
                            (v.ip, v.port, v.proto, v.state, v.reason),
                            (dst, 80, Proto::Sctp, state, reason)
                        );
                    }
                    None => assert_eq!(got, Classified::Unrelated),
                }
                // The wrong tag, or another port: not ours.
                let forged = sctp_reply(dst, 80, c.src_port, tag(&c) ^ 1, chunk);
                assert_eq!(classify(&m, &ctx, &forged), Classified::Invalid);
                let elsewhere = sctp_reply(dst, 81, c.src_port, tag(&c), chunk);
                assert_eq!(classify(&m, &ctx, &elsewhere), Classified::Invalid);
            }
        }
    }

    #[test]
    fn icmp_unreachable_is_filtered_and_silence_as_nmap() {
        let ctx = ctx();
        let m = SctpScan::init();
        for (code, reason) in [
            (3, Reason::PortUnreach),
            (2, Reason::ProtoUnreach),
            (13, Reason::AdminProhibited),
        ] {
            let Classified::Reply(v) = classify(&m, &ctx, &icmp_error(&m, &ctx, 80, code, false))
            else {
                panic!("code {code}")
            };
            assert_eq!(
                (v.ip, v.port, v.state, v.reason, v.responder),
                (DST, 80, PortState::Filtered, reason, ROUTER)
            );
            assert_eq!(
                classify(&m, &ctx, &icmp_error(&m, &ctx, 80, code, true)),
                Classified::Invalid
            );
        }
        let Classified::Reply(v) =
            classify(&m, &ctx, &icmp_error_from(&m, &ctx, 80, 1, false, ROUTER6))
        else {
            panic!()
        };
        assert_eq!(
            (v.ip, v.state, v.reason),
            (DST6, PortState::Filtered, Reason::AdminProhibited)
        );
        assert_eq!(m.silence(), (PortState::Filtered, Reason::NoResponse));
        assert_eq!(
            SctpScan::cookie_echo().silence(),
            (PortState::OpenFiltered, Reason::NoResponse)
        );
    }
}
