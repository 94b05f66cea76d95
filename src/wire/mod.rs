//! Packet layouts as typed views over bytes (in the manner of smoltcp's `wire`), checksums, and
//! the frame templates the transmit path patches per probe.
//!
//! Views never copy: `Foo::new_checked(&buf)` validates lengths once, then accessors read and
//! write fields in place. Nothing here knows about scanning policy.

pub mod checksum;
pub mod dissect;
pub(crate) mod ethernet;
pub(crate) mod icmp;
pub(crate) mod icmpv6;
pub(crate) mod ip;
pub(crate) mod ipv4;
pub(crate) mod ipv6;
pub(crate) mod repr;
pub(crate) mod sctp;
pub(crate) mod source_pool;
pub(crate) mod tcp;
pub mod template;
pub(crate) mod udp;

pub use ethernet::{EthernetFrame, MacAddr, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
pub(crate) use icmp::IcmpPacket;
pub use ip::{Family, IcmpKind, IcmpMessage, IpPacket, Unreach};
pub use ipv4::{Ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
pub(crate) use ipv6::Ipv6Packet;
pub use tcp::{TcpFlags, TcpSegment};
pub(crate) use udp::UdpDatagram;

/// A buffer too short for the header it is viewed as, or a header whose own length field lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("buffer too short for the header")]
    Truncated,
    #[error("malformed header")]
    Malformed,
}

#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
pub use source_pool::{SourcePool, SourcePoolError};
