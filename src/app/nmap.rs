//! The grabs as nmap's scripts report the same facts: `ssl-cert`, `ssh-hostkey` and
//! `http-title`, their output text (as `nmap -v` prints it) and their XML elements (the keys
//! those scripts write), so nmap's tools (ndiff, the XSL, Zenmap) show them.

use super::{http, ssh, x509, AppResult};

/// One node of a script's structured output: `<elem key>` or `<table key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Elem(Option<String>, String),
    Table(Option<String>, Vec<Node>),
}

fn elem(k: &str, v: impl Into<String>) -> Node {
    Node::Elem(Some(k.to_string()), v.into())
}

/// One script's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    pub(crate) id: &'static str,
    pub(crate) output: String,
    pub(crate) nodes: Vec<Node>,
}

/// `commonName=a/organizationName=b`: the four names nmap prints first, then the rest.
fn name_line(attrs: &[(String, String)]) -> String {
    const FIRST: [&str; 4] = [
        "commonName",
        "organizationName",
        "stateOrProvinceName",
        "countryName",
    ];
    let mut parts: Vec<String> = FIRST
        .iter()
        .filter_map(|k| attrs.iter().find(|a| a.0 == *k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.extend(
        attrs
            .iter()
            .filter(|a| !FIRST.contains(&a.0.as_str()))
            .map(|(k, v)| format!("{k}={v}")),
    );
    parts.join("/")
}

fn name_table(key: &str, attrs: &[(String, String)]) -> Node {
    let mut sorted = attrs.to_vec();
    sorted.sort();
    Node::Table(
        Some(key.into()),
        sorted.into_iter().map(|(k, v)| elem(&k, v)).collect(),
    )
}

fn ssl_cert(c: &x509::NmapCert) -> Script {
    let mut lines = vec![format!("Subject: {}", name_line(&c.subject))];
    if let Some(san) = &c.san {
        lines.push(format!("Subject Alternative Name: {san}"));
    }
    lines.push(format!("Issuer: {}", name_line(&c.issuer)));
    lines.push(format!("Public Key type: {}", c.key_type));
    lines.push(format!("Public Key bits: {}", c.key_bits));
    lines.push(format!("Signature Algorithm: {}", c.sig_algo));
    lines.push(format!("Not valid before: {}", c.not_before));
    lines.push(format!("Not valid after:  {}", c.not_after));
    lines.push(format!("MD5:   {}", c.md5));
    lines.push(format!("SHA-1: {}", c.sha1));
    // `nmap -v` writes the PEM in its XML output too.
    lines.push(c.pem.clone());
    let mut key = vec![
        elem("type", &c.key_type),
        elem("bits", c.key_bits.to_string()),
    ];
    if let Some((modulus, exponent)) = &c.rsa {
        key.push(elem("modulus", modulus));
        key.push(elem("exponent", exponent));
    }
    if let Some(curve) = &c.curve {
        key.push(Node::Table(
            Some("ecdhparams".into()),
            vec![Node::Table(
                Some("curve_params".into()),
                vec![elem("ec_curve_type", "namedcurve"), elem("curve", curve)],
            )],
        ));
    }
    let nodes = vec![
        name_table("subject", &c.subject),
        name_table("issuer", &c.issuer),
        Node::Table(Some("pubkey".into()), key),
        elem("sig_algo", &c.sig_algo),
        Node::Table(
            Some("validity".into()),
            vec![
                elem("notBefore", &c.not_before),
                elem("notAfter", &c.not_after),
            ],
        ),
        elem("md5", &c.md5),
        elem("sha1", &c.sha1),
        elem("pem", &c.pem),
    ];
    Script {
        id: "ssl-cert",
        output: lines.join("\n"),
        nodes,
    }
}

fn ssh_hostkey(k: &ssh::HostKey) -> Script {
    let key = format!("{} {}", k.algorithm_name(), super::b64(&k.blob));
    Script {
        id: "ssh-hostkey",
        // As `--script-args ssh_hostkey='md5 sha256'` prints it: the SHA-256 line is what
        // `ssh-keygen -l` prints.
        output: format!(
            "\n  {}\n  {} {} ({})",
            k.nmap_line(),
            k.bits,
            k.sha256_fingerprint(),
            k.nmap_name()
        ),
        nodes: vec![Node::Table(
            None,
            vec![
                elem("fingerprint", k.md5_hex()),
                elem("type", k.algorithm_name()),
                elem("bits", k.bits.to_string()),
                elem("key", key.split_once(' ').map_or("", |s| s.1)),
            ],
        )],
    }
}

fn http_title(response: &serde_json::Value) -> Option<Script> {
    let body = response.get("body")?.as_str()?;
    let title = match http::title(body.as_bytes()) {
        Some(t) => t,
        None => {
            let ct = response
                .pointer("/headers/content_type/0")
                .and_then(|v| v.as_str());
            let output = match ct {
                Some(ct) => format!("Site doesn't have a title ({ct})."),
                None => "Site doesn't have a title.".to_string(),
            };
            return Some(Script {
                id: "http-title",
                output,
                nodes: Vec::new(),
            });
        }
    };
    Some(Script {
        id: "http-title",
        output: title.clone(),
        nodes: vec![elem("title", title)],
    })
}

/// The scripts nmap would print for these grabs, in nmap's order (by script name).
pub(crate) fn scripts(results: &[AppResult]) -> Vec<Script> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.status == "success") {
        let s = match r.module.as_str() {
            "tls" => x509::nmap_from_tls(&r.result).map(|c| ssl_cert(&c)),
            "ssh" => ssh::host_key_of(&r.result).map(|k| ssh_hostkey(&k)),
            "http" => r.result.get("response").and_then(http_title),
            _ => None,
        };
        out.extend(s);
    }
    out.sort_by_key(|s| s.id);
    out
}

/// The lines nmap's normal output gives a script under its port: `| id: first`, `|   more`,
/// `|_last`.
pub(crate) fn normal_lines(s: &Script) -> Vec<String> {
    let text = format!("{}: {}", s.id, s.output.trim_end_matches('\n'));
    let lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                format!("|_{l}")
            } else {
                format!("| {l}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_are_framed_as_nmap_frames_them() {
        let s = Script {
            id: "ssh-hostkey",
            output: "\n  256 aa:bb (ED25519)".into(),
            nodes: Vec::new(),
        };
        assert_eq!(
            normal_lines(&s),
            ["| ssh-hostkey: ", "|_  256 aa:bb (ED25519)"]
        );
        let t = Script {
            id: "http-title",
            output: "Lab".into(),
            nodes: Vec::new(),
        };
        assert_eq!(normal_lines(&t), ["|_http-title: Lab"]);
        let attrs = vec![
            ("countryName".to_string(), "XX".to_string()),
            ("commonName".to_string(), "lab".to_string()),
            ("localityName".to_string(), "Here".to_string()),
        ];
        assert_eq!(
            name_line(&attrs),
            "commonName=lab/countryName=XX/localityName=Here"
        );
    }
}
