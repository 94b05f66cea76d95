//! ACK scan (`-sA`): maps firewall rules, not open ports. A RST means the probe got through
//! (`unfiltered`); an ICMP unreachable or silence means `filtered`.

use crate::{
    cookie::ProbeCookie,
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet, TcpFlags, PROTO_TCP},
};

use super::{
    tcp::{self, TcpProbe},
    Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason,
};

#[derive(Debug, Clone, Copy)]
pub struct AckScan {
    probe: TcpProbe,
}

impl AckScan {
    pub fn new(flags: u8) -> Self {
        Self {
            probe: TcpProbe { flags },
        }
    }
}

impl ProbeModule for AckScan {
    fn name(&self) -> &'static str {
        "ack"
    }

    fn cookie_tag(&self) -> u8 {
        PROTO_TCP
    }

    fn result_proto(&self) -> Proto {
        Proto::Tcp
    }

    fn template(&self, params: &FrameParams, _port: u16) -> FrameTemplate {
        self.probe.template(params)
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
        self.probe.write(frame, tpl, dst, dport, c)
    }

    fn classify(&self, ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() != PROTO_TCP {
            return tcp::classify_icmp(ip, ctx, PROTO_TCP);
        }
        match tcp::match_segment(ip, ctx, PROTO_TCP) {
            Some(r) if r.flags.has(TcpFlags::RST) && self.probe.rst_answers(&r) => {
                r.verdict(PortState::Unfiltered, Reason::Reset)
            }
            _ => Classified::Invalid,
        }
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Filtered, Reason::NoResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testutil::*;

    #[test]
    fn rst_is_unfiltered_icmp_is_filtered() {
        let ctx = ctx();
        let m = AckScan::new(TcpFlags::ACK);
        let (frame, c) = build(&m, &ctx, DST, 22);
        // The probe carries ACK with the cookie's acknowledgment number.
        assert_eq!(frame[47], TcpFlags::ACK);
        assert_eq!(
            u32::from_be_bytes(frame[42..46].try_into().unwrap()),
            c.ack()
        );
        // Linux answers an unexpected ACK with a RST whose sequence number is that ACK.
        let v = classify(
            &m,
            &ctx,
            &tcp_reply(DST, 22, c.src_port, c.ack(), 0, "R", 0),
        );
        assert!(
            matches!(
                v,
                Classified::Verdict(super::super::Verdict {
                    state: PortState::Unfiltered,
                    ..
                })
            ),
            "{v:?}"
        );
        assert_eq!(
            classify(
                &m,
                &ctx,
                &tcp_reply(DST, 22, c.src_port, c.ack() ^ 1, 0, "R", 0)
            ),
            Classified::Invalid
        );
        let Classified::Verdict(v) = classify(&m, &ctx, &icmp_error(&m, &ctx, 22, 13, false))
        else {
            panic!()
        };
        assert_eq!(
            (v.state, v.reason),
            (PortState::Filtered, Reason::AdminProhibited)
        );
    }
}
