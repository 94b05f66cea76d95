//! FIN (`-sF`), Null (`-sN`), Xmas (`-sX`) and Maimon (`-sM`) scans: probes without SYN, which
//! an RFC 793 stack answers with RST only when the port is closed. `closed` (RST), `filtered`
//! (ICMP unreachable), `open|filtered` (silence).

use crate::{
    cookie::ProbeCookie,
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet, TcpFlags, PROTO_TCP},
};

use super::{
    tcp::{self, TcpProbe},
    Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason,
};

#[derive(Debug, Clone, Copy)]
pub struct StealthScan {
    name: &'static str,
    probe: TcpProbe,
}

impl StealthScan {
    /// `name` is the scan's (fin, null, xmas, maimon); `flags` its probe's.
    pub fn new(name: &'static str, flags: u8) -> Self {
        Self {
            name,
            probe: TcpProbe { flags },
        }
    }
}

impl ProbeModule for StealthScan {
    fn name(&self) -> &'static str {
        self.name
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
                r.verdict(PortState::Closed, Reason::Reset)
            }
            _ => Classified::Invalid,
        }
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::OpenFiltered, Reason::NoResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{testutil::*, Verdict};

    #[test]
    fn rst_acknowledging_the_fin_is_closed() {
        let ctx = ctx();
        for (name, flags, consumed) in [
            ("fin", TcpFlags::FIN, 1u32),
            ("null", 0, 0),
            ("xmas", TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG, 1),
        ] {
            let m = StealthScan::new(name, flags);
            let (frame, c) = build(&m, &ctx, DST, 8080);
            assert_eq!(frame[47], flags, "{name}");
            let v = classify(
                &m,
                &ctx,
                &tcp_reply(
                    DST,
                    8080,
                    c.src_port,
                    0,
                    c.seq.wrapping_add(consumed),
                    "RA",
                    0,
                ),
            );
            assert!(
                matches!(
                    v,
                    Classified::Verdict(Verdict {
                        state: PortState::Closed,
                        ..
                    })
                ),
                "{name}: {v:?}"
            );
            let bad = classify(
                &m,
                &ctx,
                &tcp_reply(DST, 8080, c.src_port, 0, c.seq.wrapping_add(5), "RA", 0),
            );
            assert_eq!(bad, Classified::Invalid, "{name}");
            assert_eq!(m.silence().0, PortState::OpenFiltered);
        }
        // Maimon carries ACK: the RST's sequence number is our acknowledgment number.
        let m = StealthScan::new("maimon", TcpFlags::FIN | TcpFlags::ACK);
        let c = ctx.jar.cookie(SRC, DST, 8080, PROTO_TCP);
        let v = classify(
            &m,
            &ctx,
            &tcp_reply(DST, 8080, c.src_port, c.ack(), 0, "R", 0),
        );
        assert!(
            matches!(
                v,
                Classified::Verdict(Verdict {
                    state: PortState::Closed,
                    ..
                })
            ),
            "{v:?}"
        );
    }
}
