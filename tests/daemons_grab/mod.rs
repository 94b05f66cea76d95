//! `--grab` on real servers (scripts/lab-grab.sh: nginx with an RSA and an ECDSA chain and a
//! TLS 1.3-only server, `openssl s_server -tls1` at @SECLEVEL=0, OpenSSH with one host key type
//! per daemon, protocols on ports that do not name them, ports that carry no service). Every
//! field is checked against the tool that reads the same thing: `openssl x509` for the
//! certificates, `openssl s_client` for the handshake, `ssh-keygen -l` for host keys, `curl`
//! for HTTP, and nmap's `ssl-cert`, `ssh-hostkey` and `http-title` scripts for the XML; every
//! line against ZGrab2's JSON shapes.

//!
//! Built into the `daemons` test binary (one link less in CI): `cargo test --test daemons grab`.

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use base64::Engine;
use serde_json::Value;

use crate::common::*;

const HOST: &str = "198.19.0.5";
const PORTS: &str = "22,80,443,2022,2122,4433,4434,8443,8444";

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(d: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, d)
        .as_ref()
        .to_vec()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str]) -> String {
    run(Command::new("openssl").args(args))
}

/// Where lab-grab.sh keeps the certificates and keys of this lab.
fn lab_dir(lab: &Lab) -> PathBuf {
    let tmp = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(tmp).join(format!("xdpscan-{}-services", lab.prefix))
}

/// One -oZ file: each line by (ip, port), every line checked against ZGrab2's shapes.
fn zgrab_lines(path: &std::path::Path) -> BTreeMap<(String, u16), Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        zgrab2_shape(&v);
        let key = (
            v["ip"].as_str().unwrap().to_string(),
            v["port"].as_u64().unwrap() as u16,
        );
        assert!(m.insert(key, v).is_none(), "one line per port");
    }
    m
}

const STATUSES: [&str; 13] = [
    "success",
    "connection-refused",
    "connection-timeout",
    "connection-closed",
    "handshake-error",
    "post-tls-application-error",
    "io-timeout",
    "protocol-error",
    "application-error",
    "invalid-inputs",
    "blocklisted-target",
    "unknown-error",
    "unknown-error",
];

fn is_hex(v: &Value, len: usize) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_b64(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok())
}

fn strings(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

fn rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| humantime::parse_rfc3339(s).is_ok())
}

/// ZGrab2's shapes (zgrab2_schemas: zgrab2.py's base response, tls via zcrypto, http.py,
/// ssh.py) for the fields we write.
fn zgrab2_shape(line: &Value) {
    let ctx = line.to_string();
    let ctx = &ctx[..ctx.len().min(300)];
    assert!(
        line["ip"]
            .as_str()
            .unwrap()
            .parse::<std::net::IpAddr>()
            .is_ok(),
        "{ctx}"
    );
    assert!(line["port"].is_u64(), "{ctx}");
    let data = line["data"].as_object().expect("data");
    assert!(!data.is_empty(), "{ctx}");
    for (module, r) in data {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert!(
            keys.iter()
                .all(|k| ["status", "protocol", "result", "timestamp", "error"].contains(k)),
            "{ctx}"
        );
        assert!(STATUSES.contains(&r["status"].as_str().unwrap()), "{ctx}");
        assert_eq!(r["protocol"].as_str(), Some(module.as_str()), "{ctx}");
        assert!(rfc3339(&r["timestamp"]), "{ctx}");
        assert!(r["result"].is_object(), "{ctx}");
        assert!(r.get("error").is_none_or(Value::is_string), "{ctx}");
        if r["status"] != "success" {
            continue;
        }
        let res = &r["result"];
        match module.as_str() {
            "tls" => {
                let h = &res["handshake_log"];
                let hello = &h["server_hello"];
                assert!(hello["version"]["name"].is_string(), "{ctx}");
                assert!(hello["version"]["value"].is_u64(), "{ctx}");
                assert!(hello["cipher_suite"]["hex"]
                    .as_str()
                    .unwrap()
                    .starts_with("0x"));
                assert!(hello["cipher_suite"]["name"].is_string(), "{ctx}");
                assert!(hello["cipher_suite"]["value"].is_u64(), "{ctx}");
                let certs = &h["server_certificates"];
                let chain = certs["chain"].as_array().cloned().unwrap_or_default();
                for c in std::iter::once(&certs["certificate"]).chain(&chain) {
                    assert!(is_b64(&c["raw"]), "{ctx}");
                    let p = &c["parsed"];
                    assert!(p["version"].is_u64());
                    let serial = p["serial_number"].as_str().unwrap();
                    assert!(serial.bytes().all(|b| b.is_ascii_digit()), "{serial}");
                    assert!(p["signature_algorithm"]["name"].is_string());
                    assert!(p["signature_algorithm"]["oid"].is_string());
                    for n in ["issuer", "subject"] {
                        assert!(p[n].as_object().unwrap().values().all(strings), "{ctx}");
                        assert!(p[format!("{n}_dn")].is_string());
                    }
                    assert!(rfc3339(&p["validity"]["start"]) && rfc3339(&p["validity"]["end"]));
                    assert!(p["validity"]["length"].is_i64());
                    assert!(p["subject_key_info"]["key_algorithm"]["name"].is_string());
                    assert!(is_hex(&p["subject_key_info"]["fingerprint_sha256"], 64));
                    assert!(is_hex(&p["fingerprint_md5"], 32));
                    assert!(is_hex(&p["fingerprint_sha1"], 40));
                    assert!(is_hex(&p["fingerprint_sha256"], 64));
                    assert!(is_hex(&p["tbs_fingerprint"], 64));
                    assert!(is_b64(&p["signature"]["value"]));
                    assert!(p["signature"]["self_signed"].is_boolean());
                }
            }
            "http" => {
                let resp = &res["response"];
                assert!(resp["status_line"].is_string() && resp["status_code"].is_u64());
                assert!(resp["protocol"]["name"].is_string());
                assert!(resp["protocol"]["major"].is_u64() && resp["protocol"]["minor"].is_u64());
                for (k, v) in resp["headers"].as_object().unwrap() {
                    if k == "unknown" {
                        for u in v.as_array().unwrap() {
                            assert!(u["key"].is_string() && strings(&u["value"]), "{ctx}");
                        }
                    } else {
                        assert!(strings(v), "{k}: {ctx}");
                        assert!(!k.contains('-') && k.to_lowercase() == *k, "{k}");
                    }
                }
                assert!(resp["body"].is_string() && is_hex(&resp["body_sha256"], 64));
                let req = &resp["request"];
                assert!(req["url"]["scheme"].is_string() && req["url"]["host"].is_string());
                assert_eq!(req["method"], "GET");
            }
            "ssh" => {
                for k in ["raw", "version", "software"] {
                    assert!(res["server_id"][k].is_string(), "{ctx}");
                }
                let kex = &res["server_key_exchange"];
                assert!(is_b64(&kex["cookie"]));
                for l in [
                    "kex_algorithms",
                    "host_key_algorithms",
                    "client_to_server_ciphers",
                    "server_to_client_ciphers",
                    "client_to_server_macs",
                    "server_to_client_macs",
                    "client_to_server_compression",
                    "server_to_client_compression",
                ] {
                    assert!(strings(&kex[l]), "{l}: {ctx}");
                }
                assert!(kex["first_kex_follows"].is_boolean() && kex["reserved"].is_u64());
                let sel = &res["algorithm_selection"];
                assert!(sel["dh_kex_algorithm"].is_string());
                assert!(sel["host_key_algorithm"].is_string());
                for g in ["client_to_server_alg_group", "server_to_client_alg_group"] {
                    for k in ["cipher", "mac", "compression"] {
                        assert!(sel[g][k].is_string(), "{g}.{k}");
                    }
                }
                let key = &res["key_exchange"]["server_host_key"];
                assert!(is_b64(&key["raw"]) && key["algorithm"].is_string());
                assert!(is_hex(&key["fingerprint_sha256"], 64));
            }
            "banner" => assert!(res["banner"].is_string()),
            "jarm" => assert!(is_hex(&res["fingerprint"], 62), "{ctx}"),
            other => panic!("module {other}"),
        }
    }
}

/// Every `<script>` of every port of an XML document: (port, id) -> (output, elem path ->
/// value), with `extensions` and `pem`'s line ends left out where nmap differs by design.
type Scripts = BTreeMap<(u16, String), (String, BTreeMap<String, String>)>;

fn unescape(s: &str) -> String {
    // Numeric references first (nmap writes `-` as `&#45;`), then the named ones.
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let end = tail.find(';').unwrap();
        let n = match tail[..end].strip_prefix('x') {
            Some(h) => u32::from_str_radix(h, 16).unwrap(),
            None => tail[..end].parse().unwrap(),
        };
        out.push(char::from_u32(n).unwrap());
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn scripts(xml: &str) -> Scripts {
    let mut out = Scripts::new();
    for block in xml.split("<port ").skip(1) {
        let port: u16 = attr(&format!(" {block}"), "portid")
            .unwrap()
            .parse()
            .unwrap();
        let block = block.split("</port>").next().unwrap();
        for s in block.split("<script ").skip(1) {
            let head = format!(" {}", s.split('>').next().unwrap());
            let id = attr(&head, "id").unwrap();
            let output = unescape(&attr(&head, "output").unwrap_or_default());
            let mut elems = BTreeMap::new();
            let mut path: Vec<String> = Vec::new();
            let mut n = 0;
            for tag in s.split('<').skip(1) {
                if tag.starts_with("/script") {
                    break;
                }
                if let Some(rest) = tag.strip_prefix("table") {
                    n += 1;
                    let key = attr(rest, "key").unwrap_or_else(|| format!("#{n}"));
                    path.push(key);
                } else if tag.starts_with("/table") {
                    path.pop();
                } else if let Some(rest) = tag.strip_prefix("elem") {
                    let (a, value) = rest.split_once('>').unwrap();
                    let key = attr(a, "key").unwrap_or_default();
                    let full = [path.join("/"), key].join("/");
                    elems.insert(full, unescape(value));
                }
            }
            out.insert((port, id), (output, elems));
        }
    }
    out
}

/// `openssl x509` on a PEM file.
fn x509(file: &std::path::Path, args: &[&str]) -> String {
    let mut a = vec!["x509", "-in", file.to_str().unwrap(), "-noout"];
    a.extend_from_slice(args);
    openssl(&a)
}

fn der(file: &std::path::Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["x509", "-in", file.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap();
    out.stdout
}

/// `SHA256 Fingerprint=AB:CD...` as lower-case hex.
fn fingerprint(file: &std::path::Path, alg: &str) -> String {
    let s = x509(file, &["-fingerprint", alg]);
    s.trim()
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "")
        .to_lowercase()
}

/// A hexadecimal integer in decimal (a serial is up to 160 bits).
fn hex_to_decimal(h: &str) -> String {
    let mut digits = vec![0u8]; // little-endian decimal digits
    for c in h.chars() {
        let mut carry = c.to_digit(16).unwrap();
        for d in digits.iter_mut() {
            let v = *d as u32 * 16 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    let s: String = digits.iter().rev().map(|d| char::from(b'0' + d)).collect();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// `notBefore=Dec  8 00:39:33 2026 GMT` as RFC 3339.
fn openssl_date(s: &str) -> String {
    let v = s.trim().split_once('=').unwrap().1;
    let f: Vec<&str> = v.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == f[0]).unwrap() + 1;
    format!(
        "{}-{m:02}-{:02}T{}Z",
        f[3],
        f[1].parse::<u32>().unwrap(),
        f[2]
    )
}

/// Each certificate field against `openssl x509`.
fn check_certificate(parsed: &Value, raw: &Value, file: &std::path::Path) {
    let at = file.display();
    assert_eq!(
        unb64(raw.as_str().unwrap()),
        der(file),
        "{at}: the DER as sent"
    );
    assert_eq!(
        parsed["fingerprint_sha256"],
        fingerprint(file, "-sha256"),
        "{at}"
    );
    assert_eq!(
        parsed["fingerprint_sha1"],
        fingerprint(file, "-sha1"),
        "{at}"
    );
    assert_eq!(parsed["fingerprint_md5"], fingerprint(file, "-md5"), "{at}");
    let serial = x509(file, &["-serial"]);
    let serial = serial.trim().split_once('=').unwrap().1;
    assert_eq!(parsed["serial_number"], hex_to_decimal(serial), "{at}");
    for (field, flag) in [("subject_dn", "-subject"), ("issuer_dn", "-issuer")] {
        // RFC 2253 prints the attributes last first, without spaces.
        let theirs = x509(file, &[flag, "-nameopt", "RFC2253"]);
        let theirs = theirs.trim().split_once('=').unwrap().1;
        let ours: Vec<&str> = parsed[field].as_str().unwrap().split(", ").collect();
        let ours: Vec<&str> = ours.into_iter().rev().collect();
        assert_eq!(ours.join(","), theirs, "{at}: {field}");
    }
    let start = openssl_date(&x509(file, &["-startdate"]));
    let end = openssl_date(&x509(file, &["-enddate"]));
    assert_eq!(parsed["validity"]["start"], start, "{at}");
    assert_eq!(parsed["validity"]["end"], end, "{at}");
    let text = x509(file, &["-text"]);
    let bits: u64 = text
        .split("Public-Key: (")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let key = &parsed["subject_key_info"];
    let (kind, length) = if text.contains("Public Key Algorithm: rsaEncryption") {
        ("RSA", &key["rsa_public_key"]["length"])
    } else {
        assert!(
            text.contains("Public Key Algorithm: id-ecPublicKey"),
            "{text}"
        );
        ("ECDSA", &key["ecdsa_public_key"]["length"])
    };
    assert_eq!(key["key_algorithm"]["name"], kind, "{at}");
    assert_eq!(length.as_u64(), Some(bits), "{at}");
    let sig = text
        .split("Signature Algorithm: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim();
    let oid = match sig {
        "sha256WithRSAEncryption" => "1.2.840.113549.1.1.11",
        "ecdsa-with-SHA256" => "1.2.840.10045.4.3.2",
        other => panic!("signature algorithm {other}"),
    };
    assert_eq!(parsed["signature_algorithm"]["oid"], oid, "{at}");
    let sans = x509(file, &["-ext", "subjectAltName"]);
    let theirs = sans.lines().nth(1).map(str::trim).unwrap_or("");
    let ext = &parsed["extensions"]["subject_alt_name"];
    let mut ours: Vec<String> = Vec::new();
    for d in ext["dns_names"].as_array().into_iter().flatten() {
        ours.push(format!("DNS:{}", d.as_str().unwrap()));
    }
    for ip in ext["ip_addresses"].as_array().into_iter().flatten() {
        ours.push(format!("IP Address:{}", ip.as_str().unwrap()));
    }
    assert_eq!(ours.join(", "), theirs, "{at}: SANs");
}

/// `openssl s_client` from the scanner's namespace: (version, IANA cipher name, ALPN).
fn s_client(lab: &Lab, port: u16, extra: &[&str]) -> (String, String, Option<String>) {
    let connect = format!("{HOST}:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "lab.example",
        "-alpn",
        "h2,http/1.1",
    ];
    args.extend_from_slice(extra);
    let out = lab
        .in_scan("openssl", &args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("New, "))
        .unwrap_or_else(|| panic!("s_client {port}: {text}"));
    let (version, cipher) = line
        .trim_start_matches("New, ")
        .split_once(", Cipher is ")
        .unwrap();
    // "New, SSLv3" names the cipher's version; the session's Protocol line the one agreed.
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Protocol  : "))
        .unwrap_or(version);
    let version = match version {
        "TLSv1" => "TLSv1.0".to_string(),
        v => v.to_string(),
    };
    let iana = if cipher.starts_with("TLS_") {
        cipher.to_string()
    } else {
        openssl_stdname(cipher)
    };
    let alpn = text
        .lines()
        .find_map(|l| l.strip_prefix("ALPN protocol: "))
        .map(str::to_string);
    (version, iana, alpn)
}

/// An OpenSSL cipher name in IANA's spelling, from `openssl ciphers -stdname`.
fn openssl_stdname(cipher: &str) -> String {
    let all = openssl(&["ciphers", "-stdname", "ALL:@SECLEVEL=0"]);
    all.lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .and_then(|o| o.split_whitespace().next())
                == Some(cipher)
        })
        .and_then(|l| l.split(" - ").next())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no IANA name for {cipher}"))
}

#[test]
fn grabs_equal_what_the_servers_own_tools_say() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_GRAB", "1")]);
    let dir = lab_dir(&lab);
    let scratch = std::env::temp_dir().join(format!("xdpscan-grab-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let (z, x) = (scratch.join("grab.json"), scratch.join("grab.xml"));
    let out = lab.xdpscan(&[
        HOST,
        "-p",
        PORTS,
        "--grab",
        "tls,http,ssh,jarm",
        "-q",
        "-oZ",
        z.to_str().unwrap(),
        "-oX",
        x.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = zgrab_lines(&z);
    let at = |port: u16, module: &str| -> Value {
        lines[&(HOST.to_string(), port)]["data"][module].clone()
    };
    let mut table: Vec<String> = Vec::new();

    // tls: the chain as sent and each certificate, against openssl.
    let inter = dir.join("inter.crt");
    for (port, leaf, chain) in [
        (443, "rsa.crt", Some(&inter)),
        (8443, "ecdsa.crt", Some(&inter)),
        (8444, "rsa.crt", Some(&inter)),
        (4433, "legacy.crt", None),
        (4434, "legacy.crt", None),
    ] {
        let tls = at(port, "tls");
        assert_eq!(tls["status"], "success", "{port}: {tls}");
        let certs = &tls["result"]["handshake_log"]["server_certificates"];
        let leaf = dir.join(leaf);
        check_certificate(
            &certs["certificate"]["parsed"],
            &certs["certificate"]["raw"],
            &leaf,
        );
        let sent = certs["chain"].as_array().cloned().unwrap_or_default();
        match chain {
            Some(c) => {
                assert_eq!(sent.len(), 1, "{port}: the intermediate");
                check_certificate(&sent[0]["parsed"], &sent[0]["raw"], c);
            }
            None => assert!(sent.is_empty(), "{port}"),
        }
        table.push(format!("tls {port}: chain, fingerprints, serial, names, validity, key, signature, SANs = openssl x509"));
    }
    // The handshake, against openssl s_client (the legacy server at TLS 1.0 and RSA key
    // exchange, which rustls refuses: its hello was ours, in the clear).
    for (port, extra) in [
        (443, &[][..]),
        (8443, &[][..]),
        (8444, &[][..]),
        (4433, &["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"][..]),
    ] {
        let (version, cipher, alpn) = s_client(&lab, port, extra);
        let hello = at(port, "tls")["result"]["handshake_log"]["server_hello"].clone();
        assert_eq!(hello["version"]["name"], version, "{port}");
        assert_eq!(hello["cipher_suite"]["name"], cipher, "{port}");
        if port != 4433 {
            assert_eq!(
                hello["alpn_protocol"].as_str(),
                alpn.as_deref(),
                "{port}: ALPN"
            );
        }
        table.push(format!(
            "tls {port}: {version} {cipher} ALPN {alpn:?} = openssl s_client"
        ));
    }
    assert_eq!(
        at(8444, "tls")["result"]["handshake_log"]["server_hello"]["version"]["name"],
        "TLSv1.3"
    );

    // ssh: the host key of each daemon, against ssh-keygen -l and the key file.
    for (port, kind, name) in [
        (22, "ed25519", "ED25519"),
        (2022, "ecdsa", "ECDSA"),
        (2122, "rsa", "RSA"),
    ] {
        let ssh = at(port, "ssh");
        assert_eq!(ssh["status"], "success", "{port}: {ssh}");
        let r = &ssh["result"];
        // The identification, as a plain TCP client reads it.
        let target = format!("TCP:{HOST}:{port}");
        let said = lab
            .in_scan("timeout", &["2", "socat", "-u", &target, "STDOUT"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&said.stdout);
        assert_eq!(
            r["server_id"]["raw"].as_str(),
            said.lines().next().map(str::trim_end),
            "{port}"
        );
        let key = &r["key_exchange"]["server_host_key"];
        let raw = unb64(key["raw"].as_str().unwrap());
        let pubfile = dir.join(format!("ssh_host_{kind}_key.pub"));
        let pubkey = std::fs::read_to_string(&pubfile).unwrap();
        let mut f = pubkey.split_whitespace();
        assert_eq!(key["algorithm"].as_str(), f.next(), "{port}");
        assert_eq!(
            Some(b64(&raw).as_str()),
            f.next(),
            "{port}: the key as the file holds it"
        );
        assert_eq!(key["fingerprint_sha256"], hex(&sha256(&raw)), "{port}");
        let keygen = run(Command::new("ssh-keygen").args(["-l", "-f", pubfile.to_str().unwrap()]));
        let bits = keygen.split_whitespace().next().unwrap();
        let fp = keygen.split_whitespace().nth(1).unwrap();
        let ours = format!("SHA256:{}", b64(&sha256(&raw)).trim_end_matches('='));
        assert_eq!(ours, fp, "{port}: ssh-keygen -l");
        assert!(
            keygen.trim_end().ends_with(&format!("({name})")),
            "{keygen}"
        );
        let hk = r["server_key_exchange"]["host_key_algorithms"]
            .as_array()
            .unwrap();
        let chosen = &r["algorithm_selection"]["host_key_algorithm"];
        assert!(hk.iter().any(|a| a == chosen), "{port}: {chosen} of {hk:?}");
        table.push(format!("ssh {port}: {bits} {fp} ({name}), identification, raw key = ssh-keygen -l, the .pub file, socat"));
    }

    // http: against curl, plain and inside TLS.
    for (port, scheme) in [
        (80, "http"),
        (443, "https"),
        (8443, "https"),
        (8444, "https"),
    ] {
        let url = format!("{scheme}://{HOST}:{port}/");
        let head = run(&mut lab.in_scan("curl", &["-sk", "-D", "-", "-o", "/dev/null", &url]));
        let body = run(&mut lab.in_scan("curl", &["-sk", &url]));
        let http = at(port, "http");
        assert_eq!(http["status"], "success", "{port}: {http}");
        let resp = &http["result"]["response"];
        let status = head.lines().next().unwrap().trim();
        assert_eq!(
            format!(
                "{} {}",
                resp["protocol"]["name"].as_str().unwrap(),
                resp["status_line"].as_str().unwrap()
            ),
            status,
            "{port}"
        );
        let server = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Server: ")
                    .or_else(|| l.strip_prefix("server: "))
            })
            .unwrap()
            .trim();
        assert_eq!(resp["headers"]["server"][0], server, "{port}");
        assert_eq!(resp["body"], body, "{port}");
        assert_eq!(resp["body_sha256"], hex(&sha256(body.as_bytes())), "{port}");
        assert_eq!(resp["request"]["url"]["scheme"], scheme, "{port}");
        assert_eq!(resp["title"], "xdpscan grab lab", "{port}");
        table.push(format!(
            "http {port}: status line, server, body, SHA-256, title = curl"
        ));
    }

    // jarm: against the reference's hellos and hashing (pyjarm, scripts/setup.sh --test), on
    // every server: TLS 1.3 only, TLS 1.0 only, RSA and ECDSA, SNI, and ports with no TLS.
    let oracles =
        std::env::var("XDPSCAN_ORACLES").unwrap_or_else(|_| "/opt/xdpscan-oracles".into());
    let pyjarm = format!("{oracles}/python");
    assert!(
        std::path::Path::new(&pyjarm).join("jarm").is_dir(),
        "no pyjarm in {pyjarm}: run scripts/setup.sh --test"
    );
    for port in [443, 8443, 8444, 4433, 4434, 80, 22] {
        let target = format!("{HOST}:{port}");
        let said = run(&mut lab.in_scan(
            "env",
            &[
                &format!("PYTHONPATH={pyjarm}"),
                "python3",
                "-m",
                "jarm",
                &target,
            ],
        ));
        let theirs = said
            .lines()
            .find_map(|l| l.strip_prefix("JARM: "))
            .unwrap_or_else(|| panic!("{port}: pyjarm said {said}"));
        let jarm = at(port, "jarm");
        assert_eq!(jarm["status"], "success", "{port}: {jarm}");
        assert_eq!(jarm["result"]["fingerprint"], theirs, "{port}: pyjarm");
        table.push(format!("jarm {port}: {theirs} = pyjarm"));
    }

    // nmap's scripts on the same ports: the same elements, the same text.
    let nmap_xml = scratch.join("nmap.xml");
    // The services nmap's scripts select ports by, named without -sV's probes (--servicedb
    // would imply -F; --datadir is searched first, then nmap's own files).
    let servicedb = scratch.join("nmap-services");
    std::fs::write(
        &servicedb,
        "ssh\t22/tcp\t0.1\nhttp\t80/tcp\t0.1\nhttps\t443/tcp\t0.1\nssh\t2022/tcp\t0.1\n\
         ssh\t2122/tcp\t0.1\nhttps\t4433/tcp\t0.1\nhttps\t4434/tcp\t0.1\n\
         https\t8443/tcp\t0.1\nhttps\t8444/tcp\t0.1\n",
    )
    .unwrap();
    run(&mut lab.in_scan(
        "nmap",
        &[
            "-n",
            "-Pn",
            "-sS",
            "-v",
            "-p",
            PORTS,
            "--datadir",
            scratch.to_str().unwrap(),
            "--script",
            "ssl-cert,ssh-hostkey,http-title",
            "-oX",
            nmap_xml.to_str().unwrap(),
            HOST,
        ],
    ));
    let theirs = scripts(&std::fs::read_to_string(&nmap_xml).unwrap());
    let ours = scripts(&std::fs::read_to_string(&x).unwrap());
    let mut compared = 0;
    for ((port, id), (their_out, their_elems)) in &theirs {
        if (*port, id.as_str()) == (4433, "http-title") {
            // HTTP inside TLS 1.0 with RSA key exchange: nmap's OpenSSL speaks it, rustls
            // does not, so our http there is a handshake-error (its certificate is read).
            assert_eq!(at(4433, "http")["status"], "handshake-error");
            continue;
        }
        let (our_out, our_elems) = ours
            .get(&(*port, id.clone()))
            .unwrap_or_else(|| panic!("no {id} on {port}: we have {:?}", ours.keys()));
        for (k, v) in their_elems {
            if k.starts_with("extensions/") {
                continue; // every extension, which nmap prints and we do not
            }
            assert_eq!(our_elems.get(k), Some(v), "{port} {id} {k}");
        }
        match id.as_str() {
            // nmap -v adds the whole key; we add its SHA-256 line instead.
            "ssh-hostkey" => assert_eq!(
                our_out.lines().nth(1),
                their_out.lines().nth(1),
                "{port} {id}"
            ),
            _ => assert_eq!(our_out, their_out, "{port} {id}"),
        }
        compared += 1;
        table.push(format!(
            "{id} {port}: {} elements and the text = nmap --script {id}",
            their_elems.len()
        ));
    }
    assert!(
        compared >= 11,
        "nmap ran {compared} scripts: {:?}",
        theirs.keys()
    );

    // --sni: the server answers lab.example's certificate to a hello that names it.
    let zs = scratch.join("sni.json");
    let out = lab.xdpscan(&[
        HOST,
        "-p",
        "4434",
        "--grab",
        "tls",
        "--sni",
        "lab.example",
        "-q",
        "-oZ",
        zs.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sni = zgrab_lines(&zs);
    let leaf = &sni[&(HOST.to_string(), 4434)]["data"]["tls"]["result"]["handshake_log"]
        ["server_certificates"]["certificate"];
    check_certificate(&leaf["parsed"], &leaf["raw"], &dir.join("rsa.crt"));
    table.push("tls 4434 --sni lab.example: the certificate for that name = openssl x509".into());

    // --http-redirects: a relative and an absolute redirect on the port are followed (by the
    // address, then by the --http-host name, which nginx's Location echoes), one to another
    // port is not; against curl -L.
    for name in [None, Some("lab.example")] {
        let zr = scratch.join("redirects.json");
        let mut args = vec![
            HOST,
            "-p",
            "8082,8083",
            "--grab",
            "http",
            "--http-redirects",
            "2",
        ];
        args.extend(name.map(|n| ["--http-host", n]).iter().flatten());
        args.extend(["-q", "-oZ", zr.to_str().unwrap(), "-o", "/dev/null"]);
        let out = lab.xdpscan(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = zgrab_lines(&zr);
        let http = |port: u16| lines[&(HOST.to_string(), port)]["data"]["http"]["result"].clone();
        let authority = name.unwrap_or(HOST);
        let url = format!("http://{authority}:8082/");
        let resolve = format!("{authority}:8082:{HOST}");
        let curl = |extra: &[&str]| {
            let mut a = vec!["-sL", "--max-redirs", "2", "--resolve", &resolve];
            a.extend_from_slice(extra);
            a.push(&url);
            run(&mut lab.in_scan("curl", &a))
        };
        let statuses: Vec<String> = curl(&["-D", "-", "-o", "/dev/null"])
            .lines()
            .filter(|l| l.starts_with("HTTP/"))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect();
        let r = http(8082);
        let chain: Vec<String> = r["redirect_response_chain"]
            .as_array()
            .expect("a chain")
            .iter()
            .map(|c| c["status_code"].to_string())
            .collect();
        let ours: Vec<String> = chain
            .iter()
            .cloned()
            .chain([r["response"]["status_code"].to_string()])
            .collect();
        assert_eq!(ours, statuses, "8082 ({name:?}): the statuses curl -L saw");
        assert_eq!(
            r["response"]["body"],
            curl(&[]),
            "8082 ({name:?}): curl -L's body"
        );
        assert_eq!(r["response"]["request"]["url"]["path"], "/index.html");
        let hop = &r["redirect_response_chain"][1]["headers"]["location"][0];
        assert_eq!(
            hop,
            &format!("http://{authority}:8082/index.html"),
            "{name:?}"
        );
        let away = http(8083);
        assert_eq!(away["response"]["status_code"], 301, "{away}");
        assert!(away.get("redirect_response_chain").is_none(), "{away}");
        table.push(format!(
            "http 8082 --http-redirects 2 (Host {authority}): {ours:?}, the final body = curl -L; 8083's redirect to another port not followed"
        ));
    }

    // --grab with -sV: the grabs, then nmap's detection from the scan connection's greeting,
    // in one record (NDJSON on stdout: `data` and `service`).
    let out = lab.xdpscan(&[HOST, "-p", "22,443", "--grab", "ssh,tls", "-sV", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (port, module, product) in [(22, "ssh", "OpenSSH"), (443, "tls", "nginx")] {
        let r = lines
            .iter()
            .find(|r| r["port"] == port)
            .unwrap_or_else(|| panic!("{port}: {lines:?}"));
        assert_eq!(r["data"][module]["status"], "success", "{port}: {r}");
        assert_eq!(r["service"]["product"], product, "{port}: {r}");
    }
    table.push("--grab ssh,tls -sV: 22 ssh + OpenSSH, 443 tls + nginx in one record".into());

    // auto: protocols behind ports that do not name them, and ports with no service, over
    // both families.
    let za = scratch.join("auto.json");
    let out = lab.xdpscan(&[
        "198.19.20.5",
        "2001:db8:1::5",
        "-p",
        "22,80,443,2222,2323,2324,4433,8081,9999",
        "--grab",
        "auto",
        "-q",
        "-oZ",
        za.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let auto = zgrab_lines(&za);
    let found = |ip: &str, port: u16| -> Vec<(String, String)> {
        let line = auto
            .get(&(ip.to_string(), port))
            .unwrap_or_else(|| panic!("{ip} {port}: no line"));
        line["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(m, r)| (m.clone(), r["status"].as_str().unwrap().to_string()))
            .collect()
    };
    let ok = |m: &str| (m.to_string(), "success".to_string());
    let v4 = "198.19.20.5";
    assert_eq!(found(v4, 443), [ok("ssh")], "SSH behind 443");
    assert_eq!(
        found(v4, 8081),
        [ok("tls"), ok("http")],
        "TLS on 8081, HTTP inside"
    );
    assert_eq!(found(v4, 2222), [ok("http")], "HTTP on 2222");
    assert_eq!(found(v4, 4433), [ok("tls")], "legacy TLS");
    assert_eq!(found(v4, 22), [ok("ssh")]);
    assert_eq!(found(v4, 80), [ok("http")]);
    for (port, status, why) in [
        (
            2323,
            "connection-closed",
            "the connection closed before any data",
        ),
        (
            2324,
            "connection-closed",
            "the connection closes on any data",
        ),
        (9999, "io-timeout", "the port says nothing"),
    ] {
        let r = &auto[&(v4.to_string(), port)]["data"]["banner"];
        assert_eq!(r["status"], status, "{port}: {r}");
        assert_eq!(r["error"], format!("no service: {why}"), "{port}");
        table.push(format!("auto {port}: no service ({why})"));
    }
    let v6 = "2001:db8:1::5";
    assert_eq!(found(v6, 22), [ok("ssh")], "IPv6");
    assert_eq!(found(v6, 80), [ok("http")], "IPv6");
    assert_eq!(found(v6, 443), [ok("tls"), ok("http")], "IPv6");
    table.push(
        "auto: ssh on 443, tls+http on 8081, http on 2222, legacy tls on 4433; IPv6 22/80/443"
            .into(),
    );
    for l in &table {
        eprintln!("{l}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
