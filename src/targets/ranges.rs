//! Inclusive address ranges and normalized sets of them, for either family: an address is its
//! integer (`u32` for IPv4, `u128` for IPv6), so one implementation serves both.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

/// The integer form of an address family's addresses.
pub trait AddrBits:
    Copy + Ord + Eq + std::hash::Hash + fmt::Debug + Default + Send + Sync + 'static
{
    const BITS: u32;
    fn to_u128(self) -> u128;
    /// Truncates to the family's width.
    fn from_u128(v: u128) -> Self;
    /// The largest value.
    fn max_value() -> Self {
        Self::from_u128(u128::MAX)
    }
}

impl AddrBits for u32 {
    const BITS: u32 = 32;
    fn to_u128(self) -> u128 {
        self as u128
    }
    fn from_u128(v: u128) -> Self {
        v as u32
    }
}

impl AddrBits for u128 {
    const BITS: u32 = 128;
    fn to_u128(self) -> u128 {
        self
    }
    fn from_u128(v: u128) -> Self {
        v
    }
}

/// An inclusive range of addresses as host-order integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrRange<A> {
    pub(crate) start: A,
    pub(crate) end: A,
}

/// An IPv4 range (`u32` addresses).
pub type Ipv4Range = AddrRange<u32>;
/// An IPv6 range (`u128` addresses).
pub type Ipv6Range = AddrRange<u128>;

impl<A: AddrBits> AddrRange<A> {
    pub fn new(start: A, end: A) -> Self {
        debug_assert!(start <= end);
        Self { start, end }
    }
    /// The network of `prefix` bits around `net`.
    pub(crate) fn cidr(net: A, prefix: u8) -> Self {
        let host_bits = A::BITS - prefix as u32;
        let host = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let n = net.to_u128() & !host;
        Self {
            start: A::from_u128(n),
            end: A::from_u128(n | host),
        }
    }
    pub(crate) fn single(a: A) -> Self {
        Self { start: a, end: a }
    }
    /// Number of addresses (an IPv6 /0 saturates at `u128::MAX`).
    pub(crate) fn len(&self) -> u128 {
        (self.end.to_u128() - self.start.to_u128()).saturating_add(1)
    }
    pub(crate) fn contains_range(&self, o: &AddrRange<A>) -> bool {
        self.start <= o.start && o.end <= self.end
    }
}

impl fmt::Display for AddrRange<u32> {
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

impl fmt::Display for AddrRange<u128> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", Ipv6Addr::from(self.start))
        } else {
            write!(
                f,
                "{}-{}",
                Ipv6Addr::from(self.start),
                Ipv6Addr::from(self.end)
            )
        }
    }
}

/// A set of addresses kept as sorted, disjoint, non-adjacent ranges. `RangeSet` alone is IPv4;
/// `RangeSet<u128>` is IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet<A = u32> {
    ranges: Vec<AddrRange<A>>,
}

impl<A> Default for RangeSet<A> {
    fn default() -> Self {
        Self { ranges: Vec::new() }
    }
}

impl<A: AddrBits> RangeSet<A> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_ranges(mut v: Vec<AddrRange<A>>) -> Self {
        v.sort_unstable();
        let mut out: Vec<AddrRange<A>> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(last) if r.start.to_u128() <= last.end.to_u128().saturating_add(1) => {
                    last.end = last.end.max(r.end);
                }
                _ => out.push(r),
            }
        }
        Self { ranges: out }
    }

    pub(crate) fn ranges(&self) -> &[AddrRange<A>] {
        &self.ranges
    }

    /// Number of addresses (saturating for IPv6 sets near the whole space).
    pub(crate) fn len(&self) -> u128 {
        self.ranges
            .iter()
            .fold(0u128, |acc, r| acc.saturating_add(r.len()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(crate) fn contains(&self, a: A) -> bool {
        let i = self.ranges.partition_point(|r| r.end < a);
        self.ranges.get(i).is_some_and(|r| r.start <= a)
    }

    pub(crate) fn union(&self, other: &RangeSet<A>) -> RangeSet<A> {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&other.ranges);
        RangeSet::from_ranges(v)
    }

    /// The addresses of `self` not in `other`.
    pub(crate) fn subtract(&self, other: &RangeSet<A>) -> RangeSet<A> {
        let mut out = Vec::with_capacity(self.ranges.len());
        let cut = &other.ranges;
        let mut j = 0;
        for r in &self.ranges {
            let mut start = r.start.to_u128();
            let end = r.end.to_u128();
            while j < cut.len() && cut[j].end.to_u128() < start {
                j += 1;
            }
            let mut k = j;
            let mut open = true;
            while k < cut.len() && cut[k].start.to_u128() <= end {
                let c = cut[k];
                if c.start.to_u128() > start {
                    out.push(AddrRange::new(
                        A::from_u128(start),
                        A::from_u128(c.start.to_u128() - 1),
                    ));
                }
                match c.end.to_u128().checked_add(1) {
                    Some(next) if next > start => start = next,
                    Some(_) => {}
                    None => open = false,
                }
                if !open || start > end {
                    open = false;
                    break;
                }
                k += 1;
            }
            if open && start <= end {
                out.push(AddrRange::new(A::from_u128(start), A::from_u128(end)));
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

    #[test]
    fn ipv6_cidr_and_subtract_at_the_top() {
        let all = RangeSet::from_ranges(vec![Ipv6Range::cidr(0, 0)]);
        assert_eq!(all.len(), u128::MAX);
        let top = RangeSet::from_ranges(vec![Ipv6Range::single(u128::MAX)]);
        let d = all.subtract(&top);
        assert_eq!(d.ranges(), &[Ipv6Range::new(0, u128::MAX - 1)]);
        let n: u128 = 0x2001_0db8 << 96;
        assert_eq!(
            Ipv6Range::cidr(n | 5, 32),
            Ipv6Range::new(n, n | ((1u128 << 96) - 1))
        );
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
