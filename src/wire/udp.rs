//! UDP headers (RFC 768).

use super::{get_u16, put_u16, WireError};

pub(crate) const HEADER_LEN: usize = 8;

#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpDatagram<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Accepts a datagram cut short (ICMP quotes only its header), never a short header.
    pub(crate) fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    pub(crate) fn src_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 0)
    }
    pub(crate) fn dst_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub(crate) fn len(&self) -> u16 {
        get_u16(self.buf.as_ref(), 4)
    }
    pub(crate) fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    pub(crate) fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = (self.len() as usize).clamp(HEADER_LEN, b.len());
        &b[HEADER_LEN..end]
    }
}

#[cfg(test)]
impl<'a> UdpDatagram<&'a [u8]> {
    /// The payload, borrowed for the buffer's lifetime.
    pub(crate) fn payload_ref(&self) -> &'a [u8] {
        let end = (self.len() as usize).clamp(HEADER_LEN, self.buf.len());
        &self.buf[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    /// A view of a header we built ourselves (a stamped template), for patching per-probe
    /// fields: no checks, as the template fixed the layout.
    #[inline(always)]
    pub(crate) fn patch(buf: T) -> Self {
        Self { buf }
    }
    pub(crate) fn init(buf: T) -> Self {
        let mut d = Self { buf };
        d.buf.as_mut()[..HEADER_LEN].fill(0);
        d
    }
    pub(crate) fn set_src_port(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 0, v);
    }
    pub(crate) fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 2, v);
    }
    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
    pub(crate) fn set_len(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 4, v);
    }
    pub(crate) fn set_checksum(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), 6, v);
    }
    #[cfg(test)]
    /// Checksum over the whole buffer (header and payload); zero is sent as all ones (RFC 768).
    pub(crate) fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        use super::checksum::{finish, pseudo_header, sum};
        let acc = pseudo_header(src, dst, super::PROTO_UDP, b.len() as u16);
        let c = match finish(sum(acc, b)) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    #[test]
    fn build_and_parse() {
        let mut buf = [0u8; 12];
        buf[8..].copy_from_slice(b"ping");
        let mut d = UdpDatagram::init(&mut buf[..]);
        d.set_src_port(61000);
        d.set_dst_port(53);
        d.set_len(12);
        d.fill_checksum(0xc612_0001, 0xc613_0005);
        let d = UdpDatagram::new_checked(&buf[..]).unwrap();
        assert_eq!((d.src_port(), d.dst_port(), d.len()), (61000, 53, 12));
        assert_eq!(d.payload(), b"ping");
        let acc = checksum::pseudo_header(0xc612_0001, 0xc613_0005, 17, 12);
        assert!(checksum::verify(checksum::sum(acc, &buf)));
    }
}
