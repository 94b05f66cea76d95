//! ACK scan (`-sA`): maps firewall rules, not open ports. A RST means the probe got through
//! (`unfiltered`); an ICMP unreachable or silence means `filtered`.

use super::{
    tcp::{TcpReading, TcpReply, TcpScan},
    PortState, Reason,
};

/// nmap's reading of an ACK scan.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AckReading;

impl TcpReading for AckReading {
    fn reset(&self, _r: &TcpReply) -> (PortState, Reason) {
        (PortState::Unfiltered, Reason::Reset)
    }

    fn silence(&self) -> (PortState, Reason) {
        (PortState::Filtered, Reason::NoResponse)
    }
}

pub(crate) type AckScan = TcpScan<AckReading>;

impl AckScan {
    pub(crate) fn new(flags: u8) -> Self {
        TcpScan::with(super::ScanType::Ack, flags, AckReading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        probe::{testutil::*, Classified},
        wire::TcpFlags,
    };

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
                Classified::Reply(super::super::Verdict {
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
        let Classified::Reply(v) = classify(&m, &ctx, &icmp_error(&m, &ctx, 22, 13, false)) else {
            panic!()
        };
        assert_eq!(
            (v.state, v.reason),
            (PortState::Filtered, Reason::AdminProhibited)
        );
    }
}
