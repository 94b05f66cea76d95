//! Traceroute in the path lab (scripts/lab.sh path): three routers, each hop its own address.
//! Every target's hop list must equal the one the lab defines, for TCP, UDP and ICMP.

mod common;

use std::{net::Ipv4Addr, process::Command};

use common::*;
use serde_json::Value;

const R1: &str = "198.18.0.2";
const R2: &str = "198.18.1.2";
const R3: &str = "198.18.2.2";

/// The hops, state and reason the path lab gives a target.
fn expected(ip: Ipv4Addr, proto: &str) -> (Vec<String>, bool, &'static str, &'static str) {
    let o = ip.octets();
    match o[2] {
        // Dropped behind r3: three routers, then nothing.
        1 => (
            vec![R1.into(), R2.into(), R3.into()],
            false,
            match proto {
                "tcp" => "filtered",
                "udp" => "open|filtered",
                _ => "down",
            },
            "no-response",
        ),
        // r2 forwards nothing there: its time exceeded at TTL 2, its unreachable at TTL 3.
        2 => (
            vec![R1.into(), R2.into(), R2.into()],
            false,
            if proto == "icmp" { "down" } else { "filtered" },
            "host-unreach",
        ),
        _ => (
            vec![R1.into(), R2.into(), R3.into(), ip.to_string()],
            true,
            match proto {
                "tcp" => "open",
                "udp" => "closed",
                _ => "up",
            },
            match proto {
                "tcp" => "syn-ack",
                "udp" => "port-unreach",
                _ => "echo-reply",
            },
        ),
    }
}

#[test]
fn exact_paths_for_tcp_udp_and_icmp() {
    if !lab_available() {
        return;
    }
    let lab = Lab::path();
    let targets = "198.19.0.0/28,198.19.1.0/28,198.19.2.0/28";
    for proto in ["tcp", "udp", "icmp"] {
        let flag = format!("--traceroute={proto}");
        let dir =
            std::env::temp_dir().join(format!("xdpscan-trace-{}-{proto}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let xml = dir.join("t.xml").display().to_string();
        let out = lab.xdpscan(&[
            targets, &flag, "--rate", "20000", "--wait", "1", "-q", "-oJ", "-", "-oX", &xml,
        ]);
        assert!(out.status.success(), "{proto}: {}", stderr(&out));
        let res: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(res.len(), 48, "{proto}: one result per target");
        for r in &res {
            let ip: Ipv4Addr = r["ip"].as_str().unwrap().parse().unwrap();
            let (hops, reached, state, reason) = expected(ip, proto);
            let t = &r["trace"];
            let got: Vec<String> = t["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["ip"].as_str().unwrap_or("*").to_string())
                .collect();
            assert_eq!(got, hops, "{proto} {ip}");
            let ttls: Vec<u64> = t["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["ttl"].as_u64().unwrap())
                .collect();
            assert_eq!(
                ttls,
                (1..=hops.len() as u64).collect::<Vec<_>>(),
                "{proto} {ip}"
            );
            assert_eq!(t["reached"].as_bool(), Some(reached), "{proto} {ip}");
            assert_eq!(r["state"].as_str(), Some(state), "{proto} {ip}");
            assert_eq!(r["reason"].as_str(), Some(reason), "{proto} {ip}");
            assert_eq!(r["proto"].as_str(), Some(proto), "{proto} {ip}");
        }
        // The same paths in nmap's XML <trace>, valid against its DTD.
        let v = Command::new("xmllint")
            .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", &xml])
            .output()
            .unwrap();
        assert!(v.status.success(), "{proto}: {}", stderr(&v));
        let x = std::fs::read_to_string(&xml).unwrap();
        assert_eq!(x.matches("<trace ").count(), 48, "{proto}");
        assert!(
            x.contains(&format!("<hop ttl=\"3\" ipaddr=\"{R3}\"")),
            "{proto}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn ttl_window_and_hops_match_nmap() {
    if !lab_available() {
        return;
    }
    let lab = Lab::path();
    // A TTL window that starts past the first router reports from there on.
    let out = lab.xdpscan(&[
        "198.19.0.9",
        "--traceroute",
        "--ttl",
        "2-6",
        "--wait",
        "0.5",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let hops: Vec<(u64, String)> = r["trace"]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["ttl"].as_u64().unwrap(),
                h["ip"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            (2, R2.to_string()),
            (3, R3.to_string()),
            (4, "198.19.0.9".to_string())
        ]
    );
    // nmap's own traceroute finds the same hops.
    let n = lab
        .in_scan(
            "nmap",
            &[
                "-n",
                "-Pn",
                "-sS",
                "-p",
                "80",
                "--traceroute",
                "-oX",
                "-",
                "198.19.0.9",
            ],
        )
        .output()
        .unwrap();
    assert!(n.status.success(), "{}", stderr(&n));
    let xml = String::from_utf8_lossy(&n.stdout);
    let theirs: Vec<String> = xml
        .split("<hop ")
        .skip(1)
        .map(|h| attr(&format!(" {h}"), "ipaddr").unwrap())
        .collect();
    assert_eq!(theirs, [R1, R2, R3, "198.19.0.9"]);
}
