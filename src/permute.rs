//! A random permutation of `0..n` that needs no memory: the cyclic multiplicative group modulo a
//! prime `p > n`. With a generator `g` and a start `s`, the cycle `s·g^k mod p` (k = 0..p-2)
//! visits every element of `1..p` once; element `x` stands for index `x - 1`, and elements with
//! `x - 1 >= n` are skipped. The seed picks both `g` (a random primitive root) and `s`.
//!
//! Sharding cuts the one cycle by position: shard `i` of `N` (0-based here) takes positions
//! `k ≡ i (mod N)`, and its thread `t` of `T` takes `k ≡ i + N·t (mod N·T)`. Shards with the same
//! seed are therefore disjoint and together cover every position, whatever thread counts each
//! machine uses.

/// The cycle shared by every shard and thread of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    n: u64,
    p: u64,
    g: u64,
    start: u64,
}

impl Cycle {
    /// The cycle for a space of `n >= 1` indices and a seed.
    pub fn new(n: u64, seed: u64) -> Self {
        assert!(n >= 1, "an empty space has no permutation");
        let p = next_prime(n + 1);
        let mut rng = SplitMix64(seed);
        let g = random_primitive_root(p, &mut rng);
        let start = if p == 2 {
            1
        } else {
            1 + rng.next_u64() % (p - 1)
        };
        Self { n, p, g, start }
    }

    pub(crate) fn prime(&self) -> u64 {
        self.p
    }

    pub(crate) fn generator(&self) -> u64 {
        self.g
    }

    /// The walker for `shard` of `shards` (0-based) and `thread` of `threads`.
    pub fn walker(&self, shard: u32, shards: u32, thread: u32, threads: u32) -> Walker {
        assert!(shard < shards && thread < threads);
        let offset = shard as u64 + shards as u64 * thread as u64;
        let stride = shards as u64 * threads as u64;
        let total = self.p - 1;
        let steps = if offset >= total {
            0
        } else {
            (total - offset).div_ceil(stride)
        };
        let x = mulmod(self.start, powmod(self.g, offset, self.p), self.p);
        let step = powmod(self.g, stride, self.p);
        Walker {
            x,
            step,
            step_shoup: shoup(step, self.p),
            p: self.p,
            n: self.n,
            remaining: steps,
            total: steps,
        }
    }
}

/// One sub-shard's walk along the cycle.
#[derive(Debug, Clone)]
pub struct Walker {
    x: u64,
    step: u64,
    /// `step · 2^64 / p`: Shoup's precomputed quotient, so a step costs two multiplications
    /// instead of a division (`p < 2^63`; larger primes take the 128-bit remainder).
    step_shoup: Option<u64>,
    p: u64,
    n: u64,
    remaining: u64,
    total: u64,
}

impl Walker {
    /// Positions this walker covers in all (skipped ones included).
    pub(crate) fn positions(&self) -> u64 {
        self.total
    }

    /// Positions walked so far.
    pub(crate) fn walked(&self) -> u64 {
        self.total - self.remaining
    }

    /// Ends the walk at position `to` (a range of positions: silence of an interrupted run).
    pub(crate) fn stop_at(mut self, to: u64) -> Self {
        let walked = self.walked();
        self.remaining = self.remaining.min(to.saturating_sub(walked));
        self.total = walked + self.remaining;
        self
    }

    /// Skips the first `k` positions (resuming a scan).
    pub(crate) fn advance(&mut self, k: u64) {
        let k = k.min(self.remaining);
        self.x = mulmod(self.x, powmod(self.step, k, self.p), self.p);
        self.remaining -= k;
    }
}

impl Iterator for Walker {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        while self.remaining > 0 {
            let idx = self.x - 1;
            self.x = match self.step_shoup {
                Some(s) => mulmod_shoup(self.x, self.step, s, self.p),
                None => mulmod(self.x, self.step, self.p),
            };
            self.remaining -= 1;
            if idx < self.n {
                return Some(idx);
            }
        }
        None
    }
}

/// Shoup's quotient for multiplying by `b` modulo `m`, when `m < 2^63`.
fn shoup(b: u64, m: u64) -> Option<u64> {
    (m < 1 << 63).then(|| (((b as u128) << 64) / m as u128) as u64)
}

/// `a · b mod m` for `a, b < m < 2^63`, with `bs = shoup(b, m)`: the estimated quotient is off
/// by at most one, so the wrapped difference lies in `[0, 2m)`.
#[inline(always)]
fn mulmod_shoup(a: u64, b: u64, bs: u64, m: u64) -> u64 {
    let q = ((a as u128 * bs as u128) >> 64) as u64;
    let r = a.wrapping_mul(b).wrapping_sub(q.wrapping_mul(m));
    if r >= m {
        r - m
    } else {
        r
    }
}

#[inline(always)]
fn mulmod(a: u64, b: u64, m: u64) -> u64 {
    if m <= 1 << 32 {
        // Both operands are below 2^32, so the product fits.
        (a * b) % m
    } else {
        ((a as u128 * b as u128) % m as u128) as u64
    }
}

fn powmod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1 % m;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mulmod(r, b, m);
        }
        b = mulmod(b, b, m);
        e >>= 1;
    }
    r
}

/// Deterministic Miller–Rabin for every u64.
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mut d = n - 1;
    let mut s = 0;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    let mr = |a: u64| -> bool {
        let mut x = powmod_wide(a, d, n);
        if x == 1 || x == n - 1 {
            return true;
        }
        for _ in 1..s {
            x = ((x as u128 * x as u128) % n as u128) as u64;
            if x == n - 1 {
                return true;
            }
        }
        false
    };
    [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
        .iter()
        .all(|&a| mr(a))
}

fn powmod_wide(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1u64;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = ((r as u128 * b as u128) % m as u128) as u64;
        }
        b = ((b as u128 * b as u128) % m as u128) as u64;
        e >>= 1;
    }
    r
}

/// The smallest prime `>= n`.
pub(crate) fn next_prime(n: u64) -> u64 {
    let mut c = n.max(2);
    while !is_prime(c) {
        c += 1;
    }
    c
}

/// Distinct prime factors, by trial division of small primes then Pollard's rho.
pub(crate) fn prime_factors(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            out.push(p);
            while n.is_multiple_of(p) {
                n /= p;
            }
        }
    }
    let mut stack = vec![n];
    while let Some(m) = stack.pop() {
        if m == 1 {
            continue;
        }
        if is_prime(m) {
            if !out.contains(&m) {
                out.push(m);
            }
            continue;
        }
        let d = pollard_rho(m);
        stack.push(d);
        stack.push(m / d);
    }
    out.sort_unstable();
    out
}

fn pollard_rho(n: u64) -> u64 {
    let f = |x: u64, c: u64| (((x as u128 * x as u128) + c as u128) % n as u128) as u64;
    for c in 1.. {
        let (mut x, mut y, mut d) = (2u64, 2u64, 1u64);
        while d == 1 {
            x = f(x, c);
            y = f(f(y, c), c);
            d = gcd(x.abs_diff(y), n);
        }
        if d != n {
            return d;
        }
    }
    unreachable!("Pollard's rho always finds a factor of a composite")
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn random_primitive_root(p: u64, rng: &mut SplitMix64) -> u64 {
    if p == 2 {
        return 1;
    }
    let factors = prime_factors(p - 1);
    loop {
        let g = 2 + rng.next_u64() % (p - 2).max(1);
        let g = g.min(p - 1);
        if factors.iter().all(|&q| powmod(g, (p - 1) / q, p) != 1) {
            return g;
        }
    }
}

/// SplitMix64: a tiny, well-mixed generator for deriving scan parameters from a seed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..40).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
        assert!(is_prime(4_294_967_311)); // first prime above 2^32
        assert!(!is_prime(4_294_967_297)); // 641 · 6700417
        assert_eq!(next_prime((1 << 48) + 1), 281_474_976_710_677);
        assert_eq!(prime_factors(4_294_967_296), vec![2]);
        assert_eq!(prime_factors(4_294_967_310), vec![2, 3, 5, 131, 364_289]);
    }

    #[test]
    fn generator_has_full_order() {
        let c = Cycle::new(1000, 42);
        let p = c.prime();
        let mut x = 1;
        for k in 1..p - 1 {
            x = mulmod(x, c.generator(), p);
            assert_ne!(x, 1, "order {k} < p-1");
        }
    }

    #[test]
    fn seeds_change_the_order_and_repeat() {
        let a: Vec<u64> = Cycle::new(10_000, 1).walker(0, 1, 0, 1).take(20).collect();
        let b: Vec<u64> = Cycle::new(10_000, 2).walker(0, 1, 0, 1).take(20).collect();
        let a2: Vec<u64> = Cycle::new(10_000, 1).walker(0, 1, 0, 1).take(20).collect();
        assert_ne!(a, b);
        assert_eq!(a, a2);
    }

    #[test]
    fn large_space_uses_wide_arithmetic() {
        let c = Cycle::new(1 << 40, 7);
        let v: Vec<u64> = c.walker(0, 1, 0, 1).take(1000).collect();
        assert!(v.iter().all(|&i| i < 1 << 40));
        let mut s = v.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 1000);
    }

    fn check_cover(n: u64, seed: u64, shards: u32, threads: u32) -> Result<(), TestCaseError> {
        let c = Cycle::new(n, seed);
        let mut seen = vec![0u8; n as usize];
        for s in 0..shards {
            for t in 0..threads {
                for i in c.walker(s, shards, t, threads) {
                    seen[i as usize] += 1;
                }
            }
        }
        prop_assert!(
            seen.iter().all(|&k| k == 1),
            "n={n} seed={seed} {shards}x{threads}"
        );
        Ok(())
    }

    #[test]
    fn tiny_spaces() {
        for n in 1..40 {
            check_cover(n, n * 31, 1, 1).unwrap();
            check_cover(n, n, 3, 2).unwrap();
        }
    }

    proptest! {
        #[test]
        fn shoup_multiplication_is_the_remainder(m in 2u64..(1 << 63), a in any::<u64>(),
                                                 b in any::<u64>()) {
            let (a, b) = (a % m, b % m);
            let bs = shoup(b, m).unwrap();
            prop_assert_eq!(mulmod_shoup(a, b, bs, m), ((a as u128 * b as u128) % m as u128) as u64);
        }

        #[test]
        fn every_index_exactly_once(n in 1u64..5000, seed in any::<u64>()) {
            check_cover(n, seed, 1, 1)?;
        }

        #[test]
        fn shards_and_threads_are_disjoint_and_complete(n in 1u64..3000, seed in any::<u64>(),
                                                       shards in 1u32..6, threads in 1u32..5) {
            check_cover(n, seed, shards, threads)?;
        }

        #[test]
        fn shards_ignore_other_shards_thread_counts(n in 1u64..3000, seed in any::<u64>()) {
            // Shard 0 with 3 threads plus shard 1 with 1 thread covers everything once.
            let c = Cycle::new(n, seed);
            let mut seen = vec![0u8; n as usize];
            for t in 0..3 { for i in c.walker(0, 2, t, 3) { seen[i as usize] += 1; } }
            for i in c.walker(1, 2, 0, 1) { seen[i as usize] += 1; }
            prop_assert!(seen.iter().all(|&k| k == 1));
        }

        #[test]
        fn ranges_add_up_to_the_walk(n in 1u64..3000, seed in any::<u64>(), k in 0u64..4000) {
            let c = Cycle::new(n, seed);
            let whole: Vec<u64> = c.walker(0, 1, 0, 1).collect();
            let mut tail = c.walker(0, 1, 0, 1);
            tail.advance(k);
            let mut parts: Vec<u64> = c.walker(0, 1, 0, 1).stop_at(k).collect();
            parts.extend(tail);
            prop_assert_eq!(parts, whole);
        }

        #[test]
        fn advance_equals_skipping(n in 1u64..3000, seed in any::<u64>(), k in 0u64..4000) {
            let c = Cycle::new(n, seed);
            let mut a = c.walker(0, 1, 0, 1);
            let mut b = c.walker(0, 1, 0, 1);
            for _ in 0..k.min(b.positions()) { b.x = mulmod(b.x, b.step, b.p); b.remaining -= 1; }
            a.advance(k);
            prop_assert_eq!(a.collect::<Vec<_>>(), b.collect::<Vec<_>>());
        }
    }
}
