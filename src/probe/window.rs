//! Window scan (`-sW`): an ACK scan that reads the RST's window, which some stacks set non-zero
//! for open ports: `open` (RST, window > 0), `closed` (RST, window 0), `filtered` otherwise.

use crate::{
    cookie::ProbeCookie,
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet, TcpFlags, PROTO_TCP},
};

use super::{
    tcp::{self, TcpProbe},
    Classified, ClassifyCtx, PortState, ProbeModule, Proto, Reason,
};

#[derive(Debug, Clone, Copy)]
pub struct WindowScan {
    probe: TcpProbe,
}

impl WindowScan {
    pub fn new(flags: u8) -> Self {
        Self {
            probe: TcpProbe { flags },
        }
    }
}

impl ProbeModule for WindowScan {
    fn name(&self) -> &'static str {
        "window"
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
                let state = if r.window > 0 {
                    PortState::Open
                } else {
                    PortState::Closed
                };
                r.verdict(state, Reason::Reset)
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
    use crate::probe::{testutil::*, Verdict};

    #[test]
    fn window_decides() {
        let ctx = ctx();
        let m = WindowScan::new(TcpFlags::ACK);
        let c = ctx.jar.cookie(SRC, DST, 22, PROTO_TCP);
        for (w, state) in [(1024, PortState::Open), (0, PortState::Closed)] {
            let v = classify(
                &m,
                &ctx,
                &tcp_reply(DST, 22, c.src_port, c.ack(), 0, "R", w),
            );
            assert!(
                matches!(v, Classified::Verdict(Verdict { state: s, reason: Reason::Reset, .. }) if s == state),
                "{v:?}"
            );
        }
    }
}
