//! The scan's space: every (address, port) of the target set, numbered
//! `index = address_index * ports + port_index`, without materialising the list.

use super::{Ipv4Range, PortList, RangeSet};

#[derive(Debug, Clone)]
pub struct TargetSpace {
    starts: Vec<u32>,
    /// `before[i]`: how many addresses precede range `i`.
    before: Vec<u64>,
    addrs: RangeSet,
    n_addrs: u64,
    ports: PortList,
}

impl TargetSpace {
    pub fn new(addrs: RangeSet, ports: PortList) -> Self {
        let mut before = Vec::with_capacity(addrs.ranges().len());
        let mut acc = 0u64;
        for r in addrs.ranges() {
            before.push(acc);
            acc += r.len();
        }
        let starts = addrs.ranges().iter().map(|r| r.start).collect();
        Self {
            starts,
            before,
            n_addrs: acc,
            addrs,
            ports,
        }
    }

    /// Number of (address, port) pairs.
    pub fn len(&self) -> u64 {
        self.n_addrs * self.ports.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn addresses(&self) -> u64 {
        self.n_addrs
    }

    pub fn address_set(&self) -> &RangeSet {
        &self.addrs
    }

    pub fn ports(&self) -> &PortList {
        &self.ports
    }

    /// The address with this address index, in O(log ranges).
    #[inline]
    pub fn address(&self, i: u64) -> u32 {
        debug_assert!(i < self.n_addrs);
        let r = self.before.partition_point(|&b| b <= i) - 1;
        self.starts[r] + (i - self.before[r]) as u32
    }

    /// The pair with this index. `index < len()`.
    #[inline]
    pub fn get(&self, index: u64) -> (u32, u16) {
        let (a, p, _) = self.get_indexed(index);
        (a, p)
    }

    /// The pair with this index and the port's index in the port list.
    #[inline]
    pub fn get_indexed(&self, index: u64) -> (u32, u16, usize) {
        let np = self.ports.len() as u64;
        let (a, p) = if np == 1 {
            (index, 0)
        } else {
            (index / np, index % np)
        };
        (self.address(a), self.ports.get(p as usize), p as usize)
    }

    /// The index of a pair, if it is in the space.
    pub fn index_of(&self, addr: u32, port: u16) -> Option<u64> {
        let p = self.ports.index_of(port)? as u64;
        let rs = self.addrs.ranges();
        let r = rs.partition_point(|r| r.end < addr);
        let range: &Ipv4Range = rs.get(r).filter(|r| r.start <= addr)?;
        let a = self.before[r] + (addr - range.start) as u64;
        Some(a * self.ports.len() as u64 + p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn space(ranges: &[(u32, u32)], ports: &str) -> TargetSpace {
        let set =
            RangeSet::from_ranges(ranges.iter().map(|&(a, b)| Ipv4Range::new(a, b)).collect());
        TargetSpace::new(set, PortList::parse(ports).unwrap())
    }

    #[test]
    fn enumerates_in_order() {
        let s = space(&[(10, 11), (20, 20)], "80,443");
        let all: Vec<_> = (0..s.len()).map(|i| s.get(i)).collect();
        assert_eq!(
            all,
            vec![
                (10, 80),
                (10, 443),
                (11, 80),
                (11, 443),
                (20, 80),
                (20, 443)
            ]
        );
        assert_eq!(s.index_of(20, 443), Some(5));
        assert_eq!(s.index_of(12, 443), None);
        assert_eq!(s.index_of(10, 22), None);
    }

    #[test]
    fn whole_space_size() {
        let s = space(&[(0, u32::MAX)], "0-65535");
        assert_eq!(s.len(), 1u64 << 48);
        assert_eq!(s.get((1u64 << 48) - 1), (u32::MAX, 65535));
    }

    proptest! {
        #[test]
        fn get_and_index_of_are_inverse(r in prop::collection::vec((0u32..100_000, 0u32..300), 1..20),
                                        ports in prop::collection::vec(0u16..1000, 1..8),
                                        probe in 0u64..1_000_000) {
            let set = RangeSet::from_ranges(r.iter().map(|&(a, l)| Ipv4Range::new(a, a + l)).collect());
            let s = TargetSpace::new(set.clone(), PortList::from_ports(ports));
            let i = probe % s.len();
            let (a, p) = s.get(i);
            prop_assert!(set.contains(a));
            prop_assert_eq!(s.index_of(a, p), Some(i));
        }
    }
}
