//! Ethernet II frames.

use std::{fmt, str::FromStr};

use super::{get_u16, put_u16, WireError};

pub(crate) const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;
pub(crate) const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub(crate) const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub(crate) const ZERO: MacAddr = MacAddr([0; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a MAC address (expected six hex octets like 02:00:5e:10:00:01)")]
pub struct MacParseError(pub(crate) String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        Ok(MacAddr(out))
    }
}

/// As its text (`02:00:5e:10:00:01`), in a job's stored request.
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }
    pub(crate) fn dst(&self) -> MacAddr {
        MacAddr(self.buf.as_ref()[0..6].try_into().unwrap())
    }
    pub(crate) fn src(&self) -> MacAddr {
        MacAddr(self.buf.as_ref()[6..12].try_into().unwrap())
    }
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buf.as_ref(), 12)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub(crate) fn set_dst(&mut self, m: MacAddr) {
        self.buf.as_mut()[0..6].copy_from_slice(&m.0);
    }
    pub(crate) fn set_src(&mut self, m: MacAddr) {
        self.buf.as_mut()[6..12].copy_from_slice(&m.0);
    }
    pub(crate) fn set_ethertype(&mut self, t: u16) {
        put_u16(self.buf.as_mut(), 12, t);
    }
}

/// Whether a frame says it carries IPv4 or IPv6 (behind one VLAN tag at most), whatever
/// follows: what the receive thread counts as malformed when it does not parse.
pub(crate) fn carries_ip(frame: &[u8]) -> bool {
    let ty = match frame.get(12..14) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => return false,
    };
    let ty = match (ty, frame.get(16..18)) {
        (ETHERTYPE_VLAN, Some(&[a, b])) => u16::from_be_bytes([a, b]),
        _ => ty,
    };
    ty == ETHERTYPE_IPV4 || ty == ETHERTYPE_IPV6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_say_they_carry_ip() {
        let mut f = vec![0u8; 14];
        assert!(!carries_ip(&f[..13]));
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        assert!(carries_ip(&f));
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert!(!carries_ip(&f));
        f[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert!(!carries_ip(&f));
        f.extend_from_slice(&[0, 7, 0x86, 0xdd]);
        assert!(carries_ip(&f));
    }

    #[test]
    fn parse_mac() {
        assert_eq!(
            "02:00:5E:10:00:0a".parse::<MacAddr>().unwrap(),
            MacAddr([2, 0, 0x5e, 0x10, 0, 0x0a])
        );
        assert_eq!(
            "02-00-5e-10-00-0a".parse::<MacAddr>().unwrap().to_string(),
            "02:00:5e:10:00:0a"
        );
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0g",
            "02:00:5e:10:00:100",
            "1:2:3:4:5:6:7",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn view_fields() {
        let f = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0xaa,
        ];
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst(), MacAddr::BROADCAST);
        assert_eq!(e.src(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(e.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(e.payload(), &[0xaa]);
        assert!(EthernetFrame::new_checked(&f[..13]).is_err());
    }
}
