//! ICMP echo sweep (`-PE`, `--ping`): host discovery. The cookie is the echo identifier (drawn
//! from the source-port range, which the XDP program steers) and sequence number.
//! `up` (echo reply); `down` when a router reports the host unreachable, or with
//! `--report-silent` when nothing answers.

use crate::{
    cookie::ProbeCookie,
    io::xdp::{STEER_ANY_QUOTED, STEER_ECHO_REPLY},
    wire::{
        checksum, icmp, put_u16,
        template::{FrameParams, FrameTemplate, L4_OFFSET},
        IcmpPacket, Ipv4Packet, PROTO_ICMP,
    },
};

use super::{tcp, Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason, Verdict};

#[derive(Debug, Clone, Copy, Default)]
pub struct PingScan;

/// An echo request template (identifier, sequence and checksum zero, no data, as nmap's -PE).
pub fn echo_template(params: &FrameParams) -> FrameTemplate {
    let mut l4 = [0u8; icmp::HEADER_LEN];
    IcmpPacket::init(&mut l4[..]).set_msg_type(icmp::TYPE_ECHO_REQUEST);
    FrameTemplate::new(params, PROTO_ICMP, &l4, false)
}

#[inline(always)]
pub fn write_echo(frame: &mut [u8], tpl: &FrameTemplate, dst: u32, c: &ProbeCookie) -> usize {
    let n = tpl.stamp_ipv4(frame, dst, c.ip_id);
    let seq = c.seq as u16;
    put_u16(frame, L4_OFFSET + 4, c.src_port);
    put_u16(frame, L4_OFFSET + 6, seq);
    put_u16(
        frame,
        L4_OFFSET + 2,
        checksum::finish(tpl.l4_sum() + c.src_port as u64 + seq as u64),
    );
    n
}

/// An echo reply answering our request to `ip.src()` with cookie tag `tag` and "port" `port`.
pub fn is_echo_reply(
    ip: &Ipv4Packet<&[u8]>,
    ctx: &ClassifyCtx,
    port: u16,
    tag: u8,
) -> Option<bool> {
    let msg = IcmpPacket::new_checked(ip.payload()).ok()?;
    if msg.msg_type() != icmp::TYPE_ECHO_REPLY {
        return None;
    }
    let c = ctx
        .jar
        .check_port(ctx.src_ip, ip.src(), msg.echo_ident(), port, tag);
    Some(c.is_some_and(|c| c.seq as u16 == msg.echo_seq()))
}

impl ProbeModule for PingScan {
    fn name(&self) -> &'static str {
        "ping"
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
        dst: u32,
        _dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        write_echo(frame, tpl, dst, c)
    }

    fn classify(&self, ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() != PROTO_ICMP {
            return Classified::Unrelated;
        }
        match is_echo_reply(ip, ctx, 0, PROTO_ICMP) {
            Some(true) => {
                return Classified::Verdict(Verdict {
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
        let Ok(qe) = IcmpPacket::new_checked(q.payload()) else {
            return Classified::Unrelated;
        };
        if q.protocol() != PROTO_ICMP || qe.msg_type() != icmp::TYPE_ECHO_REQUEST {
            return Classified::Unrelated;
        }
        match ctx
            .jar
            .check_port(ctx.src_ip, q.dst(), qe.echo_ident(), 0, PROTO_ICMP)
        {
            Some(c) if c.seq as u16 == qe.echo_seq() => {
                match tcp::icmp_reason(msg.msg_type(), msg.code()) {
                    Some(reason) => {
                        // Protocol or port unreachable can only come from the host itself: it is up.
                        let from_host = ip.src() == q.dst()
                            && msg.msg_type() == icmp::TYPE_DEST_UNREACH
                            && matches!(msg.code(), icmp::unreach::PROTOCOL | icmp::unreach::PORT);
                        Classified::Verdict(Verdict {
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
                }
            }
            _ => Classified::Invalid,
        }
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Down, Reason::NoResponse)
    }

    fn steer_flags(&self) -> u32 {
        STEER_ECHO_REPLY | STEER_ANY_QUOTED
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
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let msg = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum());
        assert_eq!(
            (msg.msg_type(), msg.echo_ident(), msg.echo_seq()),
            (8, c.src_port, c.seq as u16)
        );
        let mut v = Vec::new();
        PacketBuilder::ipv4(DST.to_be_bytes(), SRC.to_be_bytes(), 61)
            .icmpv4_echo_reply(c.src_port, c.seq as u16)
            .write(&mut v, &[])
            .unwrap();
        let Classified::Verdict(r) = classify(&PingScan, &ctx, &v) else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason, r.proto),
            (DST, PortState::Up, Reason::EchoReply, Proto::Icmp)
        );
        let mut bad = Vec::new();
        PacketBuilder::ipv4(DST.to_be_bytes(), SRC.to_be_bytes(), 61)
            .icmpv4_echo_reply(c.src_port, (c.seq as u16).wrapping_add(1))
            .write(&mut bad, &[])
            .unwrap();
        assert_eq!(classify(&PingScan, &ctx, &bad), Classified::Invalid);
        let Classified::Verdict(r) =
            classify(&PingScan, &ctx, &icmp_error(&PingScan, &ctx, 0, 1, false))
        else {
            panic!()
        };
        assert_eq!(
            (r.ip, r.state, r.reason),
            (DST, PortState::Down, Reason::HostUnreach)
        );
    }
}
