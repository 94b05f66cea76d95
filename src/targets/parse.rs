//! Target syntax, for both families:
//! - IPv4: `198.19.0.5`, `198.19.0.0/16`, `198.19.0.1-198.19.0.200`, nmap's last-octet range
//!   `198.19.0.1-200`;
//! - IPv6: `2001:db8::5`, `2001:db8::/120`, `2001:db8::1-2001:db8::ff`, and XMap's prefix
//!   windows `2001:db8::/32-48` (every /48 inside the /32, one address each, see
//!   [`PrefixWindow`]).
//!
//! Several per argument separated by commas or spaces; files one or more per line with `#`
//! comments. Files are read line by line into per-family vectors, so a hitlist of millions of
//! lines costs about the size of its addresses.

use std::{
    io::BufRead,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use super::{Ipv4Range, Ipv6Range};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid target '{spec}': {why}")]
    Invalid { spec: String, why: String },
    #[error("cannot read target file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {source}")]
    InFile {
        path: String,
        line: usize,
        source: Box<TargetError>,
    },
}

fn invalid(spec: &str, why: impl Into<String>) -> TargetError {
    TargetError::Invalid {
        spec: spec.to_string(),
        why: why.into(),
    }
}

/// `PREFIX/A-B`: every /B network inside PREFIX/A, each scanned at one address: its /B prefix
/// plus an interface identifier (`--iid`). `2001:db8::/32-48` is 65,536 targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrefixWindow {
    /// The outer network, host bits zero.
    pub(crate) net: u128,
    /// The outer prefix length (A).
    pub(crate) outer: u8,
    /// The length of each target network (B), `outer < inner <= 128`.
    pub(crate) inner: u8,
}

impl PrefixWindow {
    /// Number of /B networks.
    pub fn networks(&self) -> u128 {
        1u128 << (self.inner - self.outer)
    }
    /// The whole span the window covers.
    pub(crate) fn span(&self) -> Ipv6Range {
        Ipv6Range::cidr(self.net, self.outer)
    }
    /// The indices of the /B networks that any range of `cut` touches: such a network is
    /// skipped whole, so nothing excluded is ever probed whatever its interface identifier.
    pub(crate) fn networks_touching(&self, cut: &super::RangeSet<u128>) -> super::RangeSet<u128> {
        let span = self.span();
        let shift = 128 - self.inner as u32;
        let idx = |a: u128| (a - span.start).checked_shr(shift).unwrap_or(0);
        super::RangeSet::from_ranges(
            cut.ranges()
                .iter()
                .filter(|r| r.end >= span.start && r.start <= span.end)
                .map(|r| Ipv6Range::new(idx(r.start.max(span.start)), idx(r.end.min(span.end))))
                .collect(),
        )
    }
}

impl std::fmt::Display for PrefixWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}-{}",
            Ipv6Addr::from(self.net),
            self.outer,
            self.inner
        )
    }
}

/// One parsed target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    V4(Ipv4Range),
    V6(Ipv6Range),
    Window(PrefixWindow),
}

/// Parsed targets, kept per family. Single IPv6 addresses, the bulk of a hitlist, are kept
/// apart at 16 bytes each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub(crate) v4: Vec<Ipv4Range>,
    pub(crate) v6: Vec<Ipv6Range>,
    pub(crate) v6_single: Vec<u128>,
    pub(crate) windows: Vec<PrefixWindow>,
}

impl Targets {
    pub(crate) fn push(&mut self, t: Target) {
        match t {
            Target::V4(r) => self.v4.push(r),
            Target::V6(r) if r.start == r.end => self.v6_single.push(r.start),
            Target::V6(r) => self.v6.push(r),
            Target::Window(w) => self.windows.push(w),
        }
    }
    pub(crate) fn extend(&mut self, o: Targets) {
        self.v4.extend(o.v4);
        self.v6.extend(o.v6);
        self.v6_single.extend(o.v6_single);
        self.windows.extend(o.windows);
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.v6_single.len() + self.windows.len()
    }
}

fn addr4(spec: &str, s: &str) -> Result<u32, TargetError> {
    s.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| invalid(spec, format!("'{s}' is not an IPv4 address")))
}

fn addr6(spec: &str, s: &str) -> Result<u128, TargetError> {
    if let Some((a, zone)) = s.split_once('%') {
        let _ = a;
        return Err(invalid(
            spec,
            format!("zone '%{zone}': link-local targets are not scanned; give a global address"),
        ));
    }
    let a = s
        .parse::<Ipv6Addr>()
        .map_err(|_| invalid(spec, format!("'{s}' is not an IPv6 address")))?;
    if a.segments()[0] & 0xffc0 == 0xfe80 {
        return Err(invalid(
            spec,
            "a link-local address names no host without its interface (fe80::/10 is not routed)",
        ));
    }
    Ok(u128::from(a))
}

fn prefix_len(spec: &str, s: &str, max: u8) -> Result<u8, TargetError> {
    s.parse::<u8>()
        .ok()
        .filter(|p| *p <= max && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| invalid(spec, format!("'/{s}' is not a prefix length 0-{max}")))
}

/// Parses one target (no commas).
pub fn parse_target(spec: &str) -> Result<Target, TargetError> {
    let s = spec.trim();
    if s.is_empty() {
        return Err(invalid(spec, "empty"));
    }
    if s.contains(':') {
        return parse_target6(spec, s);
    }
    if let Some((net, len)) = s.split_once('/') {
        let net = addr4(spec, net)?;
        let prefix = prefix_len(spec, len, 32)?;
        return Ok(Target::V4(Ipv4Range::cidr(net, prefix)));
    }
    if let Some((a, b)) = s.split_once('-') {
        let start = addr4(spec, a)?;
        let end = if b.contains('.') {
            addr4(spec, b)?
        } else {
            let last: u8 = b
                .parse()
                .ok()
                .filter(|_| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| {
                    invalid(
                        spec,
                        format!("'{b}' is neither an address nor an octet 0-255"),
                    )
                })?;
            (start & 0xffff_ff00) | last as u32
        };
        if end < start {
            return Err(invalid(spec, "range runs backwards"));
        }
        return Ok(Target::V4(Ipv4Range::new(start, end)));
    }
    Ok(Target::V4(Ipv4Range::single(addr4(spec, s)?)))
}

fn parse_target6(spec: &str, s: &str) -> Result<Target, TargetError> {
    if let Some((net, len)) = s.split_once('/') {
        let net = addr6(spec, net)?;
        if let Some((a, b)) = len.split_once('-') {
            let outer = prefix_len(spec, a, 128)?;
            let inner = prefix_len(spec, b, 128)?;
            if inner <= outer {
                return Err(invalid(
                    spec,
                    format!("a prefix window /A-B needs A < B (got /{outer}-{inner})"),
                ));
            }
            return Ok(Target::Window(PrefixWindow {
                net: Ipv6Range::cidr(net, outer).start,
                outer,
                inner,
            }));
        }
        let prefix = prefix_len(spec, len, 128)?;
        return Ok(Target::V6(Ipv6Range::cidr(net, prefix)));
    }
    if let Some((a, b)) = s.split_once('-') {
        let start = addr6(spec, a)?;
        let end = addr6(spec, b)?;
        if end < start {
            return Err(invalid(spec, "range runs backwards"));
        }
        return Ok(Target::V6(Ipv6Range::new(start, end)));
    }
    Ok(Target::V6(Ipv6Range::single(addr6(spec, s)?)))
}

/// Parses a comma- or whitespace-separated list of targets.
pub fn parse_target_list(spec: &str) -> Result<Targets, TargetError> {
    let mut out = Targets::default();
    for item in spec.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        out.push(parse_target(item)?);
    }
    if out.is_empty() {
        return Err(invalid(spec, "empty"));
    }
    Ok(out)
}

/// Reads targets from a file (`-` is standard input): any number per line, `#` starts a
/// comment.
pub fn read_target_file(path: &Path) -> Result<Targets, TargetError> {
    let name = path.display().to_string();
    let file_err = |source| TargetError::File {
        path: name.clone(),
        source,
    };
    let mut reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).map_err(file_err)?,
        ))
    };
    let mut out = Targets::default();
    let mut line = String::new();
    for n in 0.. {
        line.clear();
        if reader.read_line(&mut line).map_err(file_err)? == 0 {
            break;
        }
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let in_file = |e| TargetError::InFile {
            path: name.clone(),
            line: n + 1,
            source: Box::new(e),
        };
        // The common hitlist line is one address: no list to split.
        if !body.contains([',', ' ', '\t']) {
            out.push(parse_target(body).map_err(in_file)?);
        } else {
            out.extend(parse_target_list(body).map_err(in_file)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let v4 = |s| match parse_target(s).unwrap() {
            Target::V4(r) => r,
            t => panic!("{t:?}"),
        };
        assert_eq!(v4("198.19.0.5"), Ipv4Range::single(0xc613_0005));
        assert_eq!(
            v4("198.19.0.5/16"),
            Ipv4Range::new(0xc613_0000, 0xc613_ffff)
        );
        assert_eq!(v4("0.0.0.0/0").len(), 1 << 32);
        assert_eq!(
            v4("198.19.0.1-198.19.1.0"),
            Ipv4Range::new(0xc613_0001, 0xc613_0100)
        );
        assert_eq!(
            v4("198.19.0.1-200"),
            Ipv4Range::new(0xc613_0001, 0xc613_00c8)
        );
        assert_eq!(
            parse_target_list("198.19.0.1,198.19.0.3 198.19.0.9")
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn ipv6_forms() {
        let db8: u128 = 0x2001_0db8 << 96;
        assert_eq!(
            parse_target("2001:db8::5").unwrap(),
            Target::V6(Ipv6Range::single(db8 | 5))
        );
        assert_eq!(
            parse_target("2001:db8::/120").unwrap(),
            Target::V6(Ipv6Range::new(db8, db8 | 0xff))
        );
        assert_eq!(
            parse_target("2001:db8::1-2001:db8::ff").unwrap(),
            Target::V6(Ipv6Range::new(db8 | 1, db8 | 0xff))
        );
        let Target::Window(w) = parse_target("2001:db8:ffff::/32-48").unwrap() else {
            panic!()
        };
        assert_eq!((w.net, w.outer, w.inner), (db8, 32, 48));
        assert_eq!(w.networks(), 65_536);
        assert_eq!(w.to_string(), "2001:db8::/32-48");
        // A cut touching part of network 0x0102 and all of 0x0200..0x02ff takes those whole.
        let cut = crate::targets::RangeSet::from_ranges(vec![
            Ipv6Range::single(db8 | 0x0102 << 80 | 7),
            Ipv6Range::cidr(db8 | 0x02 << 88, 40),
            Ipv6Range::cidr(0x3000 << 112, 16),
        ]);
        let touched = w.networks_touching(&cut);
        assert_eq!(
            touched.ranges(),
            &[Ipv6Range::single(0x0102), Ipv6Range::new(0x0200, 0x02ff)]
        );
        let t =
            parse_target_list("198.19.0.1, 2001:db8::1 2001:db8::/32-40 2001:db8::/120").unwrap();
        assert_eq!(
            (t.v4.len(), t.v6_single.len(), t.v6.len(), t.windows.len()),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn ipv6_rejects_malformed() {
        for (bad, why) in [
            ("2001:db8::/129", "prefix length 0-128"),
            ("2001:db8::/48-32", "A < B"),
            ("2001:db8::/48-48", "A < B"),
            ("2001:db8::/32-129", "prefix length"),
            ("2001:db8::ff-2001:db8::1", "backwards"),
            ("2001:db8:::1", "not an IPv6 address"),
            ("fe80::1", "link-local"),
            ("fe80::1%eth0", "link-local"),
            ("2001:db8::1-198.19.0.1", "not an IPv6 address"),
        ] {
            let e = parse_target(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "198.19.0",
            "198.19.0.256",
            "198.19.0.0/33",
            "198.19.0.0/",
            "198.19.0.0/x",
            "198.19.0.9-198.19.0.1",
            "198.19.0.9-3",
            "198.19.0.1-300",
            "example.com",
            "1.2.3.4/-1",
            "::g",
        ] {
            let e = parse_target(bad);
            assert!(e.is_err(), "{bad:?} accepted: {e:?}");
        }
        let msg = parse_target("198.19.0.256").unwrap_err().to_string();
        assert!(msg.contains("198.19.0.256"), "{msg}");
    }

    #[test]
    fn file_with_comments() {
        let dir = std::env::temp_dir().join(format!("xdpscan-tf-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# lab\n198.19.0.1  # one\n\n198.19.1.0/30, 198.19.2.1\n",
        )
        .unwrap();
        let v = read_target_file(&dir).unwrap();
        assert_eq!(v.len(), 3);
        std::fs::write(&dir, "2001:db8::1\n198.19.0.1\n2001:db8::/64-72 # window\n").unwrap();
        let v = read_target_file(&dir).unwrap();
        assert_eq!((v.v4.len(), v.v6_single.len(), v.windows.len()), (1, 1, 1));
        std::fs::write(&dir, "198.19.0.1\nbogus\n").unwrap();
        let e = read_target_file(&dir).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("bogus"), "{e}");
        std::fs::remove_file(&dir).unwrap();
        assert!(read_target_file(&dir).is_err());
    }
}
