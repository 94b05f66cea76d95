//! A certificate as ZGrab2 writes it (zcrypto's `parsed`: subject and issuer by attribute,
//! the distinguished names, serial, validity, the key, SANs, signature algorithm, fingerprints)
//! and as nmap's `ssl-cert` script names the same facts (openssl's attribute and algorithm
//! names). Parsed with x509-parser; nothing here is checked or trusted.

use serde_json::{json, Map, Value};
use x509_parser::{
    prelude::{FromDer, GeneralName, X509Certificate},
    public_key::PublicKey,
    x509::X509Name,
};

use super::{b64, hex};

/// An attribute type: its OID, zcrypto's JSON key, openssl's long name (nmap), and the short
/// name of a distinguished name's string.
const ATTRIBUTES: &[(&str, &str, &str, &str)] = &[
    ("2.5.4.3", "common_name", "commonName", "CN"),
    ("2.5.4.6", "country", "countryName", "C"),
    ("2.5.4.7", "locality", "localityName", "L"),
    ("2.5.4.8", "province", "stateOrProvinceName", "ST"),
    ("2.5.4.9", "street_address", "streetAddress", "STREET"),
    ("2.5.4.10", "organization", "organizationName", "O"),
    (
        "2.5.4.11",
        "organizational_unit",
        "organizationalUnitName",
        "OU",
    ),
    ("2.5.4.5", "serial_number", "serialNumber", "SERIALNUMBER"),
    ("2.5.4.17", "postal_code", "postalCode", "POSTALCODE"),
    (
        "1.2.840.113549.1.9.1",
        "email_address",
        "emailAddress",
        "emailAddress",
    ),
    (
        "0.9.2342.19200300.100.1.25",
        "domain_component",
        "domainComponent",
        "DC",
    ),
];

/// A signature algorithm: its OID, zcrypto's name, openssl's (nmap's `sig_algo`).
const SIGNATURES: &[(&str, &str, &str)] = &[
    ("1.2.840.113549.1.1.4", "MD5-RSA", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "SHA1-RSA", "sha1WithRSAEncryption"),
    (
        "1.2.840.113549.1.1.11",
        "SHA256-RSA",
        "sha256WithRSAEncryption",
    ),
    (
        "1.2.840.113549.1.1.12",
        "SHA384-RSA",
        "sha384WithRSAEncryption",
    ),
    (
        "1.2.840.113549.1.1.13",
        "SHA512-RSA",
        "sha512WithRSAEncryption",
    ),
    ("1.2.840.113549.1.1.10", "SHA256-RSAPSS", "rsassaPss"),
    ("1.2.840.10045.4.1", "ECDSA-SHA1", "ecdsa-with-SHA1"),
    ("1.2.840.10045.4.3.2", "ECDSA-SHA256", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ECDSA-SHA384", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ECDSA-SHA512", "ecdsa-with-SHA512"),
    ("1.3.101.112", "Ed25519", "ED25519"),
    ("1.3.101.113", "Ed448", "ED448"),
];

/// Named curves: OID, zcrypto's name, openssl's (nmap's `curve`), bits.
const CURVES: &[(&str, &str, &str, u32)] = &[
    ("1.2.840.10045.3.1.7", "P-256", "prime256v1", 256),
    ("1.3.132.0.34", "P-384", "secp384r1", 384),
    ("1.3.132.0.35", "P-521", "secp521r1", 521),
];

/// One attribute of a name: (zcrypto key, nmap key, DN short name, value).
type Attribute = (String, String, String, String);

fn attributes(name: &X509Name) -> Vec<Attribute> {
    let mut out = Vec::new();
    for rdn in name.iter() {
        for a in rdn.iter() {
            let oid = a.attr_type().to_id_string();
            let value = a
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| String::from_utf8_lossy(a.attr_value().data).into_owned());
            let (z, n, s) = ATTRIBUTES
                .iter()
                .find(|r| r.0 == oid)
                .map_or((oid.clone(), oid.clone(), oid.clone()), |r| {
                    (r.1.into(), r.2.into(), r.3.into())
                });
            out.push((z, n, s, value));
        }
    }
    out
}

/// zcrypto's name object: each attribute's values under its key, in order.
fn name_json(attrs: &[Attribute]) -> Value {
    let mut m = Map::new();
    for (z, _, _, v) in attrs {
        if let Value::Array(a) = m.entry(z.clone()).or_insert_with(|| json!([])) {
            a.push(json!(v));
        }
    }
    Value::Object(m)
}

/// zcrypto's `issuer_dn` / `subject_dn`: the attributes as encoded, `, ` between them.
fn dn_string(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .map(|(_, _, s, v)| format!("{s}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The facts of one certificate nmap's `ssl-cert` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct NmapCert {
    /// (openssl name, value) in the certificate's order.
    pub(crate) subject: Vec<(String, String)>,
    pub(crate) issuer: Vec<(String, String)>,
    /// `rsa`, `ec`, `ed25519`.
    pub(crate) key_type: String,
    pub(crate) key_bits: u32,
    /// RSA: the modulus in upper-case hex and the exponent in decimal.
    pub(crate) rsa: Option<(String, String)>,
    /// EC: the curve's openssl name.
    pub(crate) curve: Option<String>,
    pub(crate) sig_algo: String,
    /// `DNS:a, IP Address:198.18.0.1`, as openssl prints the extension.
    pub(crate) san: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`, as nmap's datetime prints them.
    pub(crate) not_before: String,
    pub(crate) not_after: String,
    pub(crate) md5: String,
    pub(crate) sha1: String,
    pub(crate) pem: String,
}

fn time_str(t: i64) -> String {
    let s = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
    )
    .to_string();
    s.trim_end_matches('Z').to_string()
}

fn digest(alg: &'static ring::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(alg, data).as_ref().to_vec()
}

pub(crate) fn md5(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&ring::digest::SHA256, data)
}

fn sha1(data: &[u8]) -> Vec<u8> {
    digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
}

/// PEM of a DER certificate, 64 columns.
pub(crate) fn pem(der: &[u8]) -> String {
    let b = b64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A certificate as ZGrab2 writes it: `{"raw": base64, "parsed": {...}}`; `parsed` is absent
/// when the DER does not parse (the raw bytes still are what the server sent).
pub(crate) fn zgrab_cert(der: &[u8]) -> Value {
    match parse(der) {
        Some((parsed, _)) => json!({"raw": b64(der), "parsed": parsed}),
        None => json!({"raw": b64(der)}),
    }
}

/// The parsed certificate in zcrypto's shape and in nmap's facts.
pub fn parse(der: &[u8]) -> Option<(Value, NmapCert)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let subject = attributes(cert.subject());
    let issuer = attributes(cert.issuer());
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let (sig_z, sig_n) = SIGNATURES
        .iter()
        .find(|r| r.0 == sig_oid)
        .map_or((sig_oid.clone(), sig_oid.clone()), |r| {
            (r.1.into(), r.2.into())
        });
    let start = cert.validity().not_before.timestamp();
    let end = cert.validity().not_after.timestamp();
    let spki = cert.public_key();
    let key = public_key(spki);
    let mut key_json = key.json;
    key_json.insert("fingerprint_sha256".into(), json!(hex(&sha256(spki.raw))));
    let (extensions, san_text) = extensions(&cert);
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    let md5_fp = md5(der);
    let sha1_fp = sha1(der);
    let parsed = json!({
        "version": cert.version().0 + 1,
        "serial_number": tbs.serial.to_string(),
        "signature_algorithm": {"name": sig_z, "oid": sig_oid},
        "issuer": name_json(&issuer),
        "issuer_dn": dn_string(&issuer),
        "validity": {
            "start": format!("{}Z", time_str(start)),
            "end": format!("{}Z", time_str(end)),
            "length": end - start,
        },
        "subject": name_json(&subject),
        "subject_dn": dn_string(&subject),
        "subject_key_info": Value::Object(key_json),
        "extensions": Value::Object(extensions),
        "signature": {
            "signature_algorithm": {"name": sig_z, "oid": sig_oid},
            "value": b64(&cert.signature_value.data),
            "self_signed": self_signed,
        },
        "fingerprint_md5": hex(&md5_fp),
        "fingerprint_sha1": hex(&sha1_fp),
        "fingerprint_sha256": hex(&sha256(der)),
        "tbs_fingerprint": hex(&sha256(tbs.as_ref())),
    });
    let nmap = NmapCert {
        subject: subject.iter().map(|a| (a.1.clone(), a.3.clone())).collect(),
        issuer: issuer.iter().map(|a| (a.1.clone(), a.3.clone())).collect(),
        key_type: key.kind,
        key_bits: key.bits,
        rsa: key.rsa,
        curve: key.curve,
        sig_algo: sig_n,
        san: san_text,
        not_before: time_str(start),
        not_after: time_str(end),
        md5: hex(&md5_fp),
        sha1: hex(&sha1_fp),
        pem: pem(der),
    };
    Some((parsed, nmap))
}

/// A certificate's public key: zcrypto's fields, and nmap's type, size, RSA numbers, curve.
struct Key {
    json: Map<String, Value>,
    kind: String,
    bits: u32,
    rsa: Option<(String, String)>,
    curve: Option<String>,
}

fn public_key(spki: &x509_parser::x509::SubjectPublicKeyInfo) -> Key {
    let mut key = Map::new();
    let (key_type, key_bits, rsa, curve);
    match spki.parsed() {
        Ok(PublicKey::RSA(r)) => {
            let modulus = r.modulus.iter().skip_while(|b| **b == 0).copied();
            let modulus: Vec<u8> = modulus.collect();
            let mut e = 0u64;
            for b in r.exponent.iter().take(8) {
                e = e << 8 | *b as u64;
            }
            key_bits = r.key_size() as u32;
            key.insert("key_algorithm".into(), json!({"name": "RSA"}));
            key.insert(
                "rsa_public_key".into(),
                json!({"exponent": e, "modulus": b64(&modulus), "length": key_bits}),
            );
            key_type = "rsa".to_string();
            rsa = Some((hex(&modulus).to_uppercase(), e.to_string()));
            curve = None;
        }
        Ok(PublicKey::EC(point)) => {
            let params = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let row = CURVES.iter().find(|c| c.0 == params);
            key_bits = row.map_or(point.key_size() as u32, |c| c.3);
            let data = point.data();
            let half = data.len().saturating_sub(1) / 2;
            key.insert("key_algorithm".into(), json!({"name": "ECDSA"}));
            key.insert(
                "ecdsa_public_key".into(),
                json!({
                    "curve": row.map_or(params.as_str(), |c| c.1),
                    "length": key_bits,
                    "pub": b64(data),
                    "x": b64(data.get(1..1 + half).unwrap_or_default()),
                    "y": b64(data.get(1 + half..).unwrap_or_default()),
                }),
            );
            key_type = "ec".to_string();
            rsa = None;
            curve = Some(row.map_or(params.clone(), |c| c.2.to_string()));
        }
        _ => {
            let oid = spki.algorithm.algorithm.to_id_string();
            let ed = oid == "1.3.101.112";
            key_bits = if ed { 256 } else { 0 };
            let name = if ed { "Ed25519" } else { "unknown_algorithm" };
            key.insert("key_algorithm".into(), json!({ "name": name }));
            if ed {
                key.insert(
                    "ed25519_public_key".into(),
                    json!({"public_bytes": b64(&spki.subject_public_key.data)}),
                );
            }
            key_type = if ed { "ed25519".into() } else { oid };
            rsa = None;
            curve = None;
        }
    }
    Key {
        json: key,
        kind: key_type,
        bits: key_bits,
        rsa,
        curve,
    }
}

/// zcrypto's `extensions` (SANs, basic constraints) and openssl's SAN text.
fn extensions(cert: &X509Certificate) -> (Map<String, Value>, Option<String>) {
    let mut extensions = Map::new();
    let mut san_text = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let (mut dns, mut ips, mut emails, mut text) = (vec![], vec![], vec![], vec![]);
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(d) => {
                    dns.push(d.to_string());
                    text.push(format!("DNS:{d}"));
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        ips.push(ip.to_string());
                        text.push(format!("IP Address:{ip}"));
                    }
                }
                GeneralName::RFC822Name(e) => {
                    emails.push(e.to_string());
                    text.push(format!("email:{e}"));
                }
                _ => {}
            }
        }
        let mut s = Map::new();
        for (k, v) in [
            ("dns_names", dns),
            ("ip_addresses", ips),
            ("email_addresses", emails),
        ] {
            if !v.is_empty() {
                s.insert(k.into(), json!(v));
            }
        }
        extensions.insert("subject_alt_name".into(), Value::Object(s));
        san_text = Some(text.join(", "));
    }
    if let Ok(Some(bc)) = cert.basic_constraints() {
        extensions.insert("basic_constraints".into(), json!({"is_ca": bc.value.ca}));
    }
    (extensions, san_text)
}

/// nmap's `ssl-cert` facts from a ZGrab2 `tls` result: the leaf's DER parsed again (so a
/// record read back from a file gives the same script output).
pub(crate) fn nmap_from_tls(result: &Value) -> Option<NmapCert> {
    let raw = result
        .pointer("/handshake_log/server_certificates/certificate/raw")?
        .as_str()?;
    let der = super::unb64(raw)?;
    parse(&der).map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf of the grab lab (an ECDSA P-256 key under an RSA intermediate), with what
    /// `openssl x509` printed for it.
    const LEAF: &[u8] = include_bytes!("../../fuzz/corpus/grab_replies/ecdsa_leaf.der");

    #[test]
    fn a_certificate_reads_as_openssl_prints_it() {
        let (z, n) = parse(LEAF).unwrap();
        assert_eq!(
            z["fingerprint_sha256"],
            "d97209f8d9467849219699e875f1c12b0f1c7b1c8190a5b5fe2dc926bb46bad5"
        );
        assert_eq!(
            z["fingerprint_sha1"],
            "6431ce15976560a434c75a8193009dbe8bacaa5f"
        );
        assert_eq!(
            z["serial_number"],
            "536535713018185901340296490844495516865798109923"
        );
        assert_eq!(
            z["subject_dn"],
            "C=XX, ST=Lab, L=Namespace, O=xdpscan lab, CN=lab.example"
        );
        assert_eq!(
            z["issuer_dn"],
            "C=XX, O=xdpscan lab, CN=xdpscan lab intermediate"
        );
        assert_eq!(z["subject"]["common_name"][0], "lab.example");
        assert_eq!(z["validity"]["start"], "2026-12-08T01:32:31Z");
        assert_eq!(z["validity"]["end"], "2026-12-15T01:32:31Z");
        assert_eq!(z["validity"]["length"], 7 * 86400);
        let san = &z["extensions"]["subject_alt_name"];
        assert_eq!(
            san["dns_names"],
            serde_json::json!(["lab.example", "www.lab.example"])
        );
        assert_eq!(san["ip_addresses"], serde_json::json!(["198.19.0.5"]));
        assert_eq!(z["subject_key_info"]["key_algorithm"]["name"], "ECDSA");
        assert_eq!(z["subject_key_info"]["ecdsa_public_key"]["curve"], "P-256");
        assert_eq!(z["signature_algorithm"]["name"], "SHA256-RSA");
        assert_eq!((n.key_type.as_str(), n.key_bits), ("ec", 256));
        assert_eq!(n.curve.as_deref(), Some("prime256v1"));
        assert_eq!(n.sig_algo, "sha256WithRSAEncryption");
        assert_eq!(
            n.san.as_deref(),
            Some("DNS:lab.example, DNS:www.lab.example, IP Address:198.19.0.5")
        );
        assert_eq!(n.not_before, "2026-12-08T01:32:31");
        assert!(n.pem.starts_with("-----BEGIN CERTIFICATE-----\nMII"));
        // Not DER: nothing parsed, and the raw bytes still written.
        assert!(parse(b"\x30\x03\x02\x01").is_none());
        assert!(zgrab_cert(b"junk").get("parsed").is_none());
    }
}
