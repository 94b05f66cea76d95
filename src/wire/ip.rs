//! One view of an IP packet of either family, so the classifiers are written once: addresses as
//! [`IpAddr`], the hop limit, the upper-layer protocol and payload after IPv6 extension headers,
//! the identification (IPv4 id, or IPv6 flow label), and ICMP messages of either version read
//! into one [`IcmpMessage`] with nmap's meaning of their codes.

use std::net::IpAddr;

use super::{
    checksum, ethernet, icmp, icmpv6, ipv6, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet,
    WireError, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_ICMP,
};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(a: &IpAddr) -> Family {
        match a {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    /// The ICMP protocol number of this family (1 or 58).
    pub(crate) fn icmp_proto(self) -> u8 {
        match self {
            Family::V4 => PROTO_ICMP,
            Family::V6 => ipv6::NEXT_ICMPV6,
        }
    }
    /// Index for per-family tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A parsed IP packet of either family.
#[derive(Debug, Clone, Copy)]
pub struct IpPacket<'a> {
    family: Family,
    /// The packet from its first header byte.
    bytes: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    protocol: u8,
    l4: usize,
    end: usize,
    ident: u32,
    /// A fragment other than the first: its payload is not an upper-layer header.
    later_fragment: bool,
}

impl<'a> IpPacket<'a> {
    /// Reads a packet of either version. A quoted packet (inside an ICMP error) may be cut short
    /// after its headers; so may this one.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        match bytes.first().map(|b| b >> 4) {
            Some(4) => {
                let p = Ipv4Packet::new_checked(bytes)?;
                let l4 = p.header_len();
                let end = (p.total_len() as usize).clamp(l4, bytes.len());
                Ok(Self {
                    family: Family::V4,
                    bytes,
                    src: IpAddr::V4(p.src().into()),
                    dst: IpAddr::V4(p.dst().into()),
                    ttl: p.ttl(),
                    protocol: p.protocol(),
                    l4,
                    end,
                    ident: p.ident() as u32,
                    later_fragment: p.frag_offset() != 0,
                })
            }
            Some(6) => {
                let p = Ipv6Packet::new_checked(bytes)?;
                let end = (ipv6::HEADER_LEN + p.payload_len() as usize).min(bytes.len());
                let u = p.upper_layer()?;
                Ok(Self {
                    family: Family::V6,
                    bytes,
                    src: IpAddr::V6(p.src()),
                    dst: IpAddr::V6(p.dst()),
                    ttl: p.hop_limit(),
                    protocol: u.protocol,
                    l4: u.offset.min(end),
                    end,
                    ident: p.flow_label(),
                    later_fragment: u.fragment.is_some_and(|f| f.offset != 0),
                })
            }
            Some(_) => Err(WireError::Malformed),
            None => Err(WireError::Truncated),
        }
    }

    /// The packet in an Ethernet frame (one 802.1Q tag allowed), as the receive path takes it:
    /// IPv4 with a valid header checksum, a length that covers its header and fits the frame
    /// (Ethernet padding after it is fine), and no later fragments of either family.
    pub fn from_frame(frame: &'a [u8]) -> Option<Self> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let (ty, payload) = if eth.ethertype() == ethernet::ETHERTYPE_VLAN && frame.len() >= 18 {
            (u16::from_be_bytes([frame[16], frame[17]]), &frame[18..])
        } else {
            (eth.ethertype(), &frame[ethernet::HEADER_LEN..])
        };
        if ty != ETHERTYPE_IPV4 && ty != ETHERTYPE_IPV6 {
            return None;
        }
        let ip = Self::parse(payload).ok()?;
        // The ethertype must name the version the header carries; IPv4 headers carry a checksum.
        let fits = match ip.family {
            Family::V4 => {
                let total = u16::from_be_bytes([payload[2], payload[3]]) as usize;
                ty == ETHERTYPE_IPV4
                    && checksum::verify(checksum::sum(0, ip.header()))
                    && (ip.l4..=payload.len()).contains(&total)
            }
            Family::V6 => {
                let len = u16::from_be_bytes([payload[4], payload[5]]) as usize;
                ty == ETHERTYPE_IPV6 && ipv6::HEADER_LEN + len <= payload.len()
            }
        };
        (fits && !ip.later_fragment).then_some(ip)
    }

    pub(crate) fn family(&self) -> Family {
        self.family
    }
    pub(crate) fn src(&self) -> IpAddr {
        self.src
    }
    pub fn dst(&self) -> IpAddr {
        self.dst
    }
    /// TTL (IPv4) or hop limit (IPv6).
    pub(crate) fn ttl(&self) -> u8 {
        self.ttl
    }
    /// The upper-layer protocol, after any IPv6 extension headers.
    pub(crate) fn protocol(&self) -> u8 {
        self.protocol
    }
    /// IPv4 identification, or IPv6 flow label.
    pub(crate) fn ident(&self) -> u32 {
        self.ident
    }
    /// The upper-layer header and data (bounded by the packet's own length).
    pub(crate) fn payload(&self) -> &'a [u8] {
        &self.bytes[self.l4..self.end]
    }
    /// Everything before the upper layer: the IP header(s).
    pub(crate) fn header(&self) -> &'a [u8] {
        &self.bytes[..self.l4]
    }
    pub(crate) fn is_later_fragment(&self) -> bool {
        self.later_fragment
    }
    /// Is the upper layer this family's ICMP?
    pub(crate) fn is_icmp(&self) -> bool {
        self.protocol == self.family.icmp_proto()
    }
    /// The ICMP message this packet carries, read the same way for both versions.
    pub(crate) fn icmp(&self) -> Option<IcmpMessage<'a>> {
        if !self.is_icmp() {
            return None;
        }
        IcmpMessage::parse(self.family, self.payload())
    }
}

/// What an ICMP message is, both versions in one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpKind {
    EchoRequest,
    EchoReply,
    /// Destination unreachable, with nmap's reading of the code.
    Unreachable(Unreach),
    TimeExceeded,
    /// IPv6 parameter problem (code 1: unrecognised next header) or IPv4's.
    ParamProblem,
    /// IPv4 timestamp, information and address-mask replies (type 14, 16, 18).
    QueryReply,
    Other,
}

/// Destination-unreachable codes of both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreach {
    /// v4 0
    Net,
    /// v4 1
    Host,
    /// v4 2
    Protocol,
    /// v4 3, v6 4
    Port,
    /// v4 4
    FragNeeded,
    /// v4 9
    NetProhibited,
    /// v4 10
    HostProhibited,
    /// v4 13, v6 1 and 5
    AdminProhibited,
    /// v6 0
    NoRoute,
    /// v6 2
    BeyondScope,
    /// v6 3
    Address,
    /// v6 6
    RejectRoute,
    Other,
}

/// An ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    pub(crate) family: Family,
    pub(crate) msg_type: u8,
    pub(crate) code: u8,
    pub(crate) kind: IcmpKind,
    /// Identifier and sequence number (echo and query messages).
    pub(crate) ident: u16,
    pub(crate) seq: u16,
    /// The data after the 8-byte header: for errors, the quoted packet.
    pub(crate) body: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    pub(crate) fn parse(family: Family, b: &'a [u8]) -> Option<Self> {
        let m = IcmpPacket::new_checked(b).ok()?;
        let (t, c) = (m.msg_type(), m.code());
        let kind = match family {
            Family::V4 => match t {
                icmp::TYPE_ECHO_REQUEST => IcmpKind::EchoRequest,
                icmp::TYPE_ECHO_REPLY => IcmpKind::EchoReply,
                icmp::TYPE_DEST_UNREACH => IcmpKind::Unreachable({
                    use icmp::unreach::*;
                    match c {
                        NET => Unreach::Net,
                        HOST => Unreach::Host,
                        PROTOCOL => Unreach::Protocol,
                        PORT => Unreach::Port,
                        FRAG_NEEDED => Unreach::FragNeeded,
                        NET_PROHIBITED => Unreach::NetProhibited,
                        HOST_PROHIBITED => Unreach::HostProhibited,
                        ADMIN_PROHIBITED => Unreach::AdminProhibited,
                        _ => Unreach::Other,
                    }
                }),
                icmp::TYPE_TIME_EXCEEDED => IcmpKind::TimeExceeded,
                icmp::TYPE_PARAM_PROBLEM => IcmpKind::ParamProblem,
                14 | 16 | 18 => IcmpKind::QueryReply,
                _ => IcmpKind::Other,
            },
            Family::V6 => match t {
                icmpv6::TYPE_ECHO_REQUEST => IcmpKind::EchoRequest,
                icmpv6::TYPE_ECHO_REPLY => IcmpKind::EchoReply,
                icmpv6::TYPE_DEST_UNREACH => IcmpKind::Unreachable({
                    use icmpv6::unreach::*;
                    match c {
                        NO_ROUTE => Unreach::NoRoute,
                        ADMIN_PROHIBITED | SOURCE_POLICY => Unreach::AdminProhibited,
                        BEYOND_SCOPE => Unreach::BeyondScope,
                        ADDRESS => Unreach::Address,
                        PORT => Unreach::Port,
                        REJECT_ROUTE => Unreach::RejectRoute,
                        _ => Unreach::Other,
                    }
                }),
                icmpv6::TYPE_TIME_EXCEEDED => IcmpKind::TimeExceeded,
                icmpv6::TYPE_PARAM_PROBLEM => IcmpKind::ParamProblem,
                _ => IcmpKind::Other,
            },
        };
        Some(Self {
            family,
            msg_type: t,
            code: c,
            kind,
            ident: m.echo_ident(),
            seq: m.echo_seq(),
            body: &b[icmp::HEADER_LEN..],
        })
    }

    /// Does this message quote an offending packet?
    pub(crate) fn is_error(&self) -> bool {
        match self.family {
            Family::V4 => matches!(
                self.msg_type,
                icmp::TYPE_DEST_UNREACH
                    | icmp::TYPE_SOURCE_QUENCH
                    | icmp::TYPE_REDIRECT
                    | icmp::TYPE_TIME_EXCEEDED
                    | icmp::TYPE_PARAM_PROBLEM
            ),
            Family::V6 => icmpv6::is_error(self.msg_type),
        }
    }

    /// The packet an error quotes (its headers and at least the first 8 bytes after them).
    pub(crate) fn quoted(&self) -> Option<IpPacket<'a>> {
        if !self.is_error() {
            return None;
        }
        let q = IpPacket::parse(self.body).ok()?;
        (q.family == self.family).then_some(q)
    }

    /// Is this the IPv6 "unrecognised next header" problem (nmap's closed for `-sO`)?
    pub(crate) fn is_next_header_problem(&self) -> bool {
        self.family == Family::V6
            && self.kind == IcmpKind::ParamProblem
            && self.code == icmpv6::param::NEXT_HEADER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const D6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];

    #[test]
    fn ipv6_tcp_frame() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(D6, S6, 57)
            .tcp(80, 61000, 7, 1000)
            .syn()
            .ack(9)
            .write(&mut f, &[])
            .unwrap();
        let ip = IpPacket::from_frame(&f).unwrap();
        assert_eq!(ip.family(), Family::V6);
        assert_eq!(ip.src().to_string(), "2001:db8:1::5");
        assert_eq!(ip.dst().to_string(), "2001:db8::1");
        assert_eq!((ip.ttl(), ip.protocol(), ip.payload().len()), (57, 6, 20));
        assert!(!ip.is_icmp());
    }

    #[test]
    fn ipv4_frame_needs_a_valid_checksum() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([198, 19, 0, 5], [198, 18, 0, 1], 63)
            .udp(53, 61000)
            .write(&mut f, b"x")
            .unwrap();
        let ip = IpPacket::from_frame(&f).unwrap();
        assert_eq!(
            (ip.family(), ip.protocol(), ip.payload().len()),
            (Family::V4, 17, 9)
        );
        f[14 + 10] ^= 1;
        assert!(IpPacket::from_frame(&f).is_none());
    }

    #[test]
    fn icmpv6_port_unreachable_quotes_the_probe() {
        let mut probe = Vec::new();
        PacketBuilder::ipv6(S6, D6, 64)
            .udp(61000, 53)
            .write(&mut probe, b"q")
            .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(D6, S6, 64)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut f, &probe)
            .unwrap();
        let ip = IpPacket::from_frame(&f).unwrap();
        let m = ip.icmp().unwrap();
        assert_eq!(m.kind, IcmpKind::Unreachable(Unreach::Port));
        let q = m.quoted().unwrap();
        assert_eq!((q.src(), q.dst(), q.protocol()), (ip.dst(), ip.src(), 17));
        assert_eq!(&q.payload()[..4], &[0xee, 0x48, 0, 53]);
    }

    #[test]
    fn later_fragments_are_not_replies() {
        let mut b = vec![0u8; 40 + 8 + 8];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&16u16.to_be_bytes());
        b[6] = ipv6::NEXT_FRAGMENT;
        b[40] = 6;
        b[42..44].copy_from_slice(&(100u16 << 3).to_be_bytes());
        let p = IpPacket::parse(&b).unwrap();
        assert!(p.is_later_fragment());
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&b);
        assert!(IpPacket::from_frame(&f).is_none());
    }
}
