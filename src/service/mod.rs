//! Naming what answers on an open port (`--banners`, `-sV`): which probe to send to a silent
//! port, and what a banner says, from nmap's databases (`nmap-service-probes` for probes and
//! patterns, `nmap-services` for the port-table guess nmap prints when nothing matches).
//! The handshake that collects banners lives in `engine::grab`; this part is pure.

pub mod detect;
pub mod probes;

use serde::{Deserialize, Serialize};

pub(crate) use crate::targets::services::PortTable;
pub use probes::{ProbesError, ServiceProbes};

/// How a service was named, as nmap's XML says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    /// A pattern matched what the port sent.
    Probed,
    /// Only the port number's usual service (nothing matched).
    Table,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Probed => "probed",
            Method::Table => "table",
        }
    }
}

/// nmap's version fields (`p/ v/ i/ h/ o/ d/`): templates in a match line, values in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) extrainfo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ostype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) devicetype: Option<String>,
}

impl Details {
    /// Each field under nmap's XML attribute name.
    pub(crate) fn fields(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("product", &self.product),
            ("version", &self.version),
            ("extrainfo", &self.extrainfo),
            ("hostname", &self.hostname),
            ("ostype", &self.ostype),
            ("devicetype", &self.devicetype),
        ]
    }

    /// The slot for a match line's field letter.
    pub(crate) fn slot(&mut self, letter: char) -> Option<&mut Option<String>> {
        Some(match letter {
            'p' => &mut self.product,
            'v' => &mut self.version,
            'i' => &mut self.extrainfo,
            'h' => &mut self.hostname,
            'o' => &mut self.ostype,
            'd' => &mut self.devicetype,
            _ => return None,
        })
    }

    /// Every present field through `f` (templates filled in); empty results are dropped.
    pub(crate) fn map(&self, f: impl Fn(&str) -> String) -> Details {
        let g = |v: &Option<String>| v.as_deref().map(&f).filter(|s| !s.is_empty());
        Details {
            product: g(&self.product),
            version: g(&self.version),
            extrainfo: g(&self.extrainfo),
            hostname: g(&self.hostname),
            ostype: g(&self.ostype),
            devicetype: g(&self.devicetype),
        }
    }
}

/// What answers on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub(crate) name: String,
    /// `ssl` when the match says the service runs inside TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tunnel: Option<String>,
    #[serde(flatten)]
    pub(crate) details: Details,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) cpe: Vec<String>,
    pub(crate) method: Method,
    /// Named by a soft match (service only, no version).
    #[serde(skip)]
    pub(crate) soft: bool,
}

impl Service {
    /// nmap's confidence: 10 for a pattern, 8 for `tcpwrapped`, 3 for the port table.
    pub(crate) fn conf(&self) -> u8 {
        match self.method {
            Method::Probed if self.name == "tcpwrapped" => 8,
            Method::Probed => 10,
            Method::Table => 3,
        }
    }

    /// The version column of nmap's normal and grepable output: `OpenSSH 9.2p1 (protocol 2.0)`.
    pub(crate) fn version_line(&self) -> String {
        let d = &self.details;
        let mut parts: Vec<String> = [&d.product, &d.version]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(i) = &d.extrainfo {
            parts.push(format!("({i})"));
        }
        parts.join(" ")
    }

    /// A guess from the port table alone.
    pub(crate) fn from_table(name: &str) -> Self {
        Service {
            name: name.to_string(),
            tunnel: None,
            details: Details::default(),
            cpe: Vec::new(),
            method: Method::Table,
            soft: false,
        }
    }
}

/// What a banner grab collected from one open port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grab {
    /// Everything the port sent, up to the byte limit.
    pub(crate) banner: Vec<u8>,
    /// The probe sent after the greeting wait (`None`: the port spoke first, or nothing was sent).
    pub(crate) probe: Option<String>,
    /// Named from the banner (`-sV`), or from the port table.
    pub(crate) service: Option<Service>,
    /// The application layer's results (`--grab`), one per module.
    pub(crate) app: Vec<crate::app::AppResult>,
}

/// What `-sV` names services with: the probe database (run by `detect` on the version worker),
/// the port table when nothing matches (as nmap prints `abyss?` for a silent port 9999), and
/// the intensity.
#[derive(Debug)]
pub(crate) struct Namer {
    pub(crate) probes: std::sync::Arc<ServiceProbes>,
    pub(crate) table: std::sync::Arc<PortTable>,
    /// `--version-intensity`: the rarest probe sent to a port no probe lists (0-9).
    pub(crate) intensity: u8,
}

/// A banner as text: printable ASCII kept, `\r \n \t \\` and `\xHH` for everything else, so
/// it fits on one line of any output format.
pub(crate) fn escape_banner(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// The bytes `escape_banner` wrote; `None` when `s` is not its output.
pub(crate) fn unescape_banner(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'\\' => out.push(b'\\'),
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// Probes used when no nmap-service-probes is at hand (`--banners` without nmap installed):
/// HTTP for web ports, a TLS ClientHello for TLS ports, and HTTP for the rest.
pub(crate) fn builtin_probe(port: u16) -> (&'static str, &'static [u8]) {
    const TLS_PORTS: [u16; 10] = [443, 465, 636, 853, 993, 995, 5061, 8443, 9443, 10443];
    if TLS_PORTS.contains(&port) {
        ("TLSSessionReq", TLS_CLIENT_HELLO)
    } else {
        ("GetRequest", b"GET / HTTP/1.0\r\n\r\n")
    }
}

/// A TLS 1.2 ClientHello (RSA and ECDHE suites, SNI-less), enough for any TLS server to answer
/// with its ServerHello and certificate.
const TLS_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x43, // record: handshake, TLS 1.0 framing, 67 bytes
    0x01, 0x00, 0x00, 0x3f, // ClientHello, 63 bytes
    0x03, 0x03, // TLS 1.2
    0x78, 0x64, 0x70, 0x73, 0x63, 0x61, 0x6e, 0x2d, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x2d, 0x72,
    0x61, 0x6e, 0x64, 0x6f, 0x6d, 0x2d, 0x33, 0x32, 0x2d, 0x62, 0x79, 0x74, 0x65, 0x73, 0x2e,
    0x2e, // random: "xdpscan-client-random-32-bytes.."
    0x00, // no session id
    0x00, 0x0e, // 7 cipher suites
    0xc0, 0x2f, 0xc0, 0x2b, 0xc0, 0x30, 0xc0, 0x2c, 0x00, 0x9c, 0x00, 0x2f, 0x00, 0x35, 0x01,
    0x00, // null compression
    0x00, 0x08, // extensions: supported groups, x25519 only
    0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_escaping_and_version_line() {
        assert_eq!(
            escape_banner(b"SSH-2.0-x\r\n\x00\xff\\"),
            "SSH-2.0-x\\r\\n\\x00\\xff\\\\"
        );
        let mut s = Service::from_table("ssh");
        assert_eq!(s.version_line(), "");
        s.details.product = Some("OpenSSH".into());
        s.details.version = Some("9.2p1".into());
        s.details.extrainfo = Some("protocol 2.0".into());
        assert_eq!(s.version_line(), "OpenSSH 9.2p1 (protocol 2.0)");
        assert_eq!(s.conf(), 3);
    }

    #[test]
    fn builtin_client_hello_is_well_formed() {
        let (_, h) = builtin_probe(443);
        assert_eq!(h.len(), 5 + 0x43);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(
            u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize,
            h.len() - 9
        );
        assert_eq!(builtin_probe(80).0, "GetRequest");
    }
}
