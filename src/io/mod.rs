//! Transports: how frames leave and how replies come back. One pair of traits for all of them;
//! the engine is generic over them, so the per-frame path has no dynamic dispatch.
//!
//! - [`xdp`]: AF_XDP sockets (one per RX queue) plus our XDP program, which steals replies from
//!   the kernel;
//! - [`packet`]: AF_PACKET, the fallback where AF_XDP cannot bind;
//! - [`pcap`]: a file (or nothing) instead of a wire, for `--dry-run`.

pub(crate) mod connect;
pub(crate) mod keeper;
pub(crate) mod netinfo;
pub(crate) mod netns;
pub(crate) mod packet;
pub(crate) mod pcap;
pub(crate) mod privilege;
pub mod responder;
pub mod sys;
pub(crate) mod xdp;
pub mod xdp_floor;

use std::time::Duration;

/// What raw packet I/O needs, for messages about refused privileges.
pub const PRIVILEGES: &str =
    "sending raw packets needs root (or CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK)";

/// Errors of the transport layer.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("{what}: {source}")]
    Os {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    /// The kernel refused for lack of privileges (EPERM, EACCES), whatever layer said so.
    #[error("{0}")]
    Denied(String),
}

impl IoError {
    pub(crate) fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        IoError::Os {
            what: what.into(),
            source,
        }
    }

    /// `msg: e` as a setup failure, or as `Denied` when an OS error in `e`'s source chain says
    /// permission was refused.
    pub(crate) fn setup(
        msg: impl std::fmt::Display,
        e: &(dyn std::error::Error + 'static),
    ) -> Self {
        let text = format!("{msg}: {e}");
        let mut cur = Some(e);
        while let Some(err) = cur {
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(is_permission_error)
            {
                return IoError::Denied(text);
            }
            cur = err.source();
        }
        IoError::Setup(text)
    }

    /// Did the kernel refuse for lack of privileges?
    pub fn is_permission(&self) -> bool {
        match self {
            IoError::Os { source, .. } => is_permission_error(source),
            IoError::Denied(_) => true,
            IoError::Setup(_) => false,
        }
    }
}

fn is_permission_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// The sending half of a transport, owned by one transmit thread.
pub(crate) trait TxQueue: Send {
    /// Offers up to `max` free frames to `fill`, which writes one probe into the buffer and returns
    /// its length, or 0 when it has nothing more to send. Queues the filled frames, kicks the
    /// device, and returns how many were queued (fewer than asked when the ring is full).
    fn send_batch<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        fill: F,
    ) -> Result<usize, IoError>;

    /// Blocks until every queued frame has been handed to the device (or `timeout` passes).
    fn drain(&mut self, timeout: Duration) -> Result<(), IoError>;
}

/// The receiving half of a transport, owned by the receive thread.
pub(crate) trait RxQueue: Send {
    /// Hands the frames waiting (Ethernet, starting at the destination MAC) to `f`, a batch at a
    /// time: the receive path reads a whole batch before deciding on any of it (see
    /// `engine::dedup`). Returns how many frames it handed over.
    fn recv_batch<F: FnMut(&[&[u8]])>(&mut self, f: F) -> Result<usize, IoError>;

    /// Sleeps until a frame may be waiting, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<(), IoError>;

    /// Frames the kernel dropped because we did not keep up (ring or buffer full), cumulative.
    fn drops(&mut self) -> u64;

    /// The most frames one `recv_batch` takes from a socket, and how many its ring holds: a run
    /// of full batches means the ring is filling.
    fn capacity(&self) -> (usize, usize);
}

/// Which transport a scan runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Xdp,
    Packet,
    /// A bare-IP link that needs each packet's protocol: AF_PACKET sends, AF_XDP receives.
    PacketSendXdpReceive,
    DryRun,
    /// Kernel sockets (`-sT`).
    Connect,
}

impl TransportKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransportKind::Xdp => "af_xdp",
            TransportKind::Packet => "af_packet",
            TransportKind::PacketSendXdpReceive => "af_packet (send) and af_xdp (receive)",
            TransportKind::DryRun => "dry-run",
            TransportKind::Connect => "kernel sockets",
        }
    }
}

/// Drops the Ethernet header of the `len`-byte frame at the start of `frame`, for a link that
/// carries bare IP packets (tun, tunnels): the engine builds Ethernet frames for every link.
/// Returns the IP packet's length.
#[inline]
pub(crate) fn strip_link_header(frame: &mut [u8], len: usize) -> usize {
    let eth = crate::wire::ethernet::HEADER_LEN;
    debug_assert!(len > eth, "a probe is more than its link header");
    frame.copy_within(eth..len, 0);
    len - eth
}

/// Writes the Ethernet header a bare IP packet lacks into `head` (zero addresses, the EtherType
/// of the IP version in `first_byte`), so the receive path reads Ethernet frames on every link.
pub(crate) fn add_link_header(head: &mut [u8], first_byte: u8) {
    use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
    let ethertype = if first_byte >> 4 == 6 {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    };
    head[..12].fill(0);
    head[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_ip_link_sees_the_ip_packet_and_gets_an_ethernet_header_back() {
        let ip = [
            0x45u8, 0, 0, 20, 1, 2, 3, 4, 64, 6, 0, 0, 198, 18, 0, 1, 198, 19, 0, 1,
        ];
        let mut frame = [0u8; 64];
        frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        frame[12..14].copy_from_slice(&[8, 0]);
        frame[14..34].copy_from_slice(&ip);
        assert_eq!(strip_link_header(&mut frame, 34), 20);
        assert_eq!(frame[..20], ip);
        let mut head = [0xffu8; 14];
        add_link_header(&mut head, ip[0]);
        assert_eq!(head, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
        add_link_header(&mut head, 0x60);
        assert_eq!(head[12..], [0x86, 0xdd]);
    }
}
