//! nmap-services: port names (`-p https,ssh`) and how often each port is found open
//! (`--top-ports N`, `-F`), as nmap reads them. A name stands for every port it has for the
//! protocol scanned, and `*`/`?` wildcards match names as in nmap.

use std::path::Path;

/// Debian's copy, installed with nmap.
pub(crate) const DEFAULT_PATH: &str = "/usr/share/nmap/nmap-services";

/// The protocol a name or a ranking is looked up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ServiceProto {
    Tcp,
    Udp,
    Sctp,
}

impl ServiceProto {
    fn as_str(self) -> &'static str {
        match self {
            ServiceProto::Tcp => "tcp",
            ServiceProto::Udp => "udp",
            ServiceProto::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: String,
    port: u16,
    proto: ServiceProto,
    /// Fraction of scanned hosts where the port was found open.
    freq: f64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServicesError {
    #[error("cannot read {path}: {source} (port names and --top-ports need nmap-services; install nmap or give --servicedb FILE)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {why}")]
    Syntax {
        path: String,
        line: usize,
        why: String,
    },
}

/// The table of an nmap-services file.
#[derive(Debug, Clone, Default)]
pub struct ServiceDb {
    entries: Vec<Entry>,
}

impl ServiceDb {
    pub(crate) fn load(path: &Path) -> Result<Self, ServicesError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServicesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, why)| ServicesError::Syntax {
            path: path.display().to_string(),
            line,
            why,
        })
    }

    /// Lines of `name port/proto frequency [# comment]`; `#` lines are comments.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| (i + 1, format!("{why}: '{line}'"));
            let mut f = line.split_whitespace();
            let (Some(name), Some(pp)) = (f.next(), f.next()) else {
                return Err(bad("expected a name and port/protocol"));
            };
            let (port, proto) = pp
                .split_once('/')
                .ok_or_else(|| bad("expected port/protocol"))?;
            let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
            let proto = match proto {
                "tcp" => ServiceProto::Tcp,
                "udp" => ServiceProto::Udp,
                "sctp" => ServiceProto::Sctp,
                _ => continue, // other protocols: not scanned by port
            };
            let freq = match f.next() {
                Some(v) => v.parse().map_err(|_| bad("bad frequency"))?,
                None => 0.0,
            };
            entries.push(Entry {
                name: name.to_string(),
                port,
                proto,
                freq,
            });
        }
        Ok(Self { entries })
    }

    /// Every port of `proto` whose name matches `pattern` (`*` and `?` wildcards), sorted.
    pub(crate) fn ports_named(&self, pattern: &str, proto: ServiceProto) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .entries
            .iter()
            .filter(|e| e.proto == proto && glob(pattern.as_bytes(), e.name.as_bytes()))
            .map(|e| e.port)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The `n` ports of `proto` most often found open, among `within` when given; ties go to the
    /// lower port. Ports the file does not list are never chosen, as in nmap.
    pub(crate) fn top(&self, n: usize, proto: ServiceProto, within: Option<&[u16]>) -> Vec<u16> {
        let mut v: Vec<(f64, u16)> = self
            .entries
            .iter()
            .filter(|e| e.proto == proto)
            .filter(|e| within.is_none_or(|w| w.binary_search(&e.port).is_ok()))
            .map(|e| (e.freq, e.port))
            .collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut ports: Vec<u16> = v.into_iter().map(|(_, p)| p).collect();
        let mut seen = std::collections::HashSet::new();
        ports.retain(|p| seen.insert(*p));
        ports.truncate(n);
        ports.sort_unstable();
        ports
    }

    /// How an unknown name is reported.
    pub(crate) fn unknown(name: &str, proto: ServiceProto) -> String {
        format!("'{name}' is no {} service in nmap-services", proto.as_str())
    }
}

/// Each port's usual service per protocol: the name nmap prints from its table (`method="table"`)
/// when nothing better is known. A port with several names gets its most frequent one.
#[derive(Debug, Default, Clone)]
pub struct PortTable {
    names: std::collections::HashMap<(ServiceProto, u16), String>,
}

impl PortTable {
    pub(crate) fn load(path: &Path) -> Result<Self, ServicesError> {
        Ok(Self::from_db(&ServiceDb::load(path)?))
    }

    pub(crate) fn from_db(db: &ServiceDb) -> Self {
        let mut best: std::collections::HashMap<(ServiceProto, u16), (&str, f64)> =
            Default::default();
        for e in &db.entries {
            let slot = best.entry((e.proto, e.port)).or_insert((&e.name, e.freq));
            if e.freq > slot.1 {
                *slot = (&e.name, e.freq);
            }
        }
        Self {
            names: best
                .into_iter()
                .map(|(k, (n, _))| (k, n.to_string()))
                .collect(),
        }
    }

    pub(crate) fn name(&self, proto: ServiceProto, port: u16) -> Option<&str> {
        self.names.get(&(proto, port)).map(|s| s.as_str())
    }

    #[cfg(test)]
    pub(crate) fn tcp(&self, port: u16) -> Option<&str> {
        self.name(ServiceProto::Tcp, port)
    }
}

/// `*` matches any run of characters, `?` one character.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Fields: service name, portnum/protocol, open-frequency\n\
        ssh\t22/tcp\t0.182286\t# Secure Shell Login\n\
        ssh\t22/udp\t0.003905\n\
        http\t80/tcp\t0.484143\t# World Wide Web HTTP\n\
        https\t443/tcp\t0.208669\t# secure http (SSL)\n\
        https\t443/udp\t0.010880\n\
        http-alt\t8080/tcp\t0.043165\n\
        http-proxy\t8080/udp\t0.000100\n\
        https-alt\t8443/tcp\t0.009567\n\
        domain\t53/tcp\t0.048463\n\
        domain\t53/udp\t0.213496\n\
        unknown\t1/ddp\n";

    #[test]
    fn names_and_wildcards_per_protocol() {
        let db = ServiceDb::parse(SAMPLE).unwrap();
        assert_eq!(db.ports_named("https", ServiceProto::Tcp), [443]);
        assert_eq!(
            db.ports_named("http*", ServiceProto::Tcp),
            [80, 443, 8080, 8443]
        );
        assert_eq!(db.ports_named("http?alt", ServiceProto::Tcp), [8080]);
        assert_eq!(db.ports_named("domain", ServiceProto::Udp), [53]);
        assert_eq!(db.ports_named("HTTP", ServiceProto::Tcp), [80]);
        assert!(db.ports_named("nope", ServiceProto::Tcp).is_empty());
    }

    #[test]
    fn top_ports_by_frequency() {
        let db = ServiceDb::parse(SAMPLE).unwrap();
        assert_eq!(db.top(2, ServiceProto::Tcp, None), [80, 443]);
        assert_eq!(db.top(3, ServiceProto::Tcp, None), [22, 80, 443]);
        assert_eq!(db.top(1, ServiceProto::Udp, None), [53]);
        assert_eq!(
            db.top(2, ServiceProto::Tcp, Some(&[22, 53, 8080])),
            [22, 53]
        );
        assert_eq!(db.top(100, ServiceProto::Tcp, None).len(), 6);
    }

    #[test]
    fn port_table_prefers_the_frequent_name() {
        let db = ServiceDb::parse(
            "ssh\t22/tcp\t0.182286\nssh\t22/udp\t0.003\nhttp\t80/tcp\t0.484143\nwww\t80/tcp\t0.1\nabyss\t9999/tcp\t0.000851\n",
        )
        .unwrap();
        let t = PortTable::from_db(&db);
        assert_eq!(t.tcp(22), Some("ssh"));
        assert_eq!(t.name(ServiceProto::Udp, 22), Some("ssh"));
        assert_eq!(t.tcp(80), Some("http"));
        assert_eq!(t.tcp(9999), Some("abyss"));
        assert_eq!(t.tcp(1), None);
        assert_eq!(t.name(ServiceProto::Udp, 80), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(ServiceDb::parse("ssh 22\n").unwrap_err().0, 1);
        assert_eq!(ServiceDb::parse("# c\nssh x/tcp 0.1\n").unwrap_err().0, 2);
    }
}
