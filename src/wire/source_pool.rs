//! Source pools: the consecutive source addresses a scan sends from (`-S A-B`, `-S P/LEN`);
//! the cookie picks among them (`cookie.rs`, ARCHITECTURE.md "Source pools").

use std::net::IpAddr;

/// Consecutive source addresses: one (`-S IP`), a range (`-S A-B`) or a prefix (`-S P/LEN`), at
/// most [`SourcePool::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourcePool {
    base: IpAddr,
    count: u32,
}

/// Why a source pool did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad source address {0:?}: give an address, a range A-B of one family, or a prefix P/LEN, of at most 256 addresses")]
pub struct SourcePoolError(String);

impl SourcePool {
    /// Addresses a pool holds at most (one template per address and module).
    pub const MAX: u32 = 256;

    pub fn single(a: IpAddr) -> Self {
        Self { base: a, count: 1 }
    }

    pub fn first(&self) -> IpAddr {
        self.base
    }

    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`th address.
    pub(crate) fn addr(&self, i: u32) -> IpAddr {
        match self.base {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + i).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + i as u128).into()),
        }
    }

    /// Where `a` is in the pool.
    #[inline(always)]
    pub(crate) fn offset(&self, a: IpAddr) -> Option<u32> {
        let d = match (self.base, a) {
            (IpAddr::V4(b), IpAddr::V4(a)) => u32::from(a).wrapping_sub(u32::from(b)) as u128,
            (IpAddr::V6(b), IpAddr::V6(a)) => u128::from(a).wrapping_sub(u128::from(b)),
            _ => return None,
        };
        (d < self.count as u128).then_some(d as u32)
    }

    /// Every address, first to last.
    pub(crate) fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        (0..self.count).map(|i| self.addr(i))
    }
}

impl std::str::FromStr for SourcePool {
    type Err = SourcePoolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SourcePoolError(s.to_string());
        let t = s.trim();
        let (base, count) = if let Some((a, b)) = t.split_once('-') {
            let (a, b): (IpAddr, IpAddr) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            let n = match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    (u32::from(b) as u128).checked_sub(u32::from(a) as u128)
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(b).checked_sub(u128::from(a)),
                _ => None,
            };
            let n = n.ok_or_else(bad)? + 1;
            // A pool differs in the last 32 bits only (the steering program compares those).
            if n > Self::MAX as u128 || (a.is_ipv6() && n > 1 && high96(a) != high96(b)) {
                return Err(bad());
            }
            (a, n)
        } else if let Some((a, len)) = t.split_once('/') {
            let a: IpAddr = a.parse().map_err(|_| bad())?;
            let len: u32 = len.parse().map_err(|_| bad())?;
            let bits = if a.is_ipv4() { 32 } else { 128 };
            if len > bits || bits - len > 8 {
                return Err(bad());
            }
            let host = (1u128 << (bits - len)) - 1;
            let first = match a {
                IpAddr::V4(a) => IpAddr::V4((u32::from(a) & !(host as u32)).into()),
                IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !host).into()),
            };
            (first, host + 1)
        } else {
            (t.parse().map_err(|_| bad())?, 1)
        };
        if count > Self::MAX as u128 {
            return Err(bad());
        }
        Ok(Self {
            base,
            count: count as u32,
        })
    }
}

/// An address without its last 32 bits.
fn high96(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(_) => 0,
        IpAddr::V6(a) => u128::from(a) >> 32,
    }
}

impl TryFrom<String> for SourcePool {
    type Error = SourcePoolError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SourcePool> for String {
    fn from(p: SourcePool) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for SourcePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.count {
            1 => write!(f, "{}", self.base),
            n => write!(f, "{}-{}", self.base, self.addr(n - 1)),
        }
    }
}
