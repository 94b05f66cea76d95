//! Parsed forms of the L4 headers (smoltcp's `Repr` idea): what a builder fills in, `emit` writes
//! into bytes, and `parse` reads back from a view. The checksum is left zero by `emit`: it covers
//! a pseudo header of the IP family, so the frame template fills it (see `template.rs`).

use super::{tcp, udp, IcmpPacket, TcpFlags, TcpSegment, UdpDatagram, WireError};

/// A TCP segment: header fields, options (padded to 4 bytes by the caller), payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    pub fn parse(s: &TcpSegment<&'a [u8]>) -> Self {
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

    pub fn header_len(&self) -> usize {
        tcp::MIN_HEADER_LEN + self.options.len()
    }

    pub fn len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the segment (checksum zero) into `buf[..len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
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
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    pub fn parse(d: &UdpDatagram<&'a [u8]>) -> Self {
        Self {
            src_port: d.src_port(),
            dst_port: d.dst_port(),
            payload: d.payload_ref(),
        }
    }

    pub fn len(&self) -> usize {
        udp::HEADER_LEN + self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the datagram (checksum zero, length filled) into `buf[..len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
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
pub struct IcmpRepr<'a> {
    pub msg_type: u8,
    pub code: u8,
    pub ident: u16,
    pub seq: u16,
    pub data: &'a [u8],
}

impl<'a> IcmpRepr<'a> {
    pub fn parse(m: &IcmpPacket<&'a [u8]>) -> Self {
        Self {
            msg_type: m.msg_type(),
            code: m.code(),
            ident: m.echo_ident(),
            seq: m.echo_seq(),
            data: m.payload_ref(),
        }
    }

    pub fn len(&self) -> usize {
        super::icmp::HEADER_LEN + self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the message (checksum zero) into `buf[..len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
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
}
