//! The links users scan from (issue 24): a VPN's tun (with and without tun's packet-information
//! header) as the scanner's only route to the targets; a source pool of 8 addresses; from inside
//! a container's namespace on a macvlan of the lab's veth; over a veth with 4 queues each way
//! read by two transmit threads. Each lab scan equals the lab's truth, and over the tun each scan
//! type equals nmap's over the same tun. This machine's kernel has no 802.1Q, ipvlan, bonding,
//! WireGuard or IP-in-IP/GRE links, so those are not built here (ARCHITECTURE.md, "Open").

mod common;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    process::Command,
};

use common::{tun::*, *};

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

/// A source pool of 8 (`-S A-B`, masscan's `--adapter-ip` range): the dry run's probes leave
/// evenly from every address (each within 5 % of an eighth).
#[test]
fn a_source_pool_spreads_the_probes_evenly() {
    let dir = std::env::temp_dir().join(format!("xdpscan-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("probes.pcap");
    let out = Command::new(BIN)
        .args([
            "198.19.0.0/16",
            "-p",
            "22,80",
            "--dry-run",
            "--rate",
            "0",
            "-q",
        ])
        .args([
            "-S",
            "198.18.0.21-198.18.0.28",
            "--gateway-mac",
            "02:00:00:00:00:01",
        ])
        .args(["--pcap", pcap.to_str().unwrap(), "-o", "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut per = BTreeMap::new();
    for f in read_pcap(&pcap) {
        *per.entry(Ipv4Addr::new(f[26], f[27], f[28], f[29]))
            .or_insert(0u32) += 1;
    }
    let _ = std::fs::remove_dir_all(dir);
    let want: Vec<Ipv4Addr> = (21..=28).map(|h| Ipv4Addr::new(198, 18, 0, h)).collect();
    assert_eq!(per.keys().copied().collect::<Vec<_>>(), want, "{per:?}");
    // 131,072 probes: an eighth is 16,384, give or take 120 (one standard deviation).
    let eighth = 131_072 / 8;
    assert!(
        per.values().all(|&n| n.abs_diff(eighth) < eighth / 20),
        "{per:?}"
    );
    eprintln!("probes per pool address: {per:?}");
}

/// A live scan from a pool of 8 addresses on the scanner's veth: the lab's truth exactly, no
/// invalid reply, and no RST from the scanner's kernel.
#[test]
fn a_scan_from_a_source_pool_equals_the_truth() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let veth = format!("{}s", lab.prefix);
    for h in 21..=28 {
        let a = format!("198.18.0.{h}/24");
        ip(&[
            "netns",
            "exec",
            &lab.scan_ns(),
            "ip",
            "addr",
            "add",
            &a,
            "dev",
            &veth,
        ]);
    }
    let mut args: Vec<&str> = SCAN.iter().copied().filter(|a| *a != "-q").collect();
    args.extend_from_slice(&["-S", "198.18.0.21-198.18.0.28"]);
    let before = lab.scan_counter("TcpOutRsts");
    let out = lab.xdpscan(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(" 0 invalid"), "{err}");
    let results = parse_results(&out.stdout);
    assert_exact(&results, &truth());
    assert_eq!(
        lab.scan_counter("TcpOutRsts"),
        before,
        "the kernel sent RSTs"
    );
}

/// A pool where one address is sent from, or a malformed one: one line naming it, exit 2.
#[test]
fn source_pools_are_refused_where_they_cannot_work() {
    for (extra, says) in [
        (&["-sT", "-p", "80"][..], "connect scan"),
        (&["--traceroute", "-p", "80"][..], "--traceroute"),
        (&["-sU", "-p", "-"][..], "frame templates"),
    ] {
        let out = Command::new(BIN)
            .args(["198.19.0.0/24", "--dry-run", "-S", "198.18.0.0/24"])
            .args(extra)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{extra:?}: {err}"
        );
    }
    let out = Command::new(BIN)
        .args([
            "198.19.0.1",
            "-p",
            "80",
            "--dry-run",
            "-S",
            "198.18.0.9-198.18.0.1",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("198.18.0.9-198.18.0.1"), "{err}");
}

/// The VPN stand-in: a tun in the scanner's namespace (198.18.1.1, 2001:db8:2::1) relayed to a
/// tun in the target's (198.18.1.2, 2001:db8:2::2), routed more specifically than the veth for
/// 198.19.0.0/20 and 2001:db8:1::/52: the scanner's only way to those targets is the tun. The
/// BSD-like responder of 198.19.10.0/24 listens on the veth, so the tun's targets stop before it.
fn vpn(lab: &Lab, pi: bool) -> TunRelay {
    let (scan_ns, tgt_ns) = (lab.scan_ns(), lab.tgt_ns());
    let (scan_if, tgt_if) = (format!("{}u", lab.prefix), format!("{}v", lab.prefix));
    TunRelay::new(
        TunEnd {
            ns: &scan_ns,
            name: &scan_if,
            addrs: &["198.18.1.1/24", "2001:db8:2::1/64 nodad"],
            routes: &["198.19.0.0/20", "2001:db8:1::/52"],
        },
        TunEnd {
            ns: &tgt_ns,
            name: &tgt_if,
            addrs: &["198.18.1.2/24", "2001:db8:2::2/64 nodad"],
            routes: &[],
        },
        pi,
    )
}

const TUN_V4: &str = "198.19.0.0-198.19.9.255";
const TUN_ZONES: [u16; 7] = [0, 1, 2, 3, 6, 8, 9];

fn tun_truth4() -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    syn_expected(u32::from(Ipv4Addr::new(198, 19, 0, 0)), 2560, &[22, 80])
}

/// A SYN scan of both families over the tun: the lab's truth exactly, 0 invalid, and (`no_rst`)
/// no RST from the scanner's kernel. Returns what xdpscan said.
fn tun_scan_equals_the_truth(lab: &Lab, no_rst: bool) -> String {
    let tun = format!("{}u", lab.prefix);
    let v6: Vec<String> = TUN_ZONES
        .iter()
        .map(|z| format!("2001:db8:1:{z:x}::/124"))
        .collect();
    let rsts = lab.scan_counter("TcpOutRsts");
    let mut args = vec!["-i", &tun, TUN_V4, "-p", "22,80", "--rate", "20000"];
    args.extend(["--wait", "1", "-o", "-"]);
    args.extend(v6.iter().map(String::as_str));
    let out = lab.xdpscan(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(" 0 invalid"), "{err}");
    let got = results6(&out.stdout);
    let mut want = syn_expected6(&TUN_ZONES, 16, &[22, 80]);
    want.extend(
        tun_truth4()
            .into_iter()
            .map(|((a, p), v)| ((IpAddr::V4(a), p), v)),
    );
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty() && got.len() == want.len(),
        "got {}, want {}; wrong e.g. {wrong:?}\n{err}",
        got.len(),
        want.len()
    );
    if no_rst {
        assert_eq!(
            lab.scan_counter("TcpOutRsts"),
            rsts,
            "the kernel saw replies"
        );
    }
    err
}

/// A VPN's tun (no packet-information header, as OpenVPN and WireGuard-like VPNs make them):
/// probes leave as bare IP packets through AF_XDP, replies are taken by the XDP program before
/// the kernel, which resets nothing; no gateway MAC is asked for.
#[test]
fn a_vpn_tun_scans_like_the_veth() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let _vpn = vpn(&lab, false);
    let err = tun_scan_equals_the_truth(&lab, true);
    assert!(
        err.contains("a link with no link header: IP packets sent and received through AF_XDP"),
        "{err}"
    );
    assert!(!err.contains("--gateway-mac unused"), "{err}");
    // A next-hop MAC given for a link that has none is said to be unused, not silently kept.
    let tun = format!("{}u", lab.prefix);
    let out = lab.xdpscan(&[
        "-i",
        &tun,
        TUN_V4,
        "-p",
        "22",
        "--gateway-mac",
        "02:00:00:00:00:01",
        "--dry-run",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("(--gateway-mac unused: this link carries no MAC addresses)"),
        "{err}"
    );
}

/// A tun with tun's packet-information header (socat's default) needs each packet's protocol,
/// which AF_XDP leaves unset: the probes leave through AF_PACKET, AF_XDP still takes the replies.
/// With --transport packet both ways go through AF_PACKET (and the kernel resets the SYN-ACKs,
/// as it does for nmap), the same results.
#[test]
fn a_tun_with_packet_information_sends_through_af_packet() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let _vpn = vpn(&lab, true);
    let err = tun_scan_equals_the_truth(&lab, true);
    assert!(err.contains("IP packets sent through AF_PACKET"), "{err}");
    assert!(
        err.contains("over af_packet (send) and af_xdp (receive)"),
        "{err}"
    );
    let tun = format!("{}u", lab.prefix);
    let out = lab.xdpscan(&[
        "-i",
        &tun,
        TUN_V4,
        "-p",
        "22,80",
        "--rate",
        "20000",
        "--wait",
        "1",
        "--transport",
        "packet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exact(&parse_results(&out.stdout), &tun_truth4());
}

/// xdpscan's flag, nmap's flags, the ports (None: host discovery), the targets.
type Case<'a> = (&'a str, &'a [&'a str], Option<&'a str>, &'a [&'a str]);

/// Each scan type over the tun, both families: nmap's states over the same tun, and for the
/// IPv4 port scans the lab's truth, on a sample of every shaped range.
#[test]
fn scan_types_over_a_tun_agree_with_nmap() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let _vpn = vpn(&lab, false);
    let tun = format!("{}u", lab.prefix);
    let hosts: Vec<&str> = SAMPLE
        .iter()
        .copied()
        .filter(|h| !h.starts_with("198.19.10."))
        .collect();
    let tcp = Some("22,80,8080");
    let cases: [Case; 12] = [
        ("-sS", &["-sS"], tcp, &hosts),
        ("-sA", &["-sA"], tcp, &hosts),
        ("-sF", &["-sF"], tcp, &hosts),
        ("-sU", &["-sU"], Some("53,161,9999"), &hosts),
        ("-sY", &["-sY"], tcp, &hosts),
        ("-sO", &["-sO", "--packet-trace"], Some("1,6,17,47"), &hosts),
        ("-PE", &["-sn", "-PE"], None, &hosts),
        ("-sS", &["-6", "-sS"], tcp, &SAMPLE6),
        ("-sA", &["-6", "-sA"], tcp, &SAMPLE6),
        ("-sU", &["-6", "-sU"], Some("53,54"), &SAMPLE6),
        ("-sO", &["-6", "-sO"], Some("6,17,47,58"), &SAMPLE6),
        ("-PE", &["-6", "-sn", "-PE"], None, &SAMPLE6),
    ];
    for (flag, nmap_flags, ports, targets) in cases {
        let list = targets.join(",");
        let mut args = vec!["-i", &tun, &list, flag, "--rate", "2000", "--wait", "1"];
        if let Some(p) = ports {
            args.extend(["-p", p]);
        }
        args.extend(["--report-silent", "-o", "-"]);
        let out = lab.xdpscan(&args);
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        let got: BTreeMap<(IpAddr, u16), String> = results6(&out.stdout)
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let nmap_flags = [nmap_flags, &["-e", &tun]].concat();
        let run = nmap_run(&lab, &nmap_flags, ports, targets);
        let nmap = run.all;
        assert!(!nmap.is_empty(), "{flag} {nmap_flags:?}: nmap said nothing");
        // nmap's -sO verdicts on ICMP that are not the reference (common::nmap_icmp_verdict_excused).
        let excused = |(ip, port): &(IpAddr, u16), s: &String| match ip {
            IpAddr::V4(a) if flag == "-sO" => {
                let ours = got.get(&(*ip, *port)).map(String::as_str);
                nmap_icmp_verdict_excused((*a, *port), s, ours, &run.stdout)
            }
            _ => false,
        };
        let differ: Vec<_> = nmap
            .iter()
            .filter(|(k, s)| got.get(*k) != Some(*s) && !excused(k, s))
            .collect();
        let excused_n = nmap
            .iter()
            .filter(|(k, s)| got.get(*k) != Some(*s) && excused(k, s))
            .count();
        assert!(
            differ.is_empty() && nmap.len() == got.len(),
            "{flag}: nmap {nmap_flags:?} over the same tun differs: {differ:?}; xdpscan {got:?}"
        );
        let v4_ports = ports.filter(|_| !nmap_flags.contains(&"-6") && flag != "-sO");
        if let Some(ports) = v4_ports {
            let mut want = BTreeMap::new();
            for h in targets {
                for p in ports.split(',') {
                    let (ip, port) = (h.parse().unwrap(), p.parse().unwrap());
                    let state = common::truth(flag, ip, port).0.to_string();
                    want.insert((IpAddr::V4(ip), port), state);
                }
            }
            assert_eq!(got, want, "{flag}: over the tun against the truth");
        }
        eprintln!(
            "{flag} {nmap_flags:?} over the tun: {} states, nmap agrees{}",
            got.len(),
            match excused_n {
                0 => String::new(),
                n => format!(" but for {n} ICMP verdicts of its own that are excused"),
            }
        );
    }
}

/// The banner and -sV conversations over the tun: the scanner's own TCP, IP packets both ways,
/// the same banners and services as over the veth (targets outside the tun's /20 take the veth),
/// and no RST from the scanner's kernel.
#[test]
fn banners_and_versions_over_a_tun_equal_the_veths() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_SERVICES", "1")]);
    let _vpn = vpn(&lab, false);
    let grab = |targets: &str| {
        let args = [targets, "-p", "22,80,443", "-sV", "--version-light"];
        let rest = ["--banner-wait", "1", "--banner-timeout", "1", "--wait", "1"];
        let out = lab.xdpscan(&[&args[..], &rest, &["-q", "-oJ", "-"]].concat());
        assert!(out.status.success(), "{targets}: {}", stderr(&out));
        let mut seen = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let last = v["ip"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .to_string();
            let port = v["port"].as_u64().unwrap();
            let field = |k: &str| v["service"][k].as_str().unwrap_or("").to_string();
            // The HTTP date differs from one second to the next.
            let mut banner = v["banner"].as_str().unwrap_or("").to_string();
            if let Some(at) = banner.find("Date: ") {
                let end = banner[at..].find("\\r\\n").map_or(banner.len(), |e| at + e);
                banner.replace_range(at..end, "Date: -");
            }
            let said = (banner, field("name"), field("product"), field("tunnel"));
            seen.insert((last, port), said);
        }
        seen
    };
    let rsts = lab.scan_counter("TcpOutRsts");
    let over_tun = grab("198.19.0.1-198.19.0.4");
    assert_eq!(lab.scan_counter("TcpOutRsts"), rsts, "the kernel sent RSTs");
    let over_veth = grab("198.19.16.1-198.19.16.4");
    assert_eq!(over_tun.len(), 12, "{over_tun:?}");
    assert_eq!(over_tun, over_veth);
    assert!(over_tun
        .values()
        .all(|(b, name, ..)| !b.is_empty() && !name.is_empty()));
}
