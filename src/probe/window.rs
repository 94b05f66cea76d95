//! Window scan (`-sW`): an ACK scan that reads the RST's window, which some stacks set non-zero
//! for open ports: `open` (RST, window > 0), `closed` (RST, window 0), `filtered` otherwise.

use super::{
    tcp::{TcpReading, TcpReply, TcpScan},
    PortState, Reason,
};

/// nmap's reading of a window scan: the RST's window decides.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WindowReading;

impl TcpReading for WindowReading {
    fn reset(&self, r: &TcpReply) -> (PortState, Reason) {
        let state = if r.window > 0 {
            PortState::Open
        } else {
            PortState::Closed
        };
        (state, Reason::Reset)
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Filtered, Reason::NoResponse)
    }
}

pub(crate) type WindowScan = TcpScan<WindowReading>;

impl WindowScan {
    pub(crate) fn new(flags: u8) -> Self {
        TcpScan::with(super::ScanType::Window, flags, WindowReading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        probe::{testutil::*, Classified, Verdict},
        wire::{TcpFlags, PROTO_TCP},
    };

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
                matches!(v, Classified::Reply(Verdict { state: s, reason: Reason::Reset, .. }) if s == state),
                "{v:?}"
            );
        }
    }
}
