//! IPv4 headers (RFC 791).

use super::{checksum, get_u16, get_u32, put_u16, put_u32, WireError};

pub(crate) const MIN_HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

mod field {
    pub(crate) const VER_IHL: usize = 0;
    pub(crate) const TOS: usize = 1;
    pub(crate) const TOTAL_LEN: usize = 2;
    pub(crate) const ID: usize = 4;
    pub(crate) const FLAGS_FRAG: usize = 6;
    pub(crate) const TTL: usize = 8;
    pub(crate) const PROTO: usize = 9;
    pub(crate) const CHECKSUM: usize = 10;
    pub(crate) const SRC: usize = 12;
    pub(crate) const DST: usize = 16;
}
pub(crate) use field::{CHECKSUM as CHECKSUM_OFFSET, DST as DST_OFFSET, ID as ID_OFFSET};

/// A view of an IPv4 packet. `new_checked` accepts a truncated payload (ICMP errors quote only
/// the first bytes of a packet), but never a truncated header.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Self { buf };
        if p.version() != 4 || p.header_len() < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if p.buf.as_ref().len() < p.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }
    pub(crate) fn version(&self) -> u8 {
        self.buf.as_ref()[field::VER_IHL] >> 4
    }
    pub(crate) fn header_len(&self) -> usize {
        ((self.buf.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    #[cfg(test)]
    pub(crate) fn tos(&self) -> u8 {
        self.buf.as_ref()[field::TOS]
    }
    pub(crate) fn total_len(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::TOTAL_LEN)
    }
    pub(crate) fn ident(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::ID)
    }
    #[cfg(test)]
    pub(crate) fn dont_frag(&self) -> bool {
        self.buf.as_ref()[field::FLAGS_FRAG] & 0x40 != 0
    }
    pub(crate) fn frag_offset(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::FLAGS_FRAG) & 0x1fff
    }
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[field::TTL]
    }
    pub(crate) fn protocol(&self) -> u8 {
        self.buf.as_ref()[field::PROTO]
    }
    pub fn src(&self) -> u32 {
        get_u32(self.buf.as_ref(), field::SRC)
    }
    pub fn dst(&self) -> u32 {
        get_u32(self.buf.as_ref(), field::DST)
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(checksum::sum(0, &self.buf.as_ref()[..self.header_len()]))
    }
    /// The payload, bounded by `total_len` when the buffer holds more (Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let hl = self.header_len();
        let end = (self.total_len() as usize).clamp(hl, b.len());
        &b[hl..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Writes a fresh 20-byte header (no options) with a zero checksum.
    pub(crate) fn init(buf: T) -> Self {
        let mut p = Self { buf };
        let b = p.buf.as_mut();
        b[..MIN_HEADER_LEN].fill(0);
        b[field::VER_IHL] = 0x45;
        p
    }
    pub(crate) fn set_tos(&mut self, v: u8) {
        self.buf.as_mut()[field::TOS] = v;
    }
    pub(crate) fn set_total_len(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::TOTAL_LEN, v);
    }
    pub(crate) fn set_ident(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::ID, v);
    }
    pub(crate) fn set_dont_frag(&mut self, df: bool) {
        let b = &mut self.buf.as_mut()[field::FLAGS_FRAG];
        *b = if df { *b | 0x40 } else { *b & !0x40 };
    }
    pub(crate) fn set_ttl(&mut self, v: u8) {
        self.buf.as_mut()[field::TTL] = v;
    }
    pub(crate) fn set_protocol(&mut self, v: u8) {
        self.buf.as_mut()[field::PROTO] = v;
    }
    pub(crate) fn set_checksum(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::CHECKSUM, v);
    }
    pub(crate) fn set_src(&mut self, v: u32) {
        put_u32(self.buf.as_mut(), field::SRC, v);
    }
    pub(crate) fn set_dst(&mut self, v: u32) {
        put_u32(self.buf.as_mut(), field::DST, v);
    }
    pub(crate) fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::finish(checksum::sum(0, &self.buf.as_ref()[..hl]));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 198.18.0.2 -> 198.18.0.1, TCP, ttl 64, DF (checksum computed independently with Python).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xae, 0xa4, 0xc6, 0x12, 0x00,
        0x02, 0xc6, 0x12, 0x00, 0x01,
    ];

    #[test]
    fn parse_known_header() {
        let p = Ipv4Packet::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 44);
        assert!(p.dont_frag());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_TCP);
        assert_eq!(p.src(), 0xc612_0002);
        assert_eq!(p.dst(), 0xc612_0001);
        assert!(p.verify_checksum());
    }

    #[test]
    fn build_matches_known_header() {
        let mut buf = [0u8; 20];
        let mut p = Ipv4Packet::init(&mut buf[..]);
        p.set_total_len(44);
        p.set_dont_frag(true);
        p.set_ttl(64);
        p.set_protocol(PROTO_TCP);
        p.set_src(0xc612_0002);
        p.set_dst(0xc612_0001);
        p.fill_checksum();
        assert_eq!(buf, HDR);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            Ipv4Packet::new_checked(&HDR[..19]).unwrap_err(),
            WireError::Truncated
        );
        let mut v6 = HDR;
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut opts = HDR;
        opts[0] = 0x46; // claims 24 bytes of header
        assert_eq!(
            Ipv4Packet::new_checked(&opts[..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
