//! Port lists: `22,80,8000-8100`, nmap's `-` (1-65535) and open ends (`-1024`, `60000-`), and
//! service names (`https`, `http*`) that a resolver turns into ports (see `services.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port specification '{spec}': {why}")]
pub struct PortParseError {
    pub spec: String,
    pub why: String,
}

/// A sorted list of distinct ports; the index of a port in it is its index in the space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList {
    ports: Vec<u16>,
}

/// Is this item of a port list a service name (or a wildcard over names)?
fn is_name(item: &str) -> bool {
    item.starts_with(|c: char| c.is_ascii_alphabetic()) || item.contains(['*', '?'])
}

impl PortList {
    /// Numbers and ranges only.
    pub fn parse(spec: &str) -> Result<Self, PortParseError> {
        Self::parse_with(spec, &mut |name| {
            Err(format!("'{name}' is not a port 0-65535"))
        })
    }

    /// Numbers, ranges and names; `resolve` gives a name's ports.
    pub fn parse_with(
        spec: &str,
        resolve: &mut dyn FnMut(&str) -> Result<Vec<u16>, String>,
    ) -> Result<Self, PortParseError> {
        let err = |why: &str| PortParseError {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let mut seen = vec![false; 65536];
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(err("empty item"));
            }
            if is_name(item) {
                for p in resolve(item).map_err(|why| err(&why))? {
                    seen[p as usize] = true;
                }
                continue;
            }
            let (lo, hi) = match item.split_once('-') {
                None => {
                    let p = parse_port(item)
                        .ok_or_else(|| err(&format!("'{item}' is not a port 0-65535")))?;
                    (p, p)
                }
                Some((a, b)) => {
                    let lo = if a.is_empty() {
                        1
                    } else {
                        parse_port(a).ok_or_else(|| err(&format!("'{a}' is not a port 0-65535")))?
                    };
                    let hi = if b.is_empty() {
                        65535
                    } else {
                        parse_port(b).ok_or_else(|| err(&format!("'{b}' is not a port 0-65535")))?
                    };
                    if lo > hi {
                        return Err(err(&format!("range {lo}-{hi} runs backwards")));
                    }
                    (lo, hi)
                }
            };
            for p in lo..=hi {
                seen[p as usize] = true;
            }
        }
        let ports = (0..=65535u16).filter(|&p| seen[p as usize]).collect();
        Ok(Self { ports })
    }

    /// This list without the ports of `other`.
    pub fn without(&self, other: &PortList) -> Self {
        Self {
            ports: self
                .ports
                .iter()
                .copied()
                .filter(|p| !other.contains(*p))
                .collect(),
        }
    }

    pub fn from_ports(mut ports: Vec<u16>) -> Self {
        ports.sort_unstable();
        ports.dedup();
        Self { ports }
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn contains(&self, port: u16) -> bool {
        self.index_of(port).is_some()
    }

    pub fn index_of(&self, port: u16) -> Option<usize> {
        self.ports.binary_search(&port).ok()
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.ports
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 5 {
        return None;
    }
    s.parse::<u32>()
        .ok()
        .filter(|&p| p <= 65535)
        .map(|p| p as u16)
}

impl fmt::Display for PortList {
    /// Compact form: runs collapsed to ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let p = &self.ports;
        let mut first = true;
        while i < p.len() {
            let mut j = i;
            while j + 1 < p.len() && p[j + 1] == p[j] + 1 {
                j += 1;
            }
            if !first {
                write!(f, ",")?;
            }
            first = false;
            if i == j {
                write!(f, "{}", p[i])?;
            } else {
                write!(f, "{}-{}", p[i], p[j])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let p = PortList::parse("80, 22,8000-8002,22").unwrap();
        assert_eq!(p.as_slice(), &[22, 80, 8000, 8001, 8002]);
        assert_eq!(p.to_string(), "22,80,8000-8002");
        assert_eq!(p.index_of(8001), Some(3));
        assert_eq!(PortList::parse("-").unwrap().len(), 65535);
        assert_eq!(PortList::parse("-1024").unwrap().len(), 1024);
        assert_eq!(PortList::parse("65530-").unwrap().len(), 6);
        assert_eq!(PortList::parse("0").unwrap().as_slice(), &[0]);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "", "80,", "65536", "x", "90-80", "1-2-3", "+5", "80 81", "-1-",
        ] {
            assert!(PortList::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = PortList::parse("99999").unwrap_err();
        assert!(e.to_string().contains("99999"), "{e}");
    }
}
