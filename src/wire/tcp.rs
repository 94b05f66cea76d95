//! TCP headers (RFC 9293).

use std::fmt;

use super::{checksum, get_u16, get_u32, put_u16, put_u32, WireError};

pub(crate) const MIN_HEADER_LEN: usize = 20;

mod field {
    pub(crate) const SRC_PORT: usize = 0;
    pub(crate) const DST_PORT: usize = 2;
    pub(crate) const SEQ: usize = 4;
    pub(crate) const ACK: usize = 8;
    pub(crate) const OFF: usize = 12;
    pub(crate) const FLAGS: usize = 13;
    pub(crate) const WINDOW: usize = 14;
    pub(crate) const CHECKSUM: usize = 16;
    pub(crate) const URGENT: usize = 18;
}
pub(crate) use field::CHECKSUM as CHECKSUM_OFFSET;

/// TCP control bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub(crate) const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub(crate) const RST: u8 = 0x04;
    pub(crate) const PSH: u8 = 0x08;
    pub(crate) const ACK: u8 = 0x10;
    pub(crate) const URG: u8 = 0x20;
    pub(crate) const ECE: u8 = 0x40;
    pub(crate) const CWR: u8 = 0x80;

    pub(crate) fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u8, char); 8] = [
            (TcpFlags::CWR, 'C'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
        ];
        for (bit, c) in NAMES {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A view of a TCP segment. `new_checked` needs the whole header (options included) unless
/// `new_quoted` is used for the 8 bytes an ICMP error quotes.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let s = Self { buf };
        if s.header_len() < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if s.buf.as_ref().len() < s.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(s)
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::DST_PORT)
    }
    pub(crate) fn seq(&self) -> u32 {
        get_u32(self.buf.as_ref(), field::SEQ)
    }
    pub(crate) fn ack(&self) -> u32 {
        get_u32(self.buf.as_ref(), field::ACK)
    }
    pub(crate) fn header_len(&self) -> usize {
        ((self.buf.as_ref()[field::OFF] >> 4) as usize) * 4
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buf.as_ref()[field::FLAGS])
    }
    pub(crate) fn window(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::WINDOW)
    }
    pub(crate) fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::CHECKSUM)
    }
    pub(crate) fn urgent(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::URGENT)
    }
    pub(crate) fn options(&self) -> &[u8] {
        &self.buf.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buf.as_ref();
        let acc = checksum::pseudo_header(src, dst, super::PROTO_TCP, b.len() as u16);
        checksum::verify(checksum::sum(acc, b))
    }
}

#[cfg(test)]
impl<'a> TcpSegment<&'a [u8]> {
    /// The options, borrowed for the buffer's lifetime.
    pub(crate) fn options_ref(&self) -> &'a [u8] {
        &self.buf[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload, borrowed for the buffer's lifetime.
    pub(crate) fn payload_ref(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    /// A view of a header we built ourselves (a stamped template), for patching per-probe
    /// fields: no checks, as the template fixed the layout.
    #[inline(always)]
    pub(crate) fn patch(buf: T) -> Self {
        Self { buf }
    }
    /// Writes a fresh header of `header_len` bytes (options zeroed) with no flags set.
    pub(crate) fn init(buf: T, header_len: usize) -> Self {
        debug_assert!(header_len.is_multiple_of(4) && (MIN_HEADER_LEN..=60).contains(&header_len));
        let mut s = Self { buf };
        let b = s.buf.as_mut();
        b[..header_len].fill(0);
        b[field::OFF] = ((header_len / 4) as u8) << 4;
        s
    }
    pub(crate) fn set_src_port(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::SRC_PORT, v);
    }
    pub(crate) fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::DST_PORT, v);
    }
    pub(crate) fn set_seq(&mut self, v: u32) {
        put_u32(self.buf.as_mut(), field::SEQ, v);
    }
    pub(crate) fn set_ack(&mut self, v: u32) {
        put_u32(self.buf.as_mut(), field::ACK, v);
    }
    pub(crate) fn set_flags(&mut self, f: TcpFlags) {
        self.buf.as_mut()[field::FLAGS] = f.0;
    }
    pub(crate) fn set_window(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::WINDOW, v);
    }
    pub(crate) fn set_checksum(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::CHECKSUM, v);
    }
    pub(crate) fn set_urgent(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::URGENT, v);
    }
    pub(crate) fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buf.as_mut()[MIN_HEADER_LEN..hl]
    }
    #[cfg(test)]
    /// Computes the checksum over the whole buffer, which must hold exactly the segment.
    pub(crate) fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let acc = checksum::pseudo_header(src, dst, super::PROTO_TCP, b.len() as u16);
        let c = checksum::finish(checksum::sum(acc, b));
        self.set_checksum(c);
    }
}

/// The ports and sequence number an ICMP error quotes from a TCP header (its first 8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotedTcp {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: u32,
}

impl QuotedTcp {
    pub(crate) fn parse(b: &[u8]) -> Result<Self, WireError> {
        if b.len() < 8 {
            return Err(WireError::Truncated);
        }
        Ok(Self {
            src_port: get_u16(b, 0),
            dst_port: get_u16(b, 2),
            seq: get_u32(b, 4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A SYN-ACK header as Linux sends it: 198.18.0.2:80 -> 198.18.0.1:61000, MSS 1460.
    const SYNACK: [u8; 24] = [
        0x00, 0x50, 0xee, 0x48, 0x5b, 0x1a, 0x2c, 0x3d, 0x12, 0x34, 0x56, 0x79, 0x60, 0x12, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    #[test]
    fn fields_and_checksum_roundtrip() {
        let mut seg = SYNACK;
        let mut s = TcpSegment::new_checked(&mut seg[..]).unwrap();
        assert_eq!(s.src_port(), 80);
        assert_eq!(s.dst_port(), 61000);
        assert_eq!(s.seq(), 0x5b1a_2c3d);
        assert_eq!(s.ack(), 0x1234_5679);
        assert_eq!(s.header_len(), 24);
        assert!(s.flags().has(TcpFlags::SYN | TcpFlags::ACK));
        assert_eq!(format!("{:?}", s.flags()), "AS");
        assert_eq!(s.window(), 64240);
        assert_eq!(s.options(), &[2, 4, 5, 0xb4]);
        s.fill_checksum(0xc612_0002, 0xc612_0001);
        assert!(s.verify_checksum(0xc612_0002, 0xc612_0001));
        assert!(!s.verify_checksum(0xc612_0002, 0xc612_0003));
    }

    #[test]
    fn rejects_lying_offset() {
        let mut seg = SYNACK;
        seg[12] = 0x40; // 16-byte header
        assert_eq!(
            TcpSegment::new_checked(&seg[..]).unwrap_err(),
            WireError::Malformed
        );
        seg[12] = 0xf0; // 60-byte header in 24 bytes
        assert_eq!(
            TcpSegment::new_checked(&seg[..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn quoted_header() {
        let q = QuotedTcp::parse(&SYNACK[..8]).unwrap();
        assert_eq!(
            q,
            QuotedTcp {
                src_port: 80,
                dst_port: 61000,
                seq: 0x5b1a_2c3d
            }
        );
        assert!(QuotedTcp::parse(&SYNACK[..7]).is_err());
    }
}
