//! Stateless validation: every probe carries a keyed SipHash-2-4 of its own addressing, so a
//! reply proves it answers one of our probes without any table of what was sent.
//!
//! `H = SipHash-2-4_k(src ip ‖ dst ip ‖ dst port ‖ protocol)` (big-endian; 12 bytes for IPv4,
//! 36 for IPv6 with both 128-bit addresses). Its low 32 bits are the TCP sequence number, its
//! high 32 bits pick the source port within the scan's range, bits 32..48 also serve as the
//! IPv4 identification and bits 32..52 as the IPv6 flow label (constant per flow, as RFC 6437
//! asks). A reply validates when its 4-tuple recomputes the same source port and it echoes the
//! sequence number (or, for ICMP errors, quotes it).
//!
//! A source pool (`-S 198.18.0.1-198.18.0.8`) is chosen the same way: the hash is taken with
//! the pool's first address, and its sequence bits pick the address the probe leaves from, so a
//! reply validates only at that address, still with no state (ARCHITECTURE.md, "Source pools").

use std::net::IpAddr;

use crate::wire::Family;
pub use crate::wire::SourcePool;

/// An inclusive range of source ports, also used for ICMP echo identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub(crate) fn len(&self) -> u32 {
        self.hi as u32 - self.lo as u32 + 1
    }
    pub(crate) fn contains(&self, p: u16) -> bool {
        (self.lo..=self.hi).contains(&p)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

/// What one probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCookie {
    pub src_port: u16,
    pub seq: u32,
    pub(crate) ip_id: u16,
    /// The IPv6 flow label (20 bits).
    pub(crate) flow: u32,
}

impl ProbeCookie {
    /// The identification the IP header carries: the IPv4 id or the IPv6 flow label.
    #[inline(always)]
    pub(crate) fn ident(&self, family: Family) -> u32 {
        match family {
            Family::V4 => self.ip_id as u32,
            Family::V6 => self.flow,
        }
    }

    /// The acknowledgment number of probes that carry ACK: a RST answering them echoes it as
    /// its sequence number (RFC 9293, 3.10.7.1).
    #[inline(always)]
    pub(crate) fn ack(&self) -> u32 {
        self.seq.rotate_left(16) ^ 0x5bd1_e995
    }
}

/// The scan's key, source-port range and source pools.
#[derive(Debug, Clone)]
pub struct CookieJar {
    key: SipKey,
    ports: PortRange,
    /// Each family's source pool, when it holds more than one address (IPv4, IPv6).
    pools: [Option<SourcePool>; 2],
}

/// SipHash-2-4 for the two fixed message lengths the cookie hashes (12 and 36 bytes), on words
/// loaded straight from the message: the same function as `siphasher`'s (a property test holds
/// them equal) without its streaming buffer, which cost a third of the transmit path.
#[derive(Debug, Clone, Copy)]
struct SipKey {
    k0: u64,
    k1: u64,
}

impl SipKey {
    fn new(key: &[u8; 16]) -> Self {
        let word = |i: usize| u64::from_le_bytes(key[i..i + 8].try_into().expect("8 bytes"));
        Self {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The hash of a message of `N * 8 + 4` bytes, given as its `N` whole little-endian words
    /// and its last 4 bytes.
    #[inline(always)]
    fn hash<const N: usize>(&self, words: [u64; N], tail: u32) -> u64 {
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        #[inline(always)]
        fn round(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(13) ^ v[0];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(16) ^ v[2];
            v[0] = v[0].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(21) ^ v[0];
            v[2] = v[2].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(17) ^ v[2];
            v[2] = v[2].rotate_left(32);
        }
        let last = ((N as u64 * 8 + 4) << 56) | tail as u64;
        for m in words.into_iter().chain([last]) {
            v[3] ^= m;
            round(&mut v);
            round(&mut v);
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        for _ in 0..4 {
            round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

impl CookieJar {
    pub fn new(key: [u8; 16], ports: PortRange) -> Self {
        Self {
            key: SipKey::new(&key),
            ports,
            pools: [None; 2],
        }
    }

    /// The jar for a scan that sends from `pool` (a pool of one changes nothing).
    pub fn with_pool(mut self, pool: SourcePool) -> Self {
        if pool.len() > 1 {
            self.pools[Family::of(&pool.first()).index()] = Some(pool);
        }
        self
    }

    /// Whether `a` is an address of a source pool (one of more than one address).
    #[inline]
    pub(crate) fn in_pool(&self, a: IpAddr) -> bool {
        self.pools[Family::of(&a).index()].is_some_and(|p| p.offset(a).is_some())
    }

    /// A jar with a key from the OS's random source.
    pub(crate) fn random(ports: PortRange) -> std::io::Result<Self> {
        Ok(Self::new(random_bytes()?, ports))
    }

    pub fn ports(&self) -> PortRange {
        self.ports
    }

    #[inline(always)]
    fn hash(&self, src: IpAddr, dst: IpAddr, dport: u16, proto: u8) -> u64 {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                // The message: src | dst | dport (big-endian) | proto | 0.
                let (s, d) = (s.octets(), d.octets());
                let w0 = u64::from_le_bytes([s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3]]);
                let p = dport.to_be_bytes();
                self.key
                    .hash([w0], u32::from_le_bytes([p[0], p[1], proto, 0]))
            }
            (s, d) => {
                let (s, d) = (v6_octets(s), v6_octets(d));
                let w = |b: &[u8; 16], i: usize| {
                    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
                };
                let p = dport.to_be_bytes();
                self.key.hash(
                    [w(&s, 0), w(&s, 8), w(&d, 0), w(&d, 8)],
                    u32::from_le_bytes([p[0], p[1], proto, 0]),
                )
            }
        }
    }

    /// The cookie of a probe from `src` to `dst:dport` over IP protocol `proto`; for a reply,
    /// `src` is the address it came to. With a source pool, the cookie of an address the probe
    /// would not have left from is one no reply carries.
    #[inline(always)]
    pub fn cookie(&self, src: IpAddr, dst: IpAddr, dport: u16, proto: u8) -> ProbeCookie {
        let Some((pool, at)) =
            self.pools[Family::of(&src).index()].and_then(|p| Some((p, p.offset(src)?)))
        else {
            return self.carried(self.hash(src, dst, dport, proto));
        };
        let (c, pick) = self.pooled(pool, dst, dport, proto);
        match pick == at {
            true => c,
            false => self.carried(!self.hash(pool.first(), dst, dport, proto)),
        }
    }

    /// A probe's cookie and the index of the source address it leaves from: `src` is the
    /// family's first source address.
    #[inline(always)]
    pub(crate) fn probe_cookie(
        &self,
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        proto: u8,
    ) -> (ProbeCookie, u32) {
        match self.pools[Family::of(&src).index()] {
            None => (self.carried(self.hash(src, dst, dport, proto)), 0),
            Some(pool) => self.pooled(pool, dst, dport, proto),
        }
    }

    /// The cookie from the pool's first address, and the address it picks (the sequence
    /// number's top bits, Lemire's reduction: independent of the port, which `hi` picks).
    #[inline(always)]
    fn pooled(&self, pool: SourcePool, dst: IpAddr, dport: u16, proto: u8) -> (ProbeCookie, u32) {
        let c = self.carried(self.hash(pool.first(), dst, dport, proto));
        (c, ((c.seq as u64 * pool.len() as u64) >> 32) as u32)
    }

    /// What a probe carries of hash `h`.
    #[inline(always)]
    fn carried(&self, h: u64) -> ProbeCookie {
        let hi = (h >> 32) as u32;
        ProbeCookie {
            // hi × len / 2^32 (Lemire's range reduction): the top bits of `hi` pick the port
            // without a division on the hot path; the IP id and flow label use its low bits.
            src_port: self.ports.lo + ((hi as u64 * self.ports.len() as u64) >> 32) as u16,
            seq: h as u32,
            ip_id: hi as u16,
            flow: hi & 0x000f_ffff,
        }
    }

    /// Is `sport` the source port we would have used for this probe? Returns its cookie if so.
    #[inline]
    pub(crate) fn check_port(
        &self,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
    ) -> Option<ProbeCookie> {
        if !self.ports.contains(sport) {
            return None;
        }
        let c = self.cookie(src, dst, dport, proto);
        (c.src_port == sport).then_some(c)
    }
}

/// An address as 16 bytes (IPv4 mapped, for a mixed pair that never occurs in practice).
fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Bytes from the kernel's random source.
/// 64 random bits from the kernel, or the clock and pid where it cannot be read (seeds and
/// names that must differ between runs, never keys).
pub(crate) fn random_u64() -> u64 {
    random_bytes::<8>()
        .map(u64::from_le_bytes)
        .unwrap_or_else(|_| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ std::process::id() as u64
        })
}

pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use siphasher::sip::SipHasher24;

    fn v4(a: u32) -> IpAddr {
        IpAddr::V4(a.into())
    }

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const RANGE: PortRange = PortRange {
        lo: 61000,
        hi: 65535,
    };

    #[test]
    fn siphash24_reference_vector() {
        // SipHash paper, appendix A: key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(
            SipHasher24::new_with_key(&KEY).hash(&msg),
            0xa129_ca61_49be_45e5
        );
    }

    #[test]
    fn fixed_length_siphash_on_the_papers_key() {
        // 12 bytes 00..0b and 36 bytes 00..23, against the streaming implementation.
        let k = SipKey::new(&KEY);
        let m: Vec<u8> = (0..36).collect();
        let w = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().unwrap());
        let t = |i: usize| u32::from_le_bytes(m[i..i + 4].try_into().unwrap());
        let reference = |n: usize| SipHasher24::new_with_key(&KEY).hash(&m[..n]);
        assert_eq!(k.hash([w(0)], t(8)), reference(12));
        assert_eq!(k.hash([w(0), w(8), w(16), w(24)], t(32)), reference(36));
    }

    proptest! {
        #[test]
        fn fixed_length_siphash_is_siphash(key in any::<[u8; 16]>(), m in any::<[u8; 36]>()) {
            let k = SipKey::new(&key);
            let w = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().unwrap());
            let t = |i: usize| u32::from_le_bytes(m[i..i + 4].try_into().unwrap());
            let reference = |n: usize| SipHasher24::new_with_key(&key).hash(&m[..n]);
            prop_assert_eq!(k.hash([w(0)], t(8)), reference(12));
            prop_assert_eq!(k.hash([w(0), w(8), w(16), w(24)], t(32)), reference(36));
        }
    }

    #[test]
    fn cookie_layout_vector() {
        // SipHash-2-4(key 00..0f, c6 12 00 01 | c6 13 00 05 | 00 50 | 06 | 00).
        let jar = CookieJar::new(KEY, RANGE);
        let msg = [0xc6, 0x12, 0, 1, 0xc6, 0x13, 0, 5, 0, 80, 6, 0];
        let h = SipHasher24::new_with_key(&KEY).hash(&msg);
        let c = jar.cookie(v4(0xc612_0001), v4(0xc613_0005), 80, 6);
        assert_eq!(c.seq, h as u32);
        assert_eq!(c.src_port as u64, 61000 + (((h >> 32) * 4536) >> 32));
        assert_eq!(c.ip_id, (h >> 32) as u16);
    }

    #[test]
    fn check_accepts_own_and_rejects_others() {
        let jar = CookieJar::new(KEY, RANGE);
        let other = CookieJar::new([9; 16], RANGE);
        let mut accepted_by_other = 0;
        for i in 0..10_000u32 {
            let dst = 0xc613_0000 + i;
            let c = jar.cookie(v4(0xc612_0001), v4(dst), 443, 6);
            assert!(RANGE.contains(c.src_port));
            assert_eq!(
                jar.check_port(v4(0xc612_0001), v4(dst), c.src_port, 443, 6),
                Some(c)
            );
            if other
                .check_port(v4(0xc612_0001), v4(dst), c.src_port, 443, 6)
                .is_some_and(|o| o.seq == c.seq)
            {
                accepted_by_other += 1;
            }
        }
        assert_eq!(accepted_by_other, 0);
    }

    #[test]
    fn out_of_range_port_never_checks() {
        let jar = CookieJar::new(KEY, RANGE);
        assert_eq!(jar.check_port(v4(1), v4(2), 80, 80, 6), None);
    }

    #[test]
    fn ipv6_cookie_layout_vector() {
        // SipHash-2-4(key 00..0f, 2001:db8::1 | 2001:db8:1::5 | 00 50 | 06 | 00).
        let jar = CookieJar::new(KEY, RANGE);
        let s: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: std::net::Ipv6Addr = "2001:db8:1::5".parse().unwrap();
        let mut msg = Vec::new();
        msg.extend_from_slice(&s.octets());
        msg.extend_from_slice(&d.octets());
        msg.extend_from_slice(&[0, 80, 6, 0]);
        let h = SipHasher24::new_with_key(&KEY).hash(&msg);
        let c = jar.cookie(IpAddr::V6(s), IpAddr::V6(d), 80, 6);
        assert_eq!(c.seq, h as u32);
        assert_eq!(c.flow, ((h >> 32) as u32) & 0xfffff);
        assert_eq!(c.ident(Family::V6), c.flow);
        assert_eq!(c.ident(Family::V4), c.ip_id as u32);
        // The same low bits in IPv4 form give another cookie.
        let c4 = jar.cookie(v4(1), v4(5), 80, 6);
        assert_ne!(c4.seq, c.seq);
    }

    #[test]
    fn source_pools_parse_as_zmap_and_masscan_write_them() {
        let p = |t: &str| t.parse::<SourcePool>();
        let r = p("198.18.0.1-198.18.0.8").unwrap();
        assert_eq!((r.first(), r.len()), (v4(0xc612_0001), 8));
        assert_eq!(r.to_string(), "198.18.0.1-198.18.0.8");
        assert_eq!(
            p("198.18.0.9/29").unwrap().to_string(),
            "198.18.0.8-198.18.0.15"
        );
        let six = p("2001:db8:ff::/125").unwrap();
        assert_eq!(six.to_string(), "2001:db8:ff::-2001:db8:ff::7");
        assert_eq!(
            p("198.18.0.1").unwrap(),
            SourcePool::single(v4(0xc612_0001))
        );
        assert_eq!(p("198.18.0.1").unwrap().to_string(), "198.18.0.1");
        assert_eq!(p("198.18.0.0/24").unwrap().len(), 256);
        for bad in [
            "198.18.0.0/23",                       // 512 addresses
            "198.18.0.8-198.18.0.1",               // backwards
            "198.18.0.1-2001:db8::1",              // two families
            "2001:db8::ffff:fffe-2001:db8::1:0:1", // across the last 32 bits
            "198.18.0.1/33",
            "bogus",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        // As JSON (a job's request), the same text.
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, "\"198.18.0.1-198.18.0.8\"");
        assert_eq!(serde_json::from_str::<SourcePool>(&j).unwrap(), r);
    }

    #[test]
    fn a_pool_spreads_probes_and_validates_only_the_address_picked() {
        let pool: SourcePool = "198.18.0.1-198.18.0.8".parse().unwrap();
        let jar = CookieJar::new(KEY, RANGE).with_pool(pool);
        let mut per = [0u32; 8];
        for d in 0..80_000u32 {
            let dst = v4(0xc613_0000 + d);
            let (c, k) = jar.probe_cookie(pool.first(), dst, 80, 6);
            per[k as usize] += 1;
            // A reply to the address picked validates; to any other pool address it does not.
            assert_eq!(jar.cookie(pool.addr(k), dst, 80, 6), c);
            let other = pool.addr((k + 1) % 8);
            assert_ne!(jar.cookie(other, dst, 80, 6).seq, c.seq);
            assert!(jar.in_pool(other) && !jar.in_pool(v4(0xc612_0009)));
        }
        // Even within 3 % of 10,000 each.
        assert!(per.iter().all(|&n| n.abs_diff(10_000) < 300), "{per:?}");
        // A pool of one changes nothing.
        let one = CookieJar::new(KEY, RANGE).with_pool(SourcePool::single(pool.first()));
        let plain = CookieJar::new(KEY, RANGE);
        let dst = v4(0xc613_0001);
        assert_eq!(
            one.probe_cookie(pool.first(), dst, 80, 6),
            (plain.cookie(pool.first(), dst, 80, 6), 0)
        );
    }
}
