//! The links users scan from (issue 24): from inside a container's namespace on a macvlan of
//! the lab's veth, and over a veth with 4 queues each way read by two transmit threads. Each
//! lab scan equals the lab's truth. This machine's kernel has no 802.1Q, ipvlan, bonding,
//! WireGuard or IP-in-IP/GRE links, so those are not built here (ARCHITECTURE.md, "Open").

mod common;

use std::{collections::BTreeMap, net::Ipv4Addr, process::Command};

use common::*;

const NET: &str = "198.19.0.0/20";

/// A network namespace of the test's own (a container's), removed when dropped.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        ip(&["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[&str]) {
        let mut a = vec!["netns", "exec", &self.0, "ip"];
        a.extend_from_slice(args);
        ip(&a);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn truth() -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    syn_expected(u32::from(Ipv4Addr::new(198, 19, 0, 0)), 4096, &[22, 80])
}

const SCAN: [&str; 8] = [NET, "-p", "22,80", "--rate", "20000", "--wait", "1", "-q"];

/// A macvlan made on the scanner's veth and moved into a namespace of its own, as container
/// networking does: the scan from inside it equals the truth, and that kernel sends no RST.
#[test]
fn a_containers_macvlan_scans_like_the_veth() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let ctr = Netns::new(format!("{}-ctr", lab.prefix));
    let mv = format!("{}m", lab.prefix);
    let veth = format!("{}s", lab.prefix);
    let scan_ns = lab.scan_ns();
    let on_veth = ["link", "add", "link", &veth, "name", &mv, "type", "macvlan"];
    ip(&[
        &["netns", "exec", &scan_ns, "ip"][..],
        &on_veth,
        &["mode", "bridge"],
    ]
    .concat());
    ip(&[
        "netns", "exec", &scan_ns, "ip", "link", "set", &mv, "netns", &ctr.0,
    ]);
    ctr.ip(&["addr", "add", "198.18.0.5/24", "dev", &mv]);
    ctr.ip(&["link", "set", &mv, "up"]);
    ctr.ip(&["link", "set", "lo", "up"]);
    ctr.ip(&["route", "add", "198.19.0.0/16", "via", "198.18.0.2"]);
    let out = Command::new("ip")
        .args(["netns", "exec", &ctr.0, BIN, "-i", &mv])
        .args(SCAN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exact(&parse_results(&out.stdout), &truth());
    let rsts = Command::new("ip")
        .args(["netns", "exec", &ctr.0, "nstat", "-az", "TcpOutRsts"])
        .output()
        .unwrap();
    let rsts = String::from_utf8_lossy(&rsts.stdout);
    let sent: u64 = rsts
        .lines()
        .find_map(|l| l.strip_prefix("TcpOutRsts"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(u64::MAX);
    assert_eq!(sent, 0, "the container's kernel sent RSTs: {rsts}");
}

/// A veth with 4 queues each way: the replies spread over every queue (veth counts the
/// packets its XDP hook saw per queue), every queue's socket is read, and two transmit threads
/// each send on a queue of their own.
#[test]
fn four_queues_each_way_are_all_read() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_QUEUES", "4")]);
    let mut args = SCAN.to_vec();
    args.extend_from_slice(&["--tx-threads", "2"]);
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exact(&parse_results(&out.stdout), &truth());
    let stats = lab
        .in_scan("ethtool", &["-S", &format!("{}s", lab.prefix)])
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout);
    let per_queue: Vec<u64> = (0..4)
        .map(|q| {
            let key = format!("rx_queue_{q}_xdp_packets:");
            stats
                .lines()
                .find_map(|l| l.trim().strip_prefix(key.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "replies on every queue: {per_queue:?}\n{stats}"
    );
}
