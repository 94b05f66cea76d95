//! IPv6 header (RFC 8200) and its extension-header chain.
//!
//! A reply may carry hop-by-hop, routing, fragment and destination-options headers before its
//! upper layer; [`Ipv6Packet::upper_layer`] walks them (bounded, as the XDP program does) so
//! every classifier sees the TCP, UDP or ICMPv6 header whatever precedes it.

use std::net::Ipv6Addr;

use super::{get_u16, get_u32, put_u16, put_u32, WireError};

pub(crate) const HEADER_LEN: usize = 40;

pub(crate) const NEXT_HOP_BY_HOP: u8 = 0;
pub(crate) const NEXT_ROUTING: u8 = 43;
pub(crate) const NEXT_FRAGMENT: u8 = 44;
pub(crate) const NEXT_AUTH: u8 = 51;
pub(crate) const NEXT_ICMPV6: u8 = 58;
pub(crate) const NEXT_NONE: u8 = 59;
pub(crate) const NEXT_DEST_OPTS: u8 = 60;

/// The most extension headers walked before giving up (the XDP program walks as many).
pub(crate) const MAX_EXT_HEADERS: usize = 8;

pub(crate) mod field {
    pub(crate) const PAYLOAD_LEN: usize = 4;
    pub(crate) const NEXT_HEADER: usize = 6;
    pub(crate) const HOP_LIMIT: usize = 7;
    pub(crate) const SRC: usize = 8;
    pub(crate) const DST: usize = 24;
}

/// A view of an IPv6 packet. Like [`super::Ipv4Packet`], the payload may be cut short (ICMPv6
/// errors quote a prefix of the packet), but never the fixed header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv6Packet<T> {
    buf: T,
}

/// Where the upper-layer header starts, after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpperLayer {
    /// The upper-layer protocol (TCP 6, UDP 17, ICMPv6 58, ...).
    pub(crate) protocol: u8,
    /// Offset of its header from the start of the IPv6 header.
    pub(crate) offset: usize,
    /// A fragment header was walked; `first` says whether this is the first fragment.
    pub(crate) fragment: Option<Fragment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub(crate) offset: u16,
    pub(crate) more: bool,
    pub(crate) ident: u32,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub(crate) fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        Ok(Self { buf })
    }
    pub(crate) fn traffic_class(&self) -> u8 {
        ((get_u16(self.buf.as_ref(), 0) >> 4) & 0xff) as u8
    }
    pub(crate) fn flow_label(&self) -> u32 {
        get_u32(self.buf.as_ref(), 0) & 0x000f_ffff
    }
    pub(crate) fn payload_len(&self) -> u16 {
        get_u16(self.buf.as_ref(), field::PAYLOAD_LEN)
    }
    pub(crate) fn next_header(&self) -> u8 {
        self.buf.as_ref()[field::NEXT_HEADER]
    }
    pub(crate) fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[field::HOP_LIMIT]
    }
    pub(crate) fn src_bytes(&self) -> [u8; 16] {
        self.buf.as_ref()[field::SRC..field::SRC + 16]
            .try_into()
            .expect("16 bytes")
    }
    pub(crate) fn dst_bytes(&self) -> [u8; 16] {
        self.buf.as_ref()[field::DST..field::DST + 16]
            .try_into()
            .expect("16 bytes")
    }
    pub(crate) fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }
    pub(crate) fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_bytes())
    }
    /// Everything after the fixed header, bounded by the payload length when the buffer holds
    /// more (Ethernet padding).
    pub(crate) fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = (HEADER_LEN + self.payload_len() as usize).clamp(HEADER_LEN, b.len());
        &b[HEADER_LEN..end]
    }

    /// Walks the extension headers to the upper layer. Fails on a chain longer than
    /// [`MAX_EXT_HEADERS`], or one that runs past the buffer.
    pub(crate) fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let b = self.buf.as_ref();
        let end = (HEADER_LEN + self.payload_len() as usize).min(b.len());
        let mut next = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..MAX_EXT_HEADERS {
            match next {
                NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS => {
                    if off + 8 > end {
                        return Err(WireError::Truncated);
                    }
                    next = b[off];
                    off += (b[off + 1] as usize + 1) * 8;
                }
                NEXT_FRAGMENT => {
                    if off + 8 > end {
                        return Err(WireError::Truncated);
                    }
                    let fo = get_u16(b, off + 2);
                    fragment = Some(Fragment {
                        offset: fo >> 3,
                        more: fo & 1 != 0,
                        ident: get_u32(b, off + 4),
                    });
                    next = b[off];
                    off += 8;
                }
                NEXT_AUTH => {
                    if off + 8 > end {
                        return Err(WireError::Truncated);
                    }
                    next = b[off];
                    off += (b[off + 1] as usize + 2) * 4;
                }
                _ => break,
            }
        }
        // As the XDP program: up to MAX_EXT_HEADERS headers, then the upper layer.
        match next {
            NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS | NEXT_FRAGMENT | NEXT_AUTH => {
                Err(WireError::Malformed)
            }
            _ if off > end => Err(WireError::Truncated),
            _ => Ok(UpperLayer {
                protocol: next,
                offset: off,
                fragment,
            }),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Writes a fresh header: version 6, traffic class and flow label zero.
    pub(crate) fn init(buf: T) -> Self {
        let mut p = Self { buf };
        let b = p.buf.as_mut();
        b[..HEADER_LEN].fill(0);
        b[0] = 0x60;
        p
    }
    pub(crate) fn set_traffic_class(&mut self, v: u8) {
        let b = self.buf.as_mut();
        let w = get_u32(b, 0);
        put_u32(b, 0, (w & 0xf00f_ffff) | ((v as u32) << 20));
    }
    pub(crate) fn set_flow_label(&mut self, v: u32) {
        let b = self.buf.as_mut();
        let w = get_u32(b, 0);
        put_u32(b, 0, (w & 0xfff0_0000) | (v & 0x000f_ffff));
    }
    pub(crate) fn set_payload_len(&mut self, v: u16) {
        put_u16(self.buf.as_mut(), field::PAYLOAD_LEN, v);
    }
    pub(crate) fn set_next_header(&mut self, v: u8) {
        self.buf.as_mut()[field::NEXT_HEADER] = v;
    }
    pub(crate) fn set_hop_limit(&mut self, v: u8) {
        self.buf.as_mut()[field::HOP_LIMIT] = v;
    }
    pub(crate) fn set_src(&mut self, a: Ipv6Addr) {
        self.buf.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a.octets());
    }
    pub(crate) fn set_dst(&mut self, a: Ipv6Addr) {
        self.buf.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP SYN from 2001:db8::1 to 2001:db8:1::5 port 80, as tcpdump captured one (the fixed
    /// header only, 40 bytes), with flow label 0x12345.
    const HEADER: [u8; 40] = [
        0x60, 0x01, 0x23, 0x45, 0x00, 0x18, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
    ];

    #[test]
    fn fields_of_a_known_header() {
        let p = Ipv6Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.payload_len(), 24);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "2001:db8:1::5".parse::<Ipv6Addr>().unwrap());
        let r = super::super::repr::Ipv6Repr::parse(&p);
        let mut out = [0u8; 40];
        assert_eq!(r.emit(&mut out), Ok(40));
        assert_eq!(out, HEADER);
    }

    #[test]
    fn walks_every_extension_header_to_tcp() {
        let mut b = HEADER.to_vec();
        b[6] = NEXT_HOP_BY_HOP;
        // hop-by-hop (8 bytes, PadN), routing (type 0 header, 24 bytes), fragment, dest opts.
        b.extend_from_slice(&[NEXT_ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[NEXT_FRAGMENT, 2, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&[NEXT_DEST_OPTS, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        b.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 20]); // the TCP header
        let plen = (b.len() - 40) as u16;
        b[4..6].copy_from_slice(&plen.to_be_bytes());
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let u = p.upper_layer().unwrap();
        assert_eq!(u.protocol, 6);
        assert_eq!(u.offset, 40 + 8 + 24 + 8 + 8);
        assert_eq!(
            u.fragment,
            Some(Fragment {
                offset: 0,
                more: false,
                ident: 0xaabb_ccdd
            })
        );
    }

    #[test]
    fn chain_past_the_buffer_or_too_long_fails() {
        let mut b = HEADER.to_vec();
        b[6] = NEXT_DEST_OPTS;
        b.extend_from_slice(&[6, 9, 0, 0]); // claims 80 bytes, holds 4
        b[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert!(Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .is_err());
        // MAX_EXT_HEADERS headers then TCP are walked (as the XDP program walks them); one
        // more is past the bound.
        let chain = |n: usize| {
            let mut b = HEADER.to_vec();
            b[6] = NEXT_DEST_OPTS;
            for i in 0..n {
                let next = if i + 1 == n { 6 } else { NEXT_DEST_OPTS };
                b.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
            }
            b.extend_from_slice(&[0; 20]);
            let plen = (b.len() - 40) as u16;
            b[4..6].copy_from_slice(&plen.to_be_bytes());
            b
        };
        let b = chain(MAX_EXT_HEADERS);
        let u = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((u.protocol, u.offset), (6, 40 + 8 * MAX_EXT_HEADERS));
        let b = chain(MAX_EXT_HEADERS + 1);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn rejects_version_4_and_runts() {
        assert_eq!(
            Ipv6Packet::new_checked(&[0x45u8; 40][..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Ipv6Packet::new_checked(&HEADER[..39]).err(),
            Some(WireError::Truncated)
        );
    }
}
