//! Hostile traffic at a running scan. Forged UDP replies: while a UDP scan runs, the target
//! namespace sends tens of thousands of datagrams "from" scanned hosts that stay silent, to every source port the scan uses, with
//! random payloads. The source port alone lets one in 4,536 through (ZMap's and masscan's
//! check); with the cookie in the payload fields each protocol echoes (DNS ID and 0x20 case,
//! NTP origin, SNMP request-id) none gets through, and the invalid counter shows the flood.
//! A flood of 39 kinds of forged and malformed frame (scripts/lab-flood.py) during a TCP and a
//! UDP scan leaves both exact, and the invalid and malformed counters show it.

mod common;

use std::{process::Stdio, time::Duration};

use common::*;

/// Python run in the target namespace: `n` datagrams (raw, checksum 0 as UDP over IPv4 allows)
/// from random hosts of 198.19.1.0/24 (the lab drops everything sent there, so none of them
/// ever answers) and from `sport`, to 198.18.0.1 on every port of 61000-65535 in turn, with
/// random payloads of 1-120 bytes.
fn flooder(n: u32, sport: u16) -> String {
    format!(
        r#"
import os, random, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
for i in range({n}):
    data = os.urandom(random.randint(1, 120))
    udp = struct.pack("!HHHH", {sport}, 61000 + i % 4536, 8 + len(data), 0) + data
    src = bytes([198, 19, 1, random.randint(1, 254)])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0,
                     src, bytes([198, 18, 0, 1]))
    try:
        s.sendto(ip + udp, ("198.18.0.1", 0))
        sent += 1
    except OSError:
        pass
print(sent)
"#
    )
}

#[test]
fn forged_udp_replies_never_become_results() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let meta = std::env::temp_dir().join(format!("xdpscan-forgery-{}.json", std::process::id()));
    for (port, n) in [("53", 20_000u32), ("123", 10_000), ("161", 10_000)] {
        let scan = lab
            .in_scan(
                BIN,
                &[
                    "198.19.1.0/24",
                    "-sU",
                    "-p",
                    port,
                    "--rate",
                    "100",
                    "--wait",
                    "4",
                    "-q",
                    "-m",
                    meta.to_str().unwrap(),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let flood = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.tgt_ns(),
                "python3",
                "-c",
                &flooder(n, port.parse().unwrap()),
            ])
            .output()
            .unwrap();
        assert!(flood.status.success(), "{}", stderr(&flood));
        let sent: u32 = String::from_utf8_lossy(&flood.stdout)
            .trim()
            .parse()
            .unwrap();
        let out = scan.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let results = parse_results(&out.stdout);
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        let invalid = m["counts"]["invalid"].as_u64().unwrap();
        eprintln!(
            "port {port}: {sent} forged replies, {} results, {invalid} invalid",
            results.len()
        );
        assert!(results.is_empty(), "forged results: {results:?}");
        assert!(
            invalid as f64 >= sent as f64 * 0.95,
            "the invalid counter shows the flood: {invalid} of {sent}"
        );
    }
    let _ = std::fs::remove_file(meta);
}

/// scripts/lab-flood.py from the target namespace at the scanner's MAC: forged replies from
/// the scanned hosts and ports and 20+ kinds of malformed frame, `n` frames in all.
fn flood(lab: &Lab, hosts: &str, ports: &str, n: u32) -> (u64, serde_json::Value) {
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}s/address", lab.prefix));
    let mac = match mac {
        Ok(m) => m,
        // The scanner's veth lives in its namespace: read it there.
        Err(_) => {
            let o = lab
                .in_scan("cat", &[&format!("/sys/class/net/{}s/address", lab.prefix)])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        }
    };
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.tgt_ns(),
            "python3",
            &format!("{}/scripts/lab-flood.py", env!("CARGO_MANIFEST_DIR")),
            &format!("{}t", lab.prefix),
            mac.trim(),
            "198.18.0.1",
            hosts,
            ports,
            &n.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["sent"].as_u64().unwrap(), v["kinds"].clone())
}

/// A scan with the flood running through it; returns its results and metadata.
fn scan_under_flood(
    lab: &Lab,
    args: &[&str],
    hosts: &str,
    ports: &str,
    n: u32,
) -> (Vec<Result_>, serde_json::Value, u64, usize) {
    let meta = std::env::temp_dir().join(format!(
        "xdpscan-flood-{}-{}.json",
        std::process::id(),
        lab.prefix
    ));
    let mut a = args.to_vec();
    let m = meta.to_str().unwrap().to_string();
    a.extend_from_slice(&["-q", "-m", &m]);
    let scan = lab
        .in_scan(BIN, &a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (sent, kinds) = flood(lab, hosts, ports, n);
    let out = scan.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let _ = std::fs::remove_file(meta);
    let nkinds = kinds
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v.as_u64() > Some(0))
        .count();
    (parse_results(&out.stdout), m, sent, nkinds)
}

#[test]
fn malformed_and_forged_floods_leave_tcp_and_udp_results_exact() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let first = u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0));
    // TCP: 4,096 hosts x 4 ports at 3,000 probes/s, 150,000 hostile frames meanwhile.
    let ports = [22u16, 80, 443, 8080];
    let (results, m, sent, kinds) = scan_under_flood(
        &lab,
        &[
            "198.19.0.0/20",
            "-p",
            "22,80,443,8080",
            "--rate",
            "3000",
            "--wait",
            "2",
        ],
        "198.19.0.0/20",
        "22,80,443,8080",
        150_000,
    );
    let c = &m["counts"];
    eprintln!(
        "TCP: {sent} hostile frames of {kinds} kinds; {} results; invalid {}, malformed {}, validated {}",
        results.len(),
        c["invalid"],
        c["malformed"],
        c["validated"]
    );
    assert!(kinds >= 20, "{kinds} kinds");
    assert_exact(&results, &syn_expected(first, 4096, &ports));
    let shown = c["invalid"].as_u64().unwrap() + c["malformed"].as_u64().unwrap();
    assert!(
        shown as f64 >= sent as f64 * 0.3,
        "the counters show the flood: {shown} of {sent}"
    );

    // UDP: 1,024 hosts (a quarter of them silent) x 3 ports, 100,000 hostile frames.
    let (results, m, sent, kinds) = scan_under_flood(
        &lab,
        &[
            "198.19.0.0/22",
            "-sU",
            "-p",
            "53,123,161",
            "--rate",
            "1000",
            "--wait",
            "2",
        ],
        "198.19.0.0/22",
        "53,123,161",
        100_000,
    );
    let c = &m["counts"];
    eprintln!(
        "UDP: {sent} hostile frames of {kinds} kinds; {} results; invalid {}, malformed {}, validated {}",
        results.len(),
        c["invalid"],
        c["malformed"],
        c["validated"]
    );
    assert!(kinds >= 20, "{kinds} kinds");
    let mut expected = std::collections::BTreeMap::new();
    for a in first..first + 1024 {
        let ip = std::net::Ipv4Addr::from(a);
        for p in [53u16, 123, 161] {
            let (s, r) = truth("-sU", ip, p);
            if r != "no-response" {
                expected.insert((ip, p), (s.to_string(), r.to_string()));
            }
        }
    }
    assert_exact(&results, &expected);
    let shown = c["invalid"].as_u64().unwrap() + c["malformed"].as_u64().unwrap();
    assert!(
        shown as f64 >= sent as f64 * 0.3,
        "the counters show the flood: {shown} of {sent}"
    );
}
