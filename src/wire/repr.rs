//! Parsed forms of every header we build (smoltcp's `Repr` idea): what a builder fills in,
//! `emit` writes into bytes, and `parse` reads back from a view. Probe templates, the banner
//! grabber, traceroute and `xdpscan probe` build their frames through these; only the per-probe
//! patch of a finished template writes fields in place (see `template.rs`).
//!
//! L4 checksums are left zero by `emit`: they cover a pseudo header of the IP family, so the frame
//! template fills them. The IPv4 header checksum is the header's own and `emit` fills it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    ethernet, ipv4, ipv6, tcp, udp, EthernetFrame, Family, IcmpPacket, Ipv4Packet, Ipv6Packet,
    MacAddr, TcpFlags, TcpSegment, UdpDatagram, WireError, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    PROTO_TCP, PROTO_UDP,
};

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EthernetRepr {
    pub(crate) src: MacAddr,
    pub(crate) dst: MacAddr,
    pub(crate) ethertype: u16,
}

impl EthernetRepr {
    #[cfg(test)]
    pub(crate) fn parse<T: AsRef<[u8]>>(f: &EthernetFrame<T>) -> Self {
        Self {
            src: f.src(),
            dst: f.dst(),
            ethertype: f.ethertype(),
        }
    }

    pub(crate) const fn len(&self) -> usize {
        ethernet::HEADER_LEN
    }

    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut f = EthernetFrame::new_checked(buf)?;
        f.set_dst(self.dst);
        f.set_src(self.src);
        f.set_ethertype(self.ethertype);
        Ok(ethernet::HEADER_LEN)
    }
}

/// An IPv4 header without options (we never send any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4Repr {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) protocol: u8,
    /// Bytes after the header.
    pub(crate) payload_len: u16,
    pub(crate) ttl: u8,
    pub(crate) ident: u16,
    pub(crate) dont_frag: bool,
    pub(crate) tos: u8,
}

impl Ipv4Repr {
    #[cfg(test)]
    pub(crate) fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Self {
        Self {
            src: p.src().into(),
            dst: p.dst().into(),
            protocol: p.protocol(),
            payload_len: p.total_len().saturating_sub(p.header_len() as u16),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            tos: p.tos(),
        }
    }

    pub(crate) const fn len(&self) -> usize {
        ipv4::MIN_HEADER_LEN
    }

    /// Writes the 20-byte header with its checksum.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let total = ipv4::MIN_HEADER_LEN + self.payload_len as usize;
        if total > u16::MAX as usize {
            return Err(WireError::Malformed);
        }
        if buf.len() < ipv4::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut p = Ipv4Packet::init(&mut buf[..ipv4::MIN_HEADER_LEN]);
        p.set_tos(self.tos);
        p.set_total_len(total as u16);
        p.set_ident(self.ident);
        p.set_dont_frag(self.dont_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src.into());
        p.set_dst(self.dst.into());
        p.fill_checksum();
        Ok(ipv4::MIN_HEADER_LEN)
    }
}

/// A fixed IPv6 header. Replies' extension headers are walked by
/// [`Ipv6Packet::upper_layer`]; we send none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6Repr {
    pub(crate) src: Ipv6Addr,
    pub(crate) dst: Ipv6Addr,
    pub(crate) next_header: u8,
    pub(crate) payload_len: u16,
    pub(crate) hop_limit: u8,
    pub(crate) traffic_class: u8,
    pub(crate) flow_label: u32,
}

impl Ipv6Repr {
    #[cfg(test)]
    pub(crate) fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Self {
        Self {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        }
    }

    pub(crate) const fn len(&self) -> usize {
        ipv6::HEADER_LEN
    }

    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if buf.len() < ipv6::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut p = Ipv6Packet::init(&mut buf[..ipv6::HEADER_LEN]);
        p.set_traffic_class(self.traffic_class);
        p.set_flow_label(self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(self.src);
        p.set_dst(self.dst);
        Ok(ipv6::HEADER_LEN)
    }
}

/// An IP header of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpRepr {
    V4(Ipv4Repr),
    V6(Ipv6Repr),
}

impl IpRepr {
    /// The header a probe from `src` to `dst` (same family) carries: no options, DF clear,
    /// identification and flow label zero.
    pub(crate) fn new(src: IpAddr, dst: IpAddr, protocol: u8, payload_len: u16, ttl: u8) -> Self {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => IpRepr::V4(Ipv4Repr {
                src,
                dst,
                protocol,
                payload_len,
                ttl,
                ident: 0,
                dont_frag: false,
                tos: 0,
            }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => IpRepr::V6(Ipv6Repr {
                src,
                dst,
                next_header: protocol,
                payload_len,
                hop_limit: ttl,
                traffic_class: 0,
                flow_label: 0,
            }),
            _ => panic!("source and destination of one packet are of one family"),
        }
    }

    #[cfg(test)]
    pub(crate) fn family(&self) -> Family {
        match self {
            IpRepr::V4(_) => Family::V4,
            IpRepr::V6(_) => Family::V6,
        }
    }

    pub(crate) fn ethertype(&self) -> u16 {
        match self {
            IpRepr::V4(_) => ETHERTYPE_IPV4,
            IpRepr::V6(_) => ETHERTYPE_IPV6,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            IpRepr::V4(r) => r.len(),
            IpRepr::V6(r) => r.len(),
        }
    }

    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        match self {
            IpRepr::V4(r) => r.emit(buf),
            IpRepr::V6(r) => r.emit(buf),
        }
    }
}

/// What goes above the IP header of a probe: a header we know, or raw bytes of another protocol
/// (`-sO`'s IGMP, SCTP and empty payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4Repr<'a> {
    Tcp(TcpRepr<'a>),
    Udp(UdpRepr<'a>),
    /// ICMP over IPv4, ICMPv6 over IPv6.
    Icmp(IcmpRepr<'a>),
    /// Protocol number, bytes (their checksum, if any, already in place).
    Raw(u8, &'a [u8]),
}

impl L4Repr<'_> {
    /// The IP protocol (next header) this is carried in over `family`.
    pub(crate) fn protocol(&self, family: Family) -> u8 {
        match self {
            L4Repr::Tcp(_) => PROTO_TCP,
            L4Repr::Udp(_) => PROTO_UDP,
            L4Repr::Icmp(_) => family.icmp_proto(),
            L4Repr::Raw(p, _) => *p,
        }
    }

    /// Does its checksum cover the IP pseudo header over `family`? (ICMPv4's does not; every
    /// IPv6 upper-layer checksum does.)
    pub(crate) fn pseudo_header(&self, family: Family) -> bool {
        match self {
            L4Repr::Tcp(_) | L4Repr::Udp(_) => true,
            L4Repr::Icmp(_) => family == Family::V6,
            L4Repr::Raw(..) => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            L4Repr::Tcp(r) => r.len(),
            L4Repr::Udp(r) => r.len(),
            L4Repr::Icmp(r) => r.len(),
            L4Repr::Raw(_, b) => b.len(),
        }
    }

    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        match self {
            L4Repr::Tcp(r) => r.emit(buf),
            L4Repr::Udp(r) => r.emit(buf),
            L4Repr::Icmp(r) => r.emit(buf),
            L4Repr::Raw(_, b) => {
                buf.get_mut(..b.len())
                    .ok_or(WireError::Truncated)?
                    .copy_from_slice(b);
                Ok(b.len())
            }
        }
    }
}

/// A TCP segment: header fields, options (padded to 4 bytes by the caller), payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpRepr<'a> {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) urgent: u16,
    pub(crate) options: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    #[cfg(test)]
    pub(crate) fn parse(s: &TcpSegment<&'a [u8]>) -> Self {
        Self {
            src_port: s.src_port(),
            dst_port: s.dst_port(),
            seq: s.seq(),
            ack: s.ack(),
            flags: s.flags(),
            window: s.window(),
            urgent: s.urgent(),
            options: s.options_ref(),
            payload: s.payload_ref(),
        }
    }

    pub(crate) fn header_len(&self) -> usize {
        tcp::MIN_HEADER_LEN + self.options.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment (checksum zero) into `buf[..len()]`.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let (hl, n) = (self.header_len(), self.len());
        if !self.options.len().is_multiple_of(4) || hl > 60 {
            return Err(WireError::Malformed);
        }
        if buf.len() < n {
            return Err(WireError::Truncated);
        }
        let mut s = TcpSegment::init(&mut buf[..n], hl);
        s.set_src_port(self.src_port);
        s.set_dst_port(self.dst_port);
        s.set_seq(self.seq);
        s.set_ack(self.ack);
        s.set_flags(self.flags);
        s.set_window(self.window);
        s.set_urgent(self.urgent);
        s.options_mut().copy_from_slice(self.options);
        buf[hl..n].copy_from_slice(self.payload);
        Ok(n)
    }
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UdpRepr<'a> {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    #[cfg(test)]
    pub(crate) fn parse(d: &UdpDatagram<&'a [u8]>) -> Self {
        Self {
            src_port: d.src_port(),
            dst_port: d.dst_port(),
            payload: d.payload_ref(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        udp::HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram (checksum zero, length filled) into `buf[..len()]`.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let n = self.len();
        if n > u16::MAX as usize {
            return Err(WireError::Malformed);
        }
        if buf.len() < n {
            return Err(WireError::Truncated);
        }
        let mut d = UdpDatagram::init(&mut buf[..n]);
        d.set_src_port(self.src_port);
        d.set_dst_port(self.dst_port);
        d.set_len(n as u16);
        buf[udp::HEADER_LEN..n].copy_from_slice(self.payload);
        Ok(n)
    }
}

/// An ICMP or ICMPv6 message of the query shape (type, code, identifier, sequence, data): the
/// two versions share the header layout and differ in numbers and checksum coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IcmpRepr<'a> {
    pub(crate) msg_type: u8,
    pub(crate) code: u8,
    pub(crate) ident: u16,
    pub(crate) seq: u16,
    pub(crate) data: &'a [u8],
}

impl<'a> IcmpRepr<'a> {
    #[cfg(test)]
    pub(crate) fn parse(m: &IcmpPacket<&'a [u8]>) -> Self {
        Self {
            msg_type: m.msg_type(),
            code: m.code(),
            ident: m.echo_ident(),
            seq: m.echo_seq(),
            data: m.payload_ref(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        super::icmp::HEADER_LEN + self.data.len()
    }

    /// Writes the message (checksum zero) into `buf[..len()]`.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let n = self.len();
        if buf.len() < n {
            return Err(WireError::Truncated);
        }
        let mut m = IcmpPacket::init(&mut buf[..n]);
        m.set_msg_type(self.msg_type);
        m.set_code(self.code);
        m.set_echo_ident(self.ident);
        m.set_echo_seq(self.seq);
        buf[super::icmp::HEADER_LEN..n].copy_from_slice(self.data);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_emit_then_parse_is_the_same_segment() {
        let r = TcpRepr {
            src_port: 61000,
            dst_port: 80,
            seq: 0x0102_0304,
            ack: 0x0506_0708,
            flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            window: 1024,
            urgent: 0,
            options: &[2, 4, 5, 0xb4],
            payload: b"hi",
        };
        let mut b = [0u8; 64];
        let n = r.emit(&mut b).unwrap();
        assert_eq!(n, 26);
        // Known bytes: ports, seq, ack, offset 6 words, SA, window, checksum 0, urgent 0, MSS.
        assert_eq!(
            &b[..26],
            &[
                0xee, 0x48, 0, 80, 1, 2, 3, 4, 5, 6, 7, 8, 0x60, 0x12, 4, 0, 0, 0, 0, 0, 2, 4, 5,
                0xb4, b'h', b'i'
            ]
        );
        let s = TcpSegment::new_checked(&b[..n]).unwrap();
        assert_eq!(TcpRepr::parse(&s), r);
        assert_eq!(
            TcpRepr { options: &[1], ..r }.emit(&mut b),
            Err(WireError::Malformed)
        );
        assert_eq!(r.emit(&mut b[..10]), Err(WireError::Truncated));
    }

    #[test]
    fn udp_and_icmp_round_trip() {
        let u = UdpRepr {
            src_port: 1,
            dst_port: 53,
            payload: b"q",
        };
        let mut b = [0u8; 32];
        let n = u.emit(&mut b).unwrap();
        assert_eq!(&b[..n], &[0, 1, 0, 53, 0, 9, 0, 0, b'q']);
        assert_eq!(
            UdpRepr::parse(&UdpDatagram::new_checked(&b[..n]).unwrap()),
            u
        );
        let m = IcmpRepr {
            msg_type: 128,
            code: 0,
            ident: 0xbeef,
            seq: 1,
            data: b"",
        };
        let n = m.emit(&mut b).unwrap();
        assert_eq!(&b[..n], &[128, 0, 0, 0, 0xbe, 0xef, 0, 1]);
        assert_eq!(
            IcmpRepr::parse(&IcmpPacket::new_checked(&b[..n]).unwrap()),
            m
        );
    }

    #[test]
    fn ethernet_and_ipv4_known_bytes() {
        // 198.18.0.2 -> 198.18.0.1, TCP, TTL 64, DF, 24 bytes of payload: the checksum 0xaea4
        // was computed independently with Python.
        const HDR: [u8; 20] = [
            0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xae, 0xa4, 0xc6, 0x12,
            0x00, 0x02, 0xc6, 0x12, 0x00, 0x01,
        ];
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 1),
            protocol: PROTO_TCP,
            payload_len: 24,
            ttl: 64,
            ident: 0,
            dont_frag: true,
            tos: 0,
        };
        let mut b = [0u8; 34];
        assert_eq!(ip.emit(&mut b[14..]), Ok(20));
        assert_eq!(b[14..], HDR);
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&HDR[..]).unwrap()),
            ip
        );
        let eth = EthernetRepr {
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            dst: MacAddr([2, 0, 0, 0, 0, 2]),
            ethertype: ETHERTYPE_IPV4,
        };
        assert_eq!(eth.emit(&mut b), Ok(14));
        assert_eq!(b[..14], [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        assert_eq!(
            EthernetRepr::parse(&EthernetFrame::new_checked(&b[..]).unwrap()),
            eth
        );
        assert_eq!(ip.emit(&mut b[..19]), Err(WireError::Truncated));
        assert_eq!(
            Ipv4Repr {
                payload_len: u16::MAX,
                ..ip
            }
            .emit(&mut b[14..]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn l4_protocol_and_checksum_coverage_per_family() {
        let icmp = L4Repr::Icmp(IcmpRepr {
            msg_type: 8,
            code: 0,
            ident: 1,
            seq: 2,
            data: &[],
        });
        assert_eq!(icmp.protocol(Family::V4), 1);
        assert_eq!(icmp.protocol(Family::V6), 58);
        assert!(!icmp.pseudo_header(Family::V4));
        assert!(icmp.pseudo_header(Family::V6));
        let raw = L4Repr::Raw(132, &[1, 2, 3]);
        assert_eq!((raw.protocol(Family::V6), raw.len()), (132, 3));
        let mut b = [0u8; 2];
        assert_eq!(raw.emit(&mut b), Err(WireError::Truncated));
        let ip = IpRepr::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            6,
            20,
            64,
        );
        assert_eq!(
            (ip.family(), ip.len(), ip.ethertype()),
            (Family::V6, 40, ETHERTYPE_IPV6)
        );
    }
}
