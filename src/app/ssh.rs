//! `ssh`: the identification string, the server's KEXINIT and its host key, the key exchange
//! carried just far enough for the key (ZGrab2's `ssh` module; nmap's `ssh-hostkey`). We send
//! our identification, a KEXINIT that offers only curve25519 and, at once, the
//! KEX_ECDH_INIT (any 32 bytes are a curve25519 public key, so no key of ours is made); the
//! server's KEX_ECDH_REPLY carries the host key. Nothing is authenticated or verified.

use serde_json::{json, Map, Value};

use super::{b64, hex, x509::md5, x509::sha256};

pub(crate) const CLIENT_ID: &str = "SSH-2.0-xdpscan";

const KEX: &[&str] = &["curve25519-sha256", "curve25519-sha256@libssh.org"];
const HOST_KEYS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];
const CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
];
const MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];
const COMPRESSION: &[&str] = &["none"];

const MSG_DISCONNECT: u8 = 1;
const MSG_KEXINIT: u8 = 20;
const MSG_KEX_ECDH_INIT: u8 = 30;
const MSG_KEX_ECDH_REPLY: u8 = 31;

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// One binary packet, unencrypted, padded to a multiple of 8 (RFC 4253, 6).
fn packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (payload.len() + 5) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut out = Vec::with_capacity(payload.len() + 5 + pad);
    out.extend_from_slice(&((payload.len() + 1 + pad) as u32).to_be_bytes());
    out.push(pad as u8);
    out.extend_from_slice(payload);
    out.resize(out.len() + pad, 0);
    out
}

/// What we send once connected: identification, KEXINIT, KEX_ECDH_INIT. `seed` fills the
/// cookie and the curve25519 value (random, never used again).
pub(crate) fn client_flight(seed: u64) -> Vec<u8> {
    let mut rng = seed | 1;
    let mut bytes = |n: usize| {
        (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect::<Vec<u8>>()
    };
    let mut kexinit = vec![MSG_KEXINIT];
    kexinit.extend_from_slice(&bytes(16));
    for list in [
        KEX,
        HOST_KEYS,
        CIPHERS,
        CIPHERS,
        MACS,
        MACS,
        COMPRESSION,
        COMPRESSION,
        &[],
        &[],
    ] {
        put_string(&mut kexinit, list.join(",").as_bytes());
    }
    kexinit.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mut init = vec![MSG_KEX_ECDH_INIT];
    put_string(&mut init, &bytes(32));
    let mut out = format!("{CLIENT_ID}\r\n").into_bytes();
    out.extend(packet(&kexinit));
    out.extend(packet(&init));
    out
}

/// A reader over SSH's wire types.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn list(&mut self) -> Option<Vec<String>> {
        let s = std::str::from_utf8(self.string()?).ok()?;
        Some(if s.is_empty() {
            Vec::new()
        } else {
            s.split(',').map(str::to_string).collect()
        })
    }
}

/// The server's KEXINIT, its ten name-lists in order.
#[derive(Debug, Clone, PartialEq)]
pub struct KexInit {
    pub(crate) cookie: Vec<u8>,
    pub(crate) lists: [Vec<String>; 10],
    pub(crate) first_kex_follows: bool,
    pub(crate) reserved: u32,
}

const LIST_NAMES: [&str; 10] = [
    "kex_algorithms",
    "host_key_algorithms",
    "client_to_server_ciphers",
    "server_to_client_ciphers",
    "client_to_server_macs",
    "server_to_client_macs",
    "client_to_server_compression",
    "server_to_client_compression",
    "client_to_server_languages",
    "server_to_client_languages",
];

fn kexinit(mut r: Reader) -> Option<KexInit> {
    let cookie = r.take(16)?.to_vec();
    let mut lists: [Vec<String>; 10] = Default::default();
    for l in &mut lists {
        *l = r.list()?;
    }
    Some(KexInit {
        cookie,
        lists,
        first_kex_follows: r.u8()? != 0,
        reserved: r.u32()?,
    })
}

/// A host key blob's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct HostKey {
    pub(crate) algorithm: String,
    pub(crate) blob: Vec<u8>,
    pub(crate) bits: u32,
}

impl HostKey {
    pub(crate) fn parse(blob: &[u8]) -> Option<HostKey> {
        let mut r = Reader(blob);
        let algorithm = String::from_utf8(r.string()?.to_vec()).ok()?;
        let bits = match algorithm.as_str() {
            "ssh-ed25519" => 256,
            "ssh-rsa" => {
                r.string()?;
                let n = r.string()?;
                let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
                (n.len() as u32 * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros()))
            }
            a if a.starts_with("ecdsa-sha2-nistp") => a[16..].parse().ok()?,
            _ => 0,
        };
        Some(HostKey {
            algorithm,
            blob: blob.to_vec(),
            bits,
        })
    }

    /// The key's type as its blob names it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub(crate) fn algorithm_name(&self) -> &str {
        &self.algorithm
    }

    /// `SHA256:...` as `ssh-keygen -l` prints it (base64 without padding).
    pub(crate) fn sha256_fingerprint(&self) -> String {
        format!("SHA256:{}", b64(&sha256(&self.blob)).trim_end_matches('='))
    }

    /// nmap's name for the key type (`ssh-hostkey`'s output).
    pub(crate) fn nmap_name(&self) -> &'static str {
        match self.algorithm.as_str() {
            "ssh-ed25519" => "ED25519",
            "ssh-rsa" => "RSA",
            "ssh-dss" => "DSA",
            a if a.starts_with("ecdsa-") => "ECDSA",
            _ => "unknown",
        }
    }

    /// `256 998488...4a (ED25519)`, nmap's `ssh-hostkey` line (the MD5 of the blob).
    pub(crate) fn nmap_line(&self) -> String {
        format!("{} {} ({})", self.bits, self.md5_hex(), self.nmap_name())
    }

    pub(crate) fn md5_hex(&self) -> String {
        hex(&md5(&self.blob))
    }

    /// ZGrab2's `server_host_key`.
    fn zgrab(&self) -> Value {
        let mut m = Map::new();
        m.insert("raw".into(), json!(b64(&self.blob)));
        m.insert("algorithm".into(), json!(self.algorithm));
        m.insert("fingerprint_sha256".into(), json!(hex(&sha256(&self.blob))));
        let mut r = Reader(&self.blob);
        let _ = r.string();
        match self.algorithm.as_str() {
            "ssh-ed25519" => {
                if let Some(k) = r.string() {
                    m.insert("ed25519_public_key".into(), json!({"public_bytes": b64(k)}));
                }
            }
            "ssh-rsa" => {
                if let (Some(e), Some(n)) = (r.string(), r.string()) {
                    let e = e.iter().fold(0u64, |a, b| a << 8 | *b as u64);
                    let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
                    m.insert(
                        "rsa_public_key".into(),
                        json!({"exponent": e, "modulus": b64(&n), "length": self.bits}),
                    );
                }
            }
            a if a.starts_with("ecdsa-") => {
                if let (Some(_), Some(q)) = (r.string(), r.string()) {
                    let half = q.len().saturating_sub(1) / 2;
                    let curve = format!("P-{}", self.bits);
                    m.insert(
                        "ecdsa_public_key".into(),
                        json!({
                            "curve": curve,
                            "length": self.bits,
                            "x": b64(q.get(1..1 + half).unwrap_or_default()),
                            "y": b64(q.get(1 + half..).unwrap_or_default()),
                        }),
                    );
                }
            }
            _ => {}
        }
        Value::Object(m)
    }
}

/// What the server said, read from the bytes it sent.
#[derive(Debug, Default)]
pub struct ServerSide {
    /// The identification line, without CR LF.
    pub(crate) id: Option<String>,
    /// Lines before it (RFC 4253 allows them).
    pub(crate) banner: Vec<String>,
    pub(crate) kexinit: Option<KexInit>,
    pub(crate) host_key: Option<HostKey>,
    pub(crate) server_public: Option<Vec<u8>>,
    pub(crate) signature: Option<Vec<u8>>,
    pub(crate) disconnect: Option<String>,
}

/// Reads the identification and the unencrypted packets that follow it.
pub fn read_server(data: &[u8]) -> ServerSide {
    let mut s = ServerSide::default();
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(&rest[..nl])
            .trim_end_matches('\r')
            .to_string();
        rest = &rest[nl + 1..];
        if line.starts_with("SSH-") {
            s.id = Some(line);
            break;
        }
        s.banner.push(line);
    }
    if s.id.is_none() {
        return s;
    }
    let mut r = Reader(rest);
    while let Some(len) = r.u32() {
        let Some(body) = r.take(len as usize) else {
            break;
        };
        let mut p = Reader(body);
        let Some(pad) = p.u8() else { break };
        let payload = &p.0[..p.0.len().saturating_sub(pad as usize)];
        let mut m = Reader(payload);
        match m.u8() {
            Some(MSG_KEXINIT) => s.kexinit = kexinit(m),
            Some(MSG_KEX_ECDH_REPLY) => {
                s.host_key = m.string().and_then(HostKey::parse);
                s.server_public = m.string().map(<[u8]>::to_vec);
                s.signature = m.string().map(<[u8]>::to_vec);
            }
            Some(MSG_DISCONNECT) => {
                let _ = m.u32();
                s.disconnect = m.string().map(|d| String::from_utf8_lossy(d).into_owned());
            }
            _ => {}
        }
    }
    s
}

/// `SSH-2.0-OpenSSH_9.2p1 Debian-2`: version, software, comment (ZGrab2's `server_id`).
fn endpoint_id(raw: &str) -> Value {
    let body = raw.strip_prefix("SSH-").unwrap_or(raw);
    let (version, rest) = body.split_once('-').unwrap_or((body, ""));
    let (software, comment) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut m = Map::new();
    m.insert("raw".into(), json!(raw));
    m.insert("version".into(), json!(version));
    m.insert("software".into(), json!(software));
    if !comment.is_empty() {
        m.insert("comment".into(), json!(comment));
    }
    Value::Object(m)
}

/// The first of ours the server also lists (RFC 4253, 7.1).
fn choose(ours: &[&str], theirs: &[String]) -> Option<String> {
    ours.iter()
        .find(|o| theirs.iter().any(|t| t == *o))
        .map(|s| s.to_string())
}

/// The ZGrab2 `ssh` result and its status.
pub fn zgrab(s: &ServerSide) -> (&'static str, Value, Option<String>) {
    let mut result = Map::new();
    if !s.banner.is_empty() {
        result.insert("banner".into(), json!(s.banner.join("\n")));
    }
    let Some(id) = &s.id else {
        return (
            "protocol-error",
            Value::Object(result),
            Some("no SSH identification".into()),
        );
    };
    result.insert("server_id".into(), endpoint_id(id));
    result.insert("client_id".into(), endpoint_id(CLIENT_ID));
    if let Some(k) = &s.kexinit {
        let mut m = Map::new();
        m.insert("cookie".into(), json!(b64(&k.cookie)));
        for (name, list) in LIST_NAMES.iter().zip(&k.lists) {
            if !list.is_empty() || !name.ends_with("languages") {
                m.insert((*name).into(), json!(list));
            }
        }
        m.insert("first_kex_follows".into(), json!(k.first_kex_follows));
        m.insert("reserved".into(), json!(k.reserved));
        result.insert("server_key_exchange".into(), Value::Object(m));
        let group = |c: usize, mac: usize, z: usize| {
            json!({
                "cipher": choose(CIPHERS, &k.lists[c]),
                "mac": choose(MACS, &k.lists[mac]),
                "compression": choose(COMPRESSION, &k.lists[z]),
            })
        };
        result.insert(
            "algorithm_selection".into(),
            json!({
                "dh_kex_algorithm": choose(KEX, &k.lists[0]),
                "host_key_algorithm": choose(HOST_KEYS, &k.lists[1]),
                "client_to_server_alg_group": group(2, 4, 6),
                "server_to_client_alg_group": group(3, 5, 7),
            }),
        );
    }
    let mut kex = Map::new();
    if let Some(q) = &s.server_public {
        kex.insert(
            "curve25519_sha256_params".into(),
            json!({"server_public": b64(q)}),
        );
    }
    if let Some(sig) = &s.signature {
        let mut r = Reader(sig);
        let alg = r.string().map(|a| String::from_utf8_lossy(a).into_owned());
        let value = r.string().map(b64);
        kex.insert(
            "server_signature".into(),
            json!({"raw": b64(sig), "parsed": {"algorithm": alg, "value": value}}),
        );
    }
    if let Some(k) = &s.host_key {
        kex.insert("server_host_key".into(), k.zgrab());
    }
    if !kex.is_empty() {
        result.insert("key_exchange".into(), Value::Object(kex));
    }
    let (status, error) = match (&s.host_key, &s.kexinit, &s.disconnect) {
        (Some(_), _, _) => ("success", None),
        (None, _, Some(d)) => ("handshake-error", Some(format!("disconnected: {d}"))),
        (None, Some(k), None) if choose(KEX, &k.lists[0]).is_none() => (
            "handshake-error",
            Some("the server offers no curve25519 key exchange".to_string()),
        ),
        (None, _, None) => (
            "io-timeout",
            Some("no host key before the timeout".to_string()),
        ),
    };
    (status, Value::Object(result), error)
}

/// The host key of a ZGrab2 `ssh` result (for nmap's `ssh-hostkey`).
pub(crate) fn host_key_of(result: &Value) -> Option<HostKey> {
    let raw = result
        .pointer("/key_exchange/server_host_key/raw")?
        .as_str()?;
    HostKey::parse(&super::unb64(raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_flight_is_an_identification_and_two_packets() {
        let f = client_flight(7);
        assert!(f.starts_with(b"SSH-2.0-xdpscan\r\n"));
        let rest = &f[CLIENT_ID.len() + 2..];
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!((len + 4) % 8, 0, "padded to a block");
        assert_eq!(rest[5], MSG_KEXINIT);
        let k = kexinit(Reader(&rest[6..])).unwrap();
        assert_eq!(k.lists[0], KEX);
        let second = &rest[4 + len..];
        assert_eq!(second[5], MSG_KEX_ECDH_INIT);
        assert_eq!(&second[6..10], &[0, 0, 0, 32]);
    }

    #[test]
    fn a_server_flight_gives_its_key() {
        // The server's KEXINIT and ECDH reply, as our own writer would frame them.
        let mut kex = vec![MSG_KEXINIT];
        kex.extend_from_slice(&[9; 16]);
        for l in [
            KEX,
            HOST_KEYS,
            CIPHERS,
            CIPHERS,
            MACS,
            MACS,
            COMPRESSION,
            COMPRESSION,
            &[],
            &[],
        ] {
            put_string(&mut kex, l.join(",").as_bytes());
        }
        kex.extend_from_slice(&[0, 0, 0, 0, 0]);
        let mut blob = Vec::new();
        put_string(&mut blob, b"ssh-ed25519");
        put_string(&mut blob, &[0x42; 32]);
        let mut reply = vec![MSG_KEX_ECDH_REPLY];
        put_string(&mut reply, &blob);
        put_string(&mut reply, &[1; 32]);
        put_string(&mut reply, b"\0\0\0\x0bssh-ed25519\0\0\0\x02ab");
        let mut data = b"hello\r\nSSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec();
        data.extend(packet(&kex));
        data.extend(packet(&reply));
        let s = read_server(&data);
        assert_eq!(s.banner, ["hello"]);
        let key = s.host_key.clone().unwrap();
        assert_eq!((key.algorithm.as_str(), key.bits), ("ssh-ed25519", 256));
        let (status, v, _) = zgrab(&s);
        assert_eq!(status, "success");
        assert_eq!(v["server_id"]["software"], "OpenSSH_9.2p1");
        assert_eq!(v["server_id"]["comment"], "Debian-2+deb12u3");
        assert_eq!(
            v["algorithm_selection"]["dh_kex_algorithm"],
            "curve25519-sha256"
        );
        assert_eq!(
            v["key_exchange"]["server_host_key"]["algorithm"],
            "ssh-ed25519"
        );
        assert_eq!(host_key_of(&v), Some(key));
        // A truncated flight is read as far as it goes.
        let cut = read_server(&data[..data.len() - 10]);
        assert!(cut.kexinit.is_some() && cut.host_key.is_none());
        assert_eq!(zgrab(&cut).0, "io-timeout");
    }
}
