//! ICMPv4 messages (RFC 792).

use super::{checksum, get_u16, put_u16, WireError};

pub(crate) const HEADER_LEN: usize = 8;

pub(crate) const TYPE_ECHO_REPLY: u8 = 0;
pub(crate) const TYPE_DEST_UNREACH: u8 = 3;
pub(crate) const TYPE_SOURCE_QUENCH: u8 = 4;
pub(crate) const TYPE_REDIRECT: u8 = 5;
pub(crate) const TYPE_ECHO_REQUEST: u8 = 8;
pub(crate) const TYPE_TIME_EXCEEDED: u8 = 11;
pub(crate) const TYPE_PARAM_PROBLEM: u8 = 12;

/// Destination-unreachable codes (RFC 792, RFC 1812).
pub(crate) mod unreach {
    pub(crate) const NET: u8 = 0;
    pub(crate) const HOST: u8 = 1;
    pub(crate) const PROTOCOL: u8 = 2;
    pub(crate) const PORT: u8 = 3;
    pub(crate) const FRAG_NEEDED: u8 = 4;
    pub(crate) const NET_PROHIBITED: u8 = 9;
    pub(crate) const HOST_PROHIBITED: u8 = 10;
    pub(crate) const ADMIN_PROHIBITED: u8 = 13;
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct IcmpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub(crate) fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    pub(crate) fn msg_type(&self) -> u8 {
        self.buf.as_ref()[0]
    }
    pub(crate) fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    pub(crate) fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    /// Echo identifier (echo request/reply only).
    pub(crate) fn echo_ident(&self) -> u16 {
        get_u16(self.buf.as_ref(), 4)
    }
    /// Echo sequence number (echo request/reply only).
    pub(crate) fn echo_seq(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    /// Is this an error message, which quotes the offending packet's header?
    pub(crate) fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            TYPE_DEST_UNREACH
                | TYPE_SOURCE_QUENCH
                | TYPE_REDIRECT
                | TYPE_TIME_EXCEEDED
                | TYPE_PARAM_PROBLEM
        )
    }
    /// The data after the 8-byte header: for errors, the quoted IP header and 8+ bytes.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
    pub(crate) fn verify_checksum(&self) -> bool {
        checksum::verify(checksum::sum(0, self.buf.as_ref()))
    }
}

#[cfg(test)]
impl<'a> IcmpPacket<&'a [u8]> {
    /// The data after the header, borrowed for the buffer's lifetime.
    pub(crate) fn payload_ref(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// A view of a header we built ourselves (a stamped template), for patching per-probe
    /// fields: no checks, as the template fixed the layout.
    #[inline(always)]
    pub(crate) fn patch(buf: T) -> Self {
        Self { buf }
    }
    pub(crate) fn init(buf: T) -> Self {
        let mut p = Self { buf };
        p.buf.as_mut()[..HEADER_LEN].fill(0);
        p
    }
    pub(crate) fn set_msg_type(&mut self, v: u8) {
        self.buf.as_mut()[0] = v;
    }
    pub(crate) fn set_code(&mut self, v: u8) {
        self.buf.as_mut()[1] = v;
    }
    pub(crate) fn set_checksum(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 2, v);
    }
    pub(crate) fn set_echo_ident(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 4, v);
    }
    pub(crate) fn set_echo_seq(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 6, v);
    }
    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
    #[cfg(test)]
    pub(crate) fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(0, self.buf.as_ref()));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Port unreachable from 198.18.0.2 quoting a UDP probe 198.18.0.1:61000 -> 198.18.0.2:53.
    const PORT_UNREACH: [u8; 36] = [
        0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // type 3 code 3
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x12, 0x00, 0x02, // quoted IP
        0xee, 0x48, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // quoted UDP
    ];

    #[test]
    fn parse_error_and_checksum() {
        let mut m = PORT_UNREACH;
        IcmpPacket::new_checked(&mut m[..]).unwrap().fill_checksum();
        let p = IcmpPacket::new_checked(&m[..]).unwrap();
        assert!(p.is_error());
        assert_eq!((p.msg_type(), p.code()), (TYPE_DEST_UNREACH, unreach::PORT));
        assert!(p.verify_checksum());
        let q = super::super::Ipv4Packet::new_checked(p.payload()).unwrap();
        assert_eq!(q.dst(), 0xc612_0002);
        assert_eq!(&q.payload()[..4], &[0xee, 0x48, 0x00, 0x35]);
    }
}
