//! Forged UDP replies: while a UDP scan runs, the target namespace sends tens of thousands of
//! datagrams "from" scanned hosts that stay silent, to every source port the scan uses, with
//! random payloads. The source port alone lets one in 4,536 through (ZMap's and masscan's
//! check); with the cookie in the payload fields each protocol echoes (DNS ID and 0x20 case,
//! NTP origin, SNMP request-id) none gets through, and the invalid counter shows the flood.

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
