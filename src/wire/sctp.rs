//! SCTP common header and the CRC32c checksum (RFC 9260, appendix A).

/// CRC32c (Castagnoli), as SCTP stores it: the value's bytes in little-endian order.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82f6_3b78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

use super::{get_u16, get_u32, put_u16, put_u32};

/// SCTP's IP protocol number.
pub(crate) const PROTO_SCTP: u8 = 132;
pub(crate) const HEADER_LEN: usize = 12;
pub(crate) const CHUNK_INIT: u8 = 1;
pub(crate) const CHUNK_INIT_ACK: u8 = 2;
pub(crate) const CHUNK_ABORT: u8 = 6;
pub(crate) const CHUNK_COOKIE_ECHO: u8 = 10;
/// Where an INIT chunk's initiate tag lies in the packet (common header, then the chunk).
pub(crate) const INIT_TAG_AT: usize = HEADER_LEN + 4;
/// Where an INIT chunk's initial TSN lies.
pub(crate) const INIT_TSN_AT: usize = HEADER_LEN + 16;
/// Where the common header's verification tag lies.
pub(crate) const VTAG_AT: usize = 4;

/// An SCTP packet with one INIT chunk to `dport` (source port, tags and checksum zero): the
/// association request nmap's `-sY` and `-sO` send (RFC 9260, 3.3.2).
pub(crate) fn init(dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN + 20];
    put_u16(&mut p, 2, dport);
    p[HEADER_LEN] = CHUNK_INIT;
    put_u16(&mut p, HEADER_LEN + 2, 20); // chunk length
    put_u32(&mut p, HEADER_LEN + 8, 65535); // a_rwnd
    put_u16(&mut p, HEADER_LEN + 12, 10); // outbound streams
    put_u16(&mut p, HEADER_LEN + 14, 2048); // inbound streams
    p
}

/// An SCTP packet with one COOKIE ECHO chunk carrying a 4-byte cookie no endpoint issued
/// (`-sZ`): a closed port answers it with ABORT, an open one drops it (RFC 9260, 8.4).
pub(crate) fn cookie_echo(dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN + 8];
    put_u16(&mut p, 2, dport);
    p[HEADER_LEN] = CHUNK_COOKIE_ECHO;
    put_u16(&mut p, HEADER_LEN + 2, 8);
    p
}

/// A received SCTP packet's common header and its first chunk's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SctpHeader {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) vtag: u32,
    /// The first chunk's type (INIT ACK, ABORT...).
    pub(crate) chunk: u8,
}

impl SctpHeader {
    /// The header of `b`, which must hold it and a chunk header.
    pub(crate) fn parse(b: &[u8]) -> Option<SctpHeader> {
        (b.len() >= HEADER_LEN + 4).then(|| SctpHeader {
            src_port: get_u16(b, 0),
            dst_port: get_u16(b, 2),
            vtag: get_u32(b, VTAG_AT),
            chunk: b[HEADER_LEN],
        })
    }
}

/// Writes the CRC32c of a whole SCTP packet into its checksum field.
pub(crate) fn fill_checksum(pkt: &mut [u8]) {
    pkt[8..12].fill(0);
    let c = crc32c(pkt);
    pkt[8..12].copy_from_slice(&c.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The standard CRC-32C check value (RFC 3720 B.4).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn init_and_cookie_echo_bytes() {
        let mut p = init(80);
        p[0..2].copy_from_slice(&61000u16.to_be_bytes());
        p[INIT_TAG_AT..INIT_TAG_AT + 4].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        fill_checksum(&mut p);
        assert_eq!(
            p,
            [
                0xee, 0x48, 0x00, 0x50, 0, 0, 0, 0, p[8], p[9], p[10], p[11], // header
                1, 0, 0, 20, 1, 2, 3, 4, 0, 0, 0xff, 0xff, 0, 10, 8, 0, 0, 0, 0, 0, // INIT
            ]
        );
        let stored = u32::from_le_bytes(p[8..12].try_into().unwrap());
        p[8..12].fill(0);
        assert_eq!(crc32c(&p), stored);
        let c = cookie_echo(9);
        assert_eq!(&c[12..], &[10, 0, 0, 8, 0, 0, 0, 0]);
        assert_eq!(
            SctpHeader::parse(&c),
            Some(SctpHeader {
                src_port: 0,
                dst_port: 9,
                vtag: 0,
                chunk: CHUNK_COOKIE_ECHO
            })
        );
        assert_eq!(SctpHeader::parse(&c[..15]), None);
    }
}
