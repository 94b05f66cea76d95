//! FIN (`-sF`), Null (`-sN`), Xmas (`-sX`) and Maimon (`-sM`) scans: probes without SYN, which
//! an RFC 793 stack answers with RST only when the port is closed. `closed` (RST), `filtered`
//! (ICMP unreachable), `open|filtered` (silence).

use super::{
    tcp::{TcpReading, TcpReply, TcpScan},
    PortState, Reason,
};

/// nmap's reading of FIN, Null, Xmas and Maimon scans.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StealthReading;

impl TcpReading for StealthReading {
    fn reset(&self, _r: &TcpReply) -> (PortState, Reason) {
        (PortState::Closed, Reason::Reset)
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::OpenFiltered, Reason::NoResponse)
    }
}

pub(crate) type StealthScan = TcpScan<StealthReading>;

impl StealthScan {
    /// `name` is the scan's (fin, null, xmas, maimon); `flags` its probe's.
    pub(crate) fn new(scan: super::ScanType, flags: u8) -> Self {
        TcpScan::with(scan, flags, StealthReading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        probe::{testutil::*, Classified, ProbeModule, Verdict},
        wire::{TcpFlags, PROTO_TCP},
    };

    #[test]
    fn rst_acknowledging_the_fin_is_closed() {
        let ctx = ctx();
        for (name, flags, consumed) in [
            (crate::probe::ScanType::Fin, TcpFlags::FIN, 1u32),
            (crate::probe::ScanType::Null, 0, 0),
            (
                crate::probe::ScanType::Xmas,
                TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
                1,
            ),
        ] {
            let m = StealthScan::new(name, flags);
            let (frame, c) = build(&m, &ctx, DST, 8080);
            assert_eq!(frame[47], flags, "{name:?}");
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
                    Classified::Reply(Verdict {
                        state: PortState::Closed,
                        ..
                    })
                ),
                "{name:?}: {v:?}"
            );
            let bad = classify(
                &m,
                &ctx,
                &tcp_reply(DST, 8080, c.src_port, 0, c.seq.wrapping_add(5), "RA", 0),
            );
            assert_eq!(bad, Classified::Invalid, "{name:?}");
            assert_eq!(m.silence().0, PortState::OpenFiltered);
        }
        // Maimon carries ACK: the RST's sequence number is our acknowledgment number.
        let m = StealthScan::new(
            crate::probe::ScanType::Maimon,
            TcpFlags::FIN | TcpFlags::ACK,
        );
        let c = ctx.jar.cookie(SRC, DST, 8080, PROTO_TCP);
        let v = classify(
            &m,
            &ctx,
            &tcp_reply(DST, 8080, c.src_port, c.ack(), 0, "R", 0),
        );
        assert!(
            matches!(
                v,
                Classified::Reply(Verdict {
                    state: PortState::Closed,
                    ..
                })
            ),
            "{v:?}"
        );
    }
}
