//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried unfolded in a `u64`, so a template can precompute the sum of its constant
//! words once and each probe adds only the words it changes.

/// Ones'-complement sum of `data` as big-endian 16-bit words (odd byte padded with zero),
/// added to `acc`. Not folded.
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

/// Folds a wide sum to 16 bits of ones'-complement arithmetic.
#[inline(always)]
pub(crate) fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum field value for data whose (unfolded) sum is `acc`.
#[inline(always)]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// Sum of a 32-bit value as two 16-bit words.
#[inline(always)]
pub fn sum_u32(v: u32) -> u64 {
    (v >> 16) as u64 + (v & 0xffff) as u64
}

/// Sum of an address of either family as 16-bit words.
#[inline(always)]
pub(crate) fn sum_addr(a: std::net::IpAddr) -> u64 {
    match a {
        std::net::IpAddr::V4(a) => sum_u32(a.into()),
        std::net::IpAddr::V6(a) => sum_u128(a.into()),
    }
}

/// Sum of a 128-bit value as eight 16-bit words.
#[inline(always)]
pub(crate) fn sum_u128(v: u128) -> u64 {
    sum_u32((v >> 96) as u32)
        + sum_u32((v >> 64) as u32)
        + sum_u32((v >> 32) as u32)
        + sum_u32(v as u32)
}

/// Sum of the pseudo header of either family (RFC 768/9293 for IPv4, RFC 8200 8.1 for IPv6):
/// both are the two addresses, the protocol and the upper-layer length, as 16-bit words.
pub(crate) fn pseudo_header_ip(
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    proto: u8,
    l4_len: u32,
) -> u64 {
    sum_addr(src) + sum_addr(dst) + proto as u64 + sum_u32(l4_len)
}

/// Sum of the IPv4 pseudo header used by TCP and UDP.
pub fn pseudo_header(src: u32, dst: u32, proto: u8, l4_len: u16) -> u64 {
    sum_u32(src) + sum_u32(dst) + proto as u64 + l4_len as u64
}

#[cfg(test)]
/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changes from `old` to `new`.
#[inline]
pub(crate) fn update(check: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m')
    !fold(!check as u64 + !old as u64 + new as u64)
}

/// Checks data that carries its own checksum: the folded sum must be all ones.
pub fn verify(acc: u64) -> bool {
    fold(acc) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A real header (Wikipedia's IPv4 checksum example): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(0, &h)), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert!(verify(sum(0, &h)));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(0, &[0xab]), 0xab00);
    }

    proptest::proptest! {
        #[test]
        fn incremental_update_matches_recompute(mut data in proptest::collection::vec(proptest::num::u8::ANY, 2..64), idx in 0usize..31, new in proptest::num::u16::ANY) {
            let words = data.len() / 2;
            let i = idx % words;
            let before = finish(sum(0, &data));
            let old = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
            data[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
            let after = finish(sum(0, &data));
            // Ones' complement has two zeros; both encodings verify identically.
            let inc = update(before, old, new);
            proptest::prop_assert!(inc == after || (fold(!inc as u64) == fold(!after as u64)));
        }
    }
}
