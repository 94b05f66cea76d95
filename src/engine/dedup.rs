//! Reports each (address, port, protocol) once, however many retransmitted replies arrive.
//! Memory grows with results, never with targets.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

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
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (v >> 32);
    }
}

#[derive(Default)]
pub struct Dedup {
    seen: HashSet<u64, BuildHasherDefault<KeyHasher>>,
}

impl Dedup {
    /// True the first time a key is seen.
    pub fn first(&mut self, ip: u32, port: u16, proto: Proto) -> bool {
        let key = (ip as u64) << 24 | (port as u64) << 8 | proto as u64;
        self.seen.insert(key)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key() {
        let mut d = Dedup::default();
        assert!(d.first(1, 80, Proto::Tcp));
        assert!(!d.first(1, 80, Proto::Tcp));
        assert!(d.first(1, 80, Proto::Udp));
        assert!(d.first(1, 81, Proto::Tcp));
        assert!(d.first(2, 80, Proto::Tcp));
        assert_eq!(d.len(), 4);
    }
}
