//! `tls`: the handshake's facts and the certificate chain as sent, in ZGrab2's `tls` result
//! (zcrypto's `handshake_log`), and nmap's `ssl-cert`. rustls carries TLS 1.2 and 1.3 (the
//! grabber's session: `engine::tls`); for servers rustls refuses (TLS 1.0 and 1.1, RSA key
//! exchange, CBC suites) a ClientHello of our own gets the ServerHello and the Certificate,
//! which TLS 1.2 and older send in the clear, and the handshake goes no further.

use serde_json::{json, Map, Value};

/// What one TLS session told us, from rustls or from the clear-text flight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFacts {
    /// The negotiated version (0x0303 for TLS 1.2) and cipher suite; 0 when unknown.
    pub version: u16,
    pub suite: u16,
    pub alpn: Option<Vec<u8>>,
    /// The server's certificates as sent, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The handshake completed.
    pub complete: bool,
    /// The alert that ended it, if one did (level, description).
    pub alert: Option<(u8, u8)>,
    /// The bytes the session could not read (rustls refused them: not TLS, or a version or
    /// suite it does not speak), as received.
    pub refused: Vec<u8>,
}

pub(crate) fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSLv3",
        0x0301 => "TLSv1.0",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => "unknown",
    }
}

/// Suites by IANA number and name, in the order our ClientHello offers them (OpenSSL's
/// default order, so a server that follows the client's preference picks what `openssl
/// s_client` would get; RC4 and 3DES last); TLS 1.3's are named for rustls's sessions.
const SUITES: &[(u16, &str)] = &[
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
];

pub(crate) fn suite_name(v: u16) -> &'static str {
    SUITES.iter().find(|s| s.0 == v).map_or("unknown", |s| s.1)
}

/// A ClientHello every TLS 1.0-1.2 server can answer in the clear: versions up to 1.2, every
/// suite above that is not TLS 1.3's (RSA key exchange and CBC included), SNI when named,
/// ALPN `h2` and `http/1.1`. The server's ServerHello and Certificate come back unencrypted,
/// so the chain costs no cryptography of ours; a TLS 1.3-only server refuses it with an alert.
pub(crate) fn client_hello(sni: Option<&str>, seed: u64) -> Vec<u8> {
    let mut rng = seed | 1;
    let mut random = [0u8; 32];
    for b in &mut random {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        *b = rng as u8;
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&random);
    body.push(0); // no session id
    let suites: Vec<u16> = SUITES
        .iter()
        .map(|s| s.0)
        .filter(|s| s >> 8 != 0x13)
        .collect();
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    let mut put_ext = |kind: u16, data: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    };
    if let Some(name) = sni {
        let n = name.as_bytes();
        let mut d = ((n.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(n.len() as u16).to_be_bytes());
        d.extend_from_slice(n);
        put_ext(0, &d);
    }
    put_ext(10, &[0, 6, 0, 23, 0, 24, 0, 25]); // secp256r1, secp384r1, secp521r1
    put_ext(11, &[1, 0]); // uncompressed points
    put_ext(
        13,
        &[0, 12, 4, 1, 5, 1, 2, 1, 4, 3, 5, 3, 2, 3], // rsa and ecdsa with sha256, 384, 1
    );
    put_ext(16, b"\x00\x0c\x02h2\x08http/1.1"); // ALPN
    put_ext(0xff01, &[0]); // renegotiation_info
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

/// Reads the server's clear-text flight (records of a TLS 1.2-or-older handshake) as far as
/// the certificates: its ServerHello's version and suite, the chain, or the alert that ended
/// it. `None` when the bytes are not TLS records.
pub fn read_flight(data: &[u8]) -> Option<TlsFacts> {
    let mut facts = TlsFacts::default();
    let mut handshake = Vec::new();
    let mut rest = data;
    let mut any = false;
    while rest.len() >= 5 {
        let (kind, len) = (rest[0], u16::from_be_bytes([rest[3], rest[4]]) as usize);
        if !(20..=23).contains(&kind) || rest[1] != 3 {
            break;
        }
        let Some(body) = rest.get(5..5 + len) else {
            break;
        };
        any = true;
        match kind {
            22 => handshake.extend_from_slice(body),
            21 if body.len() >= 2 => facts.alert = Some((body[0], body[1])),
            _ => {}
        }
        rest = &rest[5 + len..];
    }
    if !any {
        return None;
    }
    let mut h = handshake.as_slice();
    while h.len() >= 4 {
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let Some(body) = h.get(4..4 + len) else {
            break;
        };
        match h[0] {
            2 if body.len() >= 35 => {
                facts.version = u16::from_be_bytes([body[0], body[1]]);
                let sid = body[34] as usize;
                if let Some(s) = body.get(35 + sid..37 + sid) {
                    facts.suite = u16::from_be_bytes([s[0], s[1]]);
                }
                facts.alpn = body.get(38 + sid..).and_then(alpn_of);
            }
            11 if body.len() >= 3 => {
                let mut certs = &body[3..];
                while certs.len() >= 3 {
                    let n = u32::from_be_bytes([0, certs[0], certs[1], certs[2]]) as usize;
                    let Some(c) = certs.get(3..3 + n) else {
                        break;
                    };
                    facts.chain.push(c.to_vec());
                    certs = &certs[3 + n..];
                }
            }
            _ => {}
        }
        h = &h[4 + len..];
    }
    Some(facts)
}

/// The protocol an ALPN extension in a ServerHello's extensions (length first) names.
fn alpn_of(ext: &[u8]) -> Option<Vec<u8>> {
    let mut e = ext.get(2..)?;
    while e.len() >= 4 {
        let (kind, len) = (
            u16::from_be_bytes([e[0], e[1]]),
            u16::from_be_bytes([e[2], e[3]]) as usize,
        );
        let data = e.get(4..4 + len)?;
        if kind == 16 {
            // list length (2), then one protocol: length (1) and name
            let n = *data.get(2)? as usize;
            return data.get(3..3 + n).map(<[u8]>::to_vec);
        }
        e = &e[4 + len..];
    }
    None
}

/// ZGrab2's `tls` result (`handshake_log`) and its status.
pub fn zgrab(f: &TlsFacts) -> (&'static str, Value, Option<String>) {
    let mut log = Map::new();
    if f.version != 0 {
        let mut hello = Map::new();
        hello.insert(
            "version".into(),
            json!({"name": version_name(f.version), "value": f.version}),
        );
        hello.insert(
            "cipher_suite".into(),
            json!({"hex": format!("0x{:04X}", f.suite), "name": suite_name(f.suite), "value": f.suite}),
        );
        hello.insert("compression_method".into(), json!(0));
        if let Some(p) = &f.alpn {
            hello.insert("alpn_protocol".into(), json!(String::from_utf8_lossy(p)));
        }
        log.insert("server_hello".into(), Value::Object(hello));
    }
    if let Some((leaf, rest)) = f.chain.split_first() {
        let chain: Vec<Value> = rest.iter().map(|c| super::x509::zgrab_cert(c)).collect();
        let mut certs = Map::new();
        certs.insert("certificate".into(), super::x509::zgrab_cert(leaf));
        if !chain.is_empty() {
            certs.insert("chain".into(), json!(chain));
        }
        log.insert("server_certificates".into(), Value::Object(certs));
    }
    let (status, error) = if !f.chain.is_empty() {
        ("success", None)
    } else if let Some((_, d)) = f.alert {
        (
            "handshake-error",
            Some(format!("the server sent alert {d}")),
        )
    } else if f.version != 0 {
        (
            "io-timeout",
            Some("no certificate before the timeout".to_string()),
        )
    } else {
        ("protocol-error", Some("no TLS handshake".to_string()))
    };
    (status, json!({ "handshake_log": log }), error)
}

/// Whether bytes a server sent are TLS records (a TLS server refusing our hello).
pub(crate) fn looks_like_tls(data: &[u8]) -> bool {
    data.len() >= 3 && (20..=23).contains(&data[0]) && data[1] == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_hello_is_one_record_with_the_legacy_suites() {
        let h = client_hello(Some("lab.example"), 3);
        assert_eq!(&h[..3], &[22, 3, 1]);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 1, "ClientHello");
        let suites = &h[5 + 4 + 2 + 32 + 1..];
        let n = u16::from_be_bytes([suites[0], suites[1]]) as usize / 2;
        let list: Vec<u16> = (0..n)
            .map(|i| u16::from_be_bytes([suites[2 + 2 * i], suites[3 + 2 * i]]))
            .collect();
        assert!(list.contains(&0x002f) && list.contains(&0x000a));
        assert!(!list.iter().any(|s| s >> 8 == 0x13), "no TLS 1.3 suites");
        assert!(h.windows(11).any(|w| w == b"lab.example"));
        assert!(h.windows(8).any(|w| w == b"http/1.1"), "ALPN");
    }

    #[test]
    fn a_flight_split_across_records_gives_the_chain() {
        // ServerHello (TLS 1.0, AES128-SHA) and a Certificate of two, split over two records.
        let mut hello = vec![3, 1];
        hello.extend_from_slice(&[7; 32]);
        hello.extend_from_slice(&[0, 0x00, 0x2f, 0]);
        // Extensions: ALPN http/1.1.
        hello.extend_from_slice(&[0, 15, 0, 16, 0, 11, 0, 9, 8]);
        hello.extend_from_slice(b"http/1.1");
        let mut hs = vec![2, 0, 0, hello.len() as u8];
        hs.extend(hello);
        let certs = [vec![0x30, 1, 2], vec![0x30, 9]];
        let mut list = Vec::new();
        for c in &certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend(list);
        hs.extend_from_slice(&[11]);
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let (a, b) = hs.split_at(20);
        let mut wire = Vec::new();
        for part in [a, b] {
            wire.extend_from_slice(&[22, 3, 1]);
            wire.extend_from_slice(&(part.len() as u16).to_be_bytes());
            wire.extend_from_slice(part);
        }
        let f = read_flight(&wire).unwrap();
        assert_eq!((f.version, f.suite), (0x0301, 0x002f));
        assert_eq!(f.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(f.chain, certs);
        let (status, v, _) = zgrab(&f);
        assert_eq!(status, "success");
        assert_eq!(
            v["handshake_log"]["server_hello"]["cipher_suite"]["name"],
            "TLS_RSA_WITH_AES_128_CBC_SHA"
        );
        assert_eq!(
            v["handshake_log"]["server_hello"]["version"]["name"],
            "TLSv1.0"
        );
        assert_eq!(read_flight(b"HTTP/1.1 400 Bad Request\r\n"), None);
        let alert = read_flight(&[21, 3, 1, 0, 2, 2, 40]).unwrap();
        assert_eq!(alert.alert, Some((2, 40)));
        assert_eq!(zgrab(&alert).0, "handshake-error");
    }
}
