//! The default blocklist: the IANA special-purpose blocks of both families that are not globally
//! reachable (RFC 6890 registries), plus multicast and the limited broadcast address.
//!
//! One rule for both families: a target wholly inside one reserved block is taken as meant and
//! scanned as given (the lab lives in 198.18.0.0/15 and 2001:db8::/32); every broader target
//! loses its reserved addresses.

use super::{AddrBits, AddrRange, Ipv4Range, Ipv6Range, PrefixWindow, RangeSet};

/// (network, prefix length, what it is).
pub(crate) const RESERVED: &[(u32, u8, &str)] = &[
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

/// The IPv6 special-purpose registry's blocks that are not globally reachable, and multicast.
pub(crate) const RESERVED6: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified address (RFC 4291)"),
    (1, 128, "loopback (RFC 4291)"),
    (0xffff_0000_0000, 96, "IPv4-mapped (RFC 4291)"),
    (
        0x0064_ff9b_0001 << 80,
        48,
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    (0x0100 << 112, 64, "discard-only (RFC 6666)"),
    (0x2001 << 112, 23, "IETF protocol assignments (RFC 2928)"),
    (0x2001_0db8 << 96, 32, "documentation (RFC 3849)"),
    (0x3fff << 112, 20, "documentation (RFC 9637)"),
    (0x5f00 << 112, 16, "segment routing SIDs (RFC 9602)"),
    (0xfc00 << 112, 7, "unique local (RFC 4193)"),
    (0xfe80 << 112, 10, "link-local unicast (RFC 4291)"),
    (0xff00 << 112, 8, "multicast (RFC 4291)"),
];

/// The reserved blocks of a family, as ranges with their names.
pub trait Reserved: AddrBits {
    fn reserved() -> Vec<(AddrRange<Self>, &'static str)>;
}

impl Reserved for u32 {
    fn reserved() -> Vec<(AddrRange<u32>, &'static str)> {
        RESERVED
            .iter()
            .map(|&(n, p, name)| (Ipv4Range::cidr(n, p), name))
            .collect()
    }
}

impl Reserved for u128 {
    fn reserved() -> Vec<(AddrRange<u128>, &'static str)> {
        RESERVED6
            .iter()
            .map(|&(n, p, name)| (Ipv6Range::cidr(n, p), name))
            .collect()
    }
}

pub(crate) fn reserved_set<A: Reserved>() -> RangeSet<A> {
    RangeSet::from_ranges(A::reserved().into_iter().map(|(r, _)| r).collect())
}

/// The reserved block that wholly contains `r`, if any: such a target is taken as meant.
pub(crate) fn enclosing_block<A: Reserved>(r: &AddrRange<A>) -> Option<&'static str> {
    A::reserved()
        .into_iter()
        .find(|(b, _)| b.contains_range(r))
        .map(|(_, name)| name)
}

/// Applies the blocklist to parsed targets: each target inside one reserved block is kept whole,
/// every other loses its reserved addresses. Returns the kept set and how many were removed.
pub fn apply<A: Reserved>(targets: &[AddrRange<A>]) -> (RangeSet<A>, u128) {
    let blocks = A::reserved();
    let reserved = RangeSet::from_ranges(blocks.iter().map(|(r, _)| *r).collect());
    let mut kept = Vec::new();
    let mut broad = Vec::new();
    for t in targets {
        if blocks.iter().any(|(b, _)| b.contains_range(t)) {
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

/// What the blocklist takes out of a prefix window: nothing when the window lies inside one
/// reserved block, else every reserved range it overlaps.
pub(crate) fn window_cut(w: &PrefixWindow) -> RangeSet<u128> {
    if enclosing_block(&w.span()).is_some() {
        RangeSet::new()
    } else {
        reserved_set::<u128>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{parse_target, Target};

    fn v4(s: &str) -> Ipv4Range {
        match parse_target(s).unwrap() {
            Target::V4(r) => r,
            t => panic!("{t:?}"),
        }
    }

    fn v6(s: &str) -> Ipv6Range {
        match parse_target(s).unwrap() {
            Target::V6(r) => r,
            t => panic!("{t:?}"),
        }
    }

    #[test]
    fn whole_internet_loses_reserved() {
        let (set, removed) = apply(&[v4("0.0.0.0/0")]);
        assert_eq!(set.len() + removed, 1 << 32);
        assert_eq!(removed, reserved_set::<u32>().len());
        assert!(!set.contains(u32::from(std::net::Ipv4Addr::new(10, 1, 2, 3))));
        assert!(!set.contains(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 1))));
        assert!(set.contains(u32::from(std::net::Ipv4Addr::new(1, 1, 1, 1))));
    }

    #[test]
    fn target_inside_one_block_is_meant() {
        let (set, removed) = apply(&[v4("198.19.0.0/16")]);
        assert_eq!((set.len(), removed), (65536, 0));
        assert_eq!(
            enclosing_block(&v4("198.19.0.0/16")),
            Some("benchmarking (RFC 2544)")
        );
        let (set, removed) = apply(&[v6("2001:db8::/112")]);
        assert_eq!((set.len(), removed), (65536, 0));
        assert_eq!(
            enclosing_block(&v6("2001:db8:1::5")),
            Some("documentation (RFC 3849)")
        );
    }

    #[test]
    fn straddling_target_is_trimmed() {
        // 198.16.0.0/12 covers 198.18.0.0/15 and public space around it.
        let (set, removed) = apply(&[v4("198.16.0.0/12")]);
        assert_eq!(removed, 1 << 17);
        assert_eq!(set.len(), (1 << 20) - (1 << 17));
        // 2001:d00::/24 covers 2001:db8::/32 and global space around it.
        let (set, removed) = apply(&[v6("2001:d00::/24")]);
        assert_eq!(removed, 1 << 96);
        assert_eq!(set.len(), (1 << 104) - (1 << 96));
    }

    #[test]
    fn ipv6_special_purpose_blocks() {
        let (set, removed) = apply(&[v6("::/0")]);
        assert_eq!(set.len().saturating_add(removed), u128::MAX);
        for reserved in [
            "::1",
            "::ffff:198.19.0.1",
            "fd00::1",
            "fe80::1".replace("fe80", "febf").as_str(),
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
        ] {
            let a: std::net::Ipv6Addr = reserved.parse().unwrap();
            assert!(!set.contains(u128::from(a)), "{reserved}");
        }
        let g: std::net::Ipv6Addr = "2606:4700::1111".parse().unwrap();
        assert!(set.contains(u128::from(g)));
    }

    #[test]
    fn windows_inside_a_block_keep_everything() {
        let Target::Window(w) = parse_target("2001:db8::/32-48").unwrap() else {
            panic!()
        };
        assert!(window_cut(&w).is_empty());
        let Target::Window(w) = parse_target("2000::/3-16").unwrap() else {
            panic!()
        };
        assert!(!window_cut(&w).is_empty());
    }
}
