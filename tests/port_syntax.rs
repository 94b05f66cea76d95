//! nmap's port syntax: service names, wildcards, `--top-ports`, `-F` and `--exclude-ports` choose
//! exactly the ports nmap itself chooses from the same nmap-services. nmap runs in a namespace of
//! its own with only a loopback (its connect scan of 127.0.0.1 there never leaves it); xdpscan
//! builds its probes with `--dry-run` and sends nothing.

mod common;

use std::process::Command;

use common::*;

/// The `services` attribute of nmap's `<scaninfo>`: the ports it chose, in compact form.
fn nmap_services(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nmap", "-n", "-Pn", "-oX", "-"])
        .args(args)
        .arg("127.0.0.1")
        .output()
        .expect("run nmap");
    let xml = String::from_utf8_lossy(&out.stdout);
    let info = xml
        .lines()
        .find(|l| l.contains("<scaninfo"))
        .unwrap_or_else(|| panic!("no scaninfo from nmap {args:?}: {xml}"));
    attr(info, "services").expect("services attribute")
}

/// The ports xdpscan chose, from its metadata.
fn xdpscan_ports(args: &[&str]) -> String {
    let meta = std::env::temp_dir().join(format!("xdpscan-ports-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "198.18.0.9",
            "--dry-run",
            "-q",
            "-S",
            "198.18.0.1",
            "--gateway-mac",
            "02:00:00:00:00:01",
            "-o",
            "/dev/null",
            "-m",
            meta.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let _ = std::fs::remove_file(&meta);
    m["targets"]["ports"].as_str().unwrap().to_string()
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
    ] {
        assert_eq!(
            xdpscan_ports(ours),
            nmap_services(&ns, nmap),
            "nmap {nmap:?}"
        );
    }
}
