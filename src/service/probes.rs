//! nmap's `nmap-service-probes`: the probes to send and the PCRE patterns that name what
//! answered. The format is nmap's ("Service and Application Version Detection", chapter 7 of
//! the nmap book); patterns are compiled with PCRE2 over bytes, lazily, the first time a
//! response is matched against them, so loading the 12,000-line file costs a parse, not 12,000
//! compilations.

use std::{path::Path, sync::OnceLock};

use pcre2::bytes::{Captures, Regex, RegexBuilder};

use super::{Details, Service};
use crate::targets::PortList;

/// Where Debian's nmap puts the database.
pub const DEFAULT_PATH: &str = "/usr/share/nmap/nmap-service-probes";

#[derive(Debug, thiserror::Error)]
pub enum ProbesError {
    #[error("cannot read service probes {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {what}")]
    Syntax {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{0} has no TCP probes")]
    Empty(String),
}

/// One `Probe` and the directives under it.
#[derive(Debug)]
pub struct Probe {
    pub name: String,
    pub(crate) tcp: bool,
    pub(crate) payload: Vec<u8>,
    pub(crate) ports: Option<PortList>,
    pub(crate) sslports: Option<PortList>,
    pub(crate) rarity: u8,
    pub(crate) fallback: Vec<String>,
    /// How long nmap waits for this probe's answer.
    pub(crate) total_wait_ms: Option<u64>,
    /// A NULL probe closed sooner than this means `tcpwrapped` (nmap's `tcpwrappedms`).
    pub(crate) tcpwrapped_ms: Option<u64>,
    pub(crate) matches: Vec<Match>,
    /// Every service its match lines name (nmap's `serviceIsPossible`: after a soft match,
    /// only probes that can name that service are sent).
    pub(crate) services: Vec<String>,
    /// For each first byte of an answer, the match lines that can match it, in file order
    /// (a line with a literal head is left out of the other 255): built on first use.
    by_first: OnceLock<Vec<Vec<u32>>>,
}

impl Probe {
    pub(crate) fn is_null(&self) -> bool {
        self.tcp && self.name == "NULL"
    }

    /// Does this probe list `port` (its `sslports` inside a TLS tunnel)?
    pub(crate) fn lists_port(&self, port: u16, tunnel: bool) -> bool {
        let list = if tunnel { &self.sslports } else { &self.ports };
        list.as_ref().is_some_and(|l| l.contains(port))
    }

    pub(crate) fn can_name(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    /// The first of this probe's match lines that matches `data` (not empty).
    pub(crate) fn first_match(&self, data: &[u8]) -> Option<Service> {
        let by_first = self.by_first.get_or_init(|| {
            let mut v = vec![Vec::new(); 256];
            for (i, m) in self.matches.iter().enumerate() {
                match m.prefix.first() {
                    None => v.iter_mut().for_each(|l| l.push(i as u32)),
                    Some(&b) => {
                        v[b as usize].push(i as u32);
                        if m.caseless && b.is_ascii_alphabetic() {
                            let other = if b.is_ascii_lowercase() {
                                b.to_ascii_uppercase()
                            } else {
                                b.to_ascii_lowercase()
                            };
                            v[other as usize].push(i as u32);
                        }
                    }
                }
            }
            v
        });
        by_first[data[0] as usize]
            .iter()
            .find_map(|&i| self.matches[i as usize].apply(data))
    }
}

/// A `match` or `softmatch` line.
#[derive(Debug)]
pub(crate) struct Match {
    /// Service name as written (`ssh`, `ssl/http`).
    pub(crate) service: String,
    pub(crate) soft: bool,
    pattern: String,
    caseless: bool,
    dotall: bool,
    /// Bytes every match starts with (the pattern's anchored literal head): most patterns are
    /// ruled out by this comparison alone, without running PCRE.
    prefix: Vec<u8>,
    compiled: OnceLock<Option<Regex>>,
    /// Version templates (`$1`, `$P(2)`...).
    pub(crate) details: Details,
    pub(crate) cpe: Vec<String>,
}

impl Match {
    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| {
                RegexBuilder::new()
                    .caseless(self.caseless)
                    .dotall(self.dotall)
                    .jit_if_available(true)
                    .build(&self.pattern)
                    .ok()
            })
            .as_ref()
    }

    /// The service this match reports for `data`, if its pattern matches.
    pub(crate) fn apply(&self, data: &[u8]) -> Option<Service> {
        let head = data.get(..self.prefix.len())?;
        let same = if self.caseless {
            head.eq_ignore_ascii_case(&self.prefix)
        } else {
            head == self.prefix.as_slice()
        };
        if !same {
            return None;
        }
        let caps = self.regex()?.captures(data).ok()??;
        let (name, tunnel) = match self.service.strip_prefix("ssl/") {
            Some(inner) => (inner.to_string(), Some("ssl".to_string())),
            None => (self.service.clone(), None),
        };
        Some(Service {
            name,
            tunnel,
            details: self.details.map(|t| substitute(t, &caps)),
            cpe: one_per_part(self.cpe.iter().map(|c| substitute(c, &caps))),
            method: super::Method::Probed,
            soft: self.soft,
        })
    }
}

/// The whole database.
#[derive(Debug)]
pub struct ServiceProbes {
    pub probes: Vec<Probe>,
    /// Ports nmap never probes (`Exclude`; printers that print anything sent to them).
    pub(crate) exclude_tcp: Option<PortList>,
}

impl ServiceProbes {
    pub fn load(path: &Path) -> Result<Self, ProbesError> {
        let bytes = std::fs::read(path).map_err(|source| ProbesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    pub fn parse(text: &[u8], path: &str) -> Result<Self, ProbesError> {
        let mut probes: Vec<Probe> = Vec::new();
        let mut exclude_tcp = None;
        for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = escape_high_bytes(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |what: &str| ProbesError::Syntax {
                path: path.to_string(),
                line: n + 1,
                what: what.to_string(),
            };
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "Exclude" => {
                    // "T:9100-9107,U:..." or plain ports (TCP).
                    let tcp: Vec<&str> = rest
                        .split(',')
                        .filter_map(|p| {
                            let p = p.trim();
                            p.strip_prefix("T:").or((!p.contains(':')).then_some(p))
                        })
                        .collect();
                    if !tcp.is_empty() {
                        exclude_tcp = PortList::parse(&tcp.join(",")).ok();
                    }
                }
                "Probe" => {
                    let mut it = rest.splitn(3, ' ');
                    let proto = it.next().unwrap_or("");
                    let name = it.next().ok_or_else(|| err("Probe without a name"))?;
                    let q = it.next().ok_or_else(|| err("Probe without q|...|"))?;
                    let body = q
                        .strip_prefix('q')
                        .and_then(delimited)
                        .ok_or_else(|| err("probe string is not q|...|"))?
                        .0;
                    probes.push(Probe {
                        name: name.to_string(),
                        tcp: proto == "TCP",
                        payload: unescape(body),
                        ports: None,
                        sslports: None,
                        // nmap's default for a probe without a rarity line.
                        rarity: 5,
                        fallback: Vec::new(),
                        total_wait_ms: None,
                        tcpwrapped_ms: None,
                        matches: Vec::new(),
                        services: Vec::new(),
                        by_first: OnceLock::new(),
                    });
                }
                _ => {
                    let Some(p) = probes.last_mut() else {
                        return Err(err("directive before the first Probe"));
                    };
                    match word {
                        "match" | "softmatch" => {
                            let m = parse_match(rest, word == "softmatch").map_err(err)?;
                            if !p.services.contains(&m.service) {
                                p.services.push(m.service.clone());
                            }
                            p.matches.push(m);
                        }
                        "ports" => p.ports = PortList::parse(rest.trim()).ok(),
                        "sslports" => p.sslports = PortList::parse(rest.trim()).ok(),
                        "rarity" => p.rarity = rest.trim().parse().unwrap_or(1),
                        "fallback" => {
                            p.fallback = rest.split(',').map(|s| s.trim().to_string()).collect()
                        }
                        "totalwaitms" => p.total_wait_ms = rest.trim().parse().ok(),
                        "tcpwrappedms" => p.tcpwrapped_ms = rest.trim().parse().ok(),
                        _ => {} // future directives
                    }
                }
            }
        }
        if !probes.iter().any(|p| p.tcp) {
            return Err(ProbesError::Empty(path.to_string()));
        }
        Ok(Self {
            probes,
            exclude_tcp,
        })
    }

    fn tcp_probe(&self, name: &str) -> Option<&Probe> {
        self.probes.iter().find(|p| p.tcp && p.name == name)
    }

    /// Index of the TCP probe called `name`.
    pub fn tcp_index(&self, name: &str) -> Option<usize> {
        self.probes.iter().position(|p| p.tcp && p.name == name)
    }

    /// What the answer `data` to probe `idx` says, as nmap reads it: the match lines of the
    /// probe, then of its fallbacks, then of the NULL probe (TCP), and the first line that
    /// matches wins, soft or hard.
    pub fn first_match(&self, idx: usize, data: &[u8]) -> Option<Service> {
        if data.is_empty() {
            return None;
        }
        let probe = self.probes.get(idx)?;
        let mut chain: Vec<&Probe> = vec![probe];
        let same_proto = |p: &&Probe| p.tcp == probe.tcp;
        for f in &probe.fallback {
            if let Some(fp) = self.probes.iter().filter(same_proto).find(|p| &p.name == f) {
                chain.push(fp);
            }
        }
        if probe.tcp && !probe.is_null() {
            if let Some(null) = self.tcp_probe("NULL") {
                chain.push(null);
            }
        }
        chain.into_iter().find_map(|p| p.first_match(data))
    }

    /// The probe to send when a TCP port stays silent: the first (in file order) that lists the
    /// port, else GetRequest (HTTP answers on more odd ports than anything else). `None` for
    /// ports nmap excludes.
    pub(crate) fn probe_for(&self, port: u16) -> Option<&Probe> {
        if self.exclude_tcp.as_ref().is_some_and(|e| e.contains(port)) {
            return None;
        }
        self.probes
            .iter()
            .filter(|p| p.tcp && p.name != "NULL" && !p.payload.is_empty())
            .find(|p| p.ports.as_ref().is_some_and(|l| l.contains(port)))
            .or_else(|| self.tcp_probe("GetRequest"))
    }
}

/// nmap keeps one CPE per part (application, hardware, OS), the last one written, and prints
/// them in that order.
fn one_per_part(cpes: impl Iterator<Item = String>) -> Vec<String> {
    let mut parts: [Option<String>; 3] = Default::default();
    for c in cpes {
        let slot = match c.as_bytes().get(5) {
            Some(b'a') => 0,
            Some(b'h') => 1,
            Some(b'o') => 2,
            _ => continue,
        };
        parts[slot] = Some(c);
    }
    parts.into_iter().flatten().collect()
}

/// Splits `|body|rest` (any delimiter) into body and what follows.
fn delimited(s: &str) -> Option<(&str, &str)> {
    let d = s.chars().next()?;
    let rest = &s[d.len_utf8()..];
    let end = rest.find(d)?;
    Some((&rest[..end], &rest[end + d.len_utf8()..]))
}

fn parse_match(rest: &str, soft: bool) -> Result<Match, &'static str> {
    let (service, rest) = rest.split_once(' ').ok_or("match without a pattern")?;
    let rest = rest.strip_prefix('m').ok_or("pattern is not m|...|")?;
    let (pattern, mut rest) = delimited(rest).ok_or("unterminated pattern")?;
    let flags: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    rest = &rest[flags.len()..];
    let mut m = Match {
        service: service.to_string(),
        soft,
        pattern: pattern.to_string(),
        prefix: literal_prefix(pattern),
        caseless: flags.contains('i'),
        dotall: flags.contains('s'),
        compiled: OnceLock::new(),
        details: Details::default(),
        cpe: Vec::new(),
    };
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("cpe:") {
            let (v, r) = delimited(r).ok_or("unterminated cpe")?;
            m.cpe.push(format!("cpe:/{v}"));
            // An optional "a" (the value was auto-generated) follows the closing delimiter.
            rest = r.strip_prefix('a').unwrap_or(r);
            continue;
        }
        let key = rest.chars().next().ok_or("empty field")?;
        let (v, r) = delimited(&rest[1..]).ok_or("unterminated version field")?;
        let slot = m.details.slot(key).ok_or("unknown version field")?;
        *slot = Some(v.to_string());
        rest = r;
    }
    Ok(m)
}

/// The literal bytes an anchored pattern (`^SSH-\d`) must start with (`SSH-`); empty when
/// unsure (no anchor, a top-level alternation, inline options).
fn literal_prefix(pattern: &str) -> Vec<u8> {
    let b = pattern.as_bytes();
    if b.first() != Some(&b'^') || has_top_level_alternation(b) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        let (byte, next) = match b[i] {
            b'\\' => {
                let Some(&c) = b.get(i + 1) else { break };
                match c {
                    b'x' => match b
                        .get(i + 2..i + 4)
                        .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                    {
                        Some(v) => (v, i + 4),
                        None => break,
                    },
                    // \0 followed by digits is an octal escape: stop rather than guess.
                    b'0' if b.get(i + 2).is_some_and(u8::is_ascii_digit) => break,
                    b'0' => (0, i + 2),
                    b'r' => (b'\r', i + 2),
                    b'n' => (b'\n', i + 2),
                    b't' => (b'\t', i + 2),
                    c if c.is_ascii_alphanumeric() => break, // \d \w \s \b ...
                    c => (c, i + 2),
                }
            }
            b'.' | b'[' | b']' | b'(' | b')' | b'|' | b'?' | b'*' | b'+' | b'{' | b'}' | b'^'
            | b'$' => break,
            c => (c, i + 1),
        };
        // A quantifier makes this byte optional or repeated: stop before it.
        if matches!(b.get(next), Some(b'?' | b'*' | b'{')) {
            break;
        }
        out.push(byte);
        if matches!(b.get(next), Some(b'+')) {
            break;
        }
        i = next;
    }
    out
}

/// Is there a `|` outside every group and class (`^a|b` matches "b" anywhere)?
fn has_top_level_alternation(b: &[u8]) -> bool {
    let (mut depth, mut class, mut i) = (0i32, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !class => class = true,
            b']' if class => class = false,
            b'(' if !class => depth += 1,
            b')' if !class => depth -= 1,
            b'|' if !class && depth == 0 => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Bytes beyond ASCII become `\xHH`: PCRE2 takes a str pattern, and these files hold a few raw
/// bytes that must still match themselves.
fn escape_high_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c < 0x80 {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// A probe string's C escapes (`\r\n`, `\0`, `\x16`) to bytes.
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        out.push(match c {
            b'0' => 0,
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'x' if i + 2 <= b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i..i + 2]).unwrap_or(""), 16) {
                    Ok(v) => {
                        i += 2;
                        v
                    }
                    Err(_) => b'x',
                }
            }
            other => other,
        });
    }
    out
}

/// Fills a version template: `$1`, `$P(1)` (printable characters only), `$SUBST(1,"_",".")`,
/// `$I(1,">")` (the group as a big- or little-endian unsigned number).
fn substitute(t: &str, caps: &Captures) -> String {
    let group = |n: usize| caps.get(n).map(|m| m.as_bytes()).unwrap_or(&[]);
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = String::new();
    let mut rest = t;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let r = &rest[at + 1..];
        let digit = r.chars().next().and_then(|c| c.to_digit(10));
        if let Some(n) = digit {
            out.push_str(&lossy(group(n as usize)));
            rest = &r[1..];
            continue;
        }
        let func = ["P(", "SUBST(", "I("]
            .iter()
            .find(|f| r.starts_with(**f))
            .copied();
        let Some(func) = func else {
            out.push('$');
            rest = r;
            continue;
        };
        let args_end = r.find(')').unwrap_or(r.len());
        let args = &r[func.len()..args_end];
        rest = r.get(args_end + 1..).unwrap_or("");
        let mut parts = split_args(args).into_iter();
        let n: usize = parts.next().and_then(|a| a.parse().ok()).unwrap_or(0);
        let g = group(n);
        match func {
            "P(" => out.extend(
                g.iter()
                    .filter(|c| (0x20..0x7f).contains(*c))
                    .map(|&c| c as char),
            ),
            "SUBST(" => {
                let from = parts.next().unwrap_or_default();
                let to = parts.next().unwrap_or_default();
                let s = lossy(g);
                out.push_str(&if from.is_empty() {
                    s
                } else {
                    s.replace(&from, &to)
                });
            }
            _ => {
                let little = parts.next().as_deref() == Some("<");
                let v = if little {
                    g.iter().rev().fold(0u64, |a, &b| (a << 8) | b as u64)
                } else {
                    g.iter().fold(0u64, |a, &b| (a << 8) | b as u64)
                };
                out.push_str(&v.to_string());
            }
        }
    }
    out.push_str(rest);
    out
}

/// `1,"a","b"` → `1`, `a`, `b`.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = r#"# a small database in nmap's format
Exclude T:9100-9107
Probe TCP NULL q||
totalwaitms 6000
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+) Debian-(\S+)\r?\n| p/OpenSSH/ v/$2 Debian $3/ i/protocol $1/ o/Linux/ cpe:/a:openbsd:openssh:$2/ cpe:/o:linux:linux_kernel/a
softmatch ssh m|^SSH-([\d.]+)-|i
match ftp m|^220 ([-\w]+) FTP ready\r\n|s p/$P(1)/ v/$SUBST(1,"-",".")/
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80,8000-8010
sslports 443
match http m|^HTTP/1\.[01] \d\d\d .*\r\nServer: SimpleHTTP/([\d.]+) Python/([\w._+-]+)\r\n|s p/SimpleHTTPServer/ v/$1/ i/Python $2/
Probe TCP SSLSessionReq q|\x16\x03\0\0S\x01|
ports 443,465
fallback GetRequest
match ssl m|^\x15\x03[\x00-\x04]\0\x02\x02[F\x28]|
"#;

    fn db() -> ServiceProbes {
        ServiceProbes::parse(DB.as_bytes(), "test").unwrap()
    }

    #[test]
    fn parses_probes_and_directives() {
        let d = db();
        assert_eq!(d.probes.len(), 3);
        let get = &d.probes[1];
        assert_eq!(get.payload, b"GET / HTTP/1.0\r\n\r\n");
        assert!(get.ports.as_ref().unwrap().contains(8005));
        assert!(get.sslports.as_ref().unwrap().contains(443));
        assert_eq!(d.probes[2].payload, [0x16, 3, 0, 0, b'S', 1]);
        assert_eq!(d.probes[2].fallback, ["GetRequest"]);
        assert_eq!(d.probes[0].total_wait_ms, Some(6000));
        let ssh = &d.probes[0].matches[0];
        assert_eq!(
            ssh.cpe,
            ["cpe:/a:openbsd:openssh:$2", "cpe:/o:linux:linux_kernel"]
        );
    }

    /// What the answer `data` to probe `name` says (the probe, its fallbacks, then NULL).
    fn identify(d: &ServiceProbes, name: &str, data: &[u8]) -> Option<Service> {
        d.first_match(d.tcp_index(name).expect("a probe of the test file"), data)
    }

    #[test]
    fn identifies_with_substitutions() {
        let d = db();
        let s = identify(&d, "NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert_eq!(s.name, "ssh");
        assert_eq!(s.details.product.as_deref(), Some("OpenSSH"));
        assert_eq!(s.details.version.as_deref(), Some("9.2p1 Debian 2+deb12u3"));
        assert_eq!(s.details.extrainfo.as_deref(), Some("protocol 2.0"));
        assert_eq!(s.details.ostype.as_deref(), Some("Linux"));
        // One CPE per part, as nmap reports them.
        assert_eq!(
            s.cpe,
            ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]
        );
        assert!(!s.soft);
        // Only the soft match fits: the service is named, nothing more.
        let s = identify(&d, "NULL", b"ssh-1.99-dropbear\r\n").unwrap();
        assert!(s.soft && s.name == "ssh" && s.details.product.is_none());
        let s = identify(&d, "NULL", b"220 my-ftp-1 FTP ready\r\n").unwrap();
        assert_eq!(s.details.product.as_deref(), Some("my-ftp-1"));
        assert_eq!(s.details.version.as_deref(), Some("my.ftp.1"));
    }

    #[test]
    fn probe_response_then_fallback_then_null() {
        let d = db();
        let http = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: x\r\n\r\n";
        let s = identify(&d, "GetRequest", http).unwrap();
        assert_eq!(
            (
                s.name.as_str(),
                s.details.version.as_deref(),
                s.details.extrainfo.as_deref()
            ),
            ("http", Some("0.6"), Some("Python 3.11.2"))
        );
        // SSLSessionReq falls back on GetRequest's matches.
        assert_eq!(identify(&d, "SSLSessionReq", http).unwrap().name, "http");
        let alert = [0x15, 3, 1, 0, 2, 2, 0x46];
        assert_eq!(identify(&d, "SSLSessionReq", &alert).unwrap().name, "ssl");
        // A greeting after a probe still meets the NULL probe's matches.
        assert_eq!(
            identify(&d, "GetRequest", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
                .unwrap()
                .name,
            "ssh"
        );
        assert!(identify(&d, "NULL", b"nothing known").is_none());
    }

    #[test]
    fn probe_choice() {
        let d = db();
        assert_eq!(d.probe_for(443).unwrap().name, "SSLSessionReq");
        assert_eq!(d.probe_for(8001).unwrap().name, "GetRequest");
        assert_eq!(d.probe_for(9999).unwrap().name, "GetRequest");
        assert!(d.probe_for(9100).is_none());
    }

    #[test]
    fn literal_prefixes() {
        let p = |s: &str| literal_prefix(s);
        assert_eq!(p(r"^SSH-([\d.]+)-OpenSSH"), b"SSH-");
        assert_eq!(p(r"^HTTP/1\.[01] \d"), b"HTTP/1.");
        assert_eq!(p(r"^\x16\x03[\x00-\x03]"), [0x16, 3]);
        assert_eq!(p(r"^\0\0\x01a"), [0, 0, 1, b'a']);
        assert_eq!(p(r"^ab?c"), b"a");
        assert_eq!(p(r"^ab+c"), b"ab");
        assert_eq!(p(r"^ab{2}"), b"a");
        assert_eq!(p(r"^\r\n\t\|x"), b"\r\n\t|x");
        assert!(p(r"^a|b").is_empty());
        assert_eq!(p(r"^a(b|c)"), b"a");
        assert!(p(r"SSH-").is_empty());
        assert!(p(r"^\012").is_empty());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\r\n\0\x41\\\q"), b"a\r\n\0A\\q");
        assert_eq!(escape_high_bytes(&[b'a', 0xe9]), "a\\xe9");
        assert!(ServiceProbes::parse(b"match x m|y|\n", "t").is_err());
    }

    #[test]
    fn debian_database_loads_and_names_common_services() {
        let Ok(d) = ServiceProbes::load(Path::new(DEFAULT_PATH)) else {
            return; // nmap not installed: covered by the small database above
        };
        assert!(d.probes.len() > 100);
        let s = identify(&d, "NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert_eq!(
            (s.name.as_str(), s.details.product.as_deref()),
            ("ssh", Some("OpenSSH"))
        );
        assert_eq!(d.probe_for(80).unwrap().name, "GetRequest");
        assert_eq!(d.probe_for(443).unwrap().name, "SSLSessionReq");
    }
}
