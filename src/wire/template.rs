//! Frame templates: a finished Ethernet + IP + L4 frame whose per-probe fields are zero, and
//! the checksum sums of everything constant, so a probe costs a copy, a few stores and two folds.
//! One template serves one family: IPv4 (20-byte header, no options) or IPv6 (40-byte header,
//! no extension headers); [`FrameTemplate::l4_offset`] says where the L4 header starts.

use std::net::IpAddr;

use super::{
    checksum, ethernet, ipv4, ipv6, put_u16, put_u32,
    repr::{EthernetRepr, IpRepr, L4Repr},
    Family, MacAddr,
};

/// Where the IP header starts in every frame we build.
pub(crate) const IP_OFFSET: usize = ethernet::HEADER_LEN;
/// Where the L4 header starts in an IPv4 frame (we never send IP options).
pub(crate) const L4_OFFSET: usize = IP_OFFSET + ipv4::MIN_HEADER_LEN;
/// Where the L4 header starts in an IPv6 frame (we never send extension headers).
pub(crate) const L4_OFFSET_V6: usize = IP_OFFSET + ipv6::HEADER_LEN;

/// Link and network facts shared by every probe of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameParams {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// The scan's source address; its family is the template's.
    pub src: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
}

impl FrameParams {
    pub(crate) fn family(&self) -> Family {
        Family::of(&self.src)
    }
}

/// The frame parameters of each family a scan sends in (a mixed target list uses both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frames {
    pub(crate) v4: Option<FrameParams>,
    pub(crate) v6: Option<FrameParams>,
    /// A source pool (`-S A-B`): its family's probes leave from all of its addresses, the
    /// first of which is that family's `src`.
    pub(crate) pool: Option<super::SourcePool>,
}

impl Frames {
    /// One family's parameters.
    pub fn single(p: FrameParams) -> Self {
        match p.family() {
            Family::V4 => Self {
                v4: Some(p),
                ..Self::default()
            },
            Family::V6 => Self {
                v6: Some(p),
                ..Self::default()
            },
        }
    }
    pub(crate) fn get(&self, f: Family) -> Option<&FrameParams> {
        match f {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }
    /// One family's parameters for each of its source addresses, pool order (one without a
    /// pool).
    pub(crate) fn each_source(&self, f: Family) -> Vec<FrameParams> {
        let Some(p) = self.get(f) else {
            return Vec::new();
        };
        match self.pool.filter(|pool| pool.first() == p.src) {
            Some(pool) => pool.addrs().map(|src| FrameParams { src, ..*p }).collect(),
            None => vec![*p],
        }
    }

    /// The parameters for sending to `a`.
    #[inline]
    pub(crate) fn for_addr(&self, a: IpAddr) -> Option<&FrameParams> {
        self.get(Family::of(&a))
    }
    /// The first family's parameters (IPv4 when the scan has both): the TTL and the local
    /// address documents name.
    pub(crate) fn primary(&self) -> &FrameParams {
        self.v4
            .as_ref()
            .or(self.v6.as_ref())
            .expect("a scan sends in at least one family")
    }
    /// The IPv4 source, when the scan sends IPv4.
    pub(crate) fn src_v4(&self) -> Option<std::net::Ipv4Addr> {
        match self.v4?.src {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
    /// The IPv6 source, when the scan sends IPv6.
    pub(crate) fn src_v6(&self) -> Option<std::net::Ipv6Addr> {
        match self.v6?.src {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
}

/// A frame with zeroed per-probe fields plus the sums of its constant words.
#[derive(Debug, Clone)]
pub struct FrameTemplate {
    bytes: Vec<u8>,
    family: Family,
    src: IpAddr,
    ttl: u8,
    l4: usize,
    /// Sum of the IPv4 header with id, checksum and destination zero (unused for IPv6, which
    /// has no header checksum).
    ip_sum: u64,
    /// Sum of the pseudo header (without destination) and the L4 bytes with every patched field
    /// zero. Without a pseudo header (ICMPv4), the L4 bytes alone.
    l4_sum: u64,
    /// Does the L4 checksum cover the destination address?
    pseudo: bool,
    /// The probe module's own word about this template (UDP: where its payload takes the
    /// cookie), so a per-probe write needs no lookup.
    mark: u32,
}

impl FrameTemplate {
    /// Builds Ethernet + IP around `l4` (its per-probe fields and checksum zero). The
    /// destination, identification and checksums are what [`Self::stamp`] and the probe module
    /// fill per probe.
    pub(crate) fn new(p: &FrameParams, l4: &L4Repr) -> Self {
        let family = p.family();
        let (proto, pseudo) = (l4.protocol(family), l4.pseudo_header(family));
        let unspecified = match family {
            Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let ip = IpRepr::new(p.src, unspecified, proto, l4.len() as u16, p.ttl);
        let eth = EthernetRepr {
            src: p.src_mac,
            dst: p.dst_mac,
            ethertype: ip.ethertype(),
        };
        let l4_off = eth.len() + ip.len();
        debug_assert_eq!(
            l4_off,
            match family {
                Family::V4 => L4_OFFSET,
                Family::V6 => L4_OFFSET_V6,
            }
        );
        let mut bytes = vec![0u8; l4_off + l4.len()];
        let built = eth
            .emit(&mut bytes)
            .and_then(|_| ip.emit(&mut bytes[IP_OFFSET..]))
            .and_then(|_| l4.emit(&mut bytes[l4_off..]));
        built.expect("the buffer is sized from the headers");
        if family == Family::V4 {
            // The header checksum is per probe (it covers id and destination).
            put_u16(&mut bytes, IP_OFFSET + ipv4::CHECKSUM_OFFSET, 0);
        }
        let ip_sum = match family {
            Family::V4 => checksum::sum(0, &bytes[IP_OFFSET..l4_off]),
            Family::V6 => 0,
        };
        let l4_sum = if pseudo {
            checksum::sum(
                checksum::sum_addr(p.src) + proto as u64 + checksum::sum_u32(l4.len() as u32),
                &bytes[l4_off..],
            )
        } else {
            checksum::sum(0, &bytes[l4_off..])
        };
        Self {
            bytes,
            family,
            src: p.src,
            ttl: p.ttl,
            l4: l4_off,
            ip_sum,
            l4_sum,
            pseudo,
            mark: 0,
        }
    }

    /// This template with the module's `mark` (see [`Self::mark`]).
    pub(crate) fn with_mark(mut self, mark: u32) -> Self {
        self.mark = mark;
        self
    }

    #[inline(always)]
    pub(crate) fn mark(&self) -> u32 {
        self.mark
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// The source address frames from this template carry.
    pub(crate) fn src(&self) -> IpAddr {
        self.src
    }

    /// Their TTL (IPv4) or hop limit (IPv6).
    pub(crate) fn ttl(&self) -> u8 {
        self.ttl
    }

    /// Where the L4 header starts in frames stamped from this template.
    #[inline(always)]
    pub(crate) fn l4_offset(&self) -> usize {
        self.l4
    }

    /// The constant part of the L4 checksum sum (see the field's doc).
    #[inline(always)]
    pub(crate) fn l4_sum(&self) -> u64 {
        self.l4_sum
    }

    /// What the destination adds to the L4 checksum sum: its words when the checksum covers a
    /// pseudo header, nothing otherwise (ICMPv4).
    #[inline(always)]
    pub(crate) fn dst_sum(&self, dst: IpAddr) -> u64 {
        if self.pseudo {
            checksum::sum_addr(dst)
        } else {
            0
        }
    }

    /// Copies the template into `frame` and fills the destination and the identification (IPv4
    /// id, low 16 bits; IPv6 flow label, low 20 bits), and for IPv4 the header checksum. Returns
    /// the frame length. `frame` must hold at least `len()` bytes, and `dst` must be of the
    /// template's family.
    #[inline(always)]
    pub(crate) fn stamp(&self, frame: &mut [u8], dst: IpAddr, ident: u32) -> usize {
        let n = self.bytes.len();
        frame[..n].copy_from_slice(&self.bytes);
        match dst {
            IpAddr::V4(d) => {
                let dst = u32::from(d);
                let ident = ident as u16;
                put_u16(frame, IP_OFFSET + ipv4::ID_OFFSET, ident);
                put_u32(frame, IP_OFFSET + ipv4::DST_OFFSET, dst);
                let sum = self.ip_sum + checksum::sum_u32(dst) + ident as u64;
                put_u16(
                    frame,
                    IP_OFFSET + ipv4::CHECKSUM_OFFSET,
                    checksum::finish(sum),
                );
            }
            IpAddr::V6(d) => {
                // Version 6, traffic class 0 (the template's), then the flow label.
                put_u32(frame, IP_OFFSET, 0x6000_0000 | (ident & 0x000f_ffff));
                let at = IP_OFFSET + ipv6::field::DST;
                frame[at..at + 16].copy_from_slice(&d.octets());
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{repr::UdpRepr, Ipv4Packet};

    fn udp_repr(src_port: u16, dst_port: u16) -> L4Repr<'static> {
        L4Repr::Udp(UdpRepr {
            src_port,
            dst_port,
            payload: &[],
        })
    }

    #[test]
    fn stamped_ip_header_checksum_is_valid() {
        let p = FrameParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1)),
            ttl: 64,
        };
        let t = FrameTemplate::new(&p, &udp_repr(0, 0));
        let mut f = [0u8; 64];
        for (dst, id) in [
            (0xc613_0000u32, 0u16),
            (0xffff_ffff, 0xffff),
            (0x0a00_0001, 1234),
        ] {
            let n = t.stamp(&mut f, IpAddr::V4(dst.into()), id as u32);
            assert_eq!(n, 14 + 20 + 8);
            let ip = Ipv4Packet::new_checked(&f[IP_OFFSET..n]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(
                (ip.dst(), ip.ident(), ip.ttl(), ip.protocol()),
                (dst, id, 64, 17)
            );
        }
    }

    #[test]
    fn stamped_ipv6_frame_is_what_etherparse_builds() {
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2001:db8:1::5".parse().unwrap();
        let p = FrameParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: IpAddr::V6(src),
            ttl: 64,
        };
        // A UDP header with ports 1 and 2, length 8, checksum to fill.
        let t = FrameTemplate::new(&p, &udp_repr(1, 2));
        let mut f = [0u8; 80];
        let n = t.stamp(&mut f, IpAddr::V6(dst), 0xabcde);
        assert_eq!((n, t.l4_offset()), (14 + 40 + 8, 54));
        let c = checksum::finish(t.l4_sum() + t.dst_sum(IpAddr::V6(dst)));
        put_u16(&mut f, 54 + 6, c);
        let mut expect = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(src.octets(), dst.octets(), 64)
            .udp(1, 2)
            .write(&mut expect, &[])
            .unwrap();
        // etherparse leaves the flow label zero.
        expect[15] = 0x0a;
        expect[16] = 0xbc;
        expect[17] = 0xde;
        assert_eq!(&f[..n], &expect[..]);
    }
}
