//! Frame templates: a finished Ethernet + IPv4 + L4 frame whose per-probe fields are zero, and
//! the checksum sums of everything constant, so a probe costs a copy, a few stores and two folds.

use super::{
    checksum, ethernet, ipv4, put_u16, put_u32, EthernetFrame, Ipv4Packet, MacAddr, ETHERTYPE_IPV4,
};

/// Where the IP header starts in every frame we build.
pub const IP_OFFSET: usize = ethernet::HEADER_LEN;
/// Where the L4 header starts (we never send IP options).
pub const L4_OFFSET: usize = IP_OFFSET + ipv4::MIN_HEADER_LEN;

/// Link and network facts shared by every probe of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameParams {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: u32,
    pub ttl: u8,
}

/// A frame with zeroed per-probe fields plus the sums of its constant words.
#[derive(Debug, Clone)]
pub struct FrameTemplate {
    bytes: Vec<u8>,
    /// Sum of the IPv4 header with id, checksum and destination zero.
    ip_sum: u64,
    /// Sum of the pseudo header (without destination) and the L4 bytes with every patched field
    /// zero. Zero when the L4 checksum does not cover a pseudo header (ICMP).
    l4_sum: u64,
}

impl FrameTemplate {
    /// Builds Ethernet + IPv4 around `l4` (the L4 header and payload with per-probe fields and
    /// checksum zero). `pseudo` says whether the L4 checksum covers the IPv4 pseudo header.
    pub fn new(p: &FrameParams, proto: u8, l4: &[u8], pseudo: bool) -> Self {
        let mut bytes = vec![0u8; L4_OFFSET + l4.len()];
        let mut eth = EthernetFrame::new_checked(&mut bytes[..]).expect("frame holds a header");
        eth.set_dst(p.dst_mac);
        eth.set_src(p.src_mac);
        eth.set_ethertype(ETHERTYPE_IPV4);
        let mut ip = Ipv4Packet::init(&mut bytes[IP_OFFSET..]);
        ip.set_total_len((ipv4::MIN_HEADER_LEN + l4.len()) as u16);
        ip.set_dont_frag(false);
        ip.set_ttl(p.ttl);
        ip.set_protocol(proto);
        ip.set_src(p.src_ip);
        bytes[L4_OFFSET..].copy_from_slice(l4);
        let ip_sum = checksum::sum(0, &bytes[IP_OFFSET..L4_OFFSET]);
        let l4_sum = if pseudo {
            checksum::sum(
                checksum::sum_u32(p.src_ip) + proto as u64 + l4.len() as u64,
                &bytes[L4_OFFSET..],
            )
        } else {
            checksum::sum(0, &bytes[L4_OFFSET..])
        };
        Self {
            bytes,
            ip_sum,
            l4_sum,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The constant part of the L4 checksum sum (see the field's doc).
    #[inline(always)]
    pub fn l4_sum(&self) -> u64 {
        self.l4_sum
    }

    /// Copies the template into `frame` and fills the IPv4 destination, identification and header
    /// checksum. Returns the frame length. `frame` must hold at least `len()` bytes.
    #[inline(always)]
    pub fn stamp_ipv4(&self, frame: &mut [u8], dst: u32, ident: u16) -> usize {
        let n = self.bytes.len();
        frame[..n].copy_from_slice(&self.bytes);
        put_u16(frame, IP_OFFSET + ipv4::ID_OFFSET, ident);
        put_u32(frame, IP_OFFSET + ipv4::DST_OFFSET, dst);
        let sum = self.ip_sum + checksum::sum_u32(dst) + ident as u64;
        put_u16(
            frame,
            IP_OFFSET + ipv4::CHECKSUM_OFFSET,
            checksum::finish(sum),
        );
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_ip_header_checksum_is_valid() {
        let p = FrameParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src_ip: 0xc612_0001,
            ttl: 64,
        };
        let t = FrameTemplate::new(&p, 17, &[0u8; 8], true);
        let mut f = [0u8; 64];
        for (dst, id) in [
            (0xc613_0000u32, 0u16),
            (0xffff_ffff, 0xffff),
            (0x0a00_0001, 1234),
        ] {
            let n = t.stamp_ipv4(&mut f, dst, id);
            assert_eq!(n, 14 + 20 + 8);
            let ip = Ipv4Packet::new_checked(&f[IP_OFFSET..n]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(
                (ip.dst(), ip.ident(), ip.ttl(), ip.protocol()),
                (dst, id, 64, 17)
            );
        }
    }
}
