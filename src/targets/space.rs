//! The scan's space: every (address, port) of the target set, numbered
//! `index = address_index * ports + port_index`, without materialising the list.
//!
//! Addresses are numbered IPv4 first, then IPv6. IPv6 addresses come in segments: plain ranges
//! (consecutive addresses) and prefix windows (one address in each of consecutive /B networks,
//! its low bits the interface identifier chosen by [`Iid`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use siphasher::sip::SipHasher13;

#[cfg(test)]
use super::PortList;
use super::{Ipv4Range, PrefixWindow, ProbePorts, RangeSet};

/// The most probes a scan may hold: the permutation works in `u64` and needs a prime above it.
pub const MAX_PROBES: u64 = 1 << 63;

/// How a prefix window's target gets the bits below its /B prefix (`--iid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iid {
    /// The low bits of this value (`--iid ::1`).
    Fixed(u128),
    /// Per target, a keyed hash of its network from the scan's seed: random-looking, and the
    /// same for every run with that seed (`--iid random`, the default).
    Random { seed: u64 },
}

impl Iid {
    /// Parses `--iid`: `random`, or an IPv6 address whose low bits are the identifier.
    pub(crate) fn parse(s: &str, seed: u64) -> Result<Iid, String> {
        if s.eq_ignore_ascii_case("random") {
            return Ok(Iid::Random { seed });
        }
        s.parse::<Ipv6Addr>()
            .map(|a| Iid::Fixed(u128::from(a)))
            .map_err(|_| {
                format!("'{s}' is not an interface identifier (random, or an address like ::1)")
            })
    }
}

/// Consecutive targets of one IPv6 range or one window's /B networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V6Segment {
    /// The first address (a window: its first network, host bits zero).
    base: u128,
    count: u64,
    /// Host bits below each target network: 0 for a plain range, `128 - B` for a window.
    shift: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpaceError {
    #[error(
        "the scan holds {addrs} addresses x {ports} ports, past the 2^63 probes a scan can walk; \
         scan one address per network with a prefix window such as {hint}"
    )]
    TooLarge {
        addrs: u128,
        ports: usize,
        hint: String,
    },
}

#[derive(Debug, Clone)]
pub struct TargetSpace {
    v4_starts: Vec<u32>,
    /// `v4_before[i]`: how many addresses precede range `i`.
    v4_before: Vec<u64>,
    /// `v4_hint[i >> v4_shift]`: the range holding address index `i` rounded down to its bucket,
    /// so a lookup starts at most a few ranges short of its own (no binary search per probe).
    v4_hint: Vec<u32>,
    v4_shift: u32,
    v4: RangeSet,
    n_v4: u64,
    v6: Vec<V6Segment>,
    v6_before: Vec<u64>,
    /// Single IPv6 addresses (hitlists), sorted, after the segments: 16 bytes each.
    v6_single: Vec<u128>,
    /// Index of the first single address.
    singles_from: u64,
    n_addrs: u64,
    iid: Iid,
    iid_hash: SipHasher13,
    ports: ProbePorts,
}

impl TargetSpace {
    /// An IPv4-only space.
    pub fn new(addrs: RangeSet, ports: impl Into<ProbePorts>) -> Self {
        Self::build(
            addrs,
            RangeSet::new(),
            Vec::new(),
            &[],
            Iid::Fixed(0),
            ports,
        )
        .expect("an IPv4 space always fits")
    }

    /// A space over both families: IPv4 ranges, IPv6 ranges, single IPv6 addresses (sorted,
    /// none inside `v6`), and prefix windows each with the network indices to scan (a window's
    /// networks minus the excluded ones).
    pub fn build(
        v4: RangeSet,
        v6: RangeSet<u128>,
        v6_single: Vec<u128>,
        windows: &[(PrefixWindow, RangeSet<u128>)],
        iid: Iid,
        ports: impl Into<ProbePorts>,
    ) -> Result<Self, SpaceError> {
        let ports: ProbePorts = ports.into();
        let mut v4_before = Vec::with_capacity(v4.ranges().len());
        let mut acc = 0u128;
        for r in v4.ranges() {
            v4_before.push(acc as u64);
            acc += r.len();
        }
        let n_v4 = acc as u64;
        // At most 4096 buckets (16 KiB, in cache), each starting at its first address's range.
        let v4_shift = (64 - n_v4.leading_zeros()).saturating_sub(12);
        let v4_hint: Vec<u32> = (0..=(n_v4.saturating_sub(1) >> v4_shift))
            .map(|b| (v4_before.partition_point(|&s| s <= b << v4_shift).max(1) - 1) as u32)
            .collect();
        let too_large = |addrs: u128, hint: String| SpaceError::TooLarge {
            addrs,
            ports: ports.len(),
            hint,
        };
        let mut segs = v6_segments(&v6, windows).map_err(|(a, h)| too_large(a, h))?;
        segs.sort_unstable_by_key(|s| s.base);
        let mut v6_before = Vec::with_capacity(segs.len());
        for s in &segs {
            v6_before.push(acc as u64);
            acc += s.count as u128;
        }
        debug_assert!(v6_single.windows(2).all(|w| w[0] < w[1]));
        let singles_from = acc as u64;
        acc += v6_single.len() as u128;
        if acc.saturating_mul(ports.len() as u128) >= MAX_PROBES as u128 {
            return Err(too_large(acc, "2001:db8::/32-48".into()));
        }
        let seed = match iid {
            Iid::Random { seed } => seed,
            Iid::Fixed(_) => 0,
        };
        Ok(Self {
            v4_starts: v4.ranges().iter().map(|r| r.start).collect(),
            v4_hint,
            v4_shift,
            v4_before,
            v4,
            n_v4,
            v6: segs,
            v6_before,
            v6_single,
            singles_from,
            n_addrs: acc as u64,
            iid,
            iid_hash: SipHasher13::new_with_keys(seed, 0x7864_7073_6361_6e69),
            ports,
        })
    }

    /// Number of (address, port) pairs.
    pub fn len(&self) -> u64 {
        self.n_addrs * self.ports.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn addresses(&self) -> u64 {
        self.n_addrs
    }

    /// Number of IPv4 addresses (they come first).
    pub(crate) fn ipv4_addresses(&self) -> u64 {
        self.n_v4
    }

    /// Number of IPv6 targets.
    pub(crate) fn ipv6_addresses(&self) -> u64 {
        self.n_addrs - self.n_v4
    }

    pub(crate) fn ports(&self) -> &ProbePorts {
        &self.ports
    }

    #[inline]
    fn iid_bits(&self, network: u128, shift: u8) -> u128 {
        if shift == 0 {
            return 0;
        }
        let mask = if shift >= 128 {
            u128::MAX
        } else {
            (1u128 << shift) - 1
        };
        match self.iid {
            Iid::Fixed(v) => v & mask,
            Iid::Random { .. } => {
                let h = self.iid_hash.hash(&network.to_be_bytes()) as u128;
                let wide = h | (h.rotate_left(64) ^ (h << 64));
                wide & mask
            }
        }
    }

    /// The address with this address index, in O(log ranges). IPv4 stays on the inlined fast
    /// path; IPv6 (segments, windows, hitlists) is a call.
    #[inline(always)]
    pub(crate) fn address(&self, i: u64) -> IpAddr {
        debug_assert!(i < self.n_addrs);
        if i < self.n_v4 {
            let mut r = self.v4_hint[(i >> self.v4_shift) as usize] as usize;
            while r + 1 < self.v4_before.len() && self.v4_before[r + 1] <= i {
                r += 1;
            }
            return IpAddr::V4(Ipv4Addr::from(
                self.v4_starts[r] + (i - self.v4_before[r]) as u32,
            ));
        }
        self.address_v6(i)
    }

    #[inline(never)]
    fn address_v6(&self, i: u64) -> IpAddr {
        if i >= self.singles_from {
            return IpAddr::V6(Ipv6Addr::from(
                self.v6_single[(i - self.singles_from) as usize],
            ));
        }
        let r = self.v6_before.partition_point(|&b| b <= i) - 1;
        let s = &self.v6[r];
        let k = (i - self.v6_before[r]) as u128;
        let net = if s.shift >= 128 {
            s.base
        } else {
            s.base + (k << s.shift)
        };
        IpAddr::V6(Ipv6Addr::from(net | self.iid_bits(net, s.shift)))
    }

    /// The pair with this index. `index < len()`.
    #[inline(always)]
    pub fn get(&self, index: u64) -> (IpAddr, u16) {
        let (a, p, _) = self.get_indexed(index);
        (a, p)
    }

    /// The pair with this index and the port's index in the port list.
    #[inline(always)]
    pub(crate) fn get_indexed(&self, index: u64) -> (IpAddr, u16, usize) {
        let np = self.ports.len() as u64;
        let (a, p) = if np == 1 {
            (index, 0)
        } else {
            (index / np, index % np)
        };
        (self.address(a), self.ports.get(p as usize), p as usize)
    }

    /// The address index of an address, if it is in the space.
    pub(crate) fn address_index(&self, addr: IpAddr) -> Option<u64> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                let rs = self.v4.ranges();
                let r = rs.partition_point(|r| r.end < a);
                let range: &Ipv4Range = rs.get(r).filter(|r| r.start <= a)?;
                Some(self.v4_before[r] + (a - range.start) as u64)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                if let Ok(k) = self.v6_single.binary_search(&a) {
                    return Some(self.singles_from + k as u64);
                }
                let r = self.v6.partition_point(|s| s.base <= a).checked_sub(1)?;
                let s = &self.v6[r];
                let (k, net) = if s.shift >= 128 {
                    (0, s.base)
                } else {
                    let k = (a - s.base) >> s.shift;
                    (k, s.base + (k << s.shift))
                };
                if k >= s.count as u128 || a != net | self.iid_bits(net, s.shift) {
                    return None;
                }
                Some(self.v6_before[r] + k as u64)
            }
        }
    }

    /// The index of a pair, if it is in the space: `port` of the protocol in `slot` (see
    /// [`ProbePorts`]; 0 in a one-protocol scan).
    #[inline]
    pub(crate) fn index_of(&self, addr: IpAddr, slot: usize, port: u16) -> Option<u64> {
        let p = self.ports.index_of(slot, port)? as u64;
        let a = self.address_index(addr)?;
        Some(a * self.ports.len() as u64 + p)
    }
}

/// The IPv6 segments of plain ranges and prefix windows (unsorted), or the address count and
/// a hint of a segment too large for one space.
fn v6_segments(
    v6: &RangeSet<u128>,
    windows: &[(PrefixWindow, RangeSet<u128>)],
) -> Result<Vec<V6Segment>, (u128, String)> {
    let mut segs: Vec<V6Segment> = Vec::with_capacity(v6.ranges().len());
    for r in v6.ranges() {
        let count = r.len();
        if count >= MAX_PROBES as u128 {
            let prefix = 128 - count.ilog2().min(127) as u8;
            let outer = prefix.min(64);
            let start = Ipv6Addr::from(r.start);
            return Err((
                v6.len(),
                format!("{start}/{outer}-{}", (outer + 32).min(128)),
            ));
        }
        segs.push(V6Segment {
            base: r.start,
            count: count as u64,
            shift: 0,
        });
    }
    for (w, nets) in windows {
        let shift = 128 - w.inner;
        for n in nets.ranges() {
            let count = n.len();
            if count >= MAX_PROBES as u128 {
                let net = Ipv6Addr::from(w.net);
                let hint = format!("{net}/{}-{}", w.outer, w.outer as u32 + 32);
                return Err((w.networks(), hint));
            }
            let base = if shift == 128 {
                w.net
            } else {
                w.net | (n.start << shift)
            };
            segs.push(V6Segment {
                base,
                count: count as u64,
                shift,
            });
        }
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{parse_target, Ipv6Range, Target};
    use proptest::prelude::*;

    fn ip4(a: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn v4(a: IpAddr) -> u32 {
        match a {
            IpAddr::V4(a) => a.into(),
            IpAddr::V6(a) => panic!("{a}"),
        }
    }

    fn window(s: &str) -> (PrefixWindow, RangeSet<u128>) {
        let Target::Window(w) = parse_target(s).unwrap() else {
            panic!("{s}")
        };
        let nets = RangeSet::from_ranges(vec![Ipv6Range::new(0, w.networks() - 1)]);
        (w, nets)
    }

    #[test]
    fn prefix_window_with_fixed_iid() {
        let s = TargetSpace::build(
            RangeSet::new(),
            RangeSet::new(),
            Vec::new(),
            &[window("2001:db8::/32-48")],
            Iid::parse("::1", 0).unwrap(),
            PortList::parse("80").unwrap(),
        )
        .unwrap();
        assert_eq!(s.len(), 65_536);
        assert_eq!(s.get(0).0.to_string(), "2001:db8::1");
        assert_eq!(s.get(1).0.to_string(), "2001:db8:1::1");
        assert_eq!(s.get(65_535).0.to_string(), "2001:db8:ffff::1");
        let a: IpAddr = "2001:db8:abcd::1".parse().unwrap();
        assert_eq!(s.index_of(a, 0, 80), Some(0xabcd));
        assert_eq!(s.index_of("2001:db8:abcd::2".parse().unwrap(), 0, 80), None);
    }

    #[test]
    fn random_iid_is_repeatable_per_seed_and_inverse() {
        let make = |seed| {
            TargetSpace::build(
                RangeSet::from_ranges(vec![Ipv4Range::new(1, 2)]),
                RangeSet::from_ranges(vec![Ipv6Range::new(5 << 100, (5 << 100) + 2)]),
                vec![1 << 120, 2 << 120],
                &[window("2001:db8::/40-64")],
                Iid::Random { seed },
                PortList::parse("22,80").unwrap(),
            )
            .unwrap()
        };
        let (a, b, c) = (make(7), make(7), make(8));
        assert_eq!(a.addresses(), 2 + 3 + 2 + (1 << 24));
        let mut differ = 0;
        for i in (0..a.len()).step_by(9973) {
            let (x, p) = a.get(i);
            assert_eq!(b.get(i), (x, p));
            differ += (c.get(i) != (x, p)) as u32;
            assert_eq!(a.index_of(x, 0, p), Some(i), "{x} {p}");
        }
        assert!(differ > 0);
        // Single addresses come last, and invert too.
        let last = a.len() - 1;
        let (x, p) = a.get(last);
        assert_eq!(x, IpAddr::V6(Ipv6Addr::from(2u128 << 120)));
        assert_eq!((p, a.index_of(x, 0, p)), (80, Some(last)));
        assert_eq!(
            a.index_of(IpAddr::V6(Ipv6Addr::from(3u128 << 120)), 0, 80),
            None
        );
        // The IPv6 part follows the IPv4 part.
        assert!(a.get(0).0.is_ipv4() && a.get(4).0.is_ipv6());
    }

    #[test]
    fn beyond_two_to_the_63_is_an_error_with_a_hint() {
        let e = TargetSpace::build(
            RangeSet::new(),
            RangeSet::from_ranges(vec![Ipv6Range::cidr(0x2001_0db8 << 96, 64)]),
            Vec::new(),
            &[],
            Iid::Fixed(1),
            PortList::parse("80").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2^63") && e.contains("/64-"), "{e}");
        let e = TargetSpace::build(
            RangeSet::new(),
            RangeSet::new(),
            Vec::new(),
            &[window("2001:db8::/32-112")],
            Iid::Fixed(1),
            PortList::parse("80").unwrap(),
        );
        assert!(e.is_err());
    }

    fn space(ranges: &[(u32, u32)], ports: &str) -> TargetSpace {
        let set =
            RangeSet::from_ranges(ranges.iter().map(|&(a, b)| Ipv4Range::new(a, b)).collect());
        TargetSpace::new(set, PortList::parse(ports).unwrap())
    }

    #[test]
    fn enumerates_in_order() {
        let s = space(&[(10, 11), (20, 20)], "80,443");
        let all: Vec<_> = (0..s.len())
            .map(|i| s.get(i))
            .map(|(a, p)| (v4(a), p))
            .collect();
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
        assert_eq!(s.index_of(ip4(20), 0, 443), Some(5));
        assert_eq!(s.index_of(ip4(12), 0, 443), None);
        assert_eq!(s.index_of(ip4(10), 0, 22), None);
    }

    #[test]
    fn whole_space_size() {
        let s = space(&[(0, u32::MAX)], "0-65535");
        assert_eq!(s.len(), 1u64 << 48);
        assert_eq!(s.get((1u64 << 48) - 1), (ip4(u32::MAX), 65535));
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
            prop_assert!(set.contains(v4(a)));
            prop_assert_eq!(s.index_of(a, 0, p), Some(i));
        }
    }
}
