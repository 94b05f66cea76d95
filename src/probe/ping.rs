//! ICMP echo sweep (`-PE`, `--ping`): host discovery over ICMPv4 (echo request 8) or ICMPv6
//! (echo request 128). The cookie is the echo identifier (drawn from the source-port range, which
//! the XDP program steers) and sequence number. `up` (echo reply); `down` when a router reports
//! the host unreachable, or with `--report-silent` when nothing answers.

use std::net::IpAddr;

use crate::wire::{
    repr::{IcmpRepr, L4Repr},
    IcmpPacket,
};
use crate::{
    cookie::ProbeCookie,
    wire::{
        checksum, icmp, icmpv6,
        template::{FrameParams, FrameTemplate},
        Family, IcmpKind, IcmpMessage, IpPacket, Unreach, PROTO_ICMP,
    },
};

use super::{
    tcp, Classified, ClassifyCtx, PortScan, PortState, ProbeModule, Proto, Reason, Replies, Verdict,
};

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PingScan;

/// An echo request template of the parameters' family (identifier, sequence and checksum zero,
/// no data, as nmap's -PE).
pub(crate) fn echo_template(params: &FrameParams) -> FrameTemplate {
    let msg_type = match params.family() {
        Family::V4 => icmp::TYPE_ECHO_REQUEST,
        Family::V6 => icmpv6::TYPE_ECHO_REQUEST,
    };
    // Identifier and sequence are per probe.
    FrameTemplate::new(
        params,
        &L4Repr::Icmp(IcmpRepr {
            msg_type,
            code: 0,
            ident: 0,
            seq: 0,
            data: &[],
        }),
    )
}

#[inline(always)]
pub(crate) fn write_echo(
    frame: &mut [u8],
    tpl: &FrameTemplate,
    dst: IpAddr,
    c: &ProbeCookie,
) -> usize {
    let n = tpl.stamp(frame, dst, c.ident(tpl.family()));
    let seq = c.seq as u16;
    let mut m = IcmpPacket::patch(&mut frame[tpl.l4_offset()..n]);
    m.set_echo_ident(c.src_port);
    m.set_echo_seq(seq);
    m.set_checksum(checksum::finish(
        tpl.l4_sum() + tpl.dst_sum(dst) + c.src_port as u64 + seq as u64,
    ));
    n
}

/// An echo reply answering our request to `ip.src()` with cookie tag `tag` and "port" `port`:
/// `None` when `msg` is no echo reply, else whether its identifier and sequence check.
pub(crate) fn is_echo_reply(
    ip: &IpPacket,
    msg: &IcmpMessage,
    ctx: &ClassifyCtx,
    port: u16,
    tag: u8,
) -> Option<bool> {
    if msg.kind != IcmpKind::EchoReply {
        return None;
    }
    let c = ctx.jar.check_port(ip.dst(), ip.src(), msg.ident, port, tag);
    Some(c.is_some_and(|c| c.seq as u16 == msg.seq))
}

impl ProbeModule for PingScan {
    fn scan(&self) -> super::ScanType {
        super::ScanType::Ping
    }

    fn cookie_tag(&self) -> u8 {
        PROTO_ICMP
    }

    fn result_proto(&self) -> Proto {
        Proto::Icmp
    }

    fn template(&self, params: &FrameParams, _port: u16) -> FrameTemplate {
        echo_template(params)
    }

    #[inline(always)]
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        _dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        write_echo(frame, tpl, dst, c)
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Down, Reason::NoResponse)
    }

    fn replies(&self) -> Replies {
        Replies {
            echo_replies: true,
            any_quoted: true,
            ..Replies::default()
        }
    }
}

impl PortScan for PingScan {
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
        let Some(msg) = ip.icmp() else {
            return Classified::Unrelated;
        };
        match is_echo_reply(ip, &msg, ctx, 0, PROTO_ICMP) {
            Some(true) => {
                return Classified::Reply(Verdict {
                    ip: ip.src(),
                    port: 0,
                    proto: Proto::Icmp,
                    state: PortState::Up,
                    reason: Reason::EchoReply,
                    ttl: ip.ttl(),
                    responder: ip.src(),
                })
            }
            Some(false) => return Classified::Invalid,
            None => {}
        }
        // A router saying our request cannot be delivered.
        let Some((msg, q)) = tcp::quoted(ip, ctx) else {
            return Classified::Unrelated;
        };
        let Some(qe) = q.icmp() else {
            return Classified::Unrelated;
        };
        if qe.kind != IcmpKind::EchoRequest {
            return Classified::Unrelated;
        }
        match ctx
            .jar
            .check_port(q.src(), q.dst(), qe.ident, 0, PROTO_ICMP)
        {
            Some(c) if c.seq as u16 == qe.seq => match tcp::icmp_reason(msg.kind, msg.family) {
                Some(reason) => {
                    // Protocol or port unreachable can only come from the host itself: it is up.
                    let from_host = ip.src() == q.dst()
                        && matches!(
                            msg.kind,
                            IcmpKind::Unreachable(Unreach::Protocol | Unreach::Port)
                        );
                    Classified::Reply(Verdict {
                        ip: q.dst(),
                        port: 0,
                        proto: Proto::Icmp,
                        state: if from_host {
                            PortState::Up
                        } else {
                            PortState::Down
                        },
                        reason,
                        ttl: ip.ttl(),
                        responder: ip.src(),
                    })
                }
                None => Classified::Unrelated,
            },
            _ => Classified::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::*;
    use etherparse::PacketBuilder;

    #[test]
    fn echo_request_and_reply() {
        let ctx = ctx();
        let (f, c) = build(&PingScan, &ctx, DST, 0);
        let ip = crate::wire::Ipv4Packet::new_checked(&f[14..]).unwrap();
        let msg = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum());
        assert_eq!(
            (msg.msg_type(), msg.echo_ident(), msg.echo_seq()),
            (8, c.src_port, c.seq as u16)
        );
        let mut v = Vec::new();
        PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 61)
            .icmpv4_echo_reply(c.src_port, c.seq as u16)
            .write(&mut v, &[])
            .unwrap();
        let Classified::Reply(r) = classify(&PingScan, &ctx, &v) else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason, r.proto),
            (DST, PortState::Up, Reason::EchoReply, Proto::Icmp)
        );
        let mut bad = Vec::new();
        PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 61)
            .icmpv4_echo_reply(c.src_port, (c.seq as u16).wrapping_add(1))
            .write(&mut bad, &[])
            .unwrap();
        assert_eq!(classify(&PingScan, &ctx, &bad), Classified::Invalid);
        let Classified::Reply(r) =
            classify(&PingScan, &ctx, &icmp_error(&PingScan, &ctx, 0, 1, false))
        else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason),
            (DST, PortState::Down, Reason::HostUnreach)
        );
    }

    #[test]
    fn icmpv6_echo_request_and_reply() {
        let ctx = ctx();
        let (f, c) = build(&PingScan, &ctx, DST6, 0);
        let s = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::TransportSlice::Icmpv6(m)) = s.transport else {
            panic!("{s:?}")
        };
        assert_eq!(
            m.icmp_type(),
            etherparse::Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader {
                id: c.src_port,
                seq: c.seq as u16
            })
        );
        // The ICMPv6 checksum covers the pseudo header.
        let IpAddr::V6(s6) = SRC6 else { unreachable!() };
        let IpAddr::V6(d6) = DST6 else { unreachable!() };
        assert!(m.is_checksum_valid(s6.octets(), d6.octets()));
        let mut v = Vec::new();
        PacketBuilder::ipv6(d6.octets(), s6.octets(), 61)
            .icmpv6_echo_reply(c.src_port, c.seq as u16)
            .write(&mut v, &[])
            .unwrap();
        let Classified::Reply(r) = classify(&PingScan, &ctx, &v) else {
            panic!()
        };
        assert_eq!((r.ip, r.state, r.ttl), (DST6, PortState::Up, 61));
        let Classified::Reply(r) = classify(
            &PingScan,
            &ctx,
            &icmp_error_from(&PingScan, &ctx, 0, 3, false, ROUTER6),
        ) else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason),
            (DST6, PortState::Down, Reason::HostUnreach)
        );
    }
}
