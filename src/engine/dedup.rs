//! Reports each (address, port, protocol) once, however many retransmitted replies arrive, in
//! memory that does not grow with the results (docs/design.md, "Bounded memory").
//!
//! - Up to [`BITMAP_MAX_PROBES`] probes, one bit per probe index of the whole space, set when its
//!   target first answers: exact, and it is also `--report-silent`'s record of who answered. The
//!   bitmap is allocated zeroed, so the kernel maps its pages as replies first touch them.
//! - Past that, a window keyed by time: the keys seen in the last [`WINDOW_HORIZON`] (two
//!   generations of hash sets, rotated). Every repeat of one probe's reply comes within it: Linux
//!   retransmits a SYN-ACK 5 times over 63 s, other stacks fewer; RSTs and ICMP errors are not
//!   retransmitted. Its memory is bounded by the result rate times twice the horizon. `--retries`
//!   passes over such a space come hours apart, so config refuses them there.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::{probe::Proto, targets::TargetSpace};

/// The largest space the bitmap covers: 2^34 bits, 2 GiB of address space, of which a scan maps
/// what its replies touch (a /0 × 1 port sweep: 3.7 G probes, 441 MiB).
pub(crate) const BITMAP_MAX_PROBES: u64 = 1 << 34;

/// How long a key is remembered at least in window mode.
pub(crate) const WINDOW_HORIZON: Duration = Duration::from_secs(70);

/// A multiplicative hasher: keys are already well spread (address, port), and SipHash would cost
/// more than the rest of the receive path.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64 ^ ((v >> 64) as u64).rotate_left(29));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (v >> 32);
    }
}

type FastSet<K> = HashSet<K, BuildHasherDefault<KeyHasher>>;

/// Exact keys of both families: IPv4 keys pack into 64 bits, IPv6 keys keep the whole address.
#[derive(Default)]
struct Keys {
    v4: FastSet<u64>,
    v6: FastSet<(u128, u32)>,
}

impl Keys {
    fn key(ip: IpAddr, port: u16, proto: Proto) -> Result<u64, (u128, u32)> {
        let tail = (port as u64) << 8 | proto as u64;
        match ip {
            IpAddr::V4(a) => Ok((u32::from(a) as u64) << 24 | tail),
            IpAddr::V6(a) => Err((u128::from(a), tail as u32)),
        }
    }
    fn contains(&self, k: &Result<u64, (u128, u32)>) -> bool {
        match k {
            Ok(k) => self.v4.contains(k),
            Err(k) => self.v6.contains(k),
        }
    }
    fn insert(&mut self, k: Result<u64, (u128, u32)>) -> bool {
        match k {
            Ok(k) => self.v4.insert(k),
            Err(k) => self.v6.insert(k),
        }
    }
    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Which probe indices were answered.
#[derive(Debug, Default)]
pub(crate) struct Bitmap {
    bits: Vec<u64>,
}

impl Bitmap {
    pub(crate) fn new(len: u64) -> Self {
        // Zeroed allocation: calloc maps untouched pages lazily. Replies land at random, so
        // every lookup would also miss the TLB: huge pages keep the page walk out of it.
        let mut bits = vec![0; len.div_ceil(64) as usize];
        crate::io::sys::advise_huge_pages(&mut bits);
        Self { bits }
    }

    /// Sets bit `i`; true if it was clear.
    #[inline]
    pub(crate) fn set(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        let first = self.bits[w] & b == 0;
        self.bits[w] |= b;
        first
    }

    #[inline(always)]
    fn word(&self, i: u64) -> u64 {
        self.bits[(i / 64) as usize]
    }

    #[inline]
    pub(crate) fn get(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.bits.iter().map(|w| w.count_ones() as u64).sum()
    }
}

enum Mode {
    Bitmap(Bitmap),
    Window {
        current: Keys,
        previous: Keys,
        rotated: Instant,
        horizon: Duration,
    },
}

/// What the filter says of a validated reply's pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Its first reply: report it.
    First,
    /// Answered before: a retransmission or a duplicate.
    Again,
    /// Not a pair of the space (outside the targets, excluded, blocklisted, another port): the
    /// cookie matched by chance or by forgery, since no probe went there. Invalid.
    Outside,
}

/// The duplicate filter of one receive thread.
pub struct Dedup {
    mode: Mode,
    /// A batch's indices, reused.
    scratch: Vec<u64>,
}

/// Not an index of the space.
const OUTSIDE: u64 = u64::MAX;

impl Dedup {
    /// The filter for a space: a bitmap when it fits, else the time window.
    pub fn for_space(space_len: u64) -> Self {
        if space_len <= BITMAP_MAX_PROBES {
            Self::bitmap(space_len)
        } else {
            Self::window(WINDOW_HORIZON)
        }
    }

    pub(crate) fn bitmap(space_len: u64) -> Self {
        Self {
            mode: Mode::Bitmap(Bitmap::new(space_len)),
            scratch: Vec::new(),
        }
    }

    pub(crate) fn window(horizon: Duration) -> Self {
        Self {
            mode: Mode::Window {
                current: Keys::default(),
                previous: Keys::default(),
                rotated: Instant::now(),
                horizon,
            },
            scratch: Vec::new(),
        }
    }

    /// [`Seen::First`] the first time `(ip, port, proto)` is seen; `slot` is the protocol's
    /// place in the space's ports (`ProbePorts`).
    #[inline]
    pub(crate) fn first(
        &mut self,
        space: &TargetSpace,
        ip: IpAddr,
        slot: usize,
        port: u16,
        proto: Proto,
    ) -> Seen {
        let Some(i) = space.index_of(ip, slot, port) else {
            return Seen::Outside;
        };
        let first = match &mut self.mode {
            Mode::Bitmap(b) => b.set(i),
            Mode::Window {
                current,
                previous,
                rotated,
                horizon,
            } => {
                if rotated.elapsed() >= *horizon {
                    *previous = std::mem::take(current);
                    *rotated = Instant::now();
                }
                let k = Keys::key(ip, port, proto);
                // A key seen in the older generation moves forward, so a reply repeated at
                // intervals under the horizon is never reported twice.
                let old = previous.contains(&k);
                current.insert(k) && !old
            }
        };
        if first {
            Seen::First
        } else {
            Seen::Again
        }
    }

    /// [`Self::first`] for a batch of keys, answers in `out`. With the bitmap it reads every
    /// key's word before setting any: the reads do not depend on one another, so their cache
    /// misses overlap instead of costing one memory latency per reply (the bitmap is far larger
    /// than the cache, and replies land on it at random).
    pub fn first_batch<I>(&mut self, space: &TargetSpace, keys: I, out: &mut Vec<Seen>)
    where
        I: Iterator<Item = (IpAddr, usize, u16, Proto)> + Clone,
    {
        out.clear();
        let Mode::Bitmap(b) = &mut self.mode else {
            out.extend(
                keys.map(|(ip, slot, port, proto)| self.first(space, ip, slot, port, proto)),
            );
            return;
        };
        self.scratch.clear();
        self.scratch.extend(
            keys.clone()
                .map(|(ip, slot, port, _)| space.index_of(ip, slot, port).unwrap_or(OUTSIDE)),
        );
        let mut touched = 0u64;
        for &i in &self.scratch {
            if i != OUTSIDE {
                touched ^= b.word(i);
            }
        }
        std::hint::black_box(touched);
        for &i in &self.scratch {
            out.push(match i {
                OUTSIDE => Seen::Outside,
                i if b.set(i) => Seen::First,
                _ => Seen::Again,
            });
        }
    }

    /// Marks index `i` answered (bitmap only; past it the window has no indices): what a resumed
    /// scan's interrupted run already reported.
    pub(crate) fn mark(&mut self, i: u64) {
        if let Mode::Bitmap(b) = &mut self.mode {
            if i < b.bits.len() as u64 * 64 {
                b.set(i);
            }
        }
    }

    /// Which indices answered, when the filter is a bitmap (`--report-silent` reads it).
    pub(crate) fn answered(&self) -> Option<&Bitmap> {
        match &self.mode {
            Mode::Bitmap(b) => Some(b),
            Mode::Window { .. } => None,
        }
    }

    /// Keys held in hash sets (window mode).
    #[cfg(test)]
    pub(crate) fn keys_held(&self) -> usize {
        match &self.mode {
            Mode::Bitmap(_) => 0,
            Mode::Window {
                current, previous, ..
            } => current.len() + previous.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Ipv4Range, PortList, RangeSet};

    fn space() -> TargetSpace {
        TargetSpace::new(
            RangeSet::from_ranges(vec![Ipv4Range::new(0xc613_0000, 0xc613_00ff)]),
            PortList::parse("22,80,443").unwrap(),
        )
    }

    fn a(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    use Seen::{Again, First, Outside};

    #[test]
    fn bitmap_reports_once_per_pair() {
        let s = space();
        let mut d = Dedup::for_space(s.len());
        assert!(d.answered().is_some());
        assert_eq!(d.first(&s, a(0xc613_0001), 0, 80, Proto::Tcp), First);
        assert_eq!(d.first(&s, a(0xc613_0001), 0, 80, Proto::Tcp), Again);
        assert_eq!(d.first(&s, a(0xc613_0001), 0, 443, Proto::Tcp), First);
        assert_eq!(d.first(&s, a(0xc613_00ff), 0, 22, Proto::Tcp), First);
        assert_eq!(d.answered().unwrap().count(), 3);
        let i = s.index_of(a(0xc613_0001), 0, 443).unwrap();
        assert!(d.answered().unwrap().get(i));
    }

    /// A reply whose cookie checks out for a pair no probe went to (an address outside the
    /// targets, a port not scanned) is invalid, in both modes, every time: issue 20, item 10.
    #[test]
    fn pairs_outside_the_space_are_never_results() {
        let s = space();
        for mut d in [Dedup::for_space(s.len()), Dedup::window(WINDOW_HORIZON)] {
            for _ in 0..2 {
                assert_eq!(d.first(&s, a(1), 0, 80, Proto::Tcp), Outside);
                assert_eq!(d.first(&s, a(0xc613_0001), 0, 81, Proto::Tcp), Outside);
                assert_eq!(d.first(&s, a(0xc613_0100), 0, 80, Proto::Tcp), Outside);
            }
            assert_eq!(d.keys_held(), 0);
        }
    }

    #[test]
    fn a_batch_answers_as_one_key_at_a_time_would() {
        let s = space();
        let keys: Vec<(IpAddr, usize, u16, Proto)> = [
            (0xc613_0001, 80),
            (0xc613_0002, 80),
            (0xc613_0001, 80),
            (7, 80), // outside the space
            (0xc613_0001, 22),
            (7, 80),
        ]
        .iter()
        .map(|&(ip, port)| (a(ip), 0, port, Proto::Tcp))
        .collect();
        for mut d in [Dedup::for_space(s.len()), Dedup::window(WINDOW_HORIZON)] {
            let mut out = Vec::new();
            d.first_batch(&s, keys.iter().copied(), &mut out);
            assert_eq!(out, [First, First, Again, Outside, First, Outside]);
            d.first_batch(&s, keys[..2].iter().copied(), &mut out);
            assert_eq!(out, [Again, Again]);
        }
    }

    #[test]
    fn window_is_exact_within_the_horizon_for_both_families() {
        let s = TargetSpace::build(
            RangeSet::from_ranges(vec![Ipv4Range::new(1, 1)]),
            RangeSet::from_ranges(vec![crate::targets::Ipv6Range::new(1, 1)]),
            vec![1 << 100 | 1],
            &[],
            crate::targets::Iid::Fixed(0),
            PortList::parse("80,81").unwrap(),
        )
        .unwrap();
        let mut d = Dedup::window(Duration::from_secs(3600));
        assert!(d.answered().is_none());
        assert_eq!(d.first(&s, a(1), 0, 80, Proto::Tcp), First);
        assert_eq!(d.first(&s, a(1), 0, 80, Proto::Tcp), Again);
        assert_eq!(d.first(&s, a(1), 0, 80, Proto::Udp), First);
        assert_eq!(d.first(&s, a(1), 0, 81, Proto::Tcp), First);
        let six = |n: u128| IpAddr::V6(n.into());
        // ::1 is not 0.0.0.1, and IPv6 keys are exact.
        assert_eq!(d.first(&s, six(1), 0, 80, Proto::Tcp), First);
        assert_eq!(d.first(&s, six(1), 0, 80, Proto::Tcp), Again);
        assert_eq!(d.first(&s, six(1 << 100 | 1), 0, 80, Proto::Tcp), First);
        assert_eq!(d.keys_held(), 5);
    }

    #[test]
    fn window_forgets_after_two_horizons_and_not_before() {
        let s = TargetSpace::new(
            RangeSet::from_ranges(vec![Ipv4Range::new(7, 9)]),
            PortList::parse("80").unwrap(),
        );
        let mut d = Dedup::window(Duration::from_millis(30));
        assert_eq!(d.first(&s, a(7), 0, 80, Proto::Tcp), First);
        std::thread::sleep(Duration::from_millis(40));
        // One rotation: the key is in the previous generation, still a duplicate.
        assert_eq!(d.first(&s, a(7), 0, 80, Proto::Tcp), Again);
        std::thread::sleep(Duration::from_millis(40));
        // Moved forward by the repeat: still remembered.
        assert_eq!(d.first(&s, a(7), 0, 80, Proto::Tcp), Again);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(d.first(&s, a(8), 0, 80, Proto::Tcp), First);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(d.first(&s, a(9), 0, 80, Proto::Tcp), First);
        // Two rotations without a repeat: forgotten, and memory went with it.
        assert_eq!(d.first(&s, a(7), 0, 80, Proto::Tcp), First);
        assert!(d.keys_held() <= 3);
    }
}
