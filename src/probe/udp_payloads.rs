//! Payloads for UDP probes: a service only answers a datagram it understands. Built-in messages
//! for the common services, and nmap's `nmap-payloads` format for `--udp-payloads FILE`.
//!
//! Every payload listed for a port is sent (as nmap does); a port with none gets an empty datagram.

use std::{collections::HashMap, path::Path, sync::Arc};

use super::udp_echo::Echo;

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("cannot read UDP payloads from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {why}")]
    Syntax {
        path: String,
        line: usize,
        why: String,
    },
}

/// One payload, and where it carries cookie bits (`udp_echo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) echo: Echo,
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Debug, Clone, Default)]
pub struct Payloads {
    by_port: HashMap<u16, Vec<Payload>>,
}

impl Payloads {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn for_port(&self, port: u16) -> &[Payload] {
        self.by_port.get(&port).map(Vec::as_slice).unwrap_or(&[])
    }

    #[cfg(test)]
    pub(crate) fn ports(&self) -> usize {
        self.by_port.len()
    }

    fn add(&mut self, ports: &[u16], payload: &[u8]) {
        self.add_echo(ports, payload, Echo::None);
    }

    fn add_echo(&mut self, ports: &[u16], payload: &[u8], echo: Echo) {
        let p = Payload {
            bytes: Arc::from(payload),
            echo,
        };
        for &port in ports {
            let v = self.by_port.entry(port).or_default();
            if v.len() < 255 && !v.iter().any(|x| *x.bytes == *payload) {
                v.push(p.clone());
            }
        }
    }

    /// Reads an `nmap-payloads` file.
    pub(crate) fn load(path: &Path) -> Result<Self, PayloadError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| PayloadError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&String::from_utf8_lossy(&text), &name)
    }

    /// Parses the `nmap-payloads` format: `udp PORTS "data" ["data"...]`, entries may span lines,
    /// `#` comments, unknown keywords after the data (such as `source`) ignore the rest of
    /// their line.
    pub fn parse(text: &str, path: &str) -> Result<Self, PayloadError> {
        let mut out = Payloads::default();
        let mut current: Option<(Vec<u16>, Vec<u8>, bool)> = None; // ports, data, saw a string
        let err = |line: usize, why: String| PayloadError::Syntax {
            path: path.to_string(),
            line,
            why,
        };
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let mut rest = raw.trim_start();
            while !rest.is_empty() {
                if rest.starts_with('#') {
                    break;
                }
                if let Some(after) = rest.strip_prefix('"') {
                    let (bytes, used) = unquote(after).map_err(|why| err(line_no, why))?;
                    match current.as_mut() {
                        Some((_, data, saw)) => {
                            data.extend_from_slice(&bytes);
                            *saw = true;
                        }
                        None => {
                            return Err(err(line_no, "payload data before any 'udp PORTS'".into()))
                        }
                    }
                    rest = after[used..].trim_start();
                    continue;
                }
                let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..word_end];
                if word == "udp" || word == "tcp" || word == "sctp" {
                    if let Some((ports, data, saw)) = current.take() {
                        if saw {
                            out.add(&ports, &data);
                        }
                    }
                    let after = rest[word_end..].trim_start();
                    let pe = after.find(char::is_whitespace).unwrap_or(after.len());
                    let ports = parse_ports(&after[..pe]).map_err(|why| err(line_no, why))?;
                    // Only UDP payloads apply here; other protocols' entries are skipped whole.
                    current = Some((
                        if word == "udp" { ports } else { Vec::new() },
                        Vec::new(),
                        false,
                    ));
                    rest = after[pe..].trim_start();
                    continue;
                }
                // Another keyword (e.g. `source 500`): ends this entry's data, ignore the line.
                if let Some((ports, data, saw)) = current.take() {
                    if saw {
                        out.add(&ports, &data);
                    }
                }
                break;
            }
        }
        if let Some((ports, data, saw)) = current.take() {
            if saw {
                out.add(&ports, &data);
            }
        }
        Ok(out)
    }

    /// The built-in payloads: a request each of these services answers.
    pub fn builtin() -> Self {
        let mut p = Payloads::default();
        let dns = |name: &[u8]| Echo::Dns {
            name_len: name.len(),
        };
        let version_bind = b"\x07version\x04bind\x00";
        p.add_echo(&[53], &dns_query(version_bind, 16, 3), dns(version_bind)); // TXT CH
        let services = b"\x09_services\x07_dns-sd\x04_udp\x05local\x00";
        p.add_echo(&[5353], &dns_query(services, 12, 1), dns(services)); // PTR IN
        p.add_echo(&[123], &ntp_request(), Echo::Ntp);
        p.add_echo(&[161], &snmp_get_sysdescr(0), Echo::Snmp { at: SNMP_ID_AT }); // v1
        p.add_echo(&[161], &snmp_get_sysdescr(1), Echo::Snmp { at: SNMP_ID_AT }); // v2c
        p.add_echo(&[137], &netbios_node_status(), Echo::Head { len: 2 });
        p.add(&[1900], b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n");
        p.add_echo(
            &[11211],
            b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n",
            Echo::Head { len: 2 },
        );
        p.add_echo(
            &[443, 853, 4433, 4740, 5349, 5684, 8443],
            &dtls_client_hello(),
            Echo::Dtls,
        );
        p.add_echo(&[443, 4433, 8443], &quic_version_probe(), Echo::QuicDcid);
        let sip = sip_options();
        let at = sip
            .windows(8)
            .position(|w| w == b"00000000")
            .expect("the Call-ID placeholder");
        p.add_echo(&[5060], &sip, Echo::SipCallId { at });
        p.add_echo(&[111], &portmap_null_call(), Echo::Head { len: 4 });
        p
    }

    /// Adds (or replaces) the payloads of `other` port by port.
    pub(crate) fn merged_with(mut self, other: Payloads) -> Self {
        for (port, v) in other.by_port {
            self.by_port.insert(port, v);
        }
        self
    }
}

fn parse_ports(s: &str) -> Result<Vec<u16>, String> {
    let list = crate::targets::PortList::parse(s).map_err(|e| e.to_string())?;
    Ok(list.as_slice().to_vec())
}

/// Decodes a C-style quoted string body (after the opening quote); returns the bytes and how
/// many characters of `s` were used, closing quote included.
fn unquote(s: &str) -> Result<(Vec<u8>, usize), String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'x' | b'X' => {
                        let hex = s.get(i + 1..i + 3).ok_or("truncated \\x escape")?;
                        out.push(
                            u8::from_str_radix(hex, 16)
                                .map_err(|_| format!("bad escape \\x{hex}"))?,
                        );
                        i += 2;
                    }
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'v' => out.push(11),
                    c => out.push(c),
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

fn dns_query(qname: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut v = vec![0x78, 0x73, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]; // id, RD, one question
    v.extend_from_slice(qname);
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&qclass.to_be_bytes());
    v
}

/// NTPv3 client request (mode 3), all timestamps zero.
fn ntp_request() -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v[0] = 0x1b;
    v
}

/// Where the SNMP request-id's four value bytes start (after SEQUENCE, version, "public", PDU
/// and INTEGER headers).
const SNMP_ID_AT: usize = 17;

/// SNMP GetRequest for sysDescr.0 with community "public"; `version` 0 = v1, 1 = v2c. The
/// request-id is four bytes long, for the cookie.
fn snmp_get_sysdescr(version: u8) -> Vec<u8> {
    let varbind = [
        0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
    ];
    let mut pdu = vec![
        0x02,
        0x04,
        0x40,
        0x00,
        0x00,
        0x01,
        0x02,
        0x01,
        0x00,
        0x02,
        0x01,
        0x00,
        0x30,
        varbind.len() as u8,
    ];
    pdu.extend_from_slice(&varbind);
    let mut msg = vec![0x02, 0x01, version, 0x04, 0x06];
    msg.extend_from_slice(b"public");
    msg.push(0xa0);
    msg.push(pdu.len() as u8);
    msg.extend_from_slice(&pdu);
    let mut v = vec![0x30, msg.len() as u8];
    v.extend_from_slice(&msg);
    v
}

/// NetBIOS name service node-status request for the wildcard name "*".
fn netbios_node_status() -> Vec<u8> {
    let mut v = vec![0x78, 0x73, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x20];
    let mut name = [0u8; 16];
    name[0] = b'*';
    for b in name {
        v.push(b'A' + (b >> 4));
        v.push(b'A' + (b & 0x0f));
    }
    v.extend_from_slice(&[0x00, 0x00, 0x21, 0x00, 0x01]); // end of name, NBSTAT, IN
    v
}

/// A DTLS 1.2 ClientHello offering common AEAD suites, no extensions.
fn dtls_client_hello() -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    body.push(0); // session id
    body.push(0); // cookie
    let suites = [0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9c, 0x00, 0x2f];
    body.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]); // null compression
    let len = body.len() as u32;
    let mut hs = vec![1]; // client_hello
    hs.extend_from_slice(&len.to_be_bytes()[1..]);
    hs.extend_from_slice(&[0, 0]); // message_seq
    hs.extend_from_slice(&[0, 0, 0]); // fragment_offset
    hs.extend_from_slice(&len.to_be_bytes()[1..]); // fragment_length
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]; // handshake, DTLS 1.0 record, epoch, seq
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A QUIC long-header packet with a reserved version (RFC 9000 15: 0x?a?a?a?a), padded to the
/// 1200 bytes servers require, to which a QUIC server answers with Version Negotiation.
fn quic_version_probe() -> Vec<u8> {
    let mut v = vec![
        0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 0x78, 0x64, 0x70, 0x73, 0x63, 0x61, 0x6e, 0x21, 0,
    ];
    v.resize(1200, 0);
    v
}

fn sip_options() -> Vec<u8> {
    b"OPTIONS sip:probe@xdpscan.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP xdpscan.invalid:5060;branch=z9hG4bK-xdpscan;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:probe@xdpscan.invalid>\r\n\
From: <sip:xdpscan@xdpscan.invalid>;tag=xdpscan\r\n\
Call-ID: xdpscan-00000000\r\n\
CSeq: 1 OPTIONS\r\n\
Contact: <sip:xdpscan@xdpscan.invalid>\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\r\n"
        .to_vec()
}

/// ONC RPC call to portmapper (100000 v2) procedure NULL with AUTH_NULL.
fn portmap_null_call() -> Vec<u8> {
    let words: [u32; 10] = [0x7864_7073, 0, 2, 100_000, 2, 0, 0, 0, 0, 0];
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_covers_the_common_services() {
        let p = Payloads::builtin();
        for port in [53, 123, 161, 137, 1900, 5353, 11211, 443, 5060, 111] {
            assert!(!p.for_port(port).is_empty(), "port {port}");
        }
        assert_eq!(p.for_port(161).len(), 2, "SNMP v1 and v2c");
        assert_eq!(p.for_port(443).len(), 2, "DTLS and QUIC");
        assert!(p.for_port(9).is_empty());
        assert_eq!(p.for_port(123)[0].len(), 48);
        assert_eq!(p.for_port(111)[0].len(), 40);
        assert_eq!(p.for_port(443)[1].len(), 1200);
        // BER lengths of the SNMP message are self-consistent.
        let s = &p.for_port(161)[0];
        assert_eq!(s[1] as usize, s.len() - 2);
        // NetBIOS: 12-byte header, 34-byte name, type and class.
        assert_eq!(p.for_port(137)[0].len(), 12 + 34 + 4);
    }

    #[test]
    fn parses_nmap_format() {
        let text = r#"
# comment
udp 7 "\x0D\x0A\x0D\x0A"
udp 53,69 "\x00\x00\x10" # trailing comment
udp 53
  "\x77\x77"
  "ab\"c\\"
source 500
udp 100-101 "x" unknownkeyword with "junk"
tcp 80 "GET"
"#;
        let p = Payloads::parse(text, "t").unwrap();
        assert_eq!(&*p.for_port(7)[0], b"\r\n\r\n");
        assert_eq!(p.for_port(53).len(), 2);
        assert_eq!(&*p.for_port(53)[1], b"\x77\x77ab\"c\\");
        assert_eq!(&*p.for_port(69)[0], b"\x00\x00\x10");
        assert_eq!(&*p.for_port(101)[0], b"x");
        assert!(
            p.for_port(80).is_empty(),
            "tcp entries are not UDP payloads"
        );
        assert!(Payloads::parse("udp 7 \"abc", "t").is_err());
        assert!(Payloads::parse("\"orphan\"", "t").is_err());
        assert!(Payloads::parse("udp 99999 \"x\"", "t").is_err());
    }

    #[test]
    fn reads_debians_nmap_payloads_when_installed() {
        let path = Path::new("/usr/share/nmap/nmap-payloads");
        if path.exists() {
            let p = Payloads::load(path).unwrap();
            assert!(p.ports() > 50, "{} ports", p.ports());
            assert!(p.for_port(53).len() >= 2);
        }
    }
}
