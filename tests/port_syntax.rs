//! nmap's port syntax: service names, wildcards, `--top-ports`, `-F` and `--exclude-ports` choose
//! exactly the ports nmap itself chooses from the same nmap-services. nmap runs in a namespace of
//! its own with only a loopback (its connect scan of 127.0.0.1 there never leaves it); xdpscan
//! builds its probes with `--dry-run` and sends nothing.

mod common;

use std::process::Command;

use common::*;

/// Every `<scaninfo>` of an XML document as `protocol=services` (the ports chosen for each
/// protocol, in compact form), space-separated.
fn scaninfo(xml: &str) -> String {
    let v: Vec<String> = xml
        .lines()
        .filter(|l| l.contains("<scaninfo"))
        .map(|l| {
            format!(
                "{}={}",
                attr(l, "protocol").expect("protocol attribute"),
                attr(l, "services").expect("services attribute")
            )
        })
        .collect();
    assert!(!v.is_empty(), "no scaninfo in {xml}");
    v.join(" ")
}

/// The ports nmap chose for each protocol.
fn nmap_services(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nmap", "-n", "-Pn", "-oX", "-"])
        .args(args)
        .arg("127.0.0.1")
        .output()
        .expect("run nmap");
    scaninfo(&String::from_utf8_lossy(&out.stdout))
}

/// The ports xdpscan chose for each protocol, from its XML.
fn xdpscan_ports(args: &[&str]) -> String {
    let xml = std::env::temp_dir().join(format!("xdpscan-ports-{}.xml", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "198.18.0.9",
            "--dry-run",
            "-q",
            "-S",
            "198.18.0.1",
            "--gateway-mac",
            "02:00:00:00:00:01",
            "-oX",
            xml.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let text = std::fs::read_to_string(&xml).unwrap();
    let _ = std::fs::remove_file(&xml);
    scaninfo(&text)
}

#[test]
fn the_same_ports_as_nmap_chooses() {
    if !lab_available() {
        return;
    }
    let ns = Netns::new("ports");
    for (nmap, ours) in [
        (&["-sT", "-F"][..], &["-F"][..]),
        (&["-sT", "--top-ports", "1000"], &["--top-ports", "1000"]),
        (
            &["-sT", "-p", "1-1024", "--top-ports", "20"],
            &["-p", "1-1024", "--top-ports", "20"],
        ),
        (&["-sU", "--top-ports", "50"], &["-sU", "--top-ports", "50"]),
        (&["-sT", "-p", "https,ssh"], &["-p", "https,ssh"]),
        (&["-sU", "-p", "domain,snmp"], &["-sU", "-p", "domain,snmp"]),
        (
            &["-sT", "-p", "http*", "--exclude-ports", "8080"],
            &["-p", "http*", "--exclude-ports", "8080"],
        ),
        (
            &["-sT", "-p", "1-100", "--exclude-ports", "22,ssh,80-90"],
            &["-p", "1-100", "--exclude-ports", "22,ssh,80-90"],
        ),
        // Both protocols in one scan, with nmap's T:/U: prefixes.
        (
            &["-sS", "-sU", "-p", "T:22,80,U:53,161"],
            &["-sS", "-sU", "-p", "T:22,80,U:53,161"],
        ),
        (
            &["-sS", "-sU", "-p", "7,U:domain,T:http*"],
            &["-sS", "-sU", "-p", "7,U:domain,T:http*"],
        ),
        (
            &["-sS", "-sU", "--top-ports", "15"],
            &["-sS", "-sU", "--top-ports", "15"],
        ),
        (
            &["-sS", "-sU", "-F", "--exclude-ports", "T:80,U:53,161"],
            &["-sS", "-sU", "-F", "--exclude-ports", "T:80,U:53,161"],
        ),
    ] {
        assert_eq!(
            xdpscan_ports(ours),
            nmap_services(&ns, nmap),
            "nmap {nmap:?}"
        );
    }
}
