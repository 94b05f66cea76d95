//! Port lists: `22,80,8000-8100`, nmap's `-` (1-65535) and open ends (`-1024`, `60000-`), and
//! service names (`https`, `http*`) that a resolver turns into ports (see `services.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port specification '{spec}': {why}")]
pub struct PortParseError {
    pub(crate) spec: String,
    pub(crate) why: String,
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
    pub(crate) fn without(&self, other: &PortList) -> Self {
        Self {
            ports: self
                .ports
                .iter()
                .copied()
                .filter(|p| !other.contains(*p))
                .collect(),
        }
    }

    pub(crate) fn from_ports(mut ports: Vec<u16>) -> Self {
        ports.sort_unstable();
        ports.dedup();
        Self { ports }
    }

    pub(crate) fn len(&self) -> usize {
        self.ports.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    pub(crate) fn contains(&self, port: u16) -> bool {
        self.index_of(port).is_some()
    }

    pub(crate) fn index_of(&self, port: u16) -> Option<usize> {
        self.ports.binary_search(&port).ok()
    }

    pub(crate) fn as_slice(&self) -> &[u16] {
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

/// The port dimension of a scan: one port list per protocol probed (a "slot"; `-sS -sU -p
/// T:80,U:53` has two), laid end to end. A probe's port position `pi` names both its slot and
/// its port; slot order is the order the scan's modules are given in (docs/design.md, "One
/// permutation over several protocols").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePorts {
    /// Every slot's ports, concatenated: a probe's port is one load.
    flat: Vec<u16>,
    /// Where each slot starts in `flat`, and its end last.
    starts: Vec<usize>,
}

impl ProbePorts {
    pub(crate) fn new(lists: Vec<PortList>) -> Self {
        let mut flat = Vec::new();
        let mut starts = vec![0];
        for l in lists {
            flat.extend_from_slice(&l.ports);
            starts.push(flat.len());
        }
        Self { flat, starts }
    }

    pub(crate) fn single(list: PortList) -> Self {
        Self::new(vec![list])
    }

    /// Ports over all slots.
    pub(crate) fn len(&self) -> usize {
        self.flat.len()
    }

    pub(crate) fn slots(&self) -> usize {
        self.starts.len() - 1
    }

    /// The port at position `pi`.
    #[inline(always)]
    pub(crate) fn get(&self, pi: usize) -> u16 {
        self.flat[pi]
    }

    /// The slot of position `pi` (0 in a one-protocol scan, without a search).
    #[inline(always)]
    pub(crate) fn slot_of(&self, pi: usize) -> usize {
        if self.starts.len() == 2 {
            return 0;
        }
        self.starts[1..].partition_point(|&s| s <= pi)
    }

    /// Position of `port` in `slot`.
    #[inline]
    pub(crate) fn index_of(&self, slot: usize, port: u16) -> Option<usize> {
        let (lo, hi) = (*self.starts.get(slot)?, *self.starts.get(slot + 1)?);
        self.flat[lo..hi].binary_search(&port).ok().map(|i| lo + i)
    }

    /// The ports of one slot.
    pub(crate) fn list(&self, slot: usize) -> PortList {
        PortList {
            ports: self.flat[self.starts[slot]..self.starts[slot + 1]].to_vec(),
        }
    }

    /// (slot, port) of every position, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, u16)> + '_ {
        (0..self.slots()).flat_map(move |s| {
            self.flat[self.starts[s]..self.starts[s + 1]]
                .iter()
                .map(move |&p| (s, p))
        })
    }
}

impl From<PortList> for ProbePorts {
    fn from(l: PortList) -> Self {
        Self::single(l)
    }
}

impl fmt::Display for ProbePorts {
    /// One slot: its list; several: each list after its slot number (`0:80;1:53`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.slots() == 1 {
            return write!(f, "{}", self.list(0));
        }
        for s in 0..self.slots() {
            if s > 0 {
                write!(f, ";")?;
            }
            write!(f, "{s}:{}", self.list(s))?;
        }
        Ok(())
    }
}

/// A port spec split by nmap's protocol prefixes: items before any prefix apply to every
/// protocol scanned; after `T:`, `U:`, `S:` or `P:` to that protocol, until the next prefix
/// (`22,T:80,443,U:53` is 22 for all, 80 and 443 for TCP, 53 for UDP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixedSpec {
    pub(crate) any: Option<String>,
    pub tcp: Option<String>,
    pub(crate) udp: Option<String>,
    pub(crate) sctp: Option<String>,
    /// IP protocol numbers (`-sO`).
    pub(crate) proto: Option<String>,
}

impl PrefixedSpec {
    pub fn parse(spec: &str) -> Result<Self, PortParseError> {
        let mut out = PrefixedSpec::default();
        let mut slot = 0usize; // 0 any, 1 T, 2 U, 3 S, 4 P
        for item in spec.split(',') {
            let item = item.trim();
            let (s, rest) = match item.get(..2).map(|p| p.to_ascii_uppercase()) {
                Some(p) if p == "T:" => (1, &item[2..]),
                Some(p) if p == "U:" => (2, &item[2..]),
                Some(p) if p == "S:" => (3, &item[2..]),
                Some(p) if p == "P:" => (4, &item[2..]),
                _ => (slot, item),
            };
            slot = s;
            if rest.is_empty() {
                return Err(PortParseError {
                    spec: spec.to_string(),
                    why: format!("'{item}' names no port"),
                });
            }
            let dst = match slot {
                0 => &mut out.any,
                1 => &mut out.tcp,
                2 => &mut out.udp,
                3 => &mut out.sctp,
                _ => &mut out.proto,
            };
            match dst {
                Some(d) => {
                    d.push(',');
                    d.push_str(rest);
                }
                None => *dst = Some(rest.to_string()),
            }
        }
        Ok(out)
    }

    /// Whether any protocol prefix was used.
    pub(crate) fn prefixed(&self) -> bool {
        self.tcp.is_some() || self.udp.is_some() || self.sctp.is_some() || self.proto.is_some()
    }

    /// The items for one protocol: the unprefixed ones and its own, joined.
    pub fn for_proto(&self, own: &Option<String>) -> Option<String> {
        match (&self.any, own) {
            (Some(a), Some(o)) => Some(format!("{a},{o}")),
            (a, o) => a.clone().or_else(|| o.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_ports_lay_slots_end_to_end() {
        let pp = ProbePorts::new(vec![
            PortList::parse("22,80").unwrap(),
            PortList::parse("53,80,161").unwrap(),
        ]);
        assert_eq!(pp.len(), 5);
        assert_eq!(pp.slots(), 2);
        let all: Vec<_> = pp.iter().collect();
        assert_eq!(all, [(0, 22), (0, 80), (1, 53), (1, 80), (1, 161)]);
        for (pi, &(slot, port)) in all.iter().enumerate() {
            assert_eq!(pp.get(pi), port);
            assert_eq!(pp.slot_of(pi), slot);
            assert_eq!(pp.index_of(slot, port), Some(pi));
        }
        assert_eq!(pp.index_of(0, 53), None);
        assert_eq!(pp.index_of(2, 53), None);
        assert_eq!(pp.to_string(), "0:22,80;1:53,80,161");
        let one = ProbePorts::single(PortList::parse("1-3").unwrap());
        assert_eq!((one.slot_of(2), one.to_string()), (0, "1-3".to_string()));
    }

    #[test]
    fn prefixes_split_a_spec_by_protocol() {
        let p = PrefixedSpec::parse("22,T:80,443,U:53,t:8080,P:6").unwrap();
        assert_eq!(p.any.as_deref(), Some("22"));
        assert_eq!(p.tcp.as_deref(), Some("80,443,8080"));
        assert_eq!(p.udp.as_deref(), Some("53"));
        assert_eq!(p.proto.as_deref(), Some("6"));
        assert_eq!(p.for_proto(&p.tcp).as_deref(), Some("22,80,443,8080"));
        assert_eq!(p.for_proto(&None).as_deref(), Some("22"));
        assert!(p.prefixed());
        let plain = PrefixedSpec::parse("80,https").unwrap();
        assert!(!plain.prefixed());
        assert_eq!(plain.any.as_deref(), Some("80,https"));
        assert!(PrefixedSpec::parse("T:,80").is_err());
        assert_eq!(
            PrefixedSpec::parse("U:snmp").unwrap().udp.as_deref(),
            Some("snmp")
        );
    }

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
