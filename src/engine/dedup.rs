//! Reports each (address, port, protocol) once, however many retransmitted replies arrive.
//! Memory grows with results, never with targets.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::probe::Proto;

/// A multiplicative hasher: keys are already well spread (address, port), and SipHash would cost
/// more than the rest of the receive path.
#[derive(Default)]
pub struct KeyHasher(u64);

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

#[derive(Default)]
pub struct Dedup {
    seen: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    seen6: HashSet<(u128, u32), BuildHasherDefault<KeyHasher>>,
}

impl Dedup {
    /// True the first time a key is seen. Exact for both families: IPv4 keys pack into 64
    /// bits, IPv6 keys keep the whole address.
    pub fn first(&mut self, ip: IpAddr, port: u16, proto: Proto) -> bool {
        let tail = (port as u64) << 8 | proto as u64;
        match ip {
            IpAddr::V4(a) => self.seen.insert((u32::from(a) as u64) << 24 | tail),
            IpAddr::V6(a) => self.seen6.insert((u128::from(a), tail as u32)),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len() + self.seen6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key() {
        let a = |n: u32| IpAddr::V4(n.into());
        let mut d = Dedup::default();
        assert!(d.first(a(1), 80, Proto::Tcp));
        assert!(!d.first(a(1), 80, Proto::Tcp));
        assert!(d.first(a(1), 80, Proto::Udp));
        assert!(d.first(a(1), 81, Proto::Tcp));
        assert!(d.first(a(2), 80, Proto::Tcp));
        assert_eq!(d.len(), 4);
        // ::1 is not 0.0.0.1, and IPv6 keys are exact.
        let six = |n: u128| IpAddr::V6(n.into());
        assert!(d.first(six(1), 80, Proto::Tcp));
        assert!(!d.first(six(1), 80, Proto::Tcp));
        assert!(d.first(six(1 << 100 | 1), 80, Proto::Tcp));
        assert_eq!(d.len(), 6);
    }
}
