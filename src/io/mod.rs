//! Transports: how frames leave and how replies come back. One pair of traits for all of them;
//! the engine is generic over them, so the per-frame path has no dynamic dispatch.
//!
//! - [`xdp`]: AF_XDP sockets (one per RX queue) plus our XDP program, which steals replies from
//!   the kernel;
//! - [`packet`]: AF_PACKET, the fallback where AF_XDP cannot bind;
//! - [`pcap`]: a file (or nothing) instead of a wire, for `--dry-run`.

pub mod connect;
pub mod packet;
pub mod pcap;
pub mod sys;
pub mod xdp;

use std::time::Duration;

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
}

impl IoError {
    pub fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        IoError::Os {
            what: what.into(),
            source,
        }
    }
}

/// The sending half of a transport, owned by one transmit thread.
pub trait TxQueue: Send {
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
pub trait RxQueue: Send {
    /// Hands every frame waiting (Ethernet, starting at the destination MAC) to `f`.
    fn recv_batch<F: FnMut(&[u8])>(&mut self, f: F) -> Result<usize, IoError>;

    /// Sleeps until a frame may be waiting, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<(), IoError>;

    /// Frames the kernel dropped because we did not keep up (ring or buffer full), cumulative.
    fn drops(&mut self) -> u64;
}

/// Which transport a scan runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Xdp,
    Packet,
    DryRun,
    /// Kernel sockets (`-sT`).
    Connect,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Xdp => "af_xdp",
            TransportKind::Packet => "af_packet",
            TransportKind::DryRun => "dry-run",
            TransportKind::Connect => "kernel sockets",
        }
    }
}
