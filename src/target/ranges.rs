//! Inclusive IPv4 ranges and normalized sets of them.

use std::{fmt, net::Ipv4Addr};

/// An inclusive range of IPv4 addresses as host-order integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Range {
    pub start: u32,
    pub end: u32,
}

impl Ipv4Range {
    pub fn new(start: u32, end: u32) -> Self {
        debug_assert!(start <= end);
        Self { start, end }
    }
    pub fn cidr(net: u32, prefix: u8) -> Self {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Self {
            start: net & mask,
            end: (net & mask) | !mask,
        }
    }
    pub fn single(a: u32) -> Self {
        Self { start: a, end: a }
    }
    pub fn len(&self) -> u64 {
        (self.end - self.start) as u64 + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn contains_range(&self, o: &Ipv4Range) -> bool {
        self.start <= o.start && o.end <= self.end
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", Ipv4Addr::from(self.start))
        } else {
            write!(
                f,
                "{}-{}",
                Ipv4Addr::from(self.start),
                Ipv4Addr::from(self.end)
            )
        }
    }
}

/// A set of addresses kept as sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<Ipv4Range>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_ranges(mut v: Vec<Ipv4Range>) -> Self {
        v.sort_unstable();
        let mut out: Vec<Ipv4Range> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(last) if r.start as u64 <= last.end as u64 + 1 => {
                    last.end = last.end.max(r.end);
                }
                _ => out.push(r),
            }
        }
        Self { ranges: out }
    }

    pub fn ranges(&self) -> &[Ipv4Range] {
        &self.ranges
    }

    pub fn len(&self) -> u64 {
        self.ranges.iter().map(Ipv4Range::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, a: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.end < a);
        self.ranges.get(i).is_some_and(|r| r.start <= a)
    }

    pub fn union(&self, other: &RangeSet) -> RangeSet {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&other.ranges);
        RangeSet::from_ranges(v)
    }

    /// The addresses of `self` not in `other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::with_capacity(self.ranges.len());
        let cut = &other.ranges;
        let mut j = 0;
        for r in &self.ranges {
            let mut start = r.start as u64;
            let end = r.end as u64;
            while j < cut.len() && (cut[j].end as u64) < start {
                j += 1;
            }
            let mut k = j;
            while k < cut.len() && (cut[k].start as u64) <= end {
                let c = cut[k];
                if (c.start as u64) > start {
                    out.push(Ipv4Range::new(start as u32, c.start - 1));
                }
                start = start.max(c.end as u64 + 1);
                if start > end {
                    break;
                }
                k += 1;
            }
            if start <= end {
                out.push(Ipv4Range::new(start as u32, end as u32));
            }
        }
        RangeSet { ranges: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[(u32, u32)]) -> RangeSet {
        RangeSet::from_ranges(v.iter().map(|&(a, b)| Ipv4Range::new(a, b)).collect())
    }

    #[test]
    fn normalizes_overlap_and_adjacency() {
        let s = set(&[(10, 20), (0, 5), (6, 8), (15, 30), (40, 40)]);
        assert_eq!(
            s.ranges(),
            &[
                Ipv4Range::new(0, 8),
                Ipv4Range::new(10, 30),
                Ipv4Range::new(40, 40)
            ]
        );
        assert_eq!(s.len(), 9 + 21 + 1);
    }

    #[test]
    fn subtract_edges() {
        let s = set(&[(0, u32::MAX)]);
        let t = s.subtract(&set(&[(0, 0), (u32::MAX, u32::MAX), (100, 200)]));
        assert_eq!(
            t.ranges(),
            &[Ipv4Range::new(1, 99), Ipv4Range::new(201, u32::MAX - 1)]
        );
        assert!(s.subtract(&s).is_empty());
    }

    #[test]
    fn cidr() {
        assert_eq!(
            Ipv4Range::cidr(0xc613_0105, 16),
            Ipv4Range::new(0xc613_0000, 0xc613_ffff)
        );
        assert_eq!(Ipv4Range::cidr(5, 0).len(), 1 << 32);
        assert_eq!(Ipv4Range::cidr(5, 32).len(), 1);
    }

    proptest! {
        #[test]
        fn subtract_is_setwise(a in prop::collection::vec((0u32..2000, 0u32..50), 0..12),
                               b in prop::collection::vec((0u32..2000, 0u32..50), 0..12)) {
            let a = set(&a.iter().map(|&(s, l)| (s, s + l)).collect::<Vec<_>>());
            let b = set(&b.iter().map(|&(s, l)| (s, s + l)).collect::<Vec<_>>());
            let d = a.subtract(&b);
            for x in 0..2100u32 {
                prop_assert_eq!(d.contains(x), a.contains(x) && !b.contains(x));
            }
            prop_assert_eq!(a.union(&b).len() , a.len() + b.subtract(&a).len());
        }
    }
}
