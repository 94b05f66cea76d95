//! IPv6 scans in the lab (2001:db8::/32): every zone of scripts/lab.sh's IPv6 table against its
//! ground truth, prefix windows, a hitlist mixing both families, UDP and ICMPv6 echo, and bad
//! IPv6 input.

mod common;

use std::{collections::BTreeMap, net::IpAddr, process::Command};

use common::*;

/// Runs xdpscan in the lab with NDJSON on stdout; it must succeed.
fn scan6(lab: &Lab, args: &[&str]) -> BTreeMap<(IpAddr, u16), (String, String)> {
    let mut all = args.to_vec();
    all.extend(["--wait", "1", "-o", "-"]);
    let out = lab.xdpscan(&all);
    // A run cut by --max-runtime exits 3 (docs/usage.md, "Exit status").
    let code = if args.contains(&"--max-runtime") {
        3
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    results6(&out.stdout)
}

#[test]
fn syn_scan_of_every_ipv6_zone_equals_the_truth() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let zones = [0u16, 1, 2, 3, 6, 8, 9, 10];
    let targets: Vec<String> = zones
        .iter()
        .map(|z| format!("2001:db8:1:{z:x}::/120"))
        .collect();
    let rsts = lab.scan_counter("TcpOutRsts");
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.extend(["-p", LAB_PORTS, "--rate", "20000", "--wait", "2", "-o", "-"]);
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = results6(&out.stdout);
    let ports: Vec<u16> = LAB_PORTS.split(',').map(|p| p.parse().unwrap()).collect();
    let want = syn_expected6(&zones, 256, &ports);
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty() && extra.is_empty() && got.len() == want.len(),
        "got {}, want {}; wrong e.g. {wrong:?}; extra e.g. {extra:?}",
        got.len(),
        want.len()
    );
    let err = stderr(&out);
    assert!(err.contains("0 duplicate"), "{err}");
    // Our XDP program took every reply: the scanner's kernel reset no SYN-ACK.
    assert_eq!(
        lab.scan_counter("TcpOutRsts"),
        rsts,
        "the kernel saw our replies"
    );
}

#[test]
fn prefix_window_and_a_hitlist_mixing_both_families() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // Every /72 in 2001:db8:1:0::/64, at interface identifier ::1: 256 targets, all listening.
    let got = scan6(&lab, &["2001:db8:1::/64-72", "--iid", "::1", "-p", "22"]);
    assert_eq!(got.len(), 256);
    for ((ip, _), (state, _)) in &got {
        let IpAddr::V6(a) = ip else { panic!() };
        let v = u128::from(*a);
        assert_eq!(v & ((1 << 56) - 1), 1, "{ip}: the IID is ::1 below the /72");
        assert_eq!(v >> 64, 0x2001_0db8_0001_0000, "{ip} outside the /64");
        assert_eq!(state, "open");
    }
    // The same window with the default random IIDs: repeatable for one seed.
    let run = |seed: &str| {
        scan6(&lab, &["2001:db8:1::/64-68", "-p", "22", "--seed", seed])
            .into_keys()
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (run("5"), run("5"), run("6"));
    assert_eq!(a.len(), 16);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // A hitlist of both families in one file.
    let dir = std::env::temp_dir().join(format!("xdpscan-hitlist-{}", std::process::id()));
    std::fs::write(
        &dir,
        "# mixed\n198.19.0.7\n2001:db8:1::7\n2001:db8:1:8::7\n198.19.8.7\n",
    )
    .unwrap();
    let got = scan6(&lab, &["-iL", dir.to_str().unwrap(), "-p", "80"]);
    // AF_PACKET's receive filter takes both families too.
    let packet = scan6(
        &lab,
        &[
            "-iL",
            dir.to_str().unwrap(),
            "-p",
            "80",
            "--transport",
            "packet",
        ],
    );
    assert_eq!(packet, got);
    std::fs::remove_file(&dir).ok();
    let st = |ip: &str| got[&(ip.parse().unwrap(), 80)].0.clone();
    assert_eq!(st("198.19.0.7"), "open");
    assert_eq!(st("2001:db8:1::7"), "open");
    assert_eq!(st("198.19.8.7"), "closed");
    assert_eq!(st("2001:db8:1:8::7"), "closed");
}

#[test]
fn udp_echo_and_ip_protocol_over_ipv6() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let out = lab.xdpscan(&[
        "-sU",
        "2001:db8:1::5",
        "-p",
        "53,161",
        "--wait",
        "1",
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = results6(&out.stdout);
    let a: IpAddr = "2001:db8:1::5".parse().unwrap();
    assert_eq!(got[&(a, 53)], ("open".into(), "udp-response".into()));
    assert_eq!(got[&(a, 161)], ("open".into(), "udp-response".into()));
    let got = scan6(
        &lab,
        &[
            "--ping",
            "2001:db8:1::5",
            "2001:db8:1:2::5",
            "2001:db8:1:1::5",
        ],
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[&(a, 0)], ("up".into(), "echo-reply".into()));
    let b: IpAddr = "2001:db8:1:2::5".parse().unwrap();
    assert_eq!(got[&(b, 0)], ("down".into(), "host-unreach".into()));
    // -sO: ICMPv6 (58) answers its echo request; TCP (6) answers with a RST.
    let out = lab.xdpscan(&[
        "-sO",
        "2001:db8:1::5",
        "-p",
        "6,58",
        "--wait",
        "1",
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = results6(&out.stdout);
    assert_eq!(got[&(a, 58)].0, "open");
    assert_eq!(got[&(a, 6)].0, "open");
}

#[test]
fn bad_ipv6_input_gets_one_line_and_exit_2() {
    for (args, why) in [
        (vec!["2001:db8::/129", "-p", "80"], "prefix length 0-128"),
        (vec!["2001:db8::/48-32", "-p", "80"], "A < B"),
        (vec!["fe80::1", "-p", "80"], "link-local"),
        (
            vec!["2001:db8::/32-48", "--iid", "zz", "-p", "80"],
            "interface identifier",
        ),
        (vec!["2001:db8::/64", "-p", "80"], "prefix window"),
        (
            vec!["2001:db8::1", "-S", "198.18.0.1", "-p", "80"],
            "--source-ip 198.18.0.1 is IPv4",
        ),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--dry-run")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn the_hosts_own_ipv6_keeps_working_during_a_scan() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // A scan holds the XDP program attached for its 4 s cooldown.
    let scan = Command::new("ip")
        .args(["netns", "exec", &lab.scan_ns(), BIN])
        .args(["2001:db8:1::5", "-p", "22", "--wait", "4", "-q", "-o", "-"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Forget the router's MAC: the kernel must solicit it again, through our XDP program.
    let flush = lab
        .in_scan("ip", &["-6", "neigh", "flush", "all"])
        .output()
        .unwrap();
    assert!(flush.status.success());
    let ping = lab
        .in_scan("ping", &["-6", "-c", "2", "-W", "1", "2001:db8:1::7"])
        .output()
        .unwrap();
    let out = scan.wait_with_output().unwrap();
    assert!(
        ping.status.success(),
        "the host's ping failed during the scan: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(out.status.success());
    assert_eq!(results6(&out.stdout).len(), 1);
}

/// Sample hosts, one per zone of the IPv6 table, and a real address of the target.

#[test]
fn every_scan_type_agrees_with_nmap_6() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // (xdpscan flags, nmap flags, ports; None: host discovery)
    let cases: [(&[&str], &[&str], Option<&str>); 12] = [
        (&["-sS"], &["-sS"], Some("22,80,8080")),
        (&["-sA"], &["-sA"], Some("22,80,8080")),
        (&["-sW"], &["-sW"], Some("22,80,8080")),
        (&["-sF"], &["-sF"], Some("22,80,8080")),
        (&["-sN"], &["-sN"], Some("22,80,8080")),
        (&["-sX"], &["-sX"], Some("22,80,8080")),
        (&["-sM"], &["-sM"], Some("22,80,8080")),
        (&["-sU"], &["-sU"], Some("53,54")),
        (&["-sY"], &["-sY"], Some("22,80,8080")),
        (&["-sZ"], &["-sZ"], Some("22,80,8080")),
        (&["-sO"], &["-sO"], Some("6,17,47,58")),
        (&["-PE"], &["-sn", "-PE"], None),
    ];
    let mut total = 0;
    for (ours, theirs, ports) in cases {
        let mut args: Vec<&str> = ours.to_vec();
        args.extend(SAMPLE6);
        if let Some(p) = ports {
            args.extend(["-p", p]);
        }
        args.push("--report-silent");
        let got = scan6(&lab, &args);
        let mut nflags = vec!["-6"];
        nflags.extend_from_slice(theirs);
        let want = nmap_run(&lab, &nflags, ports, &SAMPLE6).all;
        assert!(!want.is_empty(), "{ours:?}: nmap said nothing");
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, s)| got.get(*k).map(|v| &v.0) != Some(*s))
            .map(|(k, s)| (k, s, got.get(k).map(|v| v.0.clone())))
            .collect();
        assert!(
            differ.is_empty(),
            "{ours:?} vs nmap -6 {theirs:?}: (target, nmap, xdpscan) {differ:?}"
        );
        eprintln!(
            "{ours:?}: {} of {} states agree with nmap -6",
            want.len(),
            want.len()
        );
        total += want.len();
    }
    eprintln!("IPv6: {total} states agree with nmap -6 over 12 scan types");
}

#[test]
fn traceroute_over_ipv6_names_every_hop() {
    if !lab_available() {
        return;
    }
    let lab = Lab::path();
    let hops = ["2001:db8::2", "2001:db8:0:1::2", "2001:db8:0:2::2"];
    for proto in ["tcp", "udp", "icmp"] {
        let flag = format!("--traceroute={proto}");
        let out = lab.xdpscan(&[
            &flag,
            "2001:db8:1:ff::1",
            "2001:db8:1:1::5",
            "2001:db8:1:2::5",
            "--ttl",
            "1-6",
            "--wait",
            "1",
            "-o",
            "-",
        ]);
        assert!(out.status.success(), "{proto}: {}", stderr(&out));
        let mut paths = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ips: Vec<String> = v["trace"]["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["ip"].as_str().unwrap_or("*").to_string())
                .collect();
            paths.insert(
                v["ip"].as_str().unwrap().to_string(),
                (v["state"].as_str().unwrap().to_string(), ips),
            );
        }
        // Reached at hop limit 4: the target's own answer ends the path.
        let (state, ips) = &paths["2001:db8:1:ff::1"];
        // TCP 80 listens, UDP 33434 does not, ICMP echo answers.
        let end = match proto {
            "tcp" => "open",
            "udp" => "closed",
            _ => "up",
        };
        assert_eq!(state, end, "{proto}");
        assert_eq!(ips[..3], hops, "{proto}");
        assert_eq!(ips[3], "2001:db8:1:ff::1", "{proto}");
        // Dropped behind r3: the path ends at r3, unreached.
        assert_eq!(paths["2001:db8:1:1::5"].1, hops, "{proto}");
        // r2 refuses: r1, r2, then r2's address-unreachable ends it.
        let (_, ips) = &paths["2001:db8:1:2::5"];
        assert_eq!(ips[..2], hops[..2], "{proto}");
        assert_eq!(ips[2], hops[1], "{proto}: r2's unreachable");
    }
}

#[test]
fn connect_banners_and_packet_trace_over_ipv6() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_SERVICES", "1")]);
    let got = scan6(&lab, &["-sT", "2001:db8:1::5", "-p", "22,8080"]);
    let a: IpAddr = "2001:db8:1::5".parse().unwrap();
    assert_eq!(got[&(a, 22)], ("open".into(), "syn-ack".into()));
    assert_eq!(got[&(a, 8080)], ("closed".into(), "conn-refused".into()));
    let out = lab.xdpscan(&[
        "-sV",
        "2001:db8:1::5",
        "-p",
        "22,80",
        "--wait",
        "1",
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let services: BTreeMap<u64, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["port"].as_u64().unwrap(),
                format!(
                    "{} {}",
                    v["service"]["name"].as_str().unwrap_or("-"),
                    v["service"]["product"].as_str().unwrap_or("-")
                ),
            )
        })
        .collect();
    assert_eq!(services[&22], "ssh OpenSSH");
    assert_eq!(services[&80], "http SimpleHTTPServer");
    let out = lab.xdpscan(&[
        "2001:db8:1::5",
        "-p",
        "22",
        "--packet-trace",
        "--wait",
        "0.5",
        "-q",
        "-o",
        "-",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("SENT")
            && err.contains("TCP [2001:db8::1]:")
            && err.contains("> [2001:db8:1::5]:22 S hlim=64"),
        "{err}"
    );
    assert!(
        err.contains("RCVD") && err.contains("TCP [2001:db8:1::5]:22 > [2001:db8::1]:"),
        "{err}"
    );
}

#[test]
fn shards_resume_and_documents_over_ipv6() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let whole = scan6(&lab, &["2001:db8:1::/120", "-p", "22,8080", "--seed", "9"]);
    assert_eq!(whole.len(), 512);
    let mut union = BTreeMap::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let part = scan6(
            &lab,
            &[
                "2001:db8:1::/120",
                "-p",
                "22,8080",
                "--seed",
                "9",
                "--shard",
                &shard,
            ],
        );
        for (k, v) in part {
            assert!(union.insert(k, v).is_none(), "shards overlap at {k:?}");
        }
    }
    assert_eq!(union, whole);
    // Stopped early and resumed: together, the whole scan.
    let dir = std::env::temp_dir().join(format!("xdpscan-v6-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resume = dir.join("resume.json").to_string_lossy().into_owned();
    let first = scan6(
        &lab,
        &[
            "2001:db8:1::/120",
            "-p",
            "22,8080",
            "--rate",
            "200",
            "--max-runtime",
            "1",
            "--resume-file",
            &resume,
        ],
    );
    assert!(first.len() < 512, "the limit stopped nothing");
    let second = scan6(
        &lab,
        &["2001:db8:1::/120", "-p", "22,8080", "--resume", &resume],
    );
    let mut all = first;
    for (k, v) in second {
        assert!(all.insert(k, v).is_none(), "resumed twice: {k:?}");
    }
    assert_eq!(all, whole);
    // nmap's XML names the family; the grepable file writes IPv6 hosts as nmap does.
    let xml = dir.join("s.xml").to_string_lossy().into_owned();
    let gnmap = dir.join("s.gnmap").to_string_lossy().into_owned();
    scan6(
        &lab,
        &["2001:db8:1::5", "-p", "22", "-oX", &xml, "-oG", &gnmap],
    );
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(
        x.contains("<address addr=\"2001:db8:1::5\" addrtype=\"ipv6\"/>"),
        "{x}"
    );
    let g = std::fs::read_to_string(&gnmap).unwrap();
    assert!(
        g.contains("Host: 2001:db8:1::5 ()\tPorts: 22/open/tcp"),
        "{g}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
