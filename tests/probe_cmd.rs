//! `xdpscan probe` (one packet, its answer shown layer by layer) and `--packet-trace`, in the
//! standard lab.

mod common;

use common::*;

fn probe(lab: &Lab, args: &[&str]) -> (i32, String) {
    let mut a = vec!["probe"];
    a.extend_from_slice(args);
    let out = lab.xdpscan(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out),
    )
}

/// (layer, field) -> value from a Scapy-style `show()` text.
fn fields(show: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut layer = String::new();
    let mut m = std::collections::BTreeMap::new();
    for l in show.lines() {
        let t = l.trim();
        if let Some(name) = t
            .strip_prefix("###[ ")
            .and_then(|r| r.split(" ]###").next())
        {
            layer = name.to_string();
        } else if let Some((k, v)) = t.split_once('=') {
            m.insert((layer.clone(), k.trim().to_string()), v.trim().to_string());
        }
    }
    m
}

/// The bytes of the last hexdump in `text`.
fn hexdump_bytes(text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for l in text.lines() {
        let is_row =
            l.len() > 6 && l[..4].chars().all(|c| c.is_ascii_hexdigit()) && &l[4..6] == "  ";
        if !is_row {
            continue;
        }
        if &l[..4] == "0000" {
            b.clear();
        }
        for h in l[6..(6 + 48).min(l.len())].split_whitespace() {
            b.push(u8::from_str_radix(h, 16).unwrap());
        }
    }
    b
}

/// Every field Scapy's `show()` prints for these bytes has the same value in ours.
fn agrees_with_scapy(ours: &str, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys
from scapy.all import *
conf.noenum.add(TCP.sport, TCP.dport, UDP.sport, UDP.dport)
Ether(bytes.fromhex(sys.argv[1])).show()",
            &hex,
        ])
        .output()
        .expect("scapy (scripts/setup.sh installs python3-scapy)");
    assert!(out.status.success(), "{}", stderr(&out));
    let theirs = fields(&String::from_utf8_lossy(&out.stdout));
    let ours = fields(ours);
    assert!(theirs.len() >= 12, "{theirs:?}");
    for ((layer, name), v) in &theirs {
        // Scapy writes an empty IP option list as `\options \` and a quoted TCP header's
        // missing options as ''.
        if name.starts_with('\\') || v == "''" || name == "unused" {
            continue;
        }
        assert_eq!(
            ours.get(&(layer.clone(), name.clone())),
            Some(v),
            "{layer}.{name}"
        );
    }
}

/// The text between the RCVD line and the end: the answer's layers.
fn answer(text: &str) -> &str {
    &text[text.find("\nRCVD (").expect("an answer")..]
}

#[test]
fn every_layer_of_a_syn_ack_a_reset_and_an_icmp_error() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();

    let (code, t) = probe(
        &lab,
        &[
            "198.19.0.5",
            "-p",
            "22",
            "--tcp-option",
            "mss:1400",
            "--tcp-option",
            "sackok",
        ],
    );
    assert_eq!(code, 0, "{t}");
    let a = answer(&t);
    assert!(
        a.contains("RCVD (") && a.contains(" TCP 198.19.0.5:22 > 198.18.0.1:"),
        "{a}"
    );
    for layer in ["###[ Ethernet ]###", "###[ IP ]###", "###[ TCP ]###"] {
        assert!(a.contains(layer), "{layer} missing: {a}");
    }
    for field in [
        "dst", "src", "type", "version", "ihl", "tos", "len", "id", "flags", "frag", "ttl",
        "proto", "chksum", "options", "sport", "dport", "seq", "ack", "dataofs", "reserved",
        "window", "urgptr",
    ] {
        assert!(
            a.contains(&format!(" {field:<10}= ")),
            "field {field} missing: {a}"
        );
    }
    assert!(a.contains("flags     = SA"), "{a}");
    assert!(a.contains("('MSS', 1400)") || a.contains("('MSS', "), "{a}");
    assert!(!a.contains("(bad)"), "checksums verify: {a}");
    assert!(a.contains("\n0000  "), "hexdump: {a}");
    agrees_with_scapy(a, &hexdump_bytes(a));
    // The sent packet is shown too, with the options asked for.
    assert!(t.starts_with("SENT (0.0000s) TCP 198.18.0.1:"), "{t}");
    assert!(
        t.contains("<mss 1400,sackOK,eol>"),
        "padded with EOL, as Scapy pads: {t}"
    );

    let (code, t) = probe(&lab, &["198.19.0.5", "-p", "8080"]);
    assert_eq!(code, 0, "{t}");
    assert!(answer(&t).contains("flags     = RA"), "{t}");
    agrees_with_scapy(answer(&t), &hexdump_bytes(answer(&t)));

    let (code, t) = probe(&lab, &["198.19.2.5", "-p", "22"]);
    assert_eq!(code, 0, "{t}");
    let a = answer(&t);
    for layer in [
        "###[ ICMP ]###",
        "###[ IP in ICMP ]###",
        "###[ TCP in ICMP ]###",
    ] {
        assert!(a.contains(layer), "{layer} missing: {a}");
    }
    assert!(
        a.contains("type      = dest-unreach") && a.contains("code      = host-unreachable"),
        "{a}"
    );

    // UDP to a responder, ICMP echo and timestamp.
    let (code, t) = probe(
        &lab,
        &[
            "198.19.0.5",
            "--proto",
            "udp",
            "-p",
            "53",
            "--data-string",
            "hello",
            "-q",
        ],
    );
    assert_eq!(code, 0, "{t}");
    assert!(
        t.contains("RCVD (") && t.contains("UDP 198.19.0.5:53 > 198.18.0.1:"),
        "{t}"
    );
    let (code, t) = probe(&lab, &["198.19.0.5", "--proto", "icmp"]);
    assert_eq!(code, 0, "{t}");
    assert!(answer(&t).contains("type      = echo-reply"), "{t}");
    let (code, t) = probe(
        &lab,
        &["198.19.0.5", "--proto", "icmp", "--icmp-type", "13", "-q"],
    );
    assert_eq!(code, 0, "{t}");
    assert!(t.contains("(type=14/code=0)"), "{t}");
}

#[test]
fn exit_codes() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let (code, t) = probe(&lab, &["198.19.1.5", "-p", "22", "--timeout", "0.5"]);
    assert_eq!(code, 1, "no answer: {t}");
    assert!(t.contains("no answer from 198.19.1.5"), "{t}");
    for bad in [
        vec!["198.19.0.256"],
        vec!["198.19.0.5", "--flags", "SX"],
        vec!["198.19.0.5", "--tcp-option", "mss:99999"],
        vec!["198.19.0.5", "-i", "nosuchif0"],
        vec!["198.19.0.5", "--data", "xyz"],
    ] {
        let (code, t) = probe(&lab, &bad);
        assert_eq!(code, 2, "{bad:?}: {t}");
        assert_eq!(t.trim().lines().count(), 1, "{bad:?}: one line: {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
    // Without privileges: one line naming what is needed, exit 3.
    let out = lab.xdpscan_unprivileged(&["probe", "198.19.0.5"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("needs root"), "{err}");
}

#[test]
fn packet_trace_prints_each_packet_sent_and_received() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let out = lab.xdpscan(&[
        "198.19.0.0/29,198.19.2.1",
        "-p",
        "22,8080",
        "--packet-trace",
        "--wait",
        "0.5",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let sent: Vec<&str> = err.lines().filter(|l| l.starts_with("SENT (")).collect();
    let rcvd: Vec<&str> = err.lines().filter(|l| l.starts_with("RCVD (")).collect();
    assert_eq!(sent.len(), 2 * 9, "{err}");
    assert!(
        sent.iter()
            .all(|l| l.contains(" S ttl=64 ") && l.contains("<mss 1460>")),
        "{err}"
    );
    assert_eq!(rcvd.len(), 2 * 9, "{err}");
    assert_eq!(
        rcvd.iter().filter(|l| l.contains(" SA ttl=")).count(),
        8,
        "{err}"
    );
    assert_eq!(
        rcvd.iter().filter(|l| l.contains(" RA ttl=")).count(),
        8,
        "{err}"
    );
    assert_eq!(
        rcvd.iter()
            .filter(|l| l.contains("host-unreachable (type=3/code=1)"))
            .count(),
        2,
        "{err}"
    );
    // Results still go to stdout untouched.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 18);

    // -sT prints nmap's CONN lines.
    let out = lab.xdpscan(&["198.19.0.5", "-p", "22,8080", "-sT", "--packet-trace", "-q"]);
    let err = stderr(&out);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("CONN (") && l.contains("Operation now in progress"))
            .count(),
        2,
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("CONN (") && l.contains("198.19.0.5:22 => Connected")),
        "{err}"
    );
}

#[test]
fn ipv6_layers_agree_with_scapy() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // SYN-ACK, RST, an ICMPv6 error quoting our probe, an echo reply and a UDP answer.
    for (args, layers) in [
        (
            vec!["2001:db8:1::5", "-p", "22"],
            vec!["###[ IPv6 ]###", "flags     = SA"],
        ),
        (vec!["2001:db8:1::5", "-p", "8080"], vec!["flags     = RA"]),
        (
            vec!["2001:db8:1:3::5", "-p", "22"],
            vec![
                "###[ ICMPv6 Destination Unreachable ]###",
                "###[ IPv6 in ICMPv6 ]###",
                "###[ TCP in ICMP ]###",
                "code      = Communication with destination administratively prohibited",
            ],
        ),
        (
            vec!["2001:db8:1:ff::1", "--proto", "icmp"],
            vec!["###[ ICMPv6 Echo Reply ]###", "type      = Echo Reply"],
        ),
        (
            vec!["2001:db8:1:ff::1", "--proto", "udp", "-p", "54"],
            vec!["code      = Port unreachable", "###[ UDP in ICMP ]###"],
        ),
    ] {
        let (code, t) = probe(&lab, &args);
        assert_eq!(code, 0, "{args:?}: {t}");
        let a = answer(&t);
        for l in layers {
            assert!(a.contains(l), "{args:?}: {l} missing: {a}");
        }
        assert!(!a.contains("(bad)"), "checksums verify: {a}");
        agrees_with_scapy(a, &hexdump_bytes(a));
        // What we sent is valid to Scapy too.
        let sent = &t[..t.find("\nRCVD (").unwrap()];
        assert!(sent.starts_with("SENT (0.0000s) "), "{t}");
        agrees_with_scapy(sent, &hexdump_bytes(sent));
    }
    // --df has no IPv6 meaning.
    let (code, t) = probe(&lab, &["2001:db8:1::5", "--df"]);
    assert_eq!(code, 2, "{t}");
    assert!(t.contains("IPv6 has no don't-fragment bit"), "{t}");
}
