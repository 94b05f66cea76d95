//! The default blocklist: IANA IPv4 special-purpose blocks that are not globally reachable
//! (RFC 6890 registry), plus multicast and the limited broadcast address.

use super::{Ipv4Range, RangeSet};

/// (network, prefix length, what it is).
pub const RESERVED: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "this network (RFC 791)"),
    (0x0a00_0000, 8, "private use (RFC 1918)"),
    (0x6440_0000, 10, "shared address space (RFC 6598)"),
    (0x7f00_0000, 8, "loopback (RFC 1122)"),
    (0xa9fe_0000, 16, "link local (RFC 3927)"),
    (0xac10_0000, 12, "private use (RFC 1918)"),
    (0xc000_0000, 24, "IETF protocol assignments (RFC 6890)"),
    (0xc000_0200, 24, "documentation TEST-NET-1 (RFC 5737)"),
    (0xc058_6300, 24, "6to4 relay anycast (RFC 7526)"),
    (0xc0a8_0000, 16, "private use (RFC 1918)"),
    (0xc612_0000, 15, "benchmarking (RFC 2544)"),
    (0xc633_6400, 24, "documentation TEST-NET-2 (RFC 5737)"),
    (0xcb00_7100, 24, "documentation TEST-NET-3 (RFC 5737)"),
    (0xe000_0000, 4, "multicast (RFC 5771)"),
    (0xf000_0000, 4, "reserved (RFC 1112)"),
    (0xffff_ffff, 32, "limited broadcast (RFC 919)"),
];

pub fn reserved_set() -> RangeSet {
    RangeSet::from_ranges(
        RESERVED
            .iter()
            .map(|&(n, p, _)| Ipv4Range::cidr(n, p))
            .collect(),
    )
}

/// The reserved block that wholly contains `r`, if any: such a target is taken as meant.
pub fn enclosing_block(r: &Ipv4Range) -> Option<&'static str> {
    RESERVED
        .iter()
        .find(|&&(n, p, _)| Ipv4Range::cidr(n, p).contains_range(r))
        .map(|&(_, _, name)| name)
}

/// Applies the blocklist to parsed targets: each target inside one reserved block is kept whole,
/// every other loses its reserved addresses. Returns the kept set and how many were removed.
pub fn apply(targets: &[Ipv4Range]) -> (RangeSet, u64) {
    let reserved = reserved_set();
    let mut kept = Vec::new();
    let mut broad = Vec::new();
    for t in targets {
        if enclosing_block(t).is_some() {
            kept.push(*t);
        } else {
            broad.push(*t);
        }
    }
    let broad = RangeSet::from_ranges(broad);
    let allowed = broad.subtract(&reserved);
    let explicit = RangeSet::from_ranges(kept);
    // Addresses removed are those of broad targets not given explicitly by a narrow one.
    let removed = broad.subtract(&explicit).len() - allowed.subtract(&explicit).len();
    (allowed.union(&explicit), removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse_target;

    #[test]
    fn whole_internet_loses_reserved() {
        let (set, removed) = apply(&[parse_target("0.0.0.0/0").unwrap()]);
        assert_eq!(set.len() + removed, 1 << 32);
        assert_eq!(removed, reserved_set().len());
        assert!(!set.contains(u32::from(std::net::Ipv4Addr::new(10, 1, 2, 3))));
        assert!(!set.contains(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 1))));
        assert!(set.contains(u32::from(std::net::Ipv4Addr::new(1, 1, 1, 1))));
    }

    #[test]
    fn target_inside_one_block_is_meant() {
        let (set, removed) = apply(&[parse_target("198.19.0.0/16").unwrap()]);
        assert_eq!((set.len(), removed), (65536, 0));
        assert_eq!(
            enclosing_block(&parse_target("198.19.0.0/16").unwrap()),
            Some("benchmarking (RFC 2544)")
        );
    }

    #[test]
    fn straddling_target_is_trimmed() {
        // 198.16.0.0/12 covers 198.18.0.0/15 and public space around it.
        let (set, removed) = apply(&[parse_target("198.16.0.0/12").unwrap()]);
        assert_eq!(removed, 1 << 17);
        assert_eq!(set.len(), (1 << 20) - (1 << 17));
    }
}
